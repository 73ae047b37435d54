//! The OpenAPI document of the routes this service serves behind the gateway: the committed
//! `openapi.json` (which the gateway merges into its `/openapi.json`) is what the routes document,
//! and it is valid OpenAPI (the pinned `openapi-spec-validator`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const REFRESH: &str = "UPDATE_OPENAPI=1 cargo nextest run -p arflow-email --test openapi";

fn document() -> serde_json::Value {
    serde_json::to_value(arflow_email::routes::openapi()).unwrap()
}

#[test]
fn the_committed_document_is_what_the_routes_document() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    arflow_testkit::openapi::assert_committed(&path, &document(), REFRESH);
}

#[test]
fn the_document_is_valid_openapi() {
    arflow_testkit::openapi::assert_valid("email", &document());
}

#[test]
fn every_route_is_under_the_prefixes_the_gateway_forwards_here() {
    let prefixes = ["/v1/emails"];
    for (_, path) in arflow_testkit::openapi::operations(&document()) {
        assert!(prefixes.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))), "{path}");
    }
}
