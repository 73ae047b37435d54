//! The email service end to end: StepDue in, one email out (or a suppression/failure event).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::{EmailFailed, EmailSent, EmailSuppressed, Tone};
use arflow_contracts::streams::{contact_channel_hold_key, contact_hold_key, invoice_hold_key};
use arflow_contracts::subjects::outreach;
use arflow_core::Channel;
use common::dkim::{TempDir, TestKey, assert_signed_for, assert_verified};
use common::{TestApp, WAIT, step};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn one_step_sends_one_explained_email() {
    // Signed (DKIM on for the firm's domain): the headers below are what signing leaves them.
    let keys = TempDir::new();
    let key = TestKey::ed25519(&keys.0, "acme.example", "arflow");
    let app = TestApp::spawn_with(|c| c.email.dkim = vec![key.settings.clone()]).await;
    let s = step(Tone::Firm, 12, true);
    let cause = app.publish_step(&s, 0).await;

    let mails = app.sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["jane.doe@client.example".to_string()]);
    assert_eq!(mail.from, "billing@acme.example");
    assert_eq!(mail.subject(), Some("Payment overdue: invoice INV-0042 (3,200.00 USD)"));
    assert_eq!(mail.step_id(), Some(s.step_id.to_string().as_str()));
    assert_eq!(mail.header("X-Arflow-Invoice"), Some(s.invoice_id.to_string().as_str()));
    assert_eq!(mail.header("From"), Some("\"Acme Accounting\" <billing@acme.example>"));
    let message_id = format!("<step-{}@acme.example>", s.step_id);
    assert_eq!(mail.header("Message-ID"), Some(message_id.as_str()));
    let token = arflow_runtime::signature::unsubscribe_token(common::UNSUB_SECRET, app.firm, s.contact.contact_id);
    let unsubscribe = format!("<http://127.0.0.1:8080/v1/unsubscribe/{token}>");
    assert_eq!(mail.list_unsubscribe(), Some(unsubscribe.as_str()));
    assert_eq!(mail.header("List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
    let text = mail.text();
    assert!(text.contains("Dear Jane Doe,"), "{text}");
    assert!(text.contains("3,200.00 USD"), "{text}");
    assert!(text.contains("March 5, 2026"), "{text}");
    assert!(text.contains("12 days overdue"), "{text}");
    assert!(text.contains("https://invoice.stripe.com/i/acct_1/test_YWNjdF8x"), "{text}");
    assert!(text.contains("Content-Type: text/html"), "{text}");
    assert_signed_for(&mail.data, "acme.example");
    assert_verified(&[&key], &[("sent", mail.data.as_slice())]);

    let sent = app.wait_events(outreach::EMAIL_SENT, 1, WAIT).await;
    assert_eq!(sent.len(), 1);
    let env = &sent[0];
    assert_eq!(env.firm_id, app.firm);
    assert_eq!(env.subject_id, s.invoice_id);
    assert_eq!(env.correlation_id, cause.correlation_id);
    assert_eq!(env.causation_id, Some(cause.id));
    let data: EmailSent = env.data_as().unwrap();
    assert_eq!(data.step_id, s.step_id);
    assert_eq!(data.contact_id, s.contact.contact_id);
    assert_eq!(data.explanation, s.explanation);
    assert_eq!(data.template, "firm");
    assert_eq!(data.template_version, 1);
    assert_eq!(data.message_id, message_id);
    assert_eq!(data.subject, "Payment overdue: invoice INV-0042 (3,200.00 USD)");
    assert!(data.body_text.contains("3,200.00 USD"));
    app.wait_state(s.step_id, "sent", WAIT).await;
}

/// Two firms sending from their own domains, each with its own key (RSA and ed25519): what the
/// SMTP server receives verifies with dkimpy, `d=` the From domain of each.
#[tokio::test]
async fn mail_of_two_firms_is_signed_for_each_from_domain() {
    let keys = TempDir::new();
    let acme = TestKey::rsa(&keys.0, "acme.example", "arflow2026");
    let bright = TestKey::ed25519(&keys.0, "brightpath.example", "ed1");
    let settings = vec![acme.settings.clone(), bright.settings.clone()];
    let app = TestApp::spawn_with(|c| {
        c.email.dkim = settings;
        c.email.unsubscribe_mailto = Some("unsubscribe@arflow.example.com".into());
        c.email.reply_domain = Some("in.arflow.example.com".into());
    })
    .await;
    let a = step(Tone::Firm, 12, true);
    let mut b = step(Tone::Final, 40, true);
    b.firm.name = "Bright Path Bookkeeping — Cobros Ñandú".into();
    b.firm.sender_email = "ar@brightpath.example".into();
    b.contact.name = "José Ñúñez-Øster".into();
    b.invoice.number = Some("RÉ-2026-000123/Überfällig-Zweite-Mahnung-Forderungsmanagement".into());
    app.publish_step(&a, 0).await;
    app.publish_step_for(uuid::Uuid::now_v7(), &b, 0).await;

    let mails = app.sink.wait_for(2, WAIT).await;
    let by_step = |id: uuid::Uuid| mails.iter().find(|m| m.step_id() == Some(id.to_string().as_str())).unwrap();
    let (mail_a, mail_b) = (by_step(a.step_id), by_step(b.step_id));
    assert_eq!(mail_b.from, "ar@brightpath.example");
    assert_signed_for(&mail_a.data, "acme.example");
    assert_signed_for(&mail_b.data, "brightpath.example");
    let verdicts = assert_verified(&[&acme, &bright], &[("acme", &mail_a.data), ("bright", &mail_b.data)]);
    assert!(verdicts[0].contains(" d=acme.example s=arflow2026 a=rsa-sha256 "), "{verdicts:?}");
    assert!(verdicts[1].contains(" d=brightpath.example s=ed1 a=ed25519-sha256 "), "{verdicts:?}");
    app.wait_state(b.step_id, "sent", WAIT).await;
}

#[tokio::test]
async fn the_same_step_three_times_is_one_email() {
    let app = TestApp::spawn().await;
    let s = step(Tone::Friendly, 3, true);
    for attempt in 0..3 {
        app.publish_step(&s, attempt).await;
    }
    app.wait_events(outreach::EMAIL_SENT, 1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.sink.count(), 1);
    assert_eq!(app.email_rows().await, 1);
    assert_eq!(app.events(outreach::EMAIL_SENT).await.len(), 1);
}

#[tokio::test]
async fn a_forced_nak_and_redelivery_is_one_email() {
    let app = TestApp::spawn().await;
    // The handler's insert fails while the table is away: the batch is NAKed and redelivered.
    sqlx::query("ALTER TABLE email.emails RENAME TO emails_away").execute(&app.pool).await.unwrap();
    let s = step(Tone::Friendly, 5, false);
    let env = app.publish_step(&s, 0).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(app.sink.count(), 0);
    sqlx::query("ALTER TABLE email.emails_away RENAME TO emails").execute(&app.pool).await.unwrap();
    app.wait_events(outreach::EMAIL_SENT, 1, WAIT).await;
    // The very same event delivered again (another msg id): the inbox absorbs it.
    app.publish_envelope(&env, "replayed").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.sink.count(), 1);
    assert_eq!(app.email_rows().await, 1);
    let info = app
        .bus
        .js
        .get_stream("OUTREACH")
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("email-steps")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.num_ack_pending, 0);
    // Two messages in the stream, more deliveries: the first one really was NAKed and redelivered.
    assert!(info.delivered.consumer_sequence > 2, "{:?}", info.delivered);
}

