//! Signed outbound webhooks: `webhook-id` is the delivery id (the same on every retry and
//! replay, so receivers deduplicate), `webhook-timestamp` is the wall-clock time of this
//! attempt (receivers check it against their own clock, so it is never the simulated one).
use super::{Failure, Outcome, http_outcome, signing};

pub async fn send(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    webhook_id: &str,
    message: &serde_json::Value,
) -> Outcome {
    let body = match serde_json::to_vec(message) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed { status: None, error: e.to_string(), failure: Failure::Permanent },
    };
    let timestamp = chrono::Utc::now().timestamp();
    let signature = match signing::sign(secret, webhook_id, timestamp, &body) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed { status: None, error: e.to_string(), failure: Failure::Permanent },
    };
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body);
    http_outcome(request.send().await).await
}
