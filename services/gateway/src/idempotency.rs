//! `Idempotency-Key` on writes, per firm. The key is claimed before the handler runs (a row
//! `in_flight`), so a concurrent retry gets 409 with `Retry-After` instead of running twice; the
//! handler completes the claim in its own transaction, so a crash after its commit cannot run it
//! again; the key is bound to a hash of the method, path and body (another request under the same
//! key gets 422); the stored response never holds a secret (a replay shows the resource without
//! it); and a key is forgotten after 24 hours.
use crate::error::ApiError;
use crate::startup::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use uuid::Uuid;

pub const HEADER: &str = "idempotency-key";

/// How long a key is remembered.
pub const KEEP: chrono::Duration = chrono::Duration::hours(24);

/// A claim older than this whose request never finished (the process died before its commit)
/// may be taken over by a retry: longer than any request may run (`gateway.limits`).
const ABANDONED: chrono::Duration = chrono::Duration::minutes(2);

/// Largest body hashed for a key (the API's JSON bodies are far smaller).
const MAX_HASHED_BYTES: usize = 1024 * 1024;

/// Fields whose values are secrets shown once; a stored response keeps none of them.
const SECRET_FIELDS: [&str; 6] = ["api_key", "inbound_token", "secret", "signing_secret", "password", "token"];

/// Values that look like a secret whatever their field (keys, tokens, webhook and Stripe secrets).
const SECRET_PREFIXES: [&str; 5] = ["afk_", "afi_", "whsec_", "sk_", "rk_"];

/// SHA-256 of the method, path and query, and body of a write carrying an Idempotency-Key.
#[derive(Debug, Clone)]
struct Fingerprint(String);

/// Middleware: fingerprints every write that carries an Idempotency-Key, before any handler
/// reads its body.
pub async fn fingerprint(request: Request, next: Next) -> Response {
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !writes || !request.headers().contains_key(HEADER) || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_HASHED_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::TooLarge(format!(
                "a request with an Idempotency-Key may carry at most {MAX_HASHED_BYTES} bytes"
            ))
            .into_response();
        }
    };
    let target = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    let mut hash = Sha256::new();
    for part in [parts.method.as_str().as_bytes(), b"\n", target.as_bytes(), b"\n", &bytes] {
        hash.update(part);
    }
    parts.extensions.insert(Fingerprint(hex::encode(hash.finalize())));
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The request's Idempotency-Key (checked) and fingerprint.
#[derive(Debug, Clone, Default)]
pub struct Idempotency {
    key: Option<String>,
    fingerprint: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(Idempotency::default());
        };
        let key = value.to_str().map_err(|_| ApiError::Validation("Idempotency-Key must be visible ASCII".into()))?;
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::Validation("Idempotency-Key must be 1 to 255 characters".into()));
        }
        let fingerprint =
            parts.extensions.get::<Fingerprint>().map(|f| f.0.clone()).ok_or_else(|| {
                ApiError::internal("Idempotency-Key without a fingerprint: the middleware is missing")
            })?;
        Ok(Idempotency { key: Some(key.to_string()), fingerprint })
    }
}

/// A claimed key, completed with the response in the handler's own transaction.
#[derive(Debug, Clone)]
pub struct Claim {
    firm_id: Uuid,
    key: Option<String>,
}

impl Claim {
    /// Stores the response (without secrets) as this key's answer. Call it in the transaction
    /// that commits the handler's work, so the two cannot be separated by a crash.
    pub async fn complete(&self, conn: &mut PgConnection, status: StatusCode, body: &Value) -> Result<(), sqlx::Error> {
        let Some(key) = &self.key else { return Ok(()) };
        let mut stored = body.clone();
        redact(&mut stored);
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', status = $3, body = $4 \
             WHERE firm_id = $1 AND key = $2 AND state = 'in_flight'",
        )
        .bind(self.firm_id)
        .bind(key)
        .bind(i16::try_from(status.as_u16()).unwrap_or(200))
        .bind(stored)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Runs a write once per Idempotency-Key (per firm): a repeat replays the first response
/// (marked `Idempotent-Replayed: true`, secrets `null`). An error is not stored: the key is
/// released and the request can be retried.
pub async fn run<F, Fut>(
    state: &AppState,
    firm_id: Uuid,
    idem: &Idempotency,
    method: &Method,
    path: &str,
    handler: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Claim) -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(key) = &idem.key else {
        let (status, body) = handler(Claim { firm_id, key: None }).await?;
        return Ok((status, Json(body)).into_response());
    };
    let pool = &state.base.pool;
    let now = state.base.clock.now();
    if let Some(replay) = claim(pool, firm_id, key, method.as_str(), path, &idem.fingerprint, now).await? {
        return Ok(replay);
    }
    let claim = Claim { firm_id, key: Some(key.clone()) };
    match handler(claim.clone()).await {
        Ok((status, body)) => {
            // Handlers that did not complete the claim in their transaction (a forwarded call
            // commits elsewhere) complete it now.
            let mut conn = pool.acquire().await?;
            claim.complete(&mut conn, status, &body).await?;
            Ok((status, Json(body)).into_response())
        }
        Err(e) => {
            release(pool, firm_id, key).await;
            Err(e)
        }
    }
}

