//! The OTLP exporter, when `log.otlp_endpoint` is set, sends the spans of a message continued
//! from its `traceparent` to a real HTTP endpoint, in the message's trace. (Its own process: the
//! tracing subscriber is global.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_runtime::LogSettings;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What the collector received: content type and body of each export.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_continued_trace_reach_the_collector() {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                sink.lock().unwrap().push((kind, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    arflow_runtime::telemetry::init(&LogSettings {
        format: "pretty".into(),
        level: "info".into(),
        otlp_endpoint: Some(format!("http://127.0.0.1:{port}/v1/traces")),
    });
    let (correlation, event) = (Uuid::now_v7(), Uuid::now_v7());
    let traceparent = arflow_runtime::telemetry::traceparent(correlation, event).unwrap();
    let span = tracing::info_span!("event", kind = "billing.invoice_paid");
    arflow_runtime::telemetry::continue_trace(&span, Some(&traceparent), Uuid::nil(), Uuid::nil());
    span.in_scope(|| tracing::info!("handled"));
    drop(span);
    tokio::task::spawn_blocking(arflow_runtime::telemetry::flush).await.unwrap();

    wait_for_export(&received).await;
    let got = received.lock().unwrap().clone();
    assert_eq!(got[0].0, "application/x-protobuf");
    // The trace id travels as 16 raw bytes in the protobuf body.
    let trace = correlation.as_bytes();
    assert!(got.iter().any(|(_, body)| body.windows(16).any(|w| w == trace)), "the span is in the message's trace");
}

async fn wait_for_export(received: &Received) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while received.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no OTLP export arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