#[tokio::test]
async fn restarting_nats_mid_stream_still_sends_one_email_per_step() {
    let mut app = TestApp::spawn().await;
    let first: Vec<_> = (0..5).map(|i| step(Tone::Friendly, i + 1, true)).collect();
    let second: Vec<_> = (0..5).map(|i| step(Tone::Firm, i + 10, true)).collect();
    for s in &first {
        app.publish_step(s, 0).await;
    }
    app.nats.restart();
    // The test's own client reconnects too; publish again (and the first ones twice).
    for s in first.iter().chain(&second) {
        let mut tries = 0;
        loop {
            let env = arflow_contracts::Envelope::new(
                outreach::STEP_DUE_EMAIL,
                "scheduler",
                chrono::Utc::now(),
                app.firm,
                s.invoice_id,
                None,
                s.clone(),
            );
            let subject = arflow_contracts::subjects::subject(outreach::STEP_DUE_EMAIL, app.firm);
            match app.bus.publish_event(&subject, &format!("step:{}:due:after", s.step_id), &env).await {
                Ok(_) => break,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 100, "cannot publish after restart: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    app.wait_events(outreach::EMAIL_SENT, 10, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = app.sink.messages();
    assert_eq!(mails.len(), 10);
    let mut steps: Vec<String> = mails.iter().map(|m| m.step_id().unwrap().to_string()).collect();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), 10);
    assert_eq!(app.events(outreach::EMAIL_SENT).await.len(), 10);
    app.stop().await;
}

#[tokio::test]
async fn an_invoice_hold_before_the_step_suppresses_it() {
    let app = TestApp::spawn().await;
    let s = step(Tone::Firm, 20, true);
    app.bus.holds().hold(&invoice_hold_key(s.invoice_id), "paid", "stripe:evt_paid", chrono::Utc::now()).await.unwrap();
    app.publish_step(&s, 0).await;
    let events = app.wait_events(outreach::EMAIL_SUPPRESSED, 1, WAIT).await;
    let data: EmailSuppressed = events[0].data_as().unwrap();
    assert_eq!(data.step_id, s.step_id);
    assert_eq!(data.reason, "invoice_held");
    assert_eq!(data.hold["state"], "held");
    assert_eq!(data.hold["reason"], "paid");
    app.wait_state(s.step_id, "suppressed", WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sink.count(), 0);
    assert!(app.events(outreach::EMAIL_SENT).await.is_empty());
}

#[tokio::test]
async fn a_contact_hold_suppresses_the_email() {
    let app = TestApp::spawn().await;
    let s = step(Tone::Friendly, 2, true);
    app.bus
        .holds()
        .hold(&contact_hold_key(s.contact.contact_id), "opted_out", "reply:123", chrono::Utc::now())
        .await
        .unwrap();
    app.publish_step(&s, 0).await;
    let events = app.wait_events(outreach::EMAIL_SUPPRESSED, 1, WAIT).await;
    let data: EmailSuppressed = events[0].data_as().unwrap();
    assert_eq!(data.reason, "contact_held");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sink.count(), 0);
}

