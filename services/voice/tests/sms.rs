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
    assert_eq!(classified["needs_review"].as_bool(), Some(false));
    assert!(classified["confidence"].as_f64().is_some_and(|c| c > 0.9), "{classified}");
    // A text the classifier is not confident of goes to a person, flagged, with its scores.
    let unsure = "the thing from last week?";
    let c =
        arflow_replies::classify(arflow_replies::Source::Sms, unsure, arflow_replies::Date::new(2026, 3, 10).unwrap());
    assert!(c.needs_review, "the classifier is now sure of {unsure:?} ({c:?}): pick another text for this test");
    app.callback("sms/inbound", &[("MessageSid", "SM2b"), ("From", "+14155552671"), ("Body", unsure)]).await;
    let flagged = app.wait_events(reply::CLASSIFIED, 2).await;
    let flagged =
        flagged.iter().find(|e| e.data["client_text"] == unsure).expect("the unsure text published").data.clone();
    assert_eq!((flagged["needs_review"].as_bool(), flagged["sure"].as_bool()), (Some(true), Some(false)), "{flagged}");
    assert_eq!(flagged["channel"], "sms");
    assert_eq!(flagged["scores"].as_array().unwrap().len(), c.scores.len());
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

#[tokio::test]
async fn a_stop_from_a_number_shared_by_two_contacts_holds_both() {
    use arflow_contracts::subjects::subject;
    use arflow_contracts::{Envelope, msg_id};
    let app = TestApp::spawn().await;
    // One phone, two contacts: one of this firm texted first, one of another firm texted last.
    let first = sms_step();
    app.publish_step(&first, 1).await;
    app.wait_event_for(outreach::SMS_SENT, "step_id", first.step_id).await;
    let other_firm = uuid::Uuid::now_v7();
    let second = sms_step();
    let env = Envelope::new(
        outreach::STEP_DUE_SMS,
        "scheduler",
        tuesday_afternoon(),
        other_firm,
        second.invoice_id,
        None,
        second.clone(),
    );
    let kind = outreach::STEP_DUE_SMS;
    app.bus.publish_event(&subject(kind, other_firm), &msg_id::step(second.step_id, "due"), &env).await.unwrap();
    app.wait_event_for(outreach::SMS_SENT, "step_id", second.step_id).await;
    let form = [("MessageSid", "SM0009"), ("From", "+14155552671"), ("To", "+12025550100"), ("Body", "STOP")];
    let (s, twiml) = app.callback("sms/inbound", &form).await;
    assert_eq!(s, 200, "{twiml}");
    assert!(app.is_held(&contact_hold_key(second.contact.contact_id)).await, "the latest contact");
    assert!(app.is_held(&contact_hold_key(first.contact.contact_id)).await, "the other contact at that number");
    // Each firm hears of its own contact's opt-out, in its own stream.
    let a = app.wait_event_for(reply::CLASSIFIED, "invoice_id", first.invoice_id).await;
    let b = app.wait_event_for(reply::CLASSIFIED, "invoice_id", second.invoice_id).await;
    assert_eq!((a["intent"].as_str(), b["intent"].as_str()), (Some("opt_out"), Some("opt_out")));
    assert_eq!(a["contact_id"], first.contact.contact_id.to_string());
    let envs = app.events(reply::CLASSIFIED).await;
    let firm_of = |invoice: uuid::Uuid| {
        envs.iter().find(|e| e.data["invoice_id"] == invoice.to_string()).map(|e| e.firm_id).unwrap()
    };
    assert_eq!(firm_of(first.invoice_id), app.firm);
    assert_eq!(firm_of(second.invoice_id), other_firm);
    // A reply that is not an opt-out still goes to the latest only.
    let (_, _) = app
        .callback("sms/inbound", &[("MessageSid", "SM0010"), ("From", "+14155552671"), ("Body", "I will pay Friday")])
        .await;
    let promises = app.wait_events(reply::CLASSIFIED, 3).await;
    assert_eq!(promises.iter().filter(|e| e.data["intent"] == "promise_to_pay").count(), 1);
}
