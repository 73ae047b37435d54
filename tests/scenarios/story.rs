//! The story from the seeds: a $3,200 invoice of a long-standing client gets friendly
//! reminders, a firmer one with the pay link at +14, is paid at +22, and nothing follows.
use arflow_tests::{TestApp, start_time};
use chrono::{Duration, NaiveDate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_standing_client_is_reminded_until_stripe_reports_payment() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.add_client(&firm, "cus_story", "Maple Dental", "long_standing", "America/New_York").await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let invoice = app.finalize_invoice(&firm, "in_story", "cus_story", 320_000, "usd", due).await;
    app.process_until_idle().await;

    // Through +22 days after the due date.
    let until_paid = (due - start_time().date_naive()).num_days() + 22;
    app.advance(Duration::days(until_paid)).await;
    let before = app.emails_for(invoice);
    let steps: Vec<String> = before.iter().map(|m| m.header("X-Arflow-Step").unwrap_or_default().to_string()).collect();
    assert_eq!(before.len(), 5, "pre-due, due-day, +3, +7 and +14 reminders: {steps:?}");
    for m in &before {
        assert!(m.text().contains("3,200.00 USD"), "amount in every reminder");
    }
    let firm_one = &before[4];
    assert!(firm_one.text().contains("https://invoice.stripe.com/"), "the +14 reminder carries the pay link");
    let subjects: Vec<String> = before.iter().map(|m| m.subject().unwrap_or_default().to_string()).collect();
    assert_ne!(subjects[4], subjects[3], "the +14 reminder is firmer than the friendly ones: {subjects:?}");

    let r = app.pay_invoice(&firm, "in_story", "cus_story", 320_000, "usd").await;
    assert_eq!(r.status(), 200);
    app.process_until_idle().await;
    app.advance(Duration::days(30)).await;
    assert_eq!(app.emails_for(invoice).len(), 5, "nothing after the payment");

    let activity = app.activity(&firm, invoice).await;
    assert_eq!(activity["automation_status"], "halted_paid", "{activity:#}");
    assert!(activity["next_action"].is_null(), "{activity:#}");
    let history = activity["history"].as_array().unwrap();
    let sent: Vec<_> = history.iter().filter(|h| h["kind"] == "email_sent").collect();
    assert_eq!(sent.len(), 5, "{history:#?}");
    for h in &sent {
        assert!(h["rule"].as_str().unwrap_or_default().contains('/'), "rule named: {h}");
        assert!(h["policy_version"].as_i64().is_some(), "policy version: {h}");
        assert!(h["template"].is_string() && h["body"].is_string(), "template and content: {h}");
    }
    let halted = history.iter().find(|h| h["kind"] == "halted").expect("the payment halt is in the history");
    assert!(halted["summary"].as_str().unwrap_or_default().contains("paid"), "{halted}");
    // Nothing happened for this invoice after the halt but plan bookkeeping.
    let after: Vec<_> = history
        .iter()
        .skip_while(|h| h["kind"] != "halted")
        .filter(|h| h["kind"] == "email_sent" || h["kind"] == "step_due")
        .collect();
    assert!(after.is_empty(), "no step after the payment: {after:#?}");
}