#[tokio::test]
async fn an_email_hold_on_the_contact_suppresses_the_email_and_a_voice_hold_does_not() {
    let app = TestApp::spawn().await;
    let held = step(Tone::Friendly, 2, true);
    let voice_only = step(Tone::Friendly, 2, true);
    let holds = app.bus.holds();
    let now = chrono::Utc::now();
    // A hard bounce or an email-only opt-out: the opt-out service holds `contact.<id>.email`.
    holds
        .hold(&contact_channel_hold_key(held.contact.contact_id, Channel::Email), "opted_out", "hard_bounce:1", now)
        .await
        .unwrap();
    holds
        .hold(&contact_channel_hold_key(voice_only.contact.contact_id, Channel::Voice), "opted_out", "firm_user:2", now)
        .await
        .unwrap();
    app.publish_step(&held, 0).await;
    app.publish_step(&voice_only, 0).await;
    app.wait_state(held.step_id, "suppressed", WAIT).await;
    app.wait_state(voice_only.step_id, "sent", WAIT).await;
    let events = app.wait_events(outreach::EMAIL_SUPPRESSED, 1, WAIT).await;
    assert_eq!(events[0].data["reason"], "contact_held");
    assert_eq!(app.sink.count(), 1);
}

#[tokio::test]
async fn a_temporary_smtp_failure_is_retried_and_sent() {
    let app = TestApp::spawn().await;
    app.sink.fail_next(2, false);
    let s = step(Tone::Friendly, 4, true);
    app.publish_step(&s, 0).await;
    let sent = app.wait_events(outreach::EMAIL_SENT, 1, WAIT).await;
    assert_eq!(app.sink.refused(), 2);
    assert_eq!(app.sink.count(), 1);
    let data: EmailSent = sent[0].data_as().unwrap();
    assert_eq!(data.step_id, s.step_id);
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM email.emails WHERE step_id = $1")
        .bind(s.step_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 3);
    assert!(app.events(outreach::EMAIL_FAILED).await.is_empty());
}

