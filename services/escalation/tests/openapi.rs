//! The OpenAPI document of the routes this service serves behind the gateway: the committed
//! `openapi.json` (which the gateway merges into its `/openapi.json`) is what the routes document,
//! it is valid OpenAPI (the pinned `openapi-spec-validator`), and every path is under the prefixes
//! the gateway forwards here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_committed_document_is_what_the_routes_document_and_valid() {
    let doc = serde_json::to_value(arflow_escalation::routes::openapi()).unwrap();
    arflow_testkit::openapi::check_service_document(
        "escalation",
        env!("CARGO_MANIFEST_DIR"),
        &doc,
        &["/v1/escalations"],
    );
}
