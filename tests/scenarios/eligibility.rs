//! Each eligibility rule, seen where a firm sees it: the invoice's activity in the API.
use arflow_tests::{Firm, TestApp};
use chrono::NaiveDate;
use serde_json::{Value, json};
use uuid::Uuid;

/// The failed rules in the latest eligibility entry of the invoice's history.
async fn failed_rules(app: &TestApp, firm: &Firm, invoice: Uuid) -> Vec<String> {
    let activity = app.activity(firm, invoice).await;
    let history = activity["history"].as_array().cloned().unwrap_or_default();
    let latest = history.iter().rev().find(|h| h["checks"].is_array()).cloned().unwrap_or(Value::Null);
    latest["checks"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["passed"] == false)
                .map(|c| c["rule"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_shows_its_reason_in_the_activity() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.patch(&firm, "/v1/firm", json!({"min_amounts": {"USD": "100"}})).await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
    let mut n = 0;
    let mut next_invoice = |customer: &str| {
        n += 1;
        (format!("in_rule_{n}"), customer.to_string())
    };

    // A clean invoice: eligible, nothing failed.
    app.add_client(&firm, "cus_ok", "Clean Client", "standard", "America/New_York").await;
    let (id, c) = next_invoice("cus_ok");
    let ok = app.finalize_invoice(&firm, &id, &c, 50_000, "usd", due).await;

    // not_excluded: the firm excludes the client.
    let (client_x, _) = app.add_client(&firm, "cus_excl", "Excluded Client", "standard", "America/New_York").await;
    app.patch(&firm, &format!("/v1/clients/{client_x}"), json!({"excluded": true})).await;
    let (id, c) = next_invoice("cus_excl");
    let excluded = app.finalize_invoice(&firm, &id, &c, 50_000, "usd", due).await;

    // amount_above_minimum: 50.00 USD under a 100 USD minimum.
    let (id, c) = next_invoice("cus_ok");
    let small = app.finalize_invoice(&firm, &id, &c, 5_000, "usd", due).await;

    // not_disputed.
    let (id, c) = next_invoice("cus_ok");
    let disputed = app.finalize_invoice(&firm, &id, &c, 50_000, "usd", due).await;
    app.patch(&firm, &format!("/v1/invoices/{disputed}"), json!({"disputed": true})).await;

    // contact_with_consent: the only contact agreed to no channel.
    let (_, contact) = app.add_client(&firm, "cus_noconsent", "No Consent", "standard", "America/New_York").await;
    app.patch(
        &firm,
        &format!("/v1/contacts/{contact}"),
        json!({"consent": {"email": false, "voice": false, "sms": false}}),
    )
    .await;
    let (id, c) = next_invoice("cus_noconsent");
    let no_consent = app.finalize_invoice(&firm, &id, &c, 50_000, "usd", due).await;

    // contact_not_opted_out: the client's only contact unsubscribed.
    let (_, opted) = app.add_client(&firm, "cus_optout", "Opted Out", "standard", "America/New_York").await;
    let token = arflow_runtime::signature::unsubscribe_token(arflow_tests::UNSUB_SECRET, firm.id, opted);
    let r = app
        .http
        .post(app.url(&format!("/v1/unsubscribe/{token}")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "one-click unsubscribe: {}", r.status());
    let (id, c) = next_invoice("cus_optout");
    let opted_out = app.finalize_invoice(&firm, &id, &c, 50_000, "usd", due).await;

    // stripe_connected: the firm's Stripe connection is off (checked last: it affects every invoice).
    app.process_until_idle().await;
    assert!(failed_rules(&app, &firm, ok).await.is_empty(), "clean invoice is eligible");
    assert_eq!(failed_rules(&app, &firm, excluded).await, ["not_excluded"]);
    assert_eq!(failed_rules(&app, &firm, small).await, ["amount_above_minimum"]);
    assert_eq!(failed_rules(&app, &firm, disputed).await, ["not_disputed"]);
    assert!(failed_rules(&app, &firm, no_consent).await.contains(&"contact_with_consent".to_string()));
    assert!(failed_rules(&app, &firm, opted_out).await.contains(&"contact_not_opted_out".to_string()));

    app.patch(&firm, "/v1/firm", json!({"stripe_connected": false})).await;
    app.process_until_idle().await;
    assert!(failed_rules(&app, &firm, ok).await.contains(&"stripe_connected".to_string()));

    // invoice_open: voided in Stripe.
    app.patch(&firm, "/v1/firm", json!({"stripe_connected": true})).await;
    let void = arflow_testkit::stripe::invoice("in_rule_1", "cus_ok", "INV-in_rule_1", 50_000, "usd", 0, "void");
    let r = app
        .stripe(
            &firm,
            &arflow_testkit::stripe::event("evt_void_1", "invoice.voided", app.now().await.timestamp() + 5, void),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.process_until_idle().await;
    assert!(failed_rules(&app, &firm, ok).await.contains(&"invoice_open".to_string()));
    let activity = app.activity(&firm, ok).await;
    assert_eq!(activity["automation_status"], "uncollectible", "a voided invoice stops automation: {activity:#}");
}
