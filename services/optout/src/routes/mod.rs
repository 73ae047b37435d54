//! The consent API, served behind the gateway (`/v1/consent/...`; the firm and the firm user
//! come from the gateway's headers, checked by `Caller`).
pub mod consent;
pub mod suppressions;

use crate::handlers::Context;
use arflow_service::api::{ApiError, GatewaySecurity, InternalAuth};
use axum::Router;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The service's public routes (through the gateway) and their OpenAPI document, from the same
/// `#[utoipa::path]` attributes: a route cannot be served undocumented or documented unserved.
pub fn api() -> OpenApiRouter<Arc<Context>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(consent::opt_out))
        .routes(routes!(consent::opt_in))
        .routes(routes!(consent::contact))
        .routes(routes!(consent::ledger))
        .routes(routes!(suppressions::export, suppressions::import))
}

/// The OpenAPI document of the consent API (`openapi.json` beside the README; the gateway merges it).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn router(ctx: Arc<Context>, internal_token: SecretString) -> Router {
    let (router, _) = api().split_for_parts();
    router.with_state(ctx).layer(axum::Extension(InternalAuth(internal_token)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "arflow consent", description = "Opt-outs, opt-ins, a contact's consent, the ledger and the suppression list, served by the optout service behind the gateway."),
    components(schemas(arflow_service::api::ProblemBody)),
    modifiers(&GatewaySecurity),
    tags((name = "consent", description = "The consent ledger (optout service)"))
)]
struct ApiDoc;

/// A JSON body, or a 422 problem saying what is wrong with it.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Validation(format!("request body: {e}")))
}
