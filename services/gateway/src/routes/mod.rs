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
use axum::routing::{any, post};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

/// The gateway's own routes and their OpenAPI document, from the same `#[utoipa::path]`
/// attributes (`routes!`): a route cannot be served undocumented or documented unserved. Besides
/// these, the router forwards the prefixes of [`forward::FORWARDED`] (documented by the services'
/// own documents, merged into `/openapi.json`) and answers other `/webhooks/telephony/` paths 404.
/// Add a public route here with `routes!`, never with a bare `.route`.
pub fn api() -> OpenApiRouter<AppState> {
    let telephony_limit = || axum::extract::DefaultBodyLimit::max(telephony::MAX_BODY_BYTES);
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(firms::create_firm))
        .routes(routes!(firms::get_firm, firms::patch_firm))
        .routes(routes!(keys::list_api_keys, keys::create_api_key))
        .routes(routes!(keys::revoke_api_key))
        .routes(routes!(keys::rotate_api_key))
        .routes(routes!(keys::list_inbound_tokens, keys::create_inbound_token))
        .routes(routes!(keys::revoke_inbound_token))
        .routes(routes!(keys::audit_log))
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
        // The inbound route reads its body itself, after the token, up to inbound_max_bytes.
        .routes(routes!(inbound::email_inbound))
        .routes(routes!(telephony::voice_callback).layer(telephony_limit()))
        .routes(routes!(telephony::sms_inbound).layer(telephony_limit()))
        .routes(routes!(telephony::sms_status).layer(telephony_limit()))
        .routes(routes!(openapi::document))
}

pub fn router(state: AppState) -> Router {
    let (mut router, _) = api().split_for_parts();
    for (prefix, _) in forward::FORWARDED {
        router =
            router.route(prefix, any(forward::forward)).route(&format!("{prefix}/{{*rest}}"), any(forward::forward));
    }
    router
        .route(
            "/webhooks/telephony/{*rest}",
            post(telephony::callback).layer(axum::extract::DefaultBodyLimit::max(telephony::MAX_BODY_BYTES)),
        )
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

impl<T> List<T> {
    /// A page from `limit + 1` rows fetched in cursor order: the extra row only says there is more.
    pub fn page(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(id) } else { None };
        List { data: rows, next_cursor }
    }

    /// The same page with each item shown as the API shows it.
    pub fn map<U>(self, show: impl FnMut(T) -> U) -> List<U> {
        List { data: self.data.into_iter().map(show).collect(), next_cursor: self.next_cursor }
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
