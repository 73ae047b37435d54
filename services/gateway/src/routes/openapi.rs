//! The OpenAPI 3.1 document at `/openapi.json`: one document for every public route.
//!
//! The gateway's own routes are documented by the same `#[utoipa::path]` attributes that route
//! them (`super::api`). The routes it forwards are documented by the services that serve them:
//! each keeps its document in `services/<service>/openapi.json`, generated from its own routes
//! and checked against them by its tests, and the gateway merges those files in here (services
//! never depend on each other's code, so the gateway reads the committed documents).
use crate::error::ApiError;
use arflow_service::api::GatewaySecurity;
use axum::Json;
use std::sync::LazyLock;
use utoipa::openapi::OpenApi as Document;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "arflow", description = "The firm API (records, activity, replies, and the consent, escalation, notification, call, text and email APIs the gateway forwards to their services), Stripe, inbound email and telephony webhooks, unsubscribe."),
    components(schemas(crate::error::ProblemBody)),
    modifiers(&GatewaySecurity),
    tags((name = "firms"), (name = "keys"), (name = "records"), (name = "activity"), (name = "webhooks"), (name = "unsubscribe"), (name = "meta"))
)]
pub struct ApiDoc;

/// The documents of the services behind the gateway, by service (see [`super::forward::FORWARDED`]).
pub const SERVICE_DOCUMENTS: [(&str, &str); 5] = [
    ("optout", include_str!("../../../optout/openapi.json")),
    ("escalation", include_str!("../../../escalation/openapi.json")),
    ("notification", include_str!("../../../notification/openapi.json")),
    ("voice", include_str!("../../../voice/openapi.json")),
    ("email", include_str!("../../../email/openapi.json")),
];

/// The whole public document: the gateway's routes, then each service's.
pub fn spec() -> Result<Document, String> {
    let (_, mut doc) = super::api().split_for_parts();
    for (service, json) in SERVICE_DOCUMENTS {
        let theirs: Document =
            serde_json::from_str(json).map_err(|e| format!("services/{service}/openapi.json: {e}"))?;
        doc.merge(theirs);
    }
    Ok(doc)
}

static SPEC: LazyLock<Result<serde_json::Value, String>> =
    LazyLock::new(|| spec().and_then(|d| serde_json::to_value(d).map_err(|e| e.to_string())));

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi_document",
    responses((status = 200, body = Object, description = "the OpenAPI 3.1 document of every public route")))]
pub async fn document() -> Result<Json<serde_json::Value>, ApiError> {
    SPEC.as_ref().map(|d| Json(d.clone())).map_err(|e| ApiError::Internal(format!("the OpenAPI document: {e}")))
}
