//! API keys (per firm, stored as SHA-256) and the operator token.
use crate::error::ApiError;
use crate::keys::{self, Access};
use crate::startup::AppState;
use axum::extract::FromRequestParts;
use axum::http::{Method, header, request::Parts};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A new random key, `afk_<64 hex>`, and its stored hash.
pub fn new_api_key() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let key = format!("afk_{}", hex::encode(bytes));
    let hash = hash_key(&key);
    (key, hash)
}

/// A new inbound-webhook token, `afi_<64 hex>`, and its stored hash.
pub fn new_inbound_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("afi_{}", hex::encode(bytes));
    let hash = hash_key(&token);
    (token, hash)
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The firm behind the request's `Authorization: Bearer afk_...`, and what the key may do.
/// A `read` key is refused (403) on anything but GET and HEAD here, before any handler runs.
#[derive(Debug, Clone, Copy)]
pub struct FirmAuth {
    pub firm_id: Uuid,
    pub key_id: Uuid,
    pub access: Access,
}

impl FirmAuth {
    /// Refuses the request unless the key is an `admin` key: Stripe secrets, keys, tokens and
    /// notification endpoints.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.access == Access::Admin {
            return Ok(());
        }
        Err(ApiError::Scope(format!("{what} needs an admin key; this key's scope is {}", self.access.as_str())))
    }
}

impl FromRequestParts<AppState> for FirmAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::Unauthorized("send the firm's API key as `Authorization: Bearer <key>`".into()))?;
        let now = state.base.clock.now();
        let (credential, last_used) = keys::lookup(&state.base.pool, &hash_key(token), keys::KIND_API, now)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the API key is unknown, revoked or expired".into()))?;
        if last_used.is_none_or(|t| now - t > chrono::Duration::minutes(1)) {
            // Best effort: the request must not fail because its bookkeeping did.
            if let Err(e) = keys::touch(&state.base.pool, credential.key_id, now).await {
                tracing::warn!(error = %e, "cannot record a key's last use");
            }
        }
        let auth = FirmAuth { firm_id: credential.firm_id, key_id: credential.key_id, access: credential.access };
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        if !reads && auth.access == Access::Read {
            return Err(ApiError::Scope(format!("{} needs a write or admin key; this key is read-only", parts.method)));
        }
        Ok(auth)
    }
}

/// The firm whose inbound token this is, if it is live.
pub async fn inbound_firm(state: &AppState, token: &str) -> Result<Option<Uuid>, ApiError> {
    let found = keys::lookup(&state.base.pool, &hash_key(token), keys::KIND_INBOUND, state.base.clock.now()).await?;
    Ok(found.map(|(c, _)| c.firm_id))
}

/// The token of an inbound webhook: `Authorization: Bearer afi_...`, or HTTP Basic with the
/// token as password (what mail providers can put in a webhook URL).
pub fn inbound_token(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_string());
    }
    None
}

/// The operator, authenticated with `gateway.admin_token`.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = state.config.admin_token.expose_secret();
        let given = bearer(parts).unwrap_or_default();
        // An empty configured token disables firm creation rather than accepting anything.
        if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ApiError::Unauthorized("the operator token is missing or wrong".into()));
        }
        Ok(Operator)
    }
}
