//! A small client of the gateway's REST API (the same API firms use).
use anyhow::{Context, bail};
use serde_json::{Value, json};

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        Api { base: base.trim_end_matches('/').to_string(), token: token.to_string(), http: reqwest::Client::new() }
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("{what}: gateway unreachable at {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body.get("detail").and_then(Value::as_str).unwrap_or("no detail");
            bail!("{what}: {status}: {detail}");
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)), &format!("GET {path}")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body), &format!("POST {path}")).await
    }

    /// A POST by a named firm user (`X-Arflow-Actor`: who is recorded in ledgers and case histories).
    pub async fn post_as(&self, actor: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let req = self.http.post(format!("{}{path}", self.base)).header("x-arflow-actor", actor).json(body);
        self.send(req, &format!("POST {path}")).await
    }

    /// A CSV upload by a named firm user.
    pub async fn post_csv(&self, actor: &str, path: &str, csv: String) -> anyhow::Result<Value> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-arflow-actor", actor)
            .header("content-type", "text/csv")
            .body(csv);
        self.send(req, &format!("POST {path}")).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.patch(format!("{}{path}", self.base)).json(body), &format!("PATCH {path}")).await
    }

    pub async fn create_firm(&self, name: &str, sender: &str, tz: &str, secret: &str) -> anyhow::Result<Value> {
        self.post(
            "/v1/firms",
            &json!({"name": name, "sender_email": sender, "timezone": tz, "stripe_webhook_secrets": [secret]}),
        )
        .await
    }

    pub async fn portfolio(&self) -> anyhow::Result<Value> {
        self.get("/v1/portfolio").await
    }

    /// Posts a Stripe event signed with `secret` exactly as Stripe signs it.
    pub async fn stripe_webhook(&self, firm_id: &str, secret: &str, event: &Value) -> anyhow::Result<Value> {
        let body = serde_json::to_vec(event)?;
        let header = arflow_runtime::signature::stripe_signature_header(secret, &body, chrono::Utc::now().timestamp());
        let req = self
            .http
            .post(format!("{}/webhooks/stripe/{firm_id}", self.base))
            .header("Stripe-Signature", header)
            .header("Content-Type", "application/json")
            .body(body);
        webhook(req, &format!("Stripe webhook {}", event["type"])).await
    }

    /// The firm's mail provider posts a raw inbound message (`token`: the firm's inbound token).
    pub async fn inbound_email(&self, firm_id: &str, token: &str, raw: Vec<u8>) -> anyhow::Result<Value> {
        let req = self
            .http
            .post(format!("{}/webhooks/email/inbound/{firm_id}", self.base))
            .bearer_auth(token)
            .header("Content-Type", "message/rfc822")
            .body(raw);
        webhook(req, "inbound email").await
    }
}

/// A webhook post authenticated by its own means (signature, inbound token), not the API key.
async fn webhook(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let resp = req.send().await.with_context(|| format!("{what}: gateway unreachable"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what}: {status}: {v}");
    }
    Ok(v)
}
