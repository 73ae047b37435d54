//! The firm-facing API under `/v1/notifications` (reached through the gateway, which names
//! the firm and the user; see `arflow_service::api::Caller`).
pub mod deliveries;
pub mod subscriptions;

use crate::handlers::Context;
use arflow_service::api::{ApiError, InternalAuth};
use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use uuid::Uuid;

pub fn router(ctx: Arc<Context>, token: SecretString) -> Router {
    Router::new()
        .route("/v1/notifications/subscriptions", post(subscriptions::create).get(subscriptions::list))
        .route("/v1/notifications/subscriptions/{id}", get(subscriptions::get).delete(subscriptions::delete))
        .route("/v1/notifications/subscriptions/{id}/enable", post(subscriptions::enable))
        .route("/v1/notifications/deliveries", get(deliveries::list))
        .route("/v1/notifications/deliveries/{id}", get(deliveries::get))
        .route("/v1/notifications/deliveries/{id}/replay", post(deliveries::replay))
        .layer(axum::Extension(InternalAuth(token)))
        .with_state(ctx)
}

/// `?limit=&cursor=` (the cursor is the last id of the previous page).
#[derive(Debug, Deserialize)]
pub struct Page {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl Page {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=200).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::Validation("limit must be between 1 and 200".into())),
        }
    }

    pub fn after(&self) -> Result<Option<Uuid>, ApiError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| Uuid::parse_str(c).map_err(|_| ApiError::Validation("cursor is not one this API gave".into())))
            .transpose()
    }
}

/// A JSON body, with a problem+json answer when it is not what the endpoint takes.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Validation(format!("invalid request body: {e}")))
}

/// An id in the path; anything else is simply not found.
pub fn path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("no {what} {raw}")))
}
