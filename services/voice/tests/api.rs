//! The read API behind the gateway: `GET /v1/calls` and `GET /v1/texts` answer one list shape,
//! `{data, next_cursor}` with `limit` and `cursor`; `invoice_id` is an optional filter, and one
//! naming another firm's or an unknown invoice answers 404 problem+json, while the firm's own
//! invoice with nothing yet answers 200 with an empty list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::Tone;
use common::*;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// Polls the API until `check` accepts the answer (the consumers run asynchronously).
async fn until(app: &TestApp, firm: Uuid, path: &str, check: impl Fn(u16, &Value) -> bool) -> Value {
    arflow_testkit::eventually(path, Duration::from_secs(15), || async {
        let (status, _, body) = app.api_as(firm, path).await;
        check(status, &body).then_some(body)
    })
    .await
}

#[tokio::test]
async fn lists_are_pages_and_an_invoice_filter_is_scoped_to_the_firm() {
    let app = TestApp::spawn().await;
    let other_firm = Uuid::now_v7();

    // Three calls on one invoice, one text on another, all of this firm.
    let first = voice_step(Tone::Friendly);
    let invoice = first.invoice_id;
    let mut steps = vec![first];
    for _ in 0..2 {
        let mut s = voice_step(Tone::Friendly);
        s.invoice_id = invoice;
        s.invoice.invoice_id = invoice;
        steps.push(s);
    }
    for s in &steps {
        app.publish_step(s, 1).await;
    }
    let text = sms_step();
    app.publish_step(&text, 1).await;
    // The firm's invoice without calls or texts yet, another firm's invoice, and that firm's calls.
    let quiet = Uuid::now_v7();
    app.publish_invoice(app.firm, quiet).await;
    let theirs = Uuid::now_v7();
    app.publish_invoice(other_firm, theirs).await;

    let all = until(&app, app.firm, "/v1/calls", |s, b| s == 200 && b["data"].as_array().unwrap().len() == 3).await;
    assert!(all["next_cursor"].is_null(), "{all}");
    assert!(all.get("items").is_none(), "{all}");

    // Pages of two, in creation order, with a cursor to the next page only when there is one.
    let (status, _, page1) = app.api_as(app.firm, &format!("/v1/calls?invoice_id={invoice}&limit=2")).await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().expect("a cursor to the last page").to_string();
    assert_eq!(cursor, page1["data"][1]["id"].as_str().unwrap());
    let (status, _, page2) =
        app.api_as(app.firm, &format!("/v1/calls?invoice_id={invoice}&limit=2&cursor={cursor}")).await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    let ids: Vec<&Value> =
        page1["data"].as_array().unwrap().iter().chain(page2["data"].as_array().unwrap()).map(|c| &c["id"]).collect();
    let listed: Vec<&Value> = all["data"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, listed);

    let texts = until(&app, app.firm, "/v1/texts", |s, b| s == 200 && b["data"].as_array().unwrap().len() == 1).await;
    assert_eq!(texts["data"][0]["invoice_id"], text.invoice_id.to_string());
    assert!(texts["next_cursor"].is_null());
    let (status, _, by_invoice) = app.api_as(app.firm, &format!("/v1/texts?invoice_id={}", text.invoice_id)).await;
    assert_eq!((status, by_invoice["data"].as_array().unwrap().len()), (200, 1));

    // The firm's own invoice with nothing yet: 200 and an empty page (once the invoice is known).
    for list in ["calls", "texts"] {
        let empty = until(&app, app.firm, &format!("/v1/{list}?invoice_id={quiet}"), |s, _| s == 200).await;
        assert_eq!(empty["data"], serde_json::json!([]), "{list}: {empty}");
        assert!(empty["next_cursor"].is_null());
    }
    // Another firm's invoice (known to the service), and one nobody published: 404 problems.
    until(&app, other_firm, &format!("/v1/calls?invoice_id={theirs}"), |s, _| s == 200).await;
    for list in ["calls", "texts"] {
        for invoice_id in [theirs, Uuid::now_v7()] {
            let (status, content_type, body) =
                app.api_as(app.firm, &format!("/v1/{list}?invoice_id={invoice_id}")).await;
            assert_eq!(status, 404, "{list} {invoice_id}: {body}");
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            assert_eq!(body["status"], 404);
        }
    }
    // This firm's invoice seen from the other firm: 404 too; the other firm's list is its own.
    let (status, _, _) = app.api_as(other_firm, &format!("/v1/calls?invoice_id={invoice}")).await;
    assert_eq!(status, 404);
    let (status, _, theirs_all) = app.api_as(other_firm, "/v1/calls").await;
    assert_eq!((status, theirs_all["data"].as_array().unwrap().len()), (200, 0));

    // Bad pages are 422 problems.
    for query in ["limit=0", "limit=101", "cursor=nope"] {
        let (status, content_type, _) = app.api_as(app.firm, &format!("/v1/calls?{query}")).await;
        assert_eq!(status, 422, "{query}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    }
}
