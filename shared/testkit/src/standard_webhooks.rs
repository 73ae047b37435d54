//! A Standard Webhooks receiver's check (https://www.standardwebhooks.com/), written from the
//! spec and not from arflow's signer, so tests and the demo verify what the notification
//! service sends independently of its code.
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far `webhook-timestamp` may be from now (the spec's suggested tolerance).
pub const TOLERANCE_SECS: i64 = 300;

/// The `webhook-id` of a correctly signed delivery, or `None`: HMAC-SHA256 keyed with the
/// base64-decoded secret after `whsec_`, over `{id}.{timestamp}.{body}`, base64; any `v1,`
/// entry of the space-separated `webhook-signature` may match; the timestamp must be fresh.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (id, ts, sigs) = (h("webhook-id")?, h("webhook-timestamp")?, h("webhook-signature")?);
    if (chrono::Utc::now().timestamp() - ts.parse::<i64>().ok()?).abs() > TOLERANCE_SECS {
        return None;
    }
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str())).then(|| id.to_string())
}
