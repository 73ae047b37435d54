//! The consent API, served behind the gateway (`/v1/consent/...`; the firm and the firm user
//! come from the gateway's headers, checked by `Caller`).
pub mod consent;
pub mod suppressions;

use crate::handlers::Context;
use arflow_service::api::{ApiError, InternalAuth};
use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub fn router(ctx: Arc<Context>, internal_token: SecretString) -> Router {
    Router::new()
        .route("/v1/consent/opt-outs", post(consent::opt_out))
        .route("/v1/consent/opt-ins", post(consent::opt_in))
        .route("/v1/consent/contacts/{contact_id}", get(consent::contact))
        .route("/v1/consent/ledger", get(consent::ledger))
        .route("/v1/consent/suppressions.csv", get(suppressions::export).post(suppressions::import))
        .with_state(ctx)
        .layer(axum::Extension(InternalAuth(internal_token)))
}

/// A JSON body, or a 422 problem saying what is wrong with it.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Validation(format!("request body: {e}")))
}
