//! Inbound mail in the email service: `reply.received` in (the raw bytes in the object store,
//! as the gateway leaves them), matched, classified and acted on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::{ReplyReceived, Tone};
use arflow_contracts::streams::contact_hold_key;
use arflow_contracts::subjects::{outreach, reply, subject};
use arflow_contracts::{Envelope, envelope::RawEnvelope, msg_id};
use arflow_core::Channel;
use common::{TestApp, WAIT, step};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// Does what the gateway does with a posted message: bytes to the object store, then the event.
async fn receive(app: &TestApp, raw: &[u8]) -> Uuid {
    let sha = hex::encode(Sha256::digest(raw));
    let object = format!("{}/{sha}", app.firm);
    app.bus.put_inbound(&object, raw).await.unwrap();
    let reply_id = Uuid::now_v7();
    let data = ReplyReceived {
        reply_id,
        channel: Channel::Email,
        object,
        sha256: sha.clone(),
        size: raw.len() as u64,
        received_at: chrono::Utc::now(),
    };
    let env = Envelope::new(reply::RECEIVED, "gateway", chrono::Utc::now(), app.firm, reply_id, None, data);
    app.bus.publish_event(&subject(reply::RECEIVED, app.firm), &msg_id::inbound(app.firm, &sha), &env).await.unwrap();
    reply_id
}

async fn classified(app: &TestApp, n: usize) -> Vec<RawEnvelope> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let stream = app.bus.js.get_stream("REPLY").await.unwrap();
        let state = stream.get_info().await.unwrap().state;
        let mut out = vec![];
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await
                && m.subject.starts_with("reply.classified.")
            {
                out.push(RawEnvelope::parse(&m.payload).unwrap());
            }
        }
        if out.len() >= n {
            return out;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {n} replies classified", out.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn held(app: &TestApp, contact: Uuid) -> bool {
    let hold = app.bus.holds().get(&contact_hold_key(contact)).await.unwrap();
    matches!(hold, Some((arflow_bus::HoldValue::Held { .. }, _)))
}

async fn consent_events(app: &TestApp) -> u64 {
    app.bus.js.get_stream("CONSENT").await.unwrap().get_info().await.unwrap().state.messages
}

async fn dead_letters(app: &TestApp) -> u64 {
    app.bus.js.get_stream("DLQ").await.unwrap().get_info().await.unwrap().state.messages
}

