//! The internal API contract between the gateway and the services behind it.
//!
//! The gateway is the only public edge: it authenticates the firm's API key, then
//! forwards `/v1/consent/...`, `/v1/escalations/...`, `/v1/notifications/...`, `/v1/calls/...`,
//! `/v1/texts/...` and `/v1/emails/...` to the service that owns those records, naming the firm and the firm user in headers and
//! proving itself with the shared internal token. A service trusts those headers only
//! with the right token (and, in Kubernetes, only from the gateway's pods).
use arflow_runtime::http::Problem;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The firm the gateway authenticated.
pub const FIRM_HEADER: &str = "x-arflow-firm-id";
/// The firm user acting (`X-Arflow-Actor` from the client, else `api-key:<prefix>`).
pub const ACTOR_HEADER: &str = "x-arflow-actor";
/// The shared secret between the gateway and the services behind it.
pub const INTERNAL_TOKEN_HEADER: &str = "x-arflow-internal-token";

/// `[internal]`: the token the gateway sends (the same value in every service).
#[derive(Debug, Clone, Deserialize)]
pub struct InternalSettings {
    #[serde(default = "empty")]
    pub token: SecretString,
}

fn empty() -> SecretString {
    SecretString::from(String::new())
}

impl Default for InternalSettings {
    fn default() -> Self {
        InternalSettings { token: empty() }
    }
}

impl InternalSettings {
    /// At least 16 characters; an empty token would let anyone on the network act as any firm.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        if self.token.expose_secret().len() < 16 {
            return Err(format!("{key}: set the internal token shared with the gateway (at least 16 characters)"));
        }
        Ok(())
    }
}

/// Added to a service's router as an `Extension` so the `Caller` extractor can check requests.
#[derive(Clone)]
pub struct InternalAuth(pub SecretString);

/// The firm (and firm user) a request acts for, as forwarded by the gateway.
#[derive(Debug, Clone)]
pub struct Caller {
    pub firm_id: Uuid,
    pub actor: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(InternalAuth(expected)) = parts.extensions.get::<InternalAuth>().cloned() else {
            return Err(ApiError::Internal("the router has no InternalAuth extension".into()));
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let token = header(INTERNAL_TOKEN_HEADER).unwrap_or("");
        let expected = expected.expose_secret();
        if expected.is_empty() || !bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ApiError::Unauthorized("call this API through the gateway with a firm API key".into()));
        }
        let firm_id = header(FIRM_HEADER)
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| ApiError::Unauthorized(format!("missing or invalid {FIRM_HEADER}")))?;
        let actor = header(ACTOR_HEADER).filter(|a| !a.is_empty()).unwrap_or("api").chars().take(200).collect();
        Ok(Caller { firm_id, actor })
    }
}

/// What a service's HTTP handler can answer besides success, as RFC 9457 problems.
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
    #[error("upstream {0}")]
    Upstream(String),
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
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream"),
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

impl From<arflow_bus::BusError> for ApiError {
    fn from(e: arflow_bus::BusError) -> Self {
        ApiError::Internal(format!("bus: {e}"))
    }
}

impl From<arflow_store::StoreError> for ApiError {
    fn from(e: arflow_store::StoreError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(reason) => tracing::error!(error = %reason, "request failed"),
            other => tracing::info!(problem = %other, "request refused"),
        }
        self.problem().into_response()
    }
}

/// `?limit=&cursor=` of every list behind the gateway, as the gateway's own lists take them.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1..=100, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 100;

    /// The page size asked for, or a 422 naming the range.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(Self::DEFAULT_LIMIT),
            Some(n @ 1..=Self::MAX_LIMIT) => Ok(n),
            Some(n) => Err(ApiError::Validation(format!("limit must be between 1 and {}, got {n}", Self::MAX_LIMIT))),
        }
    }

    /// The cursor as the id of the previous page's last item (lists ordered by id).
    pub fn after_id(&self) -> Result<Option<Uuid>, ApiError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| Uuid::parse_str(c).map_err(|_| ApiError::Validation("cursor is not one this API returned".into())))
            .transpose()
    }
}

/// One page of a list: every list behind the gateway answers `{data, next_cursor}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// The page from `rows` fetched with `limit + 1`: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(cursor_of) } else { None };
        List { data: rows, next_cursor }
    }
}

/// RFC 9457 problem bodies in the OpenAPI documents (`arflow_runtime::http::Problem` on the wire).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ProblemBody {
    /// Stable URI, e.g. `https://arflow.dev/problems/not-found`.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
}

/// The security schemes of the public API (a service's routes are public through the gateway,
/// which checks the firm's API key): `api_key`, `operator`, `inbound_token`, all bearer tokens.
pub struct GatewaySecurity;

impl utoipa::Modify for GatewaySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("operator", bearer());
        components.add_security_scheme("inbound_token", bearer());
    }
}
