//! A signal acts on exactly the channels it names (issue 13, item 6). A client gave an email
//! address and a phone it agreed to be called on; the address hard-bounces (an RFC 3464 DSN).
//! The bounce suppresses email only: the invoice stays eligible on voice, the call is placed at
//! its time, nothing goes by email after the bounce (the call's email follow-up included), and
//! the firm is not told that every contact opted out, because one is still reachable. Then the
//! client opts out of every channel, and only now does that warning (case and notification) come.
use arflow_testkit::telephony::ClientScript;
use arflow_tests::{Firm, TestApp};
use chrono::{Duration, Timelike};
use serde_json::{Value, json};
use uuid::Uuid;

const PHONE: &str = "+12125550160";
const EMAIL: &str = "billing@cus_bounce.test";
const AR_MANAGER: &str = "dana@harborpine.test";
const UNREACHABLE: &str = "all_contacts_opted_out";
const NEW_YORK: &str = "America/New_York";

/// The client and its one contact: email and calls agreed, no texts. Returns (contact, invoice).
async fn client_with_email_and_phone(app: &TestApp, firm: &Firm, due: chrono::NaiveDate) -> (Uuid, Uuid) {
    let contact = json!({"name": "Quay Street billing", "email": EMAIL, "phone": PHONE, "timezone": NEW_YORK,
                         "primary": true, "consent": {"email": true, "voice": true, "sms": false}});
    let (_, contact) =
        app.add_client_with(firm, "cus_bounce", "Quay Street Dental", "standard", NEW_YORK, contact).await;
    let invoice = app.finalize_invoice(firm, "in_bounce", "cus_bounce", 186_000, "usd", due).await;
    (contact, invoice)
}

fn emails_to_client(app: &TestApp) -> usize {
    app.emails().iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(EMAIL))).count()
}

/// The checks of the invoice's latest eligibility decision (as published): (rule, passed, detail).
async fn latest_checks(app: &TestApp, invoice: Uuid) -> Vec<(String, bool, String)> {
    let decisions = app.events("ELIGIBILITY", "eligibility.changed.").await;
    let latest = decisions.iter().rev().find(|(_, e)| e.subject_id == invoice).expect("a decision");
    latest.1.data["checks"].as_array().map(|c| c.iter().map(check).collect()).unwrap_or_default()
}

fn check(c: &Value) -> (String, bool, String) {
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("rule"), c["passed"] == true, text("detail"))
}