/// Claims `key`, or answers for it: the stored response, 409 while another request holds it,
/// 422 when it was used for another request.
async fn claim(
    pool: &PgPool,
    firm_id: Uuid,
    key: &str,
    method: &str,
    path: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Option<Response>, ApiError> {
    // A new key, or one forgotten (older than KEEP) or abandoned (in flight past ABANDONED): ours.
    let claimed: Option<(i32,)> = sqlx::query_as(
        "INSERT INTO idempotency_keys (firm_id, key, path, method, request_hash, state, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'in_flight', NULL, NULL, $6) \
         ON CONFLICT (firm_id, key) DO UPDATE SET path = $3, method = $4, request_hash = $5, state = 'in_flight', \
           status = NULL, body = NULL, created_at = $6 \
         WHERE idempotency_keys.created_at <= $7 \
            OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.created_at <= $8) \
         RETURNING 1",
    )
    .bind(firm_id)
    .bind(key)
    .bind(path)
    .bind(method)
    .bind(fingerprint)
    .bind(now)
    .bind(now - KEEP)
    .bind(now - ABANDONED)
    .fetch_optional(pool)
    .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let row: Option<Stored> = sqlx::query_as(
        "SELECT method, path, request_hash, status, body FROM idempotency_keys WHERE firm_id = $1 AND key = $2",
    )
    .bind(firm_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    let Some(Stored { method: first_method, path: first_path, request_hash: hash, status, body }) = row else {
        // Pruned between the two statements: the caller may simply retry.
        return Err(ApiError::InFlight("this Idempotency-Key is being released; retry".into()));
    };
    if hash != fingerprint {
        return Err(ApiError::Validation(format!(
            "this Idempotency-Key was already used for another request ({first_method} {first_path} with another \
             body); use a new key for a new request"
        )));
    }
    let (Some(status), Some(body)) = (status, body) else {
        return Err(ApiError::InFlight("a request with this Idempotency-Key is still being handled".into()));
    };
    let status = StatusCode::from_u16(u16::try_from(status).unwrap_or(200)).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(response))
}

/// What a key was first used for, and its answer once there is one.
#[derive(sqlx::FromRow)]
struct Stored {
    method: String,
    path: String,
    request_hash: String,
    status: Option<i16>,
    body: Option<Value>,
}

/// Lets a failed request's key be used again.
async fn release(pool: &PgPool, firm_id: Uuid, key: &str) {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE firm_id = $1 AND key = $2 AND state = 'in_flight'")
        .bind(firm_id)
        .bind(key)
        .execute(pool)
        .await;
    if let Err(e) = done {
        // The claim is taken over after ABANDONED anyway.
        tracing::warn!(error = %e, "cannot release an Idempotency-Key after a failed request");
    }
}

/// A whole key, token or secret (not the 8-character prefix a listing shows to recognise one).
fn looks_secret(s: &str) -> bool {
    s.len() > 16 && SECRET_PREFIXES.iter().any(|p| s.starts_with(p))
}

/// Replaces every secret in a response with `null`.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (field, v) in map.iter_mut() {
                let secret = SECRET_FIELDS.contains(&field.as_str()) || v.as_str().is_some_and(looks_secret);
                if secret && !v.is_null() {
                    *v = Value::Null;
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets_by_field_and_by_shape() {
        let mut v = serde_json::json!({
            "id": "k1", "api_key": "afk_0123", "nested": {"secret": "whsec_x", "url": "https://x"},
            "list": [{"note": "sk_live_0123456789abcdef"}], "name": "not a secret", "prefix": "afk_0123"
        });
        redact(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "id": "k1", "api_key": null, "nested": {"secret": null, "url": "https://x"},
                "list": [{"note": null}], "name": "not a secret", "prefix": "afk_0123"
            })
        );
    }
}
