//! Calls end to end: the step consumer, the fences, the provider's REST API (a fake speaking
//! Twilio's contract), the callbacks of each scripted client, and what gets published.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::Tone;
use arflow_contracts::streams::{contact_hold_key, invoice_hold_key};
use arflow_contracts::subjects::{outreach, reply};
use chrono::{Duration, TimeZone, Utc};
use common::*;
use uuid::Uuid;

#[tokio::test]
async fn a_voice_step_places_exactly_one_call_even_when_redelivered() {
    let app = TestApp::spawn().await;
    let step = voice_step(Tone::Firm);
    let env = app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    // The same event again (another msg id gets past NATS dedupe), and the step again as a new event.
    app.publish_envelope(&env, 2).await;
    app.publish_step(&step, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let calls = app.provider.calls();
    assert_eq!(calls.len(), 1, "exactly one call per step");
    let c = &calls[0];
    assert_eq!(c.account, ACCOUNT);
    assert!(c.authorization.starts_with("Basic "));
    assert_eq!(c.get("To"), Some("+14155552671"));
    assert_eq!(c.get("From"), Some("+12025550100"));
    assert_eq!(
        c.get("Url"),
        Some(format!("https://gateway.example/webhooks/telephony/voice/{call_id}/answer").as_str())
    );
    assert_eq!(
        c.get("StatusCallback"),
        Some(format!("https://gateway.example/webhooks/telephony/voice/{call_id}/status").as_str())
    );
    assert_eq!(c.all("StatusCallbackEvent"), ["initiated", "ringing", "answered", "completed"]);
    assert_eq!(c.get("MachineDetection"), Some("DetectMessageEnd"));
    assert_eq!(c.get("Record"), Some("true"));
    assert_eq!(c.get("Timeout"), Some("25"));
    let rows: (i64,) = sqlx::query_as("SELECT count(*) FROM voice.calls").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows.0, 1);
}

#[tokio::test]
async fn a_held_contact_or_invoice_is_skipped_and_nothing_is_dialled() {
    let app = TestApp::spawn().await;
    let by_contact = voice_step(Tone::Friendly);
    app.hold(&contact_hold_key(by_contact.contact.contact_id)).await;
    let by_invoice = voice_step(Tone::Friendly);
    app.hold(&invoice_hold_key(by_invoice.invoice_id)).await;
    app.publish_step(&by_contact, 1).await;
    app.publish_step(&by_invoice, 1).await;
    let s1 = app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", by_contact.step_id).await;
    let s2 = app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", by_invoice.step_id).await;
    assert_eq!(s1["reason"], "contact_held");
    assert_eq!(s2["reason"], "invoice_held");
    assert_eq!(s1["channel"], "voice");
    assert!(app.provider.calls().is_empty());
}