#[tokio::test]
async fn a_permanent_smtp_failure_fails_the_step() {
    let app = TestApp::spawn().await;
    app.sink.fail_next(1, true);
    let s = step(Tone::Final, 40, true);
    app.publish_step(&s, 0).await;
    let failed = app.wait_events(outreach::EMAIL_FAILED, 1, WAIT).await;
    let data: EmailFailed = failed[0].data_as().unwrap();
    assert_eq!(data.step_id, s.step_id);
    assert!(data.permanent);
    assert!(data.reason.contains("554"), "{}", data.reason);
    app.wait_state(s.step_id, "failed", WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sink.count(), 0);
    assert!(app.events(outreach::EMAIL_SENT).await.is_empty());
}

#[tokio::test]
async fn transient_failures_give_up_after_max_attempts() {
    let app = TestApp::spawn_with(|c| c.email.max_attempts = 2).await;
    app.sink.fail_next(5, false);
    let s = step(Tone::Friendly, 4, true);
    app.publish_step(&s, 0).await;
    let failed = app.wait_events(outreach::EMAIL_FAILED, 1, WAIT).await;
    let data: EmailFailed = failed[0].data_as().unwrap();
    assert!(!data.permanent);
    assert!(data.reason.starts_with("gave up after 2 attempts"), "{}", data.reason);
    assert_eq!(app.sink.refused(), 2);
}

#[tokio::test]
async fn each_tone_renders_its_own_content() {
    let app = TestApp::spawn().await;
    let friendly = step(Tone::Friendly, -3, false);
    let firm = step(Tone::Firm, 14, false);
    let last = step(Tone::Final, 30, false);
    for s in [&friendly, &firm, &last] {
        app.publish_step(s, 0).await;
    }
    let mails = app.sink.wait_for(3, WAIT).await;
    let by = |id: uuid::Uuid| mails.iter().find(|m| m.step_id() == Some(id.to_string().as_str())).unwrap();

    let m = by(friendly.step_id);
    assert_eq!(m.subject(), Some("Upcoming: invoice INV-0042 from Acme Accounting is due in 3 days"));
    let t = m.text();
    assert!(t.contains("Hi Jane Doe,") && t.contains("friendly reminder") && t.contains("Due in 3 days"), "{t}");
    // No pay link unless asked for in a friendly step.
    assert!(!t.contains("invoice.stripe.com"), "{t}");

    let m = by(firm.step_id);
    assert_eq!(m.subject(), Some("Payment overdue: invoice INV-0042 (3,200.00 USD)"));
    let t = m.text();
    assert!(t.contains("14 days overdue") && t.contains("invoice.stripe.com"), "{t}");

    let m = by(last.step_id);
    assert_eq!(m.subject(), Some("Final notice: invoice INV-0042 (3,200.00 USD) is 30 days overdue"));
    let t = m.text();
    assert!(t.contains("final notice") && t.contains("will follow up") && t.contains("invoice.stripe.com"), "{t}");
}

#[tokio::test]
async fn a_contact_without_email_fails_the_step_and_garbage_is_dead_lettered() {
    let app = TestApp::spawn().await;
    let mut s = step(Tone::Friendly, 1, false);
    s.contact.email = None;
    app.publish_step(&s, 0).await;
    let failed = app.wait_events(outreach::EMAIL_FAILED, 1, WAIT).await;
    let data: EmailFailed = failed[0].data_as().unwrap();
    assert!(data.permanent);
    assert!(data.reason.contains("no email address"), "{}", data.reason);
    // A StepDue whose data does not match the contract goes to dlq.email.
    let bad = arflow_contracts::Envelope::new(
        outreach::STEP_DUE_EMAIL,
        "scheduler",
        chrono::Utc::now(),
        app.firm,
        app.firm,
        None,
        serde_json::json!({"nope": 1}),
    );
    let subject = arflow_contracts::subjects::subject(outreach::STEP_DUE_EMAIL, app.firm);
    app.bus.publish_event(&subject, "garbage", &bad).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n = app.bus.js.get_stream("DLQ").await.unwrap().get_info().await.unwrap().state.messages;
        if n == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.sink.count(), 0);
}

