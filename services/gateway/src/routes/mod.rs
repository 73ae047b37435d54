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
use axum::routing::{any, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use std::future::Future;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

/// The gateway's own routes and their OpenAPI document, from the same `#[utoipa::path]`
/// attributes (`routes!`): a route cannot be served undocumented or documented unserved. Besides
/// these, the router forwards the prefixes of [`forward::FORWARDED`] (documented by the services'
/// own documents, merged into `/openapi.json`) and answers other `/webhooks/telephony/` paths 404.
/// Add a public route here with `routes!`, never with a bare `.route`.
pub fn api(inbound_max_bytes: usize) -> OpenApiRouter<AppState> {
    let telephony_limit = || axum::extract::DefaultBodyLimit::max(telephony::MAX_BODY_BYTES);
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(firms::create_firm))
        .routes(routes!(firms::get_firm, firms::patch_firm))
        .routes(routes!(firms::create_api_key))
        .routes(routes!(firms::create_inbound_token))
        .routes(routes!(backfill::backfill))
        .routes(routes!(records::create_client, records::list_clients))
        .routes(routes!(records::get_client, records::patch_client))
        .routes(routes!(records::create_contact))
        .routes(routes!(records::patch_contact))
        .routes(routes!(records::list_invoices))
        .routes(routes!(records::get_invoice, records::patch_invoice))
        .routes(routes!(activity::invoice_activity))
        .routes(routes!(activity::portfolio))
        .routes(routes!(replies::list_replies))
        .routes(routes!(unsubscribe::page, unsubscribe::unsubscribe))
        .routes(routes!(webhooks::stripe_webhook))
        .routes(routes!(inbound::email_inbound).layer(axum::extract::DefaultBodyLimit::max(inbound_max_bytes)))
        .routes(routes!(telephony::voice_callback).layer(telephony_limit()))
        .routes(routes!(telephony::sms_inbound).layer(telephony_limit()))
        .routes(routes!(telephony::sms_status).layer(telephony_limit()))
        .routes(routes!(openapi::document))
}

pub fn router(state: AppState) -> Router {
    let (mut router, _) = api(state.config.inbound_max_bytes).split_for_parts();
    for (prefix, _) in forward::FORWARDED {
        router =
            router.route(prefix, any(forward::forward)).route(&format!("{prefix}/{{*rest}}"), any(forward::forward));
    }
    router
        .route(
            "/webhooks/telephony/{*rest}",
            post(telephony::callback).layer(axum::extract::DefaultBodyLimit::max(telephony::MAX_BODY_BYTES)),
        )
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
