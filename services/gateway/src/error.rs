//! What an HTTP handler can answer besides success: each variant is an outcome the
//! caller can act on, mapped to an RFC 9457 problem with a stable type.
use arflow_runtime::http::Problem;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no firm with id {0}")]
    UnknownFirm(String),
    #[error("{0}")]
    InvalidSignature(String),
    /// A telephony callback without a valid `X-Twilio-Signature` (403, as Twilio's docs advise).
    #[error("{0}")]
    Forbidden(String),
    /// The key is valid but its scope does not allow this (403).
    #[error("{0}")]
    Scope(String),
    /// The same Idempotency-Key is being handled by another request: retry after a second (409).
    #[error("{0}")]
    InFlight(String),
    /// Over a rate limit: retry after this many seconds (429).
    #[error("{detail}")]
    RateLimited { detail: String, retry_after_secs: u64 },
    /// The request took longer than the gateway allows (503).
    #[error("{0}")]
    Timeout(String),
    /// The body is larger than the route accepts (413).
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    StaleTimestamp(String),
    #[error("{0}")]
    MalformedPayload(String),
    #[error("{0}")]
    BadToken(String),
    #[error("upstream {0}")]
    Upstream(String),
    #[error("{0}")]
    Unavailable(String),
    /// A forwarded service's own answer (an error, or a success that cannot be replayed).
    #[error("relayed answer with status {}", .0.status)]
    Relayed(crate::routes::forward::Relayed),
    /// Logged in full, answered opaquely.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn problem(&self) -> Problem {
        let (status, kind) = match self {
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::UnknownFirm(_) => (StatusCode::NOT_FOUND, "unknown-firm"),
            ApiError::InvalidSignature(_) => (StatusCode::BAD_REQUEST, "invalid-signature"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "invalid-signature"),
            ApiError::Scope(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::InFlight(_) => (StatusCode::CONFLICT, "in-flight"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            ApiError::StaleTimestamp(_) => (StatusCode::BAD_REQUEST, "stale-timestamp"),
            ApiError::MalformedPayload(_) => (StatusCode::BAD_REQUEST, "malformed-payload"),
            ApiError::BadToken(_) => (StatusCode::BAD_REQUEST, "invalid-token"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Relayed(r) => (r.status, "upstream"),
            ApiError::Internal(_) => return Problem::internal(),
        };
        Problem::new(status, kind, self.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(format!("encoding: {e}"))
    }
}

impl From<arflow_bus::BusError> for ApiError {
    fn from(e: arflow_bus::BusError) -> Self {
        ApiError::Internal(format!("bus: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Relayed(r) = self {
            return r.into_response();
        }
        match &self {
            ApiError::Internal(reason) => tracing::error!(error = %reason, "request failed"),
            other => tracing::info!(problem = %other, "request refused"),
        }
        let retry_after = match &self {
            ApiError::InFlight(_) => Some(1),
            ApiError::RateLimited { retry_after_secs, .. } => Some((*retry_after_secs).max(1)),
            _ => None,
        };
        let mut response = self.problem().into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

/// Problem bodies in the OpenAPI documents (the gateway's and the services').
pub use arflow_service::api::ProblemBody;
