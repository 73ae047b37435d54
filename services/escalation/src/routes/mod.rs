//! The firm's API behind the gateway (`/v1/escalations...`, `Caller` from the gateway's headers),
//! besides `/healthz`, `/readyz`, `/metrics` from the shared base.
pub mod cases;

use crate::handlers::Context;
use arflow_service::api::{GatewaySecurity, InternalAuth};
use axum::Router;
use secrecy::SecretString;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The service's public routes (through the gateway) and their OpenAPI document, from the same
/// `#[utoipa::path]` attributes: a route cannot be served undocumented or documented unserved.
pub fn api() -> OpenApiRouter<Arc<Context>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(cases::list, cases::open))
        .routes(routes!(cases::get_settings, cases::put_settings))
        .routes(routes!(cases::training_examples))
        .routes(routes!(cases::get_case))
        .routes(routes!(cases::act))
}

/// The OpenAPI document of the escalation API (`openapi.json` beside the README; the gateway
/// merges it into its own).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn router(ctx: Arc<Context>, internal_token: SecretString) -> Router {
    let (router, _) = api().split_for_parts();
    router.layer(axum::Extension(InternalAuth(internal_token))).with_state(ctx)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "arflow escalations", description = "The firm's escalation queue, its cases and their actions, served by the escalation service behind the gateway."),
    components(schemas(arflow_service::api::ProblemBody)),
    modifiers(&GatewaySecurity),
    tags((name = "escalations", description = "Cases a person decides (escalation service)"))
)]
struct ApiDoc;
