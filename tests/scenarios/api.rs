//! The public API as documented: every operation of `/openapi.json` (the gateway's own and the
//! ones it forwards) reaches a handler on the real stack, through the gateway to the service that
//! serves it. A documented route nobody serves answers the router's bare 404 or a 405.
use arflow_testkit::openapi::{operations, sample_path, unrouted};
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
    for (method, template) in ops {
        let path = sample_path(&template);
        let r = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&firm.key)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        assert!(!unrouted(status, content_type.as_deref()), "{method} {template} ({path}): {status} {content_type:?}");
        assert_ne!(status, 503, "{method} {template}: the service behind it is not reached");
    }
}