#[tokio::test]
async fn an_email_caught_mid_hand_off_by_a_crash_is_marked_uncertain_not_resent() {
    let mut app = TestApp::spawn().await;
    let s = step(Tone::Friendly, 3, true);
    app.publish_step(&s, 0).await;
    app.wait_state(s.step_id, "sent", WAIT).await;
    app.stop().await;
    // A row left `sending` by a version without leases: no marks, so it may have gone out.
    sqlx::query(
        "UPDATE email.emails SET state = 'sending', owner = NULL, lease_until = NULL, handoff_at = NULL, \
         accepted_at = NULL WHERE step_id = $1",
    )
    .bind(s.step_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut c = common::config(&app.nats, &app.db, &app.sink);
    c.email.lease_secs = 3;
    app.start(c).await;
    app.wait_state(s.step_id, "uncertain", WAIT).await;
    let failed = app.wait_events(outreach::EMAIL_FAILED, 1, WAIT).await;
    let data: EmailFailed = failed[0].data_as().unwrap();
    assert_eq!(data.reason, arflow_email::sender::UNCERTAIN_REASON);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sink.count(), 1, "not resent");
    app.stop().await;
}

#[tokio::test]
async fn a_live_senders_rows_are_never_judged_and_an_expired_lease_is_judged_by_its_marks() {
    let mut app = TestApp::spawn_with(|c| c.email.lease_secs = 3).await;
    let steps: Vec<_> = (0..3).map(|i| step(Tone::Friendly, 3 + i, true)).collect();
    for s in &steps {
        app.publish_step(s, 0).await;
        app.wait_state(s.step_id, "sent", WAIT).await;
    }
    app.stop().await;
    // Another replica's rows, as a rolling deploy leaves them: `sending`, lease alive for 4 s.
    // One was accepted by SMTP, one had its body on the wire, one was never handed over.
    let marks = [
        "handoff_at = now(), accepted_at = now()",
        "handoff_at = now(), accepted_at = NULL",
        "handoff_at = NULL, accepted_at = NULL",
    ];
    for (s, mark) in steps.iter().zip(marks) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE email.emails SET state = 'sending', owner = 'other-replica', \
             lease_until = now() + interval '4 seconds', {mark} WHERE step_id = $1"
        )))
        .bind(s.step_id)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let mut c = common::config(&app.nats, &app.db, &app.sink);
    c.email.lease_secs = 3;
    app.start(c).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in &steps {
        assert_eq!(app.state(s.step_id).await.as_deref(), Some("sending"), "a live sender's row was judged");
    }
    app.wait_state(steps[0].step_id, "sent", WAIT).await;
    app.wait_state(steps[1].step_id, "uncertain", WAIT).await;
    // Never handed over: pending again and sent once more (the sink already has the first copy
    // from before, which this test planted; the point is that it was requeued, not judged).
    app.wait_state(steps[2].step_id, "sent", WAIT).await;
    app.stop().await;
}

