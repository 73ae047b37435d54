//! Telephony callbacks on the gateway: a signed callback reaches the voice service (a fake here)
//! with the same form body, and its TwiML comes back unchanged; a tampered or unsigned one is
//! refused with 403 and the voice service never hears of it. The signatures are made by an
//! independent implementation of Twilio's documented algorithm (below), not the gateway's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use support::{TestApp, spawn_app_with};

const INTERNAL: &str = "internal-token-for-tests";
const AUTH_TOKEN: &str = "twilio-auth-token-for-tests";
const PUBLIC: &str = "https://arflow.example.test";
const TWIML: &str =
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="Polly.Joanna">Hello</Say></Response>"#;

/// Twilio's documented scheme: base64(HMAC-SHA1(auth token, URL ‖ name₁value₁ ‖ name₂value₂ ...)),
/// the POST parameters sorted by name.
fn sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn form(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// application/x-www-form-urlencoded, written out (space as `+`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    content_type: Option<String>,
    token: Option<String>,
    body: String,
}

/// The voice service: records what it is sent; TwiML for answer/gather/inbound, 204 otherwise.
async fn fake_voice(seen: Arc<Mutex<Vec<Seen>>>) -> String {
    let app = axum::Router::new().fallback(any(move |uri: Uri, headers: HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
            let path = uri.path().to_string();
            seen.lock().unwrap().push(Seen {
                uri: uri.to_string(),
                content_type: h("content-type"),
                token: h("x-arflow-internal-token"),
                body,
            });
            if path.ends_with("/answer") || path.ends_with("/gather") || path.ends_with("/inbound") {
                axum::response::IntoResponse::into_response((
                    StatusCode::OK,
                    [("content-type", "text/xml; charset=utf-8")],
                    TWIML,
                ))
            } else {
                axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT)
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn gateway(voice: String) -> TestApp {
    spawn_app_with(move |c| {
        c.internal.token = INTERNAL.to_string().into();
        c.gateway.public_base_url = PUBLIC.into();
        c.gateway.upstreams.voice = voice;
        c.telephony.auth_token = AUTH_TOKEN.to_string().into();
    })
    .await
}

/// Posts `body` to `path_and_query` on the gateway with the given signature header.
async fn post(app: &TestApp, path_and_query: &str, signature: Option<&str>, body: String) -> reqwest::Response {
    let mut request =
        app.http.post(app.url(path_and_query)).header("content-type", "application/x-www-form-urlencoded").body(body);
    if let Some(s) = signature {
        request = request.header("X-Twilio-Signature", s);
    }
    request.send().await.unwrap()
}

const CALL: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn gather_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("SpeechResult", "I can pay on Friday & the rest next week"),
        ("Confidence", "0.92"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
    ]
}

#[tokio::test]
async fn a_signed_callback_is_forwarded_and_its_twiml_returned() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = gateway(fake_voice(seen.clone()).await).await;
    let path = format!("/webhooks/telephony/voice/{CALL}/gather?turn=2");
    let params = gather_params();
    let signature = sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &params);
    let body = form(&params);

    let r = post(&app, &path, Some(&signature), body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), TWIML);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].uri, format!("/internal/telephony/voice/{CALL}/gather?turn=2"));
        assert_eq!(seen[0].body, body, "the same form body, byte for byte");
        assert_eq!(seen[0].token.as_deref(), Some(INTERNAL));
        assert_eq!(seen[0].content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    }

    // A status callback: 204 relayed; an inbound text: TwiML relayed.
    let status = [("CallSid", "CA01"), ("CallStatus", "completed"), ("CallDuration", "42")];
    let path = format!("/webhooks/telephony/voice/{CALL}/status");
    let r = post(&app, &path, Some(&sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &status)), form(&status)).await;
    assert_eq!(r.status(), 204);
    let sms = [("MessageSid", "SM01"), ("From", "+14155550100"), ("To", "+14155550199"), ("Body", "STOP")];
    let path = "/webhooks/telephony/sms/inbound";
    let r = post(&app, path, Some(&sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &sms)), form(&sms)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), TWIML);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(seen.lock().unwrap()[2].uri, "/internal/telephony/sms/inbound");

    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("telephony_callbacks_accepted"), "{metrics}");
}

