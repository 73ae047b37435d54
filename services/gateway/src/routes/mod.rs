//! HTTP endpoints (axum 0.8). Every handler runs in a span with the firm id (and the
//! invoice id where known); every query is scoped by the authenticated firm.
pub mod activity;
pub mod backfill;
pub mod firms;
pub mod forward;
pub mod inbound;
pub mod openapi;
pub mod records;
pub mod replies;
pub mod telephony;
pub mod unsubscribe;
pub mod webhooks;

use crate::error::ApiError;
use crate::startup::AppState;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use std::future::Future;
use uuid::Uuid;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/firms", post(firms::create_firm))
        .route("/v1/firm", get(firms::get_firm).patch(firms::patch_firm))
        .route("/v1/firm/api-keys", post(firms::create_api_key))
        .route("/v1/firm/inbound-tokens", post(firms::create_inbound_token))
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
        .route(
            "/webhooks/email/inbound/{firm_id}",
            post(inbound::email_inbound).layer(axum::extract::DefaultBodyLimit::max(state.config.inbound_max_bytes)),
        )
        .route(
            "/webhooks/telephony/{*rest}",
            post(telephony::callback).layer(axum::extract::DefaultBodyLimit::max(telephony::MAX_BODY_BYTES)),
        )
        .route("/openapi.json", get(openapi::document))
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
#[into_params(parameter_in = Query)]
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

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Runs a POST once per `Idempotency-Key` (per firm): a repeat replays the first response
/// (marked `Idempotent-Replayed: true`). Errors are not stored, so a failed POST can be retried.
pub async fn idempotent<F, Fut>(
    state: &AppState,
    firm_id: Uuid,
    headers: &HeaderMap,
    path: &str,
    run: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    let key = match headers.get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(v) => {
            let k = v.to_str().map_err(|_| ApiError::Validation("Idempotency-Key must be visible ASCII".into()))?;
            if k.is_empty() || k.len() > 255 {
                return Err(ApiError::Validation("Idempotency-Key must be 1 to 255 characters".into()));
            }
            Some(k.to_string())
        }
    };
    let pool = &state.base.pool;
    if let Some(key) = &key
        && let Some((first_path, status, body)) = crate::store::idempotent_response(pool, firm_id, key).await?
    {
        if first_path != path {
            return Err(ApiError::Conflict(format!("this Idempotency-Key was already used for {first_path}")));
        }
        let status = StatusCode::from_u16(u16::try_from(status).unwrap_or(200)).unwrap_or(StatusCode::OK);
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(response);
    }
    let (status, body) = run().await?;
    if let Some(key) = &key {
        let code = i16::try_from(status.as_u16()).unwrap_or(200);
        crate::store::save_idempotent_response(pool, firm_id, key, path, code, &body, state.base.clock.now()).await?;
    }
    Ok((status, Json(body)).into_response())
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
