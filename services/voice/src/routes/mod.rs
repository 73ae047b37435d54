//! HTTP: the provider's callbacks as forwarded by the gateway (`/internal/telephony/...`, the
//! internal token required) and the firm-scoped read API (`/v1/calls`, `/v1/texts`).
pub mod api;
pub mod callbacks;

use crate::config::VoiceSettings;
use arflow_bus::Bus;
use arflow_core::Clock;
use arflow_runtime::http::Problem;
use arflow_service::api::{INTERNAL_TOKEN_HEADER, InternalAuth};
use arflow_store::Outbox;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use std::sync::Arc;

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
    Router::new()
        .nest("/internal/telephony", telephony)
        .route("/v1/calls", get(api::list_calls))
        .route("/v1/calls/{call_id}", get(api::get_call))
        .route("/v1/texts", get(api::list_texts))
        .with_state(ctx)
        .layer(axum::Extension(InternalAuth(internal_token)))
}

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
