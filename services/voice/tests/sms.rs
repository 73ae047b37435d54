//! Texts end to end: the reminder with its link, the fences, inbound STOP / HELP / replies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::streams::contact_hold_key;
use arflow_contracts::subjects::{outreach, reply};
use arflow_core::Channel;
use common::*;

#[tokio::test]
async fn an_sms_step_sends_one_text_with_the_pay_link() {
    let app = TestApp::spawn().await;
    let step = sms_step();
    let env = app.publish_step(&step, 1).await;
    let sent = app.wait_event_for(outreach::SMS_SENT, "step_id", step.step_id).await;
    app.publish_envelope(&env, 2).await;
    let body = sent["body"].as_str().unwrap();
    assert_eq!(
        body,
        "Acme Accounting: invoice INV-0042 for 3,200.00 USD is 21 days overdue. Pay securely: \
         https://invoice.stripe.com/i/acct_1/test_YWNjdF8x Reply STOP to opt out, HELP for help."
    );
    assert_eq!(sent["template"], "sms-reminder");
    assert_eq!(sent["template_version"], 1);
    assert_eq!(sent["explanation"]["rule"], "default/overdue_21");
    assert!(sent["message_sid"].as_str().unwrap().starts_with("SM"));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let messages = app.provider.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].get("Body"), Some(body));
    assert_eq!(messages[0].get("To"), Some("+14155552671"));
    let text_id = app.text_state(step.step_id).await.unwrap().1;
    assert_eq!(
        messages[0].get("StatusCallback"),
        Some(format!("https://gateway.example/webhooks/telephony/sms/{text_id}/status").as_str())
    );
    // A delivery failure later is reported once.
    let (s, _) = app
        .callback(
            &format!("sms/{text_id}/status"),
            &[("MessageSid", "SM1"), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")],
        )
        .await;
    assert_eq!(s, 204);
    let failed = app.wait_event_for(outreach::SMS_FAILED, "step_id", step.step_id).await;
    assert!(failed["reason"].as_str().unwrap().contains("30003"));
}

#[tokio::test]
async fn texts_need_sms_consent() {
    let app = TestApp::spawn().await;
    let mut step = sms_step();
    step.contact.channels = vec![Channel::Email, Channel::Voice];
    app.publish_step(&step, 1).await;
    let skipped = app.wait_event_for(outreach::SMS_SKIPPED, "step_id", step.step_id).await;
    assert_eq!(skipped["reason"], "no_consent");
    assert_eq!(skipped["channel"], "sms");
    assert!(app.provider.messages().is_empty());
}

#[tokio::test]
async fn inbound_stop_holds_the_contact_and_publishes_an_opt_out_once() {
    let app = TestApp::spawn().await;
    let step = sms_step();
    app.publish_step(&step, 1).await;
    app.wait_event_for(outreach::SMS_SENT, "step_id", step.step_id).await;
    let form = [("MessageSid", "SM0001"), ("From", "+1 415 555 2671"), ("To", "+12025550100"), ("Body", " stop ")];
    let (s, twiml) = app.callback("sms/inbound", &form).await;
    assert_eq!(s, 200);
    assert!(twiml.contains("<Message>Acme Accounting: you are unsubscribed"), "{twiml}");
    assert!(app.is_held(&contact_hold_key(step.contact.contact_id)).await);
    let classified = app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    assert_eq!(classified["intent"], "opt_out");
    assert_eq!(classified["channel"], "sms");
    assert_eq!(classified["contact_id"], step.contact.contact_id.to_string());
    // The provider retries the same message: same answer, nothing more published.
    let (_, again) = app.callback("sms/inbound", &form).await;
    assert_eq!(again, twiml);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(app.events_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await.len(), 1);
}

#[tokio::test]
async fn inbound_help_is_answered_and_other_texts_are_classified() {
    let app = TestApp::spawn().await;
    let step = sms_step();
    app.publish_step(&step, 1).await;
    app.wait_event_for(outreach::SMS_SENT, "step_id", step.step_id).await;
    let (s, twiml) =
        app.callback("sms/inbound", &[("MessageSid", "SM1"), ("From", "+14155552671"), ("Body", "HELP")]).await;
    assert_eq!(s, 200);
    assert!(twiml.contains("payment reminders about your invoices with Acme Accounting"), "{twiml}");
    assert!(twiml.contains("Reply STOP to opt out"));
    assert!(!app.is_held(&contact_hold_key(step.contact.contact_id)).await);
    let (_, twiml) = app
        .callback("sms/inbound", &[("MessageSid", "SM2"), ("From", "+14155552671"), ("Body", "I will pay on Friday")])
        .await;
    assert!(twiml.ends_with("<Response/>"), "{twiml}");
    let classified = app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    assert_eq!(classified["intent"], "promise_to_pay");
    assert_eq!(classified["promised_date"], "2026-03-13");
    assert_eq!(classified["matched_by"], "sms_sender");
    // An opt-out in words (Spanish) holds like STOP.
    let (_, twiml) = app
        .callback(
            "sms/inbound",
            &[("MessageSid", "SM3"), ("From", "+14155552671"), ("Body", "No me envíen más mensajes por favor")],
        )
        .await;
    if twiml.contains("<Message>") {
        assert!(app.is_held(&contact_hold_key(step.contact.contact_id)).await);
    }
    // An unknown sender is recorded and answered with nothing.
    let (s, twiml) =
        app.callback("sms/inbound", &[("MessageSid", "SM4"), ("From", "+14155550000"), ("Body", "who is this")]).await;
    assert_eq!(s, 200);
    assert!(twiml.ends_with("<Response/>"));
    let n: (i64,) = sqlx::query_as("SELECT count(*) FROM voice.inbound_texts WHERE kind = 'unmatched'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n.0, 1);
}
