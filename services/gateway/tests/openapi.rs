//! The OpenAPI document at `/openapi.json`: one valid OpenAPI 3.1 document (the pinned
//! `openapi-spec-validator`) for every public route: the gateway's own, documented by the
//! attributes that route them, and the forwarded ones, documented by the services that serve
//! them (`services/<service>/openapi.json`, merged in). Drift either way fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

use arflow_gateway::routes::forward::{FORWARDED, owner};
use arflow_gateway::routes::openapi::SERVICE_DOCUMENTS;
use arflow_testkit::openapi::{call_each, operations, unrouted};
use serde_json::Value;
use std::collections::BTreeMap;
use support::spawn_app;

async fn served_document() -> Value {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn gateway_document() -> Value {
    let (_, doc) = arflow_gateway::routes::api().split_for_parts();
    serde_json::to_value(doc).unwrap()
}

fn service_documents() -> Vec<(&'static str, Value)> {
    SERVICE_DOCUMENTS.iter().map(|(s, json)| (*s, serde_json::from_str(json).unwrap())).collect()
}

#[tokio::test]
async fn the_served_document_is_valid_openapi() {
    let doc = served_document().await;
    assert_eq!(doc, serde_json::to_value(arflow_gateway::routes::openapi::spec().unwrap()).unwrap());
    arflow_testkit::openapi::assert_valid("gateway", &doc);
}

#[tokio::test]
async fn list_filters_and_pages_are_query_parameters() {
    let doc = served_document().await;
    for (path, names) in [
        ("/v1/clients", &["limit", "cursor"][..]),
        ("/v1/invoices", &["limit", "cursor", "client_id"][..]),
        ("/v1/replies", &["limit", "cursor", "intent", "matched"][..]),
        ("/v1/calls", &["limit", "cursor", "invoice_id"][..]),
        ("/v1/texts", &["limit", "cursor", "invoice_id"][..]),
        ("/v1/emails/uncertain", &["limit", "cursor"][..]),
        ("/v1/consent/ledger", &["limit", "cursor"][..]),
        ("/v1/escalations", &["limit", "cursor", "status"][..]),
        ("/v1/notifications/deliveries", &["limit", "cursor", "status", "subscription_id"][..]),
    ] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap_or_else(|| panic!("{path}"));
        for name in names {
            let p = params.iter().find(|p| p["name"] == *name).unwrap_or_else(|| panic!("{path}: no {name}"));
            assert_eq!(p["in"], "query", "{path} {name}: {p}");
            assert_ne!(p["required"], true, "{path} {name}: {p}");
        }
    }
}

/// Every forwarded prefix is documented by the service it is forwarded to, every path of a
/// service's document is forwarded to that service, and the merge loses nothing.
#[tokio::test]
async fn forwarded_routes_are_documented_by_the_services_that_serve_them() {
    let served = served_document().await;
    let ours = gateway_document();
    let mut seen: BTreeMap<String, &str> =
        ours["paths"].as_object().unwrap().keys().map(|p| (p.clone(), "gateway")).collect();
    for (path, _) in seen.iter() {
        assert_eq!(owner(path), None, "the gateway documents {path}, which it forwards");
    }
    let services = service_documents();
    for (service, doc) in &services {
        for (path, item) in doc["paths"].as_object().unwrap() {
            assert_eq!(
                owner(path),
                Some(*service),
                "{service} documents {path}, which the gateway does not forward to it"
            );
            if let Some(other) = seen.insert(path.clone(), service) {
                panic!("{path} is documented by {other} and {service}");
            }
            assert_eq!(&served["paths"][path], item, "{path} of {service} is not in /openapi.json as {service} has it");
        }
    }
    for (prefix, service) in FORWARDED {
        let covered = seen.iter().any(|(p, s)| *s == service && (p == prefix || p.starts_with(&format!("{prefix}/"))));
        assert!(covered, "{prefix} is forwarded to {service}, whose document has no route under it");
    }
    assert_eq!(served["paths"].as_object().unwrap().len(), seen.len(), "/openapi.json has paths no document has");
    // A schema name in two documents must mean the same schema (the merge keeps the first).
    let mut schemas: BTreeMap<String, (&str, Value)> = BTreeMap::new();
    for (name, doc) in std::iter::once(("gateway", &ours)).chain(services.iter().map(|(s, d)| (*s, d))) {
        for (schema, body) in doc["components"]["schemas"].as_object().unwrap() {
            if let Some((first, earlier)) = schemas.get(schema) {
                assert_eq!(earlier, body, "schema {schema} differs between {first} and {name}");
            } else {
                schemas.insert(schema.clone(), (name, body.clone()));
            }
        }
    }
    for (schema, (_, body)) in &schemas {
        assert_eq!(&served["components"]["schemas"][schema], body, "schema {schema}");
    }
}

/// Every documented operation is served: none is answered with the router's own 404 or 405
/// (handlers answer unknown records with problem+json 404s; forwarded routes reach the forwarder).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[support::SECRET]).await;
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let ops = operations(&doc);
    assert!(ops.len() > 40, "{} operations", ops.len());
    // The probe sees a route that does not exist.
    let r = app.http.get(app.url("/v1/no-such-route")).bearer_auth(&firm.key).send().await.unwrap();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert!(unrouted(r.status().as_u16(), content_type.as_deref()), "{} {content_type:?}", r.status());
    for a in call_each(&app.http, &app.url(""), &firm.key, &doc, |_, _| true).await {
        assert!(!a.unrouted(), "{a:?}");
    }
}
