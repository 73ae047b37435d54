//! The OpenAPI document at `/openapi.json`: valid OpenAPI 3.1 (the pinned
//! `openapi-spec-validator`), with query parameters in the query.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

use serde_json::Value;
use support::spawn_app;

async fn served_document() -> Value {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_served_document_is_valid_openapi() {
    let doc = served_document().await;
    arflow_testkit::openapi::assert_valid("gateway", &doc);
}

#[tokio::test]
async fn list_filters_and_pages_are_query_parameters() {
    let doc = served_document().await;
    for (path, names) in [
        ("/v1/clients", &["limit", "cursor"][..]),
        ("/v1/invoices", &["limit", "cursor", "client_id"][..]),
        ("/v1/replies", &["limit", "cursor", "intent", "matched"][..]),
    ] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        for name in names {
            let p = params.iter().find(|p| p["name"] == *name).unwrap_or_else(|| panic!("{path}: no {name}"));
            assert_eq!(p["in"], "query", "{path} {name}: {p}");
            assert_ne!(p["required"], true, "{path} {name}: {p}");
        }
    }
}
