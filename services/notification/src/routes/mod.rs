//! The firm-facing API under `/v1/notifications` (reached through the gateway, which names
//! the firm and the user; see `arflow_service::api::Caller`).
pub mod deliveries;
pub mod subscriptions;

use crate::handlers::Context;
use arflow_service::api::{ApiError, GatewaySecurity, InternalAuth};
use axum::Router;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The service's public routes (through the gateway) and their OpenAPI document, from the same
/// `#[utoipa::path]` attributes: a route cannot be served undocumented or documented unserved.
pub fn api() -> OpenApiRouter<Arc<Context>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(subscriptions::create, subscriptions::list))
        .routes(routes!(subscriptions::get, subscriptions::delete))
        .routes(routes!(subscriptions::enable))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::replay))
}

/// The OpenAPI document of the notification API (`openapi.json` beside the README; the gateway
/// merges it into its own).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn router(ctx: Arc<Context>, token: SecretString) -> Router {
    let (router, _) = api().split_for_parts();
    router.layer(axum::Extension(InternalAuth(token))).with_state(ctx)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "arflow notifications", description = "Subscriptions of the firm's people to events (webhook, Slack, email) and their deliveries, served by the notification service behind the gateway."),
    components(schemas(arflow_service::api::ProblemBody)),
    modifiers(&GatewaySecurity),
    tags((name = "notifications", description = "Notifications to the firm's people (notification service)"))
)]
struct ApiDoc;

/// `?limit=&cursor=` (the cursor is the last id of the previous page).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1..=200, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
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
