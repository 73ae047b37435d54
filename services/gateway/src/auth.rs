//! API keys (per firm, stored as SHA-256) and the operator token.
use crate::error::ApiError;
use crate::startup::AppState;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
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

pub const SCOPE_API: &str = "api";
pub const SCOPE_INBOUND: &str = "inbound";

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The firm behind the request's `Authorization: Bearer afk_...`.
#[derive(Debug, Clone, Copy)]
pub struct FirmAuth {
    pub firm_id: Uuid,
}

impl FromRequestParts<AppState> for FirmAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::Unauthorized("send the firm's API key as `Authorization: Bearer <key>`".into()))?;
        let firm_id = crate::store::firm_for_key(&state.base.pool, &hash_key(token), SCOPE_API)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the API key is unknown or revoked".into()))?;
        Ok(FirmAuth { firm_id })
    }
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
