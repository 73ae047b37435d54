//! The firm's API behind the gateway (`/v1/escalations...`, `Caller` from the gateway's headers),
//! besides `/healthz`, `/readyz`, `/metrics` from the shared base.
pub mod cases;

use crate::handlers::Context;
use arflow_service::api::InternalAuth;
use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use std::sync::Arc;

pub fn router(ctx: Arc<Context>, internal_token: SecretString) -> Router {
    Router::new()
        .route("/v1/escalations", get(cases::list).post(cases::open))
        .route("/v1/escalations/settings", get(cases::get_settings).put(cases::put_settings))
        .route("/v1/escalations/training-examples", get(cases::training_examples))
        .route("/v1/escalations/{case_id}", get(cases::get_case))
        .route("/v1/escalations/{case_id}/actions", post(cases::act))
        .layer(axum::Extension(InternalAuth(internal_token)))
        .with_state(ctx)
}