#[tokio::test]
async fn complaints_auto_replies_unmatched_mail_and_garbage_each_get_their_treatment() {
    let app = TestApp::spawn_with(|c| c.email.reply_domain = Some("in.acme.example".into())).await;
    let s = step(Tone::Friendly, 3, true);
    app.publish_step(&s, 0).await;
    let mails = app.sink.wait_for(1, WAIT).await;
    let message_id = mails[0].header("Message-ID").unwrap().to_string();
    let reply_to = mails[0].header("Reply-To").unwrap().to_string();
    let token = reply_to.split("reply+").nth(1).unwrap().split('@').next().unwrap().to_string();
    assert_eq!(token.len(), 16);

    // An out-of-office: recognised, nothing else happens.
    let ooo = format!(
        "From: <jane.doe@client.example>\r\nTo: <reply+{token}@in.acme.example>\r\nSubject: Automatic reply: Reminder\r\n\
         Auto-Submitted: auto-replied\r\nIn-Reply-To: {message_id}\r\nDate: Mon, 09 Mar 2026 10:00:00 +0000\r\n\r\n\
         I am out of the office until Monday.\r\n"
    );
    receive(&app, ooo.as_bytes()).await;
    let r = classified(&app, 1).await;
    assert_eq!(r[0].data["kind"], "auto_reply");
    assert_eq!(r[0].data["matched_by"], "reply_token");
    assert!(!held(&app, s.contact.contact_id).await, "an auto-reply holds nobody");

    // Mail that answers nothing we sent: classified, kept, no action on anyone.
    let stray =
        b"From: <someone@else.example>\r\nTo: <ar@acme.example>\r\nSubject: hello\r\n\r\nPlease unsubscribe me.\r\n";
    receive(&app, stray).await;
    let r = classified(&app, 2).await;
    assert!(r[1].data["invoice_id"].is_null());
    assert!(r[1].data["action"].as_str().unwrap().starts_with("unmatched"), "{}", r[1].data);

    // A spam complaint (ARF) about our reminder: the contact is held on every channel.
    let arf = format!(
        "From: <fbl@isp.example>\r\nTo: <abuse@acme.example>\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\r\n\
         --arf\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\
         --arf\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: isp/1.0\r\nVersion: 1\r\n\r\n\
         --arf\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: billing@acme.example\r\nTo: jane.doe@client.example\r\n\
         Message-ID: {message_id}\r\nSubject: Reminder\r\n\r\n--arf--\r\n"
    );
    receive(&app, arf.as_bytes()).await;
    let r = classified(&app, 3).await;
    assert_eq!(r[2].data["kind"], "complaint");
    assert_eq!(r[2].data["matched_by"], "in_reply_to");
    assert!(held(&app, s.contact.contact_id).await, "a complaint holds the contact");
    assert_eq!(r[2].data["contact_id"], s.contact.contact_id.to_string());
    assert_eq!(consent_events(&app).await, 0, "consent events are the opt-out service's");

    // Bytes that are not a message at all: dead-lettered with the reason, nothing lost silently.
    receive(&app, b"\x00\x01\x02 not an email").await;
    let deadline = std::time::Instant::now() + WAIT;
    while dead_letters(&app).await == 0 {
        assert!(std::time::Instant::now() < deadline, "garbage was not dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // After the complaint the contact gets nothing more, even for a new step.
    let mut next = step(Tone::Firm, 7, true);
    next.contact = s.contact.clone();
    next.invoice_id = s.invoice_id;
    app.publish_step(&next, 0).await;
    app.wait_state(next.step_id, "suppressed", WAIT).await;
    let suppressed = app.wait_events(outreach::EMAIL_SUPPRESSED, 1, WAIT).await;
    assert_eq!(suppressed[0].data["reason"], "contact_held");
    assert_eq!(app.sink.count(), 1);
}

#[tokio::test]
async fn a_soft_bounce_is_reported_and_a_hard_one_stops_mail_to_the_address() {
    let app = TestApp::spawn().await;
    let s = step(Tone::Friendly, 3, true);
    app.publish_step(&s, 0).await;
    let mails = app.sink.wait_for(1, WAIT).await;
    let message_id = mails[0].header("Message-ID").unwrap().to_string();
    let dsn = |status: &str, action: &str| {
        format!(
            "From: MAILER-DAEMON@mx.client.example\r\nTo: billing@acme.example\r\nSubject: Delivery Status Notification\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nDelivery problem.\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.example\r\n\r\n\
             Final-Recipient: rfc822; jane.doe@client.example\r\nAction: {action}\r\nStatus: {status}\r\n\r\n\
             --b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\nSubject: Reminder\r\n\r\n--b--\r\n"
        )
    };
    receive(&app, dsn("4.2.2", "delayed").as_bytes()).await;
    let bounced = app.wait_events(outreach::EMAIL_BOUNCED, 1, WAIT).await;
    assert_eq!(bounced[0].data["bounce"]["hard"], false);
    // A soft bounce changes nothing: the next step still goes out.
    let mut second = step(Tone::Friendly, 5, true);
    second.contact = s.contact.clone();
    app.publish_step(&second, 0).await;
    app.wait_state(second.step_id, "sent", WAIT).await;

    receive(&app, dsn("5.1.1", "failed").as_bytes()).await;
    let bounced = app.wait_events(outreach::EMAIL_BOUNCED, 2, WAIT).await;
    assert_eq!(bounced[1].data["bounce"]["hard"], true);
    // The opt-out service turns this into consent (email channel): it needs the contact and the bounce.
    let r = classified(&app, 2).await;
    let hard = r.iter().find(|c| c.data["bounce"]["hard"] == true).unwrap();
    assert_eq!(hard.data["kind"], "bounce");
    assert_eq!(hard.data["bounce"]["status"], "5.1.1");
    assert_eq!(hard.data["contact_id"], s.contact.contact_id.to_string());
    assert_eq!(consent_events(&app).await, 0, "consent events are the opt-out service's");
    // The email service's own copy stops the next send to that address before SMTP.
    let mut third = step(Tone::Firm, 9, true);
    third.contact = s.contact.clone();
    app.publish_step(&third, 0).await;
    app.wait_state(third.step_id, "suppressed", WAIT).await;
    assert_eq!(app.sink.count(), 2);
}

#[tokio::test]
async fn the_assist_is_asked_only_when_no_rule_is_sure() {
    // A local OpenAI-compatible endpoint that always answers "question".
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let router = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::Json(serde_json::json!({"choices": [{"message": {"role": "assistant",
                    "content": "{\"intent\": \"question\", \"promised_date\": null}"}}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let app = TestApp::spawn_with(|c| {
        c.email.assist = Some(arflow_email::config::AssistSettings {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            model: "test-model".into(),
            api_key: Some("sk-test".to_string().into()),
            timeout_ms: 2_000,
        })
    })
    .await;
    let s = step(Tone::Friendly, 3, true);
    app.publish_step(&s, 0).await;
    let mails = app.sink.wait_for(1, WAIT).await;
    let message_id = mails[0].header("Message-ID").unwrap().to_string();
    let mail = |said: &str| {
        format!(
            "From: <jane.doe@client.example>\r\nTo: <billing@acme.example>\r\nSubject: Re: Reminder\r\n\
             In-Reply-To: {message_id}\r\nMessage-ID: <{}@client.example>\r\n\r\n{said}\r\n",
            Uuid::now_v7()
        )
    };
    // The rules are sure of an opt-out: the assist is not asked.
    receive(&app, mail("Please stop emailing me.").as_bytes()).await;
    let r = classified(&app, 1).await;
    assert_eq!(r[0].data["intent"], "opt_out");
    assert_eq!(r[0].data["needs_review"].as_bool(), Some(false));
    assert!(r[0].data["confidence"].as_f64().is_some_and(|c| c > 0.9), "{}", r[0].data);
    assert_eq!(r[0].data["scores"][0]["intent"], "opt_out", "{}", r[0].data);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Nothing a rule recognises: the assist decides, and says so in the evidence.
    let unclear = "Well, we will see about that.";
    let c =
        arflow_replies::classify(arflow_replies::Source::Email, unclear, arflow_replies::Date::constant(2026, 3, 4));
    assert!(c.needs_review, "the classifier is sure of {unclear:?} now: pick another unclear reply for this test");
    receive(&app, mail(unclear).as_bytes()).await;
    let r = classified(&app, 2).await;
    assert_eq!(r[1].data["intent"], "question", "{}", r[1].data);
    assert_eq!(r[1].data["evidence"], "llm:test-model");
    assert_eq!(r[1].data["sure"], false);
    // The assist's guess is for the reviewer: the reply still waits for a person.
    assert_eq!(r[1].data["needs_review"], true, "{}", r[1].data);
    assert!(r[1].data["labelled_by"].is_null());
    assert!(r[1].data["action"].as_str().unwrap().contains("until a person labels it"), "{}", r[1].data);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}