#[tokio::test]
async fn after_a_crash_mid_batch_only_the_bodies_on_the_wire_are_uncertain_and_the_rest_go_out_once() {
    const STEPS: usize = 40;
    let pool_size = 2;
    let mut app = TestApp::spawn_with(|c| {
        c.email.lease_secs = 3;
        c.smtp.pool_size = pool_size;
    })
    .await;
    // A slow server: each body waits 100 ms for its answer, so the crash lands mid-batch.
    app.sink.answer_after(Duration::from_millis(100));
    let steps: Vec<_> = (0..STEPS).map(|i| step(Tone::Friendly, 3 + i as i64, true)).collect();
    for s in &steps {
        app.publish_step(s, 0).await;
    }
    app.sink.wait_for(6, WAIT).await;
    // kill -9 of the process, in-process: every task of the service is dropped where it stands.
    app.handle.take().unwrap().abort();
    let at_crash = app.sink.count();
    assert!(at_crash < STEPS, "the crash came too late to test anything ({at_crash} sent)");
    app.sink.answer_after(Duration::ZERO);
    let c = common::config(&app.nats, &app.db, &app.sink);
    let mut c = c;
    c.email.lease_secs = 3;
    app.start(c).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut sent, mut uncertain) = (0, 0);
    while std::time::Instant::now() < deadline {
        let counts: Vec<(String, i64)> = sqlx::query_as("SELECT state, count(*) FROM email.emails GROUP BY state")
            .fetch_all(&app.pool)
            .await
            .unwrap();
        let get = |s: &str| counts.iter().find(|(k, _)| k == s).map(|(_, n)| *n).unwrap_or(0);
        (sent, uncertain) = (get("sent"), get("uncertain"));
        if sent + uncertain == STEPS as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent + uncertain, STEPS as i64, "every step settled: {sent} sent, {uncertain} uncertain");
    assert!(uncertain <= i64::from(pool_size), "{uncertain} uncertain with {pool_size} connections open");
    let mut per_step = std::collections::HashMap::<String, usize>::new();
    for m in app.sink.messages() {
        *per_step.entry(m.step_id().unwrap_or_default().to_string()).or_default() += 1;
    }
    assert!(per_step.values().all(|n| *n == 1), "an email was sent twice: {per_step:?}");
    let received = per_step.len() as i64;
    assert!(
        received >= sent && received <= sent + uncertain,
        "{received} received, {sent} sent, {uncertain} uncertain"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_whose_answer_never_comes_is_uncertain_and_never_sent_again() {
    let app = TestApp::spawn_with(|c| c.smtp.timeout_secs = 1).await;
    // The server takes the body but answers after the client gave up: it may have the message.
    app.sink.answer_after(Duration::from_secs(3));
    let s = step(Tone::Friendly, 3, true);
    app.publish_step(&s, 0).await;
    app.wait_state(s.step_id, "uncertain", WAIT).await;
    app.sink.answer_after(Duration::ZERO);
    let failed = app.wait_events(outreach::EMAIL_FAILED, 1, WAIT).await;
    let data: EmailFailed = failed[0].data_as().unwrap();
    assert!(data.reason.starts_with(arflow_email::sender::UNCERTAIN_REASON), "{}", data.reason);
    assert!(!data.permanent);
    // The server did get it: exactly one copy, and no retry follows.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.sink.count(), 1, "not retried after the body");
    assert_eq!(app.state(s.step_id).await.as_deref(), Some("uncertain"));
}

#[tokio::test]
async fn a_server_that_never_greets_times_out_and_the_email_waits_for_a_retry() {
    // Accepts connections and says nothing: without a timeout the sender would hang forever.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in silent.incoming().flatten() {
            open.push(conn);
        }
    });
    let app = TestApp::spawn_with(|c| {
        c.smtp.port = port;
        c.smtp.timeout_secs = 1;
    })
    .await;
    let s = step(Tone::Friendly, 3, true);
    app.publish_step(&s, 0).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let row: Option<(String, Option<String>, i32)> =
            sqlx::query_as("SELECT state, last_error, attempts FROM email.emails WHERE step_id = $1")
                .bind(s.step_id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some((state, Some(error), attempts)) = &row
            && state == "pending"
            && *attempts >= 1
        {
            assert!(error.contains("timed out"), "{error}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no timeout seen: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn uncertain_emails_are_listed_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let steps: Vec<_> = (0..3).map(|i| step(Tone::Friendly, 3 + i, true)).collect();
    for s in &steps {
        app.publish_step(s, 0).await;
        app.wait_state(s.step_id, "sent", WAIT).await;
    }
    // As the lease judge leaves emails whose body was on the wire when their sender died.
    sqlx::query("UPDATE email.emails SET state = 'uncertain'").execute(&app.pool).await.unwrap();
    let (status, all) = app.api_as(app.firm, "/v1/emails/uncertain").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    assert!(all.get("next_cursor").is_some_and(serde_json::Value::is_null), "{all}");
    let (_, first) = app.api_as(app.firm, "/v1/emails/uncertain?limit=2").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a cursor to the next page");
    let (_, rest) = app.api_as(app.firm, &format!("/v1/emails/uncertain?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let paged: Vec<_> = first["data"].as_array().unwrap().iter().chain(rest["data"].as_array().unwrap()).collect();
    assert_eq!(paged, all["data"].as_array().unwrap().iter().collect::<Vec<_>>(), "newest first, nothing twice");
    let (status, theirs) = app.api_as(Uuid::now_v7(), "/v1/emails/uncertain").await;
    assert_eq!((status, theirs["data"].as_array().unwrap().len()), (200, 0));
    let (status, _) = app.api_as(app.firm, "/v1/emails/uncertain?limit=500").await;
    assert_eq!(status, 422);
}
