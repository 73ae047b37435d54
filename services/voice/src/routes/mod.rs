//! HTTP: the provider's callbacks as forwarded by the gateway (`/internal/telephony/...`, the
//! internal token required) and the firm-scoped read API (`/v1/calls`, `/v1/texts`).
pub mod api;
pub mod callbacks;

use crate::config::VoiceSettings;
use arflow_bus::Bus;
use arflow_core::Clock;
use arflow_runtime::http::Problem;
use arflow_service::api::{GatewaySecurity, INTERNAL_TOKEN_HEADER, InternalAuth};
use arflow_store::Outbox;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the routes share.
pub struct Context {
    pub pool: PgPool,
    pub bus: Bus,
    pub clock: Clock,
    pub outbox: Outbox,
    pub settings: VoiceSettings,
    /// The public base the provider calls back (the gateway's): gather actions are absolute URLs.
    pub callback_base_url: String,
}

impl Context {
    pub fn callback(&self, path: &str) -> String {
        callback_url(&self.callback_base_url, path)
    }
}

/// The public URL the provider calls back for `path` (`voice/<id>/answer`...): on the gateway,
/// which checks the signature and forwards to `/internal/telephony/<path>`.
pub fn callback_url(base: &str, path: &str) -> String {
    format!("{}/webhooks/telephony/{path}", base.trim_end_matches('/'))
}

pub fn router(ctx: Arc<Context>, internal_token: SecretString) -> Router {
    let telephony = Router::new()
        .route("/voice/{call_id}/answer", post(callbacks::answer))
        .route("/voice/{call_id}/gather", post(callbacks::gather))
        .route("/voice/{call_id}/status", post(callbacks::status))
        .route("/voice/{call_id}/recording", post(callbacks::recording))
        .route("/voice/{call_id}/transcription", post(callbacks::transcription))
        .route("/sms/inbound", post(callbacks::sms_inbound))
        .route("/sms/{text_id}/status", post(callbacks::sms_status))
        .route_layer(axum::middleware::from_fn_with_state(internal_token.clone(), require_internal_token));
    let (public, _) = api().split_for_parts();
    Router::new()
        .nest("/internal/telephony", telephony)
        .merge(public)
        .with_state(ctx)
        .layer(axum::Extension(InternalAuth(internal_token)))
}

/// The service's public routes (through the gateway) and their OpenAPI document, from the same
/// `#[utoipa::path]` attributes: a route cannot be served undocumented or documented unserved.
/// The callbacks under `/internal/telephony` are not public: the gateway documents them as the
/// provider calls them (`/webhooks/telephony/...`).
pub fn api() -> OpenApiRouter<Arc<Context>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::list_calls))
        .routes(routes!(api::get_call))
        .routes(routes!(api::list_texts))
}

/// The OpenAPI document of the calls and texts API (`openapi.json` beside the README; the gateway
/// merges it into its own).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "arflow calls and texts", description = "The firm's collection calls (transcripts, recordings, the fences' verdicts) and texts, served by the voice service behind the gateway."),
    components(schemas(arflow_service::api::ProblemBody)),
    modifiers(&GatewaySecurity),
    tags((name = "calls", description = "Calls and texts (voice service)"))
)]
struct ApiDoc;

/// Only the gateway (which verified the provider's signature) may deliver callbacks.
async fn require_internal_token(State(expected): State<SecretString>, request: Request, next: Next) -> Response {
    let given = request.headers().get(INTERNAL_TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    let expected = expected.expose_secret();
    let ok = !expected.is_empty()
        && given.len() == expected.len()
        && constant_time_eq(given.as_bytes(), expected.as_bytes());
    if !ok {
        tracing::info!("telephony callback without the internal token refused");
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "callbacks come through the gateway".to_string(),
        )
        .into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 && a.len() == b.len()
}