#[tokio::test]
async fn consent_and_phone_are_checked_before_dialling() {
    let app = TestApp::spawn().await;
    let mut no_consent = voice_step(Tone::Friendly);
    no_consent.contact.channels = vec![arflow_core::Channel::Email];
    let mut no_phone = voice_step(Tone::Friendly);
    no_phone.contact.phone = Some("555-0100".into());
    app.publish_step(&no_consent, 1).await;
    app.publish_step(&no_phone, 1).await;
    assert_eq!(
        app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", no_consent.step_id).await["reason"],
        "no_consent"
    );
    assert_eq!(app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", no_phone.step_id).await["reason"], "no_phone");
    assert!(app.provider.calls().is_empty());
}

#[tokio::test]
async fn outside_the_window_the_call_waits_until_the_clock_moves_into_it() {
    // 02:00 UTC Tuesday = 22:00 Monday in New York: closed until 08:00 local (12:00 UTC).
    let night = Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).unwrap();
    let app = TestApp::spawn_at(night).await;
    let step = voice_step(Tone::Friendly);
    app.publish_step(&step, 1).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let row: Option<(chrono::DateTime<Utc>,)> = sqlx::query_as(
            "SELECT not_before FROM voice.calls WHERE step_id = $1 AND jsonb_array_length(fence_log) > 0",
        )
        .bind(step.step_id)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some((nb,)) = row {
            assert_eq!(nb, Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the call never waited for the window");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.set_clock(Utc.with_ymd_and_hms(2026, 3, 10, 11, 59, 0).unwrap()).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.provider.calls().is_empty(), "07:59 local is still outside");
    app.set_clock(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 30).unwrap()).await;
    app.wait_call_state(step.step_id, "placed").await;
    assert_eq!(app.provider.calls().len(), 1);
    let (_, view) = app.api(&format!("/v1/calls?invoice_id={}", step.invoice_id)).await;
    assert_eq!(view["data"][0]["fences"][0]["fence"], "window");
    assert!(app.events(outreach::VOICE_SKIPPED).await.is_empty());
}

#[tokio::test]
async fn an_unknown_zone_is_skipped_as_timezone_unknown() {
    let app = TestApp::spawn().await;
    let mut step = voice_step(Tone::Friendly);
    step.contact.call_timezone = None;
    let mut bad = voice_step(Tone::Friendly);
    bad.contact.call_timezone = Some("Mars/Olympus".into());
    app.publish_step(&step, 1).await;
    app.publish_step(&bad, 1).await;
    assert_eq!(
        app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", step.step_id).await["reason"],
        "timezone_unknown"
    );
    assert_eq!(app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", bad.step_id).await["reason"], "timezone_unknown");
    assert!(app.provider.calls().is_empty());
}

#[tokio::test]
async fn the_eighth_attempt_in_seven_days_hits_the_cap() {
    let app = TestApp::spawn().await;
    let step = voice_step(Tone::Firm);
    let now = tuesday_afternoon();
    // Seven earlier calls of this invoice in the last seven days (one per day, any outcome).
    for i in 0..7 {
        let mut earlier = voice_step(Tone::Firm);
        earlier.invoice_id = step.invoice_id;
        sqlx::query(
            "INSERT INTO voice.calls (id, step_id, firm_id, invoice_id, contact_id, client_id, step, attempt, step_due, \
             cause_event_id, correlation_id, to_number, state, not_before, placed_at, outcome, script) \
             VALUES ($1, $2, $3, $4, $5, $6, 'overdue_21', 1, $7, $1, $1, '+14155552671', 'ended', $8, $8, 'no_answer', 'call-firm@1')",
        )
        .bind(Uuid::now_v7())
        .bind(earlier.step_id)
        .bind(app.firm)
        .bind(step.invoice_id)
        .bind(step.contact.contact_id)
        .bind(step.client.client_id)
        .bind(sqlx::types::Json(&earlier))
        .bind(now - Duration::hours(20 * i + 1))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    app.publish_step(&step, 1).await;
    let skipped = app.wait_event_for(outreach::VOICE_SKIPPED, "step_id", step.step_id).await;
    assert_eq!(skipped["reason"], "attempt_cap");
    assert!(app.provider.calls().is_empty());
}

#[tokio::test]
async fn a_refused_number_ends_the_call_as_failed() {
    let app = TestApp::spawn().await;
    let step = common::step(arflow_core::Channel::Voice, Tone::Firm, REFUSED_NUMBER);
    app.publish_step(&step, 1).await;
    let ended = app.wait_event_for(outreach::VOICE_FAILED, "step_id", step.step_id).await;
    assert_eq!(ended["outcome"], "failed");
    assert!(ended["detail"].as_str().unwrap().contains("permanent"), "{ended}");
    assert!(ended["detail"].as_str().unwrap().contains("21211"), "{ended}");
    assert!(!ended.to_string().contains(AUTH_TOKEN));
}

/// A persona: what the machine detection says, what the client says, and what must follow.
struct Persona {
    name: &'static str,
    answered_by: &'static str,
    lines: &'static [&'static str],
    final_status: &'static str,
    outcome: &'static str,
    intent: Option<&'static str>,
    said: &'static str,
}

const PERSONAS: &[Persona] = &[
    Persona {
        name: "promise",
        answered_by: "human",
        lines: &["I will pay on Friday"],
        final_status: "completed",
        outcome: "completed",
        intent: Some("promise_to_pay"),
        said: "I have noted that you will pay by Friday 13 March",
    },
    Persona {
        name: "dispute",
        answered_by: "human",
        lines: &["We never received those goods, we dispute this invoice"],
        final_status: "completed",
        outcome: "completed",
        intent: Some("dispute"),
        said: "Someone from Acme Accounting will follow up",
    },
    Persona {
        name: "stop calling",
        answered_by: "human",
        lines: &["Stop calling me"],
        final_status: "completed",
        outcome: "completed",
        intent: Some("opt_out"),
        said: "You will receive no more calls",
    },
    Persona {
        name: "person",
        answered_by: "human",
        lines: &["Can I speak to a real person about this?"],
        final_status: "completed",
        outcome: "completed",
        intent: Some("question"),
        said: "Someone from Acme Accounting will follow up",
    },
    Persona {
        name: "spanish",
        answered_by: "human",
        lines: &["Pagaré la factura el viernes, gracias"],
        final_status: "completed",
        outcome: "completed",
        intent: Some("promise_to_pay"),
        said: "language=\"es-US\"",
    },
    Persona {
        name: "voicemail",
        answered_by: "machine_end_beep",
        lines: &[],
        final_status: "completed",
        outcome: "voicemail",
        intent: None,
        said: "Please call us back or check your email",
    },
];

#[tokio::test]
async fn each_persona_leads_to_its_outcome_and_intent() {
    let app = TestApp::spawn().await;
    for p in PERSONAS {
        let step = voice_step(Tone::Firm);
        app.publish_step(&step, 1).await;
        let call_id = app.wait_call_state(step.step_id, "placed").await;
        let twiml = app.converse(call_id, p.answered_by, p.lines).await;
        let all = twiml.join("\n");
        assert!(all.contains(p.said), "{}: {all}", p.name);
        let kind = match p.outcome {
            "completed" => outreach::VOICE_COMPLETED,
            "voicemail" => outreach::VOICE_VOICEMAIL,
            _ => unreachable!(),
        };
        let ended = app.wait_event_for(kind, "call_id", call_id).await;
        assert_eq!(ended["outcome"], p.outcome, "{}", p.name);
        assert_eq!(ended["provider_status"], p.final_status);
        assert_eq!(ended["script"], "call-firm@1");
        match p.intent {
            Some(intent) => {
                let classified = app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
                assert_eq!(classified["intent"], intent, "{}: {classified}", p.name);
                assert_eq!(classified["channel"], "voice");
                assert_eq!(classified["matched_by"], "call");
                assert_eq!(classified["from"], "+14155552671");
                assert_eq!(ended["intents"][0], intent, "{}", p.name);
                assert!(ended["transcript"].as_array().unwrap().len() >= 3, "{}: {ended}", p.name);
            }
            None => {
                // The voicemail never says the amount or the invoice.
                assert!(!all.contains("3,200") && !all.contains("INV-0042"), "{all}");
                assert!(app.events_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await.is_empty());
            }
        }
        if p.name == "promise" {
            assert_eq!(ended["promised_date"], "2026-03-13");
            assert_eq!(ended["detail"], "promise to pay on 2026-03-13 confirmed");
        }
        if p.name == "stop calling" {
            assert!(app.is_held(&contact_hold_key(step.contact.contact_id)).await, "stop calling holds the contact");
        } else {
            assert!(!app.is_held(&contact_hold_key(step.contact.contact_id)).await);
        }
        if p.name == "spanish" {
            assert!(all.contains("viernes 13 de marzo"), "{all}");
        }
    }
}

#[tokio::test]
async fn no_answer_busy_and_a_silent_client() {
    let app = TestApp::spawn().await;
    for (status, detail) in [("no-answer", "no answer"), ("busy", "busy")] {
        let step = voice_step(Tone::Friendly);
        app.publish_step(&step, 1).await;
        let call_id = app.wait_call_state(step.step_id, "placed").await;
        app.status(call_id, "CA1", "initiated", None, None).await;
        app.status(call_id, "CA1", "ringing", None, None).await;
        app.status(call_id, "CA1", status, None, Some("0")).await;
        // A repeated final status publishes nothing more.
        app.status(call_id, "CA1", status, None, Some("0")).await;
        let ended = app.wait_event_for(outreach::VOICE_NO_ANSWER, "call_id", call_id).await;
        assert_eq!(ended["detail"], detail);
        assert_eq!(ended["provider_status"], status);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(app.events_for(outreach::VOICE_NO_ANSWER, "call_id", call_id).await.len(), 1);
    }
    // Silence three times: asked again up to max_turns, then closed politely.
    let step = voice_step(Tone::Friendly);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    let twiml = app.converse(call_id, "human", &["", "", "", ""]).await;
    assert_eq!(twiml.len(), 4, "answer + three turns");
    assert!(twiml[1].contains("gather?turn=2") && twiml[2].contains("gather?turn=3"), "{twiml:?}");
    assert!(twiml[3].contains("will follow up with you by email") && !twiml[3].contains("<Gather"));
    let ended = app.wait_event_for(outreach::VOICE_COMPLETED, "call_id", call_id).await;
    assert_eq!(ended["detail"], "answered; the client said nothing");
}

/// What a caller says that the classifier is not confident of (checked, so a new classifier that
/// understands one of them says so here rather than failing somewhere else).
const UNCLEAR: [&str; 3] = ["yeah well", "sorry, my wife deals with the post", "the thing from last week?"];

fn assert_unclear(lines: &[&str]) {
    let day = arflow_replies::Date::new(2026, 3, 10).unwrap();
    for line in lines {
        let c = arflow_replies::classify(arflow_replies::Source::Voice, line, day);
        assert!(
            c.needs_review && c.intent != arflow_replies::Intent::OptOut,
            "the classifier is now sure of {line:?} ({c:?}): pick an answer it does not understand for this test"
        );
    }
}

#[tokio::test]
async fn a_caller_still_unclear_after_three_turns_goes_to_a_person() {
    assert_unclear(&UNCLEAR);
    let app = TestApp::spawn().await;
    let step = voice_step(Tone::Friendly);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    let twiml = app.converse(call_id, "human", &UNCLEAR).await;
    // Nothing acted on: asked again twice, then closed politely (no "someone will follow up" for
    // the guessed question, no hang-up after the first turn).
    assert_eq!(twiml.len(), 4, "answer + three turns: {twiml:?}");
    assert!(twiml[1].contains("gather?turn=2") && twiml[2].contains("gather?turn=3"), "{twiml:?}");
    assert!(twiml[3].contains("will follow up with you by email") && !twiml[3].contains("<Gather"));
    let ended = app.wait_event_for(outreach::VOICE_COMPLETED, "call_id", call_id).await;
    assert_eq!(ended["detail"], "the client's answer was not understood with confidence; a person will review it");
    assert_eq!(ended["intents"], serde_json::json!([]), "no intent is claimed for what was not understood");
    // One reply for the whole call, flagged for review, with every unclear answer in order.
    app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let replies = app.events_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    let r = &replies[0];
    assert_eq!(r["needs_review"], true, "{r}");
    assert_eq!(r["sure"], false);
    assert_eq!(r["channel"], "voice");
    assert_eq!(r["client_text"], UNCLEAR.join("\n"));
    assert!(r["labelled_by"].is_null());
    assert!(r["action"].as_str().unwrap().contains("a person labels it"), "{r}");
    let day = arflow_replies::Date::new(2026, 3, 10).unwrap();
    let last = arflow_replies::classify(arflow_replies::Source::Voice, UNCLEAR[2], day);
    assert_eq!(r["scores"].as_array().unwrap().len(), last.scores.len(), "{r}");
    assert!(!app.is_held(&contact_hold_key(step.contact.contact_id)).await);
    // The transcript keeps what was said, without an intent for it.
    let (_, view) = app.api(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(view["transcript"][1]["text"], UNCLEAR[0]);
    assert!(view["transcript"][1]["intent"].is_null(), "{view}");
}

#[tokio::test]
async fn an_unclear_answer_followed_by_a_clear_one_is_acted_on_and_a_hang_up_still_goes_to_a_person() {
    assert_unclear(&UNCLEAR[..1]);
    let app = TestApp::spawn().await;
    // Unclear, then a promise: the promise is what counts, and no review.
    let step = voice_step(Tone::Friendly);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    app.converse(call_id, "human", &[UNCLEAR[0], "I will pay on Friday"]).await;
    let ended = app.wait_event_for(outreach::VOICE_COMPLETED, "call_id", call_id).await;
    assert_eq!(ended["detail"], "promise to pay on 2026-03-13 confirmed");
    let replies = app.events_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        (replies[0]["intent"].as_str(), replies[0]["needs_review"].as_bool()),
        (Some("promise_to_pay"), Some(false))
    );

    // Unclear, then the caller hangs up: the call's end sends it to a person, once.
    let step = voice_step(Tone::Friendly);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    app.converse(call_id, "human", &UNCLEAR[..1]).await;
    app.wait_event_for(outreach::VOICE_COMPLETED, "call_id", call_id).await;
    let r = app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    assert_eq!((r["needs_review"].as_bool(), r["client_text"].as_str()), (Some(true), Some(UNCLEAR[0])), "{r}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.events_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await.len(), 1);
}

#[tokio::test]
async fn a_late_recording_is_stored_and_shown_by_the_api() {
    let app = TestApp::spawn().await;
    let step = voice_step(Tone::Friendly);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    app.converse(call_id, "human", &["I will pay on Friday"]).await;
    app.wait_event_for(outreach::VOICE_COMPLETED, "call_id", call_id).await;
    let url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE123";
    let (s, _) = app
        .callback(
            &format!("voice/{call_id}/recording"),
            &[("CallSid", "CA1"), ("RecordingSid", "RE123"), ("RecordingUrl", url), ("RecordingStatus", "completed")],
        )
        .await;
    assert_eq!(s, 204);
    let (s, view) = app.api(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["recording_url"], url);
    assert_eq!(view["outcome"], "completed");
    assert_eq!(view["transcript"][1]["speaker"], "client");
    assert_eq!(view["transcript"][1]["intent"], "promise_to_pay");
    // Another firm sees nothing.
    let r = app
        .http
        .get(format!("http://127.0.0.1:{}/v1/calls/{call_id}", app.port))
        .header("x-arflow-internal-token", TOKEN)
        .header("x-arflow-firm-id", Uuid::now_v7().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn callbacks_need_the_internal_token() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .post(format!("http://127.0.0.1:{}/internal/telephony/voice/{}/status", app.port, Uuid::now_v7()))
        .form(&[("CallStatus", "completed")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app
        .http
        .post(format!("http://127.0.0.1:{}/internal/telephony/sms/inbound", app.port))
        .header("x-arflow-internal-token", "wrong-token-wrong-token")
        .form(&[("MessageSid", "SM1"), ("From", "+14155552671"), ("Body", "STOP")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let n: (i64,) = sqlx::query_as("SELECT count(*) FROM voice.inbound_texts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(n.0, 0);
}

#[tokio::test]
async fn a_call_left_dialing_by_a_crash_becomes_failed_uncertain_and_is_never_redialled() {
    let mut app = TestApp::spawn().await;
    app.stop().await;
    // What a crash between the commit of `dialing` and the provider's answer leaves behind.
    let step = voice_step(Tone::Firm);
    let call_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO voice.calls (id, step_id, firm_id, invoice_id, contact_id, client_id, step, attempt, step_due, \
         cause_event_id, correlation_id, to_number, state, not_before, placed_at, script, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'overdue_21', 1, $7, $1, $1, '+14155552671', 'dialing', $8, $8, 'call-firm@1', \
         now() - interval '1 hour')",
    )
    .bind(call_id)
    .bind(step.step_id)
    .bind(app.firm)
    .bind(step.invoice_id)
    .bind(step.contact.contact_id)
    .bind(step.client.client_id)
    .bind(sqlx::types::Json(&step))
    .bind(tuesday_afternoon())
    .execute(&app.pool)
    .await
    .unwrap();
    app.start().await;
    let ended = app.wait_event_for(outreach::VOICE_FAILED, "call_id", call_id).await;
    assert!(ended["detail"].as_str().unwrap().starts_with("uncertain"), "{ended}");
    // The step arriving again changes nothing.
    app.publish_step(&step, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(app.provider.calls().is_empty());
    assert_eq!(app.call_of(step.step_id).await.unwrap().0, "ended");
}

#[tokio::test]
async fn a_gather_retried_by_the_provider_gets_the_same_answer_and_adds_nothing() {
    let app = TestApp::spawn().await;
    let step = voice_step(Tone::Firm);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    let sid = "CA00000000000000000000000000000042";
    let (s, _) = app
        .callback(
            &format!("voice/{call_id}/answer"),
            &[("CallSid", sid), ("CallStatus", "in-progress"), ("AnsweredBy", "human")],
        )
        .await;
    assert_eq!(s, 200);
    // Silence first (asked again), and that gather delivered twice.
    let silent = [("CallSid", sid), ("SpeechResult", ""), ("Confidence", "0")];
    let (_, first) = app.callback(&format!("voice/{call_id}/gather?turn=1"), &silent).await;
    let (_, again) = app.callback(&format!("voice/{call_id}/gather?turn=1"), &silent).await;
    assert!(first.contains("gather?turn=2"), "{first}");
    assert_eq!(again, first);
    // Then a promise, delivered twice as well.
    let promise = [("CallSid", sid), ("SpeechResult", "I will pay on Friday"), ("Confidence", "0.9")];
    let (_, first) = app.callback(&format!("voice/{call_id}/gather?turn=2"), &promise).await;
    let (_, again) = app.callback(&format!("voice/{call_id}/gather?turn=2"), &promise).await;
    assert!(first.contains("Friday 13 March"), "{first}");
    assert_eq!(again, first);
    app.status(call_id, sid, "completed", Some("human"), Some("30")).await;
    let ended = app.wait_event_for(outreach::VOICE_COMPLETED, "call_id", call_id).await;
    let speakers: Vec<&str> =
        ended["transcript"].as_array().unwrap().iter().map(|t| t["speaker"].as_str().unwrap()).collect();
    // Opening, the question asked again, the promise, the confirmation: each once.
    assert_eq!(speakers, ["agent", "agent", "client", "agent"], "{ended}");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(app.events_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await.len(), 1);
}

/// The provider never retries a failed answer: a caller's opt-out while the hold bucket cannot be
/// reached is still confirmed, recorded and published (the opt-out service then writes the hold).
#[tokio::test]
async fn a_spoken_opt_out_is_kept_when_the_hold_bucket_is_down() {
    let mut app = TestApp::spawn().await;
    let step = voice_step(Tone::Firm);
    app.publish_step(&step, 1).await;
    let call_id = app.wait_call_state(step.step_id, "placed").await;
    let sid = format!("CA{}", Uuid::new_v4().simple());
    let (s, _) = app
        .callback(
            &format!("voice/{call_id}/answer"),
            &[("CallSid", &sid), ("CallStatus", "in-progress"), ("AnsweredBy", "human")],
        )
        .await;
    assert_eq!(s, 200);
    app.nats.kill();
    let (s, twiml) = app
        .callback(
            &format!("voice/{call_id}/gather?turn=1"),
            &[("CallSid", &sid), ("SpeechResult", "Please stop calling me"), ("Confidence", "0.9")],
        )
        .await;
    assert_eq!(s, 200, "{twiml}");
    assert!(twiml.contains("no more calls"), "{twiml}");
    let (turns,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM voice.call_turns WHERE call_id = $1 AND speaker = 'client' AND intent = 'opt_out'",
    )
    .bind(call_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(turns, 1, "the opt-out is recorded");
    app.nats.restart();
    let said = app.wait_event_for(reply::CLASSIFIED, "contact_id", step.contact.contact_id).await;
    assert_eq!(said["intent"], "opt_out");
}

/// The provider placed the call but its REST answer was lost (a timeout): the call is not
/// failed (the scheduler would call again tomorrow while this one rings); its callbacks adopt
/// it and it ends by its real outcome. Without any callback it becomes failed "uncertain".
#[tokio::test]
async fn a_lost_rest_answer_waits_for_the_callbacks_instead_of_failing_the_call() {
    let app = TestApp::spawn_with(tuesday_afternoon(), |c| {
        c.telephony.request_timeout_secs = 1;
        c.voice.uncertain_after_secs = 6;
    })
    .await;
    let step = common::step(arflow_core::Channel::Voice, Tone::Firm, SLOW_NUMBER);
    app.publish_step(&step, 1).await;
    let (state, call_id) = loop {
        if let Some((state, id)) = app.call_of(step.step_id).await
            && state == "dialing"
            && !app.provider.calls_to(SLOW_NUMBER).is_empty()
        {
            break (state, id);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(state, "dialing");
    tokio::time::sleep(SLOW_ANSWER).await;
    assert_eq!(app.call_of(step.step_id).await.unwrap().0, "dialing", "not failed on a lost answer");
    assert!(app.events_for(outreach::VOICE_FAILED, "step_id", step.step_id).await.is_empty());
    // The provider's callbacks arrive: the call is adopted and ends by what happened.
    let lines = app.converse(call_id, "human", &["I will pay on Friday"]).await;
    assert!(lines.concat().contains("Friday"), "{lines:?}");
    let ended = app.wait_event_for(outreach::VOICE_COMPLETED, "step_id", step.step_id).await;
    assert!(ended["provider_call_sid"].as_str().is_some_and(|s| s.starts_with("CA")), "{ended}");
    assert!(app.events_for(outreach::VOICE_FAILED, "step_id", step.step_id).await.is_empty());

    // No callback at all: failed "uncertain" once voice.uncertain_after_secs has passed.
    let silent = common::step(arflow_core::Channel::Voice, Tone::Firm, SLOW_NUMBER);
    app.publish_step(&silent, 1).await;
    let failed = app.wait_event_for(outreach::VOICE_FAILED, "step_id", silent.step_id).await;
    assert!(failed["detail"].as_str().unwrap().contains("uncertain"), "{failed}");
}
