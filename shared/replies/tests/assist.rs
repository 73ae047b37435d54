//! The LLM assist against a tiny local HTTP server answering canned chat completions
//! (`cargo test -p arflow-replies --features llm`).
#![cfg(feature = "llm")]
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arflow_replies::assist::{Assist, AssistFuture, OpenAiCompatible, classify_assisted};
use arflow_replies::{Intent, Source};
use jiff::civil::date;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `responses` in turn (status, body), one per connection; records each request.
async fn server(responses: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for (status, body) in responses {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the headers, then the body by Content-Length.
            loop {
                let Ok(n) = socket.read(&mut buf).await else { return };
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            log.lock().expect("lock").push(String::from_utf8_lossy(&request).to_string());
            let reason = if status == 200 { "OK" } else { "Error" };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (format!("http://{addr}/v1"), seen)
}

fn completion(content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]
    })
    .to_string()
}

fn backend(base_url: String) -> OpenAiCompatible {
    OpenAiCompatible {
        base_url,
        api_key: "test-key".into(),
        model: "tiny-model".into(),
        timeout: Duration::from_secs(5),
    }
}

/// A reply the classifier holds for review (checked below, so a retrained model that reads it with
/// confidence fails here loudly rather than silently testing nothing).
const UNSURE: &str = "well we will see about that";

#[tokio::test]
async fn asks_only_when_unsure_and_uses_a_strict_answer() {
    let reference = date(2026, 3, 4);
    let (url, seen) =
        server(vec![(200, completion(r#"{"intent":"promise_to_pay","promised_date":"2026-03-06"}"#))]).await;
    let llm = backend(url);

    // The rules are sure: no request.
    let sure = classify_assisted(Some(&llm), Source::Email, "Please stop emailing me.", reference).await;
    assert_eq!(sure.intent, Intent::OptOut);
    assert!(seen.lock().expect("lock").is_empty());

    // Not sure: the assist decides, evidence names the model.
    let rules = arflow_replies::classify(Source::Voice, UNSURE, reference);
    assert!(!rules.sure() && rules.needs_review, "{rules:?}");
    let c = classify_assisted(Some(&llm), Source::Voice, UNSURE, reference).await;
    assert_eq!(c.intent, Intent::PromiseToPay);
    assert_eq!(c.promised_date, Some(date(2026, 3, 6)));
    assert_eq!(c.evidence, "llm:tiny-model");
    // The assist names an intent for the reviewer; the reply still goes to a person.
    assert!(c.needs_review);
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].starts_with("POST /v1/chat/completions "), "{}", requests[0]);
    assert!(requests[0].to_ascii_lowercase().contains("authorization: bearer test-key"));
    assert!(requests[0].contains("tiny-model") && requests[0].contains("reference_date: 2026-03-04"));
}

#[tokio::test]
async fn falls_back_to_the_rules_on_errors() {
    let reference = date(2026, 3, 4);
    let (url, _) = server(vec![
        (500, r#"{"error":"overloaded"}"#.to_string()),
        (200, completion("I think it is a promise.")),
        (200, completion(r#"{"intent":"promise_to_pay","promised_date":"soon"}"#)),
        (200, completion(r#"{"intent":null,"promised_date":null}"#)),
    ])
    .await;
    let llm = backend(url);
    let rules = arflow_replies::classify(Source::Voice, UNSURE, reference);
    for _ in 0..4 {
        let c = classify_assisted(Some(&llm), Source::Voice, UNSURE, reference).await;
        assert_eq!(c, rules);
    }
    // Nothing listens there any more: a connection error is a fallback too.
    let c = classify_assisted(Some(&llm), Source::Voice, UNSURE, reference).await;
    assert_eq!(c, rules);
    // No assist at all.
    assert_eq!(classify_assisted(None, Source::Voice, UNSURE, reference).await, rules);
}

/// An assist that would call everything a question.
struct Always(Intent);

impl Assist for Always {
    fn classify<'a>(&'a self, _: Source, _: &'a str, _: jiff::civil::Date) -> AssistFuture<'a> {
        let intent = self.0;
        Box::pin(async move { Ok(Some((intent, None))) })
    }
}

#[tokio::test]
async fn never_overrides_a_rule_opt_out() {
    let reference = date(2026, 3, 4);
    let c = classify_assisted(Some(&Always(Intent::Question)), Source::Email, "unsubscribe", reference).await;
    assert_eq!(c.intent, Intent::OptOut);
    assert!(c.sure());
}
