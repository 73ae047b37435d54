//! The public API as documented: every operation of `/openapi.json` (the gateway's own and the
//! ones it forwards) reaches a handler on the real stack, through the gateway to the service that
//! serves it. A documented route nobody serves answers the router's bare 404 or a 405.
use arflow_testkit::openapi::{call_each, operations, unrouted};
use arflow_tests::TestApp;
use serde_json::Value;

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let ops = operations(&doc);
    let forwarded = ops.iter().filter(|(_, p)| arflow_gateway::routes::forward::owner(p).is_some()).count();
    assert!(forwarded >= 20, "{forwarded} forwarded operations documented");
    // The probe sees a route a service does not have (forwarded, then the service's bare 404).
    let r = app.http.get(app.url("/v1/calls/a/b/c")).bearer_auth(&firm.key).send().await.unwrap();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert!(unrouted(r.status().as_u16(), content_type.as_deref()), "{} {content_type:?}", r.status());
    for a in call_each(&app.http, &app.url(""), &firm.key, &doc, |_, _| true).await {
        assert!(!a.unrouted(), "{a:?}");
        assert_ne!(a.status, 503, "{a:?}: the service behind it is not reached");
    }
}

/// The tenant matrix on the real stack. A read-only key gets 403 on every documented write under
/// `/v1` (the gateway's own and the forwarded ones) and nothing changes; another firm's key
/// gets 404 for every record of the first firm it names, in a path or a filter.
#[tokio::test]
async fn a_read_key_writes_nothing_and_another_firm_sees_nothing() {
    let app = TestApp::spawn().await;
    let a = app.create_firm().await;
    let b = app.create_firm().await;
    let key = |firm: &arflow_tests::Firm, scope: &str| {
        let body = serde_json::json!({"scope": scope});
        app.http.post(app.url("/v1/firm/api-keys")).bearer_auth(&firm.key).json(&body).send()
    };
    let read: Value = key(&a, "read").await.unwrap().json().await.unwrap();
    let read = read["api_key"].as_str().unwrap().to_string();
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    // The operator's route and the public webhooks and unsubscribe page take no firm key.
    let writes = call_each(&app.http, &app.url(""), &read, &doc, |method, template| {
        method != "GET"
            && template.starts_with("/v1/")
            && template != "/v1/firms"
            && !template.starts_with("/v1/unsubscribe")
    })
    .await;
    for a in &writes {
        assert_eq!(a.status, 403, "{a:?} with a read key");
    }
    let writes = writes.len();
    assert!(writes >= 20, "{writes} documented writes");

    // Firm A's records, named by firm B: 404 everywhere.
    let post = |path: &str, body: Value| app.http.post(app.url(path)).bearer_auth(&a.key).json(&body).send();
    let client: Value =
        post("/v1/clients", serde_json::json!({"name": "Initech"})).await.unwrap().json().await.unwrap();
    let client_id = client["id"].as_str().unwrap();
    let contact: Value = post(
        &format!("/v1/clients/{client_id}/contacts"),
        serde_json::json!({"name": "Bob", "email": "bob@initech.test"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let contact_id = contact["id"].as_str().unwrap();
    let keys: Value = app.get(&a, "/v1/firm/api-keys").await;
    let key_id = keys["data"][0]["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/v1/clients/{client_id}")),
        ("PATCH", format!("/v1/clients/{client_id}")),
        ("POST", format!("/v1/clients/{client_id}/contacts")),
        ("PATCH", format!("/v1/contacts/{contact_id}")),
        ("GET", format!("/v1/consent/contacts/{contact_id}")),
        ("DELETE", format!("/v1/firm/api-keys/{key_id}")),
    ] {
        let r = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&b.key)
            .json(&serde_json::json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path} by another firm");
    }
    let rotate = app
        .http
        .post(app.url(&format!("/v1/firm/api-keys/{key_id}/rotate")))
        .bearer_auth(&b.key)
        .json(&serde_json::json!({}));
    assert_eq!(rotate.send().await.unwrap().status(), 404, "rotating another firm's key");
}
