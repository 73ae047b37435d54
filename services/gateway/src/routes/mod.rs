//! HTTP endpoints (axum 0.8). Every handler runs in a span with the firm id (and the
//! invoice id where known); every query is scoped by the authenticated firm.
pub mod activity;
pub mod backfill;
pub mod firms;
pub mod forward;
pub mod inbound;
pub mod keys;
pub mod openapi;
pub mod records;
pub mod replies;
pub mod telephony;
pub mod unsubscribe;
pub mod webhooks;

use crate::error::ApiError;
use crate::startup::AppState;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::routing::{any, delete, get, patch, post};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/firms", post(firms::create_firm))
        .route("/v1/firm", get(firms::get_firm).patch(firms::patch_firm))
        .route("/v1/firm/api-keys", get(keys::list_api_keys).post(keys::create_api_key))
        .route("/v1/firm/api-keys/{id}", delete(keys::revoke_api_key))
        .route("/v1/firm/api-keys/{id}/rotate", post(keys::rotate_api_key))
        .route("/v1/firm/inbound-tokens", get(keys::list_inbound_tokens).post(keys::create_inbound_token))
        .route("/v1/firm/inbound-tokens/{id}", delete(keys::revoke_inbound_token))
        .route("/v1/firm/audit-log", get(keys::audit_log))
        .route("/v1/firm/stripe/backfill", post(backfill::backfill))
        .route("/v1/clients", post(records::create_client).get(records::list_clients))
        .route("/v1/clients/{id}", get(records::get_client).patch(records::patch_client))
        .route("/v1/clients/{id}/contacts", post(records::create_contact))
        .route("/v1/contacts/{id}", patch(records::patch_contact))
        .route("/v1/invoices", get(records::list_invoices))
        .route("/v1/invoices/{id}", get(records::get_invoice).patch(records::patch_invoice))
        .route("/v1/invoices/{id}/activity", get(activity::invoice_activity))
        .route("/v1/portfolio", get(activity::portfolio))
        .route("/v1/replies", get(replies::list_replies))
        .route("/v1/unsubscribe/{token}", get(unsubscribe::page).post(unsubscribe::unsubscribe))
        .route("/v1/consent", any(forward::forward))
        .route("/v1/consent/{*rest}", any(forward::forward))
        .route("/v1/escalations", any(forward::forward))
        .route("/v1/escalations/{*rest}", any(forward::forward))
        .route("/v1/notifications", any(forward::forward))
        .route("/v1/notifications/{*rest}", any(forward::forward))
        .route("/v1/calls", any(forward::forward))
        .route("/v1/calls/{*rest}", any(forward::forward))
        .route("/v1/texts", any(forward::forward))
        .route("/v1/texts/{*rest}", any(forward::forward))
        .route("/v1/emails", any(forward::forward))
        .route("/v1/emails/{*rest}", any(forward::forward))
        .route("/webhooks/stripe/{firm_id}", post(webhooks::stripe_webhook))
        .route("/webhooks/email/inbound/{firm_id}", post(inbound::email_inbound))
        .route(
            "/webhooks/telephony/{*rest}",
            post(telephony::callback).layer(axum::extract::DefaultBodyLimit::max(telephony::MAX_BODY_BYTES)),
        )
        .route("/openapi.json", get(openapi::document))
        .layer(axum::middleware::from_fn(crate::idempotency::fingerprint))
        .layer(axum::middleware::from_fn_with_state(state.limiter.clone(), crate::limits::enforce))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// JSON bodies whose errors are problems (`validation`), not axum's plain text.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::Validation(r.body_text())
    }
}

/// Path parameters; an unparseable id is simply not found.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::NotFound(format!("no such resource: {}", r.body_text()))
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::Validation(r.body_text())
    }
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent (PATCH semantics).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Page {
    /// 1..=100, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

impl Page {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=100) => Ok(n),
            Some(n) => Err(ApiError::Validation(format!("limit must be between 1 and 100, got {n}"))),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

impl<T> List<T> {
    /// A page from `limit + 1` rows fetched in cursor order: the extra row only says there is more.
    pub fn page(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(id) } else { None };
        List { data: rows, next_cursor }
    }
}

/// Reads a body of at most `limit` bytes while it streams in (a declared larger length is refused
/// before a byte is read). Routes call it after checking the request's credentials, so an
/// unauthenticated post never costs the gateway its body.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || ApiError::TooLarge(format!("the body is larger than {limit} bytes"));
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        tracing::info!(error = %e, "body refused while reading");
        too_large()
    })
}

/// An IANA zone, or a validation error naming the field.
pub fn check_tz(field: &str, tz: &str) -> Result<(), ApiError> {
    arflow_core::window::parse_tz(tz).map(|_| ()).map_err(|e| ApiError::Validation(format!("{field}: {e}")))
}

pub fn check_email(field: &str, email: &str) -> Result<String, ApiError> {
    email
        .trim()
        .parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|e| ApiError::Validation(format!("{field}: {email:?} is not a valid email address ({e})")))
}

pub fn check_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::Validation(format!("{field} must be 1 to 200 characters")));
    }
    Ok(name.to_string())
}
