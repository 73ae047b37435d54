//! Humans take over where automation should stop, and the firm hears of it: a client's
//! dispute opens an escalation case (public event with the whole case), reminders stop, the
//! firm's signed webhook is told, a firm user decides through the gateway's API, and reminders
//! resume. A firm user writes an invoice off: Stripe's mark-uncollectible is called and the
//! invoice halts. Everything through the public edges (gateway API, inbound mail, webhooks).
use arflow_tests::{REPLY_DOMAIN, TestApp};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The webhook secret, the bodies received with a valid Standard Webhooks signature (checked
/// with testkit's implementation of the spec, not the service's code), and the refused ones.
type Inbox = Arc<Mutex<(String, Vec<Value>, u32)>>;

async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::new(Mutex::new((String::new(), vec![], 0)));
    let state = inbox.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let mut s = state.lock().unwrap();
                if arflow_testkit::standard_webhooks::verify(&s.0, &headers, &body).is_none() {
                    s.2 += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                s.1.push(serde_json::from_slice(&body).unwrap());
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    arflow_testkit::eventually(what, std::time::Duration::from_secs(30), check).await
}

async fn act(app: &TestApp, key: &str, case: &str, body: Value) -> Value {
    let r = app
        .http
        .post(app.url(&format!("/v1/escalations/{case}/actions")))
        .bearer_auth(key)
        .header("x-arflow-actor", "dana@harborpine.test")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{body}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_opens_a_case_the_firm_is_told_and_a_person_decides() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm_with_stripe_key().await;
    let (hook_url, inbox) = receiver().await;
    let sub = app
        .post(
            &firm,
            "/v1/notifications/subscriptions",
            json!({"user": "ops", "kinds": ["escalation_opened", "dispute"], "channel": {"type": "webhook", "url": hook_url}}),
        )
        .await;
    let secret = sub["secret"].as_str().expect("the signing secret, shown once");
    inbox.lock().unwrap().0 = secret.to_string();

    let start = app.now().await.date_naive();
    let (_, contact) = app.add_client(&firm, "cus_dsp", "Quarry Lane Studio", "standard", "America/New_York").await;
    app.add_client(&firm, "cus_wo", "Old Mill Bakery", "standard", "America/New_York").await;
    let disputed = app.finalize_invoice(&firm, "in_dsp", "cus_dsp", 184_000, "usd", start + Duration::days(2)).await;
    let written_off = app.finalize_invoice(&firm, "in_wo", "cus_wo", 52_500, "usd", start - Duration::days(40)).await;
    app.stripe_api.add_invoice(arflow_testkit::stripe::invoice(
        "in_wo",
        "cus_wo",
        "INV-in_wo",
        52_500,
        "usd",
        (app.now().await - Duration::days(40)).timestamp(),
        "open",
    ));
    app.advance_days(6).await;
    let sent = app.emails_for(disputed);
    assert!(!sent.is_empty(), "reminders went out");

    // The client disputes, answering the last reminder.
    let last = sent.last().unwrap();
    let token = last.header("Reply-To").unwrap().split("reply+").nth(1).unwrap().split('@').next().unwrap();
    let raw = format!(
        "From: <billing@cus_dsp.test>\r\nTo: <reply+{token}@{REPLY_DOMAIN}>\r\nSubject: Re: invoice\r\nIn-Reply-To: {}\r\n\
         Date: Mon, 09 Mar 2026 10:00:00 +0000\r\n\r\nWe never approved the extra site visits on this invoice. \
         Please correct it before we pay.\r\n",
        last.header("Message-ID").unwrap()
    );
    assert_eq!(app.inbound_email(&firm, raw.as_bytes()).await.status(), 202);
    app.process_until_idle().await;

    // One open dispute case with everything a consumer needs. (The 40-days-late invoice got
    // its final notice at once, so its cadence is exhausted: a case of its own.)
    let queue = app.get(&firm, "/v1/escalations?status=open").await;
    let cases: Vec<&Value> = queue["data"].as_array().unwrap().iter().collect();
    let reasons: Vec<&str> = cases.iter().map(|c| c["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.iter().filter(|r| **r == "dispute").count(), 1, "{queue}");
    assert!(reasons.contains(&"cadence_exhausted"), "{queue}");
    let case = *cases.iter().find(|c| c["reason"] == "dispute").unwrap();
    assert_eq!(case["reason"], "dispute");
    assert_eq!(case["status"], "open");
    assert!(case["evidence"].as_str().unwrap().contains("never approved"), "{case}");
    assert_eq!(case["client"]["name"], "Quarry Lane Studio");
    assert_eq!(case["contact"]["contact_id"], contact.to_string());
    assert_eq!(case["invoice"]["invoice_id"], disputed.to_string());
    assert_eq!(case["invoice"]["number"], "INV-in_dsp");
    assert_eq!(case["invoice"]["amount_remaining"], "1840.00");
    assert_eq!(case["invoice"]["currency"], "USD");
    assert!(case["invoice"]["days_past_due"].as_i64().unwrap() >= 3, "{case}");
    assert!(case["links"]["case"].as_str().unwrap().contains(case["case_id"].as_str().unwrap()));
    let case_id = case["case_id"].as_str().unwrap().to_string();
    let events = app.events("ESCALATION", &format!("escalation.opened.{}", firm.id)).await;
    assert!(events.iter().any(|(_, e)| e.data["case_id"] == case_id.as_str()), "public escalation.opened");

    // The firm's webhook hears of it, signed.
    let kinds = eventually("the webhook notifications", || async {
        let s = inbox.lock().unwrap();
        let kinds: Vec<String> = s.1.iter().map(|b| b["type"].as_str().unwrap_or_default().to_string()).collect();
        (kinds.iter().any(|k| k.contains("escalation")) && kinds.iter().any(|k| k.contains("dispute"))).then_some(kinds)
    })
    .await;
    assert_eq!(inbox.lock().unwrap().2, 0, "no unsigned delivery: {kinds:?}");

    // Reminders stop while a person looks at it.
    let before = app.emails_for(disputed).len();
    app.advance_days(5).await;
    assert_eq!(app.emails_for(disputed).len(), before, "no reminder while the case is open");
    let invoice = app.get(&firm, &format!("/v1/invoices/{disputed}")).await;
    assert_eq!(invoice["automation_status"], "escalated", "{invoice}");

    // The firm user decides: the credit note is issued, automation continues.
    let after =
        act(&app, &firm.key, &case_id, json!({"action": "continue_automation", "note": "credit note issued"})).await;
    assert_eq!(after["status"], "resolved", "{after}");
    app.process_until_idle().await;
    let detail = app.get(&firm, &format!("/v1/escalations/{case_id}")).await;
    let text = detail.to_string();
    assert!(text.contains("dana@harborpine.test") && text.contains("credit note issued"), "who and why: {detail}");
    app.advance_days(10).await;
    assert!(app.emails_for(disputed).len() > before, "reminders resume after continue_automation");

    // A firm user opens a case by hand and writes the old invoice off in Stripe.
    let opened = app
        .post(&firm, "/v1/escalations", json!({"invoice_id": written_off, "note": "client went out of business"}))
        .await;
    let wo_case = opened["case_id"].as_str().or(opened["case"]["case_id"].as_str()).unwrap().to_string();
    act(&app, &firm.key, &wo_case, json!({"action": "mark_uncollectible", "note": "written off per partner"})).await;
    eventually("Stripe is asked to mark the invoice uncollectible", || async {
        app.stripe_api.requests().iter().any(|r| r == "POST /v1/invoices/in_wo/mark_uncollectible").then_some(())
    })
    .await;
    app.process_until_idle().await;
    let status = eventually("the invoice is uncollectible", || async {
        let v = app.get(&firm, &format!("/v1/invoices/{written_off}")).await;
        (v["status"] == "uncollectible").then_some(v)
    })
    .await;
    assert_eq!(status["automation_status"], "uncollectible", "{status}");
    let wo = eventually("the case resolves", || async {
        let v = app.get(&firm, &format!("/v1/escalations/{wo_case}")).await;
        let case = if v["case"].is_null() { v.clone() } else { v["case"].clone() };
        (case["status"] == "resolved").then_some(case)
    })
    .await;
    assert_eq!(wo["invoice"]["invoice_id"], written_off.to_string());
    let resolved = app.events("ESCALATION", &format!("escalation.resolved.{}", firm.id)).await;
    for id in [&case_id, &wo_case] {
        assert!(resolved.iter().any(|(_, e)| e.data["case_id"] == id.as_str()), "{id} resolved publicly");
    }
    let _ = Uuid::nil();
}