#[tokio::test]
async fn tampered_or_unsigned_callbacks_are_refused_and_not_forwarded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = gateway(fake_voice(seen.clone()).await).await;
    let path = format!("/webhooks/telephony/voice/{CALL}/gather?turn=2");
    let params = gather_params();
    let url = format!("{PUBLIC}{path}");
    let good = sign(AUTH_TOKEN, &url, &params);

    // Body tampered: the client's words changed after signing.
    let mut tampered = params.clone();
    tampered[2].1 = "I will never pay";
    let mut cases = vec![("tampered body", path.clone(), Some(good.clone()), form(&tampered))];
    // An extra parameter slipped in.
    let mut extra = params.clone();
    extra.push(("AnsweredBy", "human"));
    cases.push(("extra parameter", path.clone(), Some(good.clone()), form(&extra)));
    // URL tampered: another turn, another call.
    cases.push(("tampered query", path.replace("turn=2", "turn=3"), Some(good.clone()), form(&params)));
    cases.push((
        "tampered call id",
        path.replace(CALL, "0190a1b2-c3d4-7e5f-8a9b-000000000000"),
        Some(good.clone()),
        form(&params),
    ));
    // Signed with another auth token, or over another host.
    cases.push(("wrong token", path.clone(), Some(sign("not-the-auth-token", &url, &params)), form(&params)));
    let other_host = sign(AUTH_TOKEN, &format!("https://evil.example.test{path}"), &params);
    cases.push(("other host", path.clone(), Some(other_host), form(&params)));
    // No signature at all, or an empty one.
    cases.push(("missing header", path.clone(), None, form(&params)));
    cases.push(("empty header", path.clone(), Some(String::new()), form(&params)));

    for (what, p, signature, body) in cases {
        let r = post(&app, &p, signature.as_deref(), body).await;
        assert_eq!(r.status(), 403, "{what}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{what}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["type"], "https://arflow.dev/problems/invalid-signature", "{what}");
        assert!(!problem["detail"].as_str().unwrap().contains(AUTH_TOKEN), "{what}: the token never shows");
    }
    assert!(seen.lock().unwrap().is_empty(), "the voice service saw nothing");
    // Nothing recorded by the gateway either.
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&app.pool).await.unwrap();
    assert_eq!(outbox, 0);

    // A URL outside the contract is not found, signed or not; dot segments never reach the voice service.
    let r = post(&app, "/webhooks/telephony/voice/x/hangup", Some(&good), form(&params)).await;
    assert_eq!(r.status(), 404);
    for raw in ["/webhooks/telephony/voice/x/../../../metrics", "/webhooks/telephony/voice/%2e%2e/answer"] {
        let answer = raw_post(&app, raw).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{raw}: {answer}");
    }
    assert!(seen.lock().unwrap().is_empty());

    // The untampered original still goes through.
    assert_eq!(post(&app, &path, Some(&good), form(&params)).await.status(), 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("telephony_callbacks_rejected"), "{metrics}");
}

/// A POST with a raw path (a client library would resolve dot segments before sending).
async fn raw_post(app: &TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.url("").trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn voice_service_down_is_503_and_oversized_bodies_are_refused() {
    // Nothing listens on port 9.
    let app = gateway("http://127.0.0.1:9".into()).await;
    let path = format!("/webhooks/telephony/voice/{CALL}/answer");
    let params = [("CallSid", "CA01"), ("CallStatus", "in-progress"), ("AnsweredBy", "human")];
    let signature = sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &params);
    let r = post(&app, &path, Some(&signature), form(&params)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("voice"), "{problem}");

    let huge = format!("Body={}", "a".repeat(70 * 1024));
    let r = post(&app, "/webhooks/telephony/sms/inbound", Some("x"), huge).await;
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn without_an_auth_token_callbacks_are_not_accepted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let voice = fake_voice(seen.clone()).await;
    let app = spawn_app_with(move |c| {
        c.internal.token = INTERNAL.to_string().into();
        c.gateway.public_base_url = PUBLIC.into();
        c.gateway.upstreams.voice = voice;
    })
    .await;
    let path = "/webhooks/telephony/sms/inbound";
    let params = [("MessageSid", "SM01"), ("Body", "hi")];
    // Even "signed" with the empty key, nothing passes.
    let r = post(&app, path, Some(&sign("", &format!("{PUBLIC}{path}"), &params)), form(&params)).await;
    assert_eq!(r.status(), 503);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_openapi_document_lists_the_telephony_callbacks() {
    let app = gateway("http://127.0.0.1:9".into()).await;
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let op = &doc["paths"]["/webhooks/telephony/voice/{call_id}/{event}"]["post"];
    assert!(op["responses"]["403"].is_object(), "{op}");
}

#[tokio::test]
async fn a_callback_waits_for_a_voice_service_that_is_restarting() {
    // The port is known, but the voice service only listens on it a moment after the STOP
    // arrives (a restart): the provider would not send the text again, so the gateway waits.
    let port = arflow_testkit::free_port();
    let app = gateway(format!("http://127.0.0.1:{port}")).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let later = seen.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let app = axum::Router::new().fallback(any(move |body: String| {
            let seen = later.clone();
            async move {
                seen.lock().unwrap().push(body);
                ([("content-type", "text/xml")], TWIML)
            }
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    let path = "/webhooks/telephony/sms/inbound";
    let params = [("MessageSid", "SM0042"), ("From", "+14155552671"), ("Body", "STOP")];
    let r = post(&app, path, Some(&sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &params)), form(&params)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), TWIML);
    assert_eq!(seen.lock().unwrap().len(), 1, "delivered once");
}
