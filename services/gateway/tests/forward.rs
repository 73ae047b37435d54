//! The gateway forwards `/v1/consent`, `/v1/escalations`, `/v1/notifications` to the
//! services behind it: only with a firm API key, naming the firm and the firm user, with
//! the internal token; upstream answers relayed as they are; Idempotency-Key kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::spawn_app_with;

const TOKEN: &str = "internal-token-for-tests";

/// An upstream that echoes what it was sent, counts calls, and refuses `/v1/escalations/bad`.
async fn echo_upstream(calls: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(any(move |uri: Uri, headers: HeaderMap, body: String| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if uri.path() == "/v1/escalations/bad" {
                let problem = json!({"type": "https://arflow.dev/problems/validation", "title": "x", "status": 422,
                    "detail": "note is required"});
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    [("content-type", "application/problem+json")],
                    problem.to_string(),
                )
                    .into_response_parts();
            }
            let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
            let answer = json!({
                "path": uri.to_string(), "firm": h("x-arflow-firm-id"), "actor": h("x-arflow-actor"),
                "token": h("x-arflow-internal-token"), "body": body, "n": calls.load(Ordering::SeqCst),
                "idempotency_key": h("idempotency-key"),
            });
            (StatusCode::CREATED, [("content-type", "application/json")], answer.to_string()).into_response_parts()
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

trait Parts {
    fn into_response_parts(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> Parts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}

#[tokio::test]
async fn forwarded_apis_need_a_key_and_carry_the_firm_and_the_user() {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = echo_upstream(calls.clone()).await;
    let up = upstream.clone();
    let app = spawn_app_with(move |c| {
        c.internal.token = TOKEN.to_string().into();
        c.gateway.upstreams.optout = up.clone();
        c.gateway.upstreams.escalation = up.clone();
        // Nothing listens here: the notification service is "down".
        c.gateway.upstreams.notification = "http://127.0.0.1:9".into();
    })
    .await;
    let firm = app.create_firm(&["whsec_x"]).await;
    let http = reqwest::Client::new();

    // No key: refused at the gateway, nothing forwarded.
    let r = http.get(app.url("/v1/escalations?status=open")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // With the key: forwarded with the query, the firm, the internal token and the user.
    let r = http
        .get(app.url("/v1/escalations?status=open&limit=5"))
        .bearer_auth(&firm.key)
        .header("x-arflow-actor", "dana@firm.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["path"], "/v1/escalations?status=open&limit=5");
    assert_eq!(echo["firm"], firm.id.to_string());
    assert_eq!(echo["token"], TOKEN);
    assert_eq!(echo["actor"], "dana@firm.test");

    // Without a named user, the key's prefix acts.
    let r = http.post(app.url("/v1/consent/opt-outs")).bearer_auth(&firm.key).json(&json!({"a": 1})).send().await;
    let echo: Value = r.unwrap().json().await.unwrap();
    assert_eq!(echo["actor"], format!("api-key:{}", &firm.key[..12]));
    assert_eq!(echo["body"], r#"{"a":1}"#);

    // Idempotency-Key: passed on to the service, and the second POST is replayed by the gateway,
    // not forwarded again (without secrets: the echoed internal token is not stored).
    let post = || {
        http.post(app.url("/v1/escalations/c1/actions"))
            .bearer_auth(&firm.key)
            .header("idempotency-key", "k-1")
            .json(&json!({"action": "resolve", "note": "paid by cheque"}))
            .send()
    };
    let first: Value = post().await.unwrap().json().await.unwrap();
    let before = calls.load(Ordering::SeqCst);
    let again = post().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(first["idempotency_key"], "k-1");
    let mut expected = first.clone();
    expected["token"] = Value::Null;
    assert_eq!(again.json::<Value>().await.unwrap(), expected);
    assert_eq!(calls.load(Ordering::SeqCst), before);

    // An upstream problem is relayed as it is.
    let r = http.post(app.url("/v1/escalations/bad")).bearer_auth(&firm.key).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], "note is required");

    // A service that is down: 503 problem, not a hang or a 500.
    let r = http.get(app.url("/v1/notifications/subscriptions")).bearer_auth(&firm.key).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("notification"), "{body}");
    let _ = Json(());
}

/// A path that climbs out of the forwarded prefix (`..`, `%2e%2e`) is refused at the gateway:
/// the upstream URL would resolve it to the service's other routes.
#[tokio::test]
async fn a_path_cannot_climb_out_of_the_forwarded_prefix() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = echo_upstream(calls.clone()).await;
    let up = upstream.clone();
    let app = spawn_app_with(move |c| {
        c.internal.token = TOKEN.to_string().into();
        c.gateway.upstreams.optout = up.clone();
        c.gateway.upstreams.escalation = up.clone();
        c.gateway.upstreams.notification = up.clone();
    })
    .await;
    let firm = app.create_firm(&["whsec_x"]).await;
    // Raw HTTP: a client library would resolve the dot segments before sending.
    let raw_get = |path: &'static str| {
        let (url, key) = (app.url("/"), firm.key.clone());
        async move {
            let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "GET {path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {key}\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        }
    };
    for path in ["/v1/consent/../../metrics", "/v1/escalations/%2e%2e/%2E%2e/healthz", "/v1/notifications/../consent"] {
        let answer = raw_get(path).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing outside the prefixes reached an upstream");
    // Dot segments that stay under the prefix are still forwarded, resolved.
    let answer = raw_get("/v1/consent/x/../ledger").await;
    assert!(answer.starts_with("HTTP/1.1 201") && answer.contains(r#""path":"/v1/consent/ledger""#), "{answer}");
}