/// What says "every contact opted out" so far: the eligibility warnings, the open cases with
/// that reason, and the notifications of that kind.
async fn unreachable_signals(app: &TestApp, firm: &Firm) -> (usize, usize, usize) {
    let warnings = app.events("ELIGIBILITY", &format!("eligibility.{UNREACHABLE}.")).await.len();
    let queue = app.get(firm, "/v1/escalations?status=open").await;
    let cases = queue["data"].as_array().unwrap().iter().filter(|c| c["reason"] == UNREACHABLE).count();
    let deliveries = app.get(firm, "/v1/notifications/deliveries?limit=100").await;
    let notices = deliveries["data"].as_array().unwrap().iter().filter(|d| d["kind"] == UNREACHABLE).count();
    (warnings, cases, notices)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_suppresses_email_only_and_the_call_still_goes() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.post(
        &firm,
        "/v1/notifications/subscriptions",
        json!({"user": AR_MANAGER, "kinds": [UNREACHABLE, "opt_out"], "channel": {"type": "email", "address": AR_MANAGER}}),
    )
    .await;
    app.telephony.set_script(PHONE, ClientScript::Voicemail);
    // Due 20 days ago: the latest email step due goes out on Monday 2 March at 09:00 in New
    // York, the +21 call on Tuesday 3 March at 08:00 there.
    let due = app.now().await.date_naive() - Duration::days(20);
    let (contact, invoice) = client_with_email_and_phone(&app, &firm, due).await;
    app.process_until_idle().await;
    app.advance(Duration::hours(15)).await;
    let sent = app.emails_for(invoice);
    assert_eq!(sent.len(), 1, "Monday's reminder");
    let message_id = sent[0].header("Message-ID").unwrap().to_string();

    // The address bounces: the opt-out service records email only.
    assert_eq!(app.inbound_email(&firm, arflow_tests::hard_bounce(EMAIL, &message_id).as_bytes()).await.status(), 202);
    app.process_until_idle().await;
    let ledger = app.get(&firm, &format!("/v1/consent/contacts/{contact}")).await;
    assert!(ledger.to_string().contains("hard_bounce"), "{ledger}");
    let emails_at_bounce = emails_to_client(&app);

    // Still eligible, and the decision says which channel is left and why.
    let checks = latest_checks(&app, invoice).await;
    assert!(checks.iter().all(|(_, passed, _)| *passed), "{checks:?}");
    let (_, _, left) = checks.iter().find(|(rule, _, _)| rule == "contact_not_opted_out").unwrap();
    assert_eq!(left, "1 contact(s) with a channel left: Quay Street billing: voice (opted out of email)");
    let status = app.get(&firm, &format!("/v1/invoices/{invoice}")).await;
    assert_eq!(status["automation_status"], "enabled", "{status}");
    assert_eq!(unreachable_signals(&app, &firm).await, (0, 0, 0));

    // Tuesday: the call is placed at 08:00 in New York; the voicemail's email follow-up and
    // every later email step have nobody to go to and are skipped with the reason.
    app.advance_days(1).await;
    let calls: Vec<_> = app.telephony.calls().into_iter().filter(|c| c.to == PHONE).collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (placed,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT placed_at FROM voice.calls WHERE invoice_id = $1")
            .bind(invoice)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let local = placed.with_timezone(&chrono_tz::America::New_York);
    assert_eq!((local.date_naive(), local.hour()), (due + Duration::days(21), 8), "placed at {local}");
    // The call names its inputs: the decision it went on says email is suppressed, voice left.
    let (explained,): (Value,) =
        sqlx::query_as("SELECT step_due->'explanation'->'checks' FROM voice.calls WHERE invoice_id = $1")
            .bind(invoice)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let explained: Vec<_> = explained.as_array().unwrap().iter().map(check).collect();
    assert!(explained.iter().any(|(_, _, d)| d.ends_with("voice (opted out of email)")), "{explained:?}");
    app.advance_days(10).await;
    assert_eq!(emails_to_client(&app), emails_at_bounce, "no email after the bounce");
    let steps: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT name, state, reason, detail FROM scheduler.steps WHERE invoice_id = $1 AND scheduled_for > $2",
    )
    .bind(invoice)
    .bind(placed - Duration::hours(1))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for name in ["call_overdue_21_email", "overdue_30"] {
        let step = steps.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("{name} in {steps:?}"));
        assert_eq!((step.1.as_str(), step.2.as_deref()), ("skipped", Some("contact_opted_out")), "{step:?}");
        assert!(step.3.as_deref().is_some_and(|d| d.ends_with("channels left: voice")), "{step:?}");
    }
    // The cadence ran its course (a case for that), but nobody says every contact opted out.
    let queue = app.get(&firm, "/v1/escalations?status=open").await;
    let reasons: Vec<&str> = queue["data"].as_array().unwrap().iter().filter_map(|c| c["reason"].as_str()).collect();
    assert_eq!(reasons, ["cadence_exhausted"], "{queue}");
    assert_eq!(unreachable_signals(&app, &firm).await, (0, 0, 0));

    // Now the client opts out of every channel (a firm user records it): nothing is left.
    let r = app
        .http
        .post(app.url("/v1/consent/opt-outs"))
        .bearer_auth(&firm.key)
        .header("x-arflow-actor", AR_MANAGER)
        .json(&json!({"contact_id": contact, "reason": "asked on the phone not to be contacted at all"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    app.process_until_idle().await;
    let (warnings, cases, notices) = unreachable_signals(&app, &firm).await;
    assert_eq!((warnings, cases), (1, 1), "one warning and one case for the open invoice");
    // The notification is made once, then delivered (by the worker, possibly after this moment).
    assert_eq!(notices, 1);
    let checks = latest_checks(&app, invoice).await;
    let (_, passed, detail) = checks.iter().find(|(rule, _, _)| rule == "contact_not_opted_out").unwrap();
    assert!(!passed);
    assert_eq!(detail, "no channel left on any contact: Quay Street billing: none (opted out of email, voice)");
}
