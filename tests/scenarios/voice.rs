//! Calls and texts on the real stack: the cadence's call step dials through the telephony
//! simulator (Twilio's REST and webhook contract, signed callbacks through the gateway), the
//! scripted person answers, and what they say drives what happens next: a promise pauses, a
//! dispute or a request for a person opens a case, "stop calling" stops every channel, a missed
//! call is retried on the next business day and then followed by an email, a voicemail by an
//! email. A text goes out with the pay link; an inbound STOP halts every channel; a tampered
//! callback is refused and changes nothing.
use arflow_testkit::telephony::{ClientScript, SimCall};
use arflow_tests::{FROM_NUMBER, Firm, TestApp};
use chrono::{Duration, NaiveDate, Timelike};
use serde_json::{Value, json};
use uuid::Uuid;

/// One client and its billing contact, who agreed to email, calls and texts.
struct Person {
    name: &'static str,
    phone: &'static str,
    tz: &'static str,
    script: ClientScript,
    contact: Uuid,
    invoice: Uuid,
}

async fn add_phone_client(app: &TestApp, firm: &Firm, p: &mut Person, customer: &str, due: NaiveDate) {
    let contact = json!({"name": format!("{} billing", p.name), "email": format!("billing@{customer}.test"),
                         "phone": p.phone, "timezone": p.tz, "primary": true,
                         "consent": {"email": true, "voice": true, "sms": true}});
    (_, p.contact) = app.add_client_with(firm, customer, p.name, "standard", p.tz, contact).await;
    app.telephony.set_script(p.phone, p.script.clone());
    p.invoice = app.finalize_invoice(firm, &format!("in_{customer}"), customer, 240_000, "usd", due).await;
}

fn calls_to<'a>(calls: &'a [SimCall], phone: &str) -> Vec<&'a SimCall> {
    calls.iter().filter(|c| c.to == phone).collect()
}

async fn status(app: &TestApp, firm: &Firm, invoice: Uuid) -> String {
    app.get(firm, &format!("/v1/invoices/{invoice}")).await["automation_status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every call the voice service placed, with its local hour in the contact's zone.
async fn placed_local_hours(app: &TestApp) -> Vec<(String, u32)> {
    let rows: Vec<(chrono::DateTime<chrono::Utc>, Option<String>)> = sqlx::query_as(
        "SELECT placed_at, step_due->'contact'->>'call_timezone' FROM voice.calls WHERE placed_at IS NOT NULL",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(at, tz)| {
            let tz: chrono_tz::Tz = tz.expect("a placed call has a known zone").parse().unwrap();
            (tz.name().to_string(), at.with_timezone(&tz).hour())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scripted_client_gets_the_right_outcome_and_follow_up() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    let start = app.now().await.date_naive();
    // Due 20 days ago: the +21 call step is due tomorrow (Tuesday 3 March) at 08:00 local.
    let due = start - Duration::days(20);
    let mut people = vec![
        ("promise", "Aster Promise Co", "+12125550140", "America/New_York", ClientScript::promises("on Friday")),
        ("dispute", "Birch Dispute Ltd", "+13125550141", "America/Chicago", ClientScript::disputes()),
        ("stop", "Cobalt Stop LLC", "+12065550142", "America/Los_Angeles", ClientScript::stop_calling()),
        ("person", "Delta Person Inc", "+13035550143", "America/Denver", ClientScript::asks_for_person()),
        ("spanish", "Estrella Pago SA", "+13055550144", "America/New_York", ClientScript::spanish()),
        ("voicemail", "Fjord Voicemail Co", "+16175550145", "America/New_York", ClientScript::Voicemail),
        ("no_answer", "Granite Silent Co", "+14045550146", "America/New_York", ClientScript::NoAnswer),
        ("busy", "Harbor Busy Co", "+12155550147", "America/New_York", ClientScript::Busy),
    ]
    .into_iter()
    .map(|(key, name, phone, tz, script)| {
        (key, Person { name, phone, tz, script, contact: Uuid::nil(), invoice: Uuid::nil() })
    })
    .collect::<Vec<_>>();
    for (key, p) in people.iter_mut() {
        add_phone_client(&app, &firm, p, &format!("cus_{key}"), due).await;
    }
    let person = |key: &str| &people.iter().find(|(k, _)| *k == key).unwrap().1;

    // Monday's email (the latest step due after the downtime rule), then Tuesday's calls.
    app.advance_days(2).await;
    let calls = app.telephony.calls();
    for (key, p) in &people {
        let to = calls_to(&calls, p.phone);
        assert_eq!(to.len(), 1, "{key}: exactly one call on Tuesday, got {}", to.len());
        assert!(to[0].finished, "{key}: every callback posted");
        assert!(
            to[0].callbacks.iter().all(|c| c.status.is_some_and(|s| (200..300).contains(&s))),
            "{key}: {:?}",
            to[0].callbacks
        );
    }

    // Outcomes as the voice service published them.
    let ended = app.events("OUTREACH", "outreach.voice.").await;
    let outcome = |p: &Person| -> Vec<String> {
        ended
            .iter()
            .filter(|(s, e)| !s.contains(".skipped.") && e.data["contact_id"] == p.contact.to_string())
            .map(|(_, e)| e.data["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    for (key, want) in [
        ("promise", "completed"),
        ("dispute", "completed"),
        ("stop", "completed"),
        ("person", "completed"),
        ("spanish", "completed"),
        ("voicemail", "voicemail"),
        ("no_answer", "no_answer"),
        ("busy", "no_answer"),
    ] {
        assert_eq!(outcome(person(key)), vec![want.to_string()], "{key}");
    }
    // What each person said, understood.
    let replies = app.events("REPLY", "reply.classified.").await;
    let intent = |p: &Person| -> Vec<String> {
        replies
            .iter()
            .filter(|(_, e)| e.data["contact_id"] == p.contact.to_string() && e.data["channel"] == "voice")
            .map(|(_, e)| e.data["intent"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(intent(person("promise")), ["promise_to_pay"]);
    assert_eq!(intent(person("dispute")), ["dispute"]);
    assert_eq!(intent(person("stop")), ["opt_out"]);
    assert_eq!(intent(person("person")), ["question"]);
    assert_eq!(intent(person("spanish")), ["promise_to_pay"]);
    assert!(intent(person("voicemail")).is_empty() && intent(person("no_answer")).is_empty());

    // The agent's side: the call states the invoice; a voicemail never says an amount; Spanish is answered in Spanish.
    let said = |key: &str| calls_to(&calls, person(key).phone)[0].said.join(" ");
    assert!(
        said("promise").contains("INV-in_cus_promise") && said("promise").contains("2,400.00"),
        "{}",
        said("promise")
    );
    assert!(said("promise").to_lowercase().contains("friday"), "the date is confirmed back: {}", said("promise"));
    assert!(!said("voicemail").contains("2,400") && !said("voicemail").contains("INV-"), "{}", said("voicemail"));
    assert!(said("spanish").contains("Gracias"), "{}", said("spanish"));
    // The agent said the link was on its way by text: it is.
    assert!(said("promise").contains("payment link by text message now"), "{}", said("promise"));
    let texts = app.telephony.messages();
    for key in ["promise", "spanish"] {
        let got: Vec<_> = texts.iter().filter(|m| m.to == person(key).phone).collect();
        assert_eq!(got.len(), 1, "{key}: one payment-link text after the promise: {texts:?}");
        assert!(got[0].body.contains("http"), "{key}: {}", got[0].body);
    }
    for key in ["dispute", "person", "voicemail", "no_answer", "busy"] {
        assert!(texts.iter().all(|m| m.to != person(key).phone), "{key}: no text without a promise");
    }

    // Follow-ups, through the public API.
    assert_eq!(status(&app, &firm, person("promise").invoice).await, "paused");
    assert_eq!(status(&app, &firm, person("spanish").invoice).await, "paused");
    let queue = app.get(&firm, "/v1/escalations?status=open").await;
    let reason_for = |p: &Person| -> Vec<String> {
        queue["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["invoice"]["invoice_id"] == p.invoice.to_string())
            .map(|c| c["reason"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(reason_for(person("dispute")), ["dispute"], "{queue}");
    assert_eq!(reason_for(person("person")), ["person_requested"], "{queue}");
    let ledger = app.get(&firm, &format!("/v1/consent/contacts/{}", person("stop").contact)).await;
    assert!(ledger.to_string().contains("call_request"), "{ledger}");

    // Each call is in the invoice's activity, transcript included.
    for (key, kind) in [("promise", "call_completed"), ("voicemail", "call_voicemail"), ("busy", "call_no_answer")] {
        let activity = app.activity(&firm, person(key).invoice).await;
        let entry = activity["history"].as_array().unwrap().iter().find(|e| e["kind"] == kind);
        assert!(entry.is_some(), "{key}: {kind} in {activity}");
    }
    let activity = app.activity(&firm, person("promise").invoice).await;
    let call = activity["history"].as_array().unwrap().iter().find(|e| e["kind"] == "call_completed").unwrap();
    assert_eq!(call["call"]["transcript"][1]["intent"], "promise_to_pay", "{call}");
    assert!(call["call"]["recording_url"].as_str().is_some_and(|u| u.contains("/Recordings/RE")), "{call}");

    // Wednesday, Thursday: the missed calls are retried on the next business days, then an email follows.
    let emails_before_stop = app.emails().iter().filter(|m| m.to.iter().any(|t| t == "billing@cus_stop.test")).count();
    app.advance_days(2).await;
    let calls = app.telephony.calls();
    assert_eq!(calls_to(&calls, person("no_answer").phone).len(), 3, "three attempts in all");
    assert_eq!(calls_to(&calls, person("busy").phone).len(), 3);
    for key in ["promise", "dispute", "stop", "person", "spanish", "voicemail"] {
        assert_eq!(calls_to(&calls, person(key).phone).len(), 1, "{key}: answered calls are not repeated");
    }
    let steps: Vec<(Uuid, String, String, String)> =
        sqlx::query_as("SELECT invoice_id, name, channel, state FROM scheduler.steps ORDER BY scheduled_for")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let fallbacks: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT step_id, invoice_id::text FROM scheduler.steps WHERE name = 'call_overdue_21_email'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let names = |p: &Person| -> Vec<String> {
        steps.iter().filter(|s| s.0 == p.invoice).map(|s| format!("{}:{}:{}", s.1, s.2, s.3)).collect()
    };
    for key in ["no_answer", "busy"] {
        let n = names(person(key));
        for want in [
            "call_overdue_21_retry1:voice:fired",
            "call_overdue_21_retry2:voice:fired",
            "call_overdue_21_email:email:fired",
        ] {
            assert!(n.contains(&want.to_string()), "{key}: {want} in {n:?}");
        }
    }
    assert!(
        names(person("voicemail")).contains(&"call_overdue_21_email:email:fired".to_string()),
        "{:?}",
        names(person("voicemail"))
    );
    let fallback_to = |p: &Person| {
        let (step_id, _): &(Uuid, String) =
            fallbacks.iter().find(|(_, inv)| *inv == p.invoice.to_string()).expect("a fallback step");
        let (id, step) = (p.invoice.to_string(), step_id.to_string());
        app.emails()
            .iter()
            .filter(|m| {
                m.header("X-Arflow-Invoice") == Some(id.as_str()) && m.header("X-Arflow-Step") == Some(step.as_str())
            })
            .count()
    };
    for key in ["voicemail", "no_answer", "busy"] {
        assert_eq!(fallback_to(person(key)), 1, "{key}: one email after the calls");
    }

    // The firm reads the calls through the gateway (the voice service's own API behind it).
    let tries = app.get(&firm, &format!("/v1/calls?invoice_id={}", person("no_answer").invoice)).await;
    let attempts: Vec<i64> = tries["data"].as_array().unwrap().iter().map(|c| c["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts.len(), 3, "{tries}");
    assert!(attempts.contains(&1) && attempts.contains(&3), "{tries}");
    let promised = app.get(&firm, &format!("/v1/calls?invoice_id={}", person("promise").invoice)).await;
    let call_id = promised["data"][0]["id"].as_str().unwrap().to_string();
    let detail = app.get(&firm, &format!("/v1/calls/{call_id}")).await;
    assert_eq!(detail["outcome"], "completed", "{detail}");
    assert!(detail["transcript"].as_array().is_some_and(|t| t.len() >= 3), "{detail}");
    let other = app.create_firm().await;
    let r = app.http.get(app.url(&format!("/v1/calls/{call_id}"))).bearer_auth(&other.key).send().await.unwrap();
    assert_eq!(r.status(), 404, "another firm's call is not found");
    let path = format!("/v1/calls?invoice_id={}", person("promise").invoice);
    let r = app.http.get(app.url(&path)).bearer_auth(&other.key).send().await.unwrap();
    assert_eq!(r.status(), 404, "another firm's invoice is not found either");
    let theirs = app.get(&other, "/v1/calls").await;
    assert_eq!(theirs["data"], serde_json::json!([]), "{theirs}");

    // Ten more days: "stop calling" stopped email too, and nobody else is called twice for one step.
    app.advance_days(10).await;
    let stop = person("stop");
    let emails_after = app.emails().iter().filter(|m| m.to.iter().any(|t| t == "billing@cus_stop.test")).count();
    assert_eq!(emails_after, emails_before_stop, "no email after \"stop calling\"");
    assert_eq!(calls_to(&app.telephony.calls(), stop.phone).len(), 1);
    let texts_to_stop: Vec<(String, String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT step, state, sent_at FROM voice.texts WHERE contact_id = $1")
            .bind(stop.contact)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(app.telephony.messages().iter().all(|m| m.to != stop.phone), "texts: {texts_to_stop:?}");

    // Fence 4, read back from what was placed.
    for (zone, hour) in placed_local_hours(&app).await {
        assert!((8..21).contains(&hour), "a call at {hour}:00 in {zone}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_carries_the_pay_link_and_an_inbound_stop_halts_every_channel() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    let start = app.now().await.date_naive();
    // Due 9 days ago: the +10 text goes out tomorrow (Tuesday) at 08:00 local.
    let due = start - Duration::days(9);
    let mut texter = Person {
        name: "Ivy Texter Co",
        phone: "+12125550150",
        tz: "America/New_York",
        script: ClientScript::NoAnswer,
        contact: Uuid::nil(),
        invoice: Uuid::nil(),
    };
    add_phone_client(&app, &firm, &mut texter, "cus_text", due).await;
    let mut helper = Person { name: "Juniper Help Co", phone: "+12125550151", ..texter };
    helper.contact = Uuid::nil();
    add_phone_client(&app, &firm, &mut helper, "cus_help", due).await;

    app.advance_days(2).await;
    let texts = app.telephony.messages();
    let to_texter: Vec<_> = texts.iter().filter(|m| m.to == texter.phone).collect();
    assert_eq!(to_texter.len(), 1, "one text for the +10 step: {texts:?}");
    assert!(
        to_texter[0].body.contains("INV-in_cus_text") && to_texter[0].body.contains("STOP"),
        "{}",
        to_texter[0].body
    );

    // A tampered inbound text (wrong signature) is refused and changes nothing.
    let forged = app
        .http
        .post(app.url("/webhooks/telephony/sms/inbound"))
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .form(&[
            ("MessageSid", "SM00000000000000000000000000000001"),
            ("From", texter.phone),
            ("To", FROM_NUMBER),
            ("Body", "STOP"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let (recorded,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM voice.inbound_texts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(recorded, 0, "a refused callback records nothing");

    // HELP is answered; STOP opts the contact out of every channel at once.
    let (code, twiml) = app.telephony.send_sms(helper.phone, FROM_NUMBER, "HELP").await.unwrap();
    assert_eq!(code, 200);
    assert!(twiml.contains("<Message>") && twiml.contains("STOP"), "{twiml}");
    let (code, twiml) = app.telephony.send_sms(texter.phone, FROM_NUMBER, "STOP").await.unwrap();
    assert_eq!(code, 200);
    assert!(twiml.contains("unsubscribed"), "{twiml}");
    let hold = app.bus.holds().get(&arflow_contracts::streams::contact_hold_key(texter.contact)).await.unwrap();
    assert!(hold.is_some(), "the contact is held on every channel as the STOP is answered");
    app.process_until_idle().await;
    let ledger = app.get(&firm, &format!("/v1/consent/contacts/{}", texter.contact)).await;
    assert!(ledger.to_string().contains("sms_stop"), "{ledger}");

    // Three weeks on: no email, call or text reaches the contact who texted STOP; the other one
    // still gets the cadence (its +14 email and its +21 call).
    let emails_at_stop = app.emails().iter().filter(|m| m.to.iter().any(|t| t == "billing@cus_text.test")).count();
    app.advance_days(21).await;
    let emails = app.emails();
    let mails = |to: &str| emails.iter().filter(|m| m.to.iter().any(|t| t == to)).count();
    assert_eq!(mails("billing@cus_text.test"), emails_at_stop, "no email after STOP");
    assert!(app.telephony.calls().iter().all(|c| c.to != texter.phone), "no call after STOP");
    assert_eq!(app.telephony.messages().iter().filter(|m| m.to == texter.phone).count(), 1, "no text after STOP");
    assert!(mails("billing@cus_help.test") > emails_at_stop.min(1), "the cadence goes on for others");
    assert!(app.telephony.calls().iter().any(|c| c.to == helper.phone), "the other client is still called");
    let history = app.activity(&firm, texter.invoice).await;
    let text: Value = history["history"].as_array().unwrap().iter().find(|e| e["kind"] == "sms_sent").cloned().unwrap();
    assert!(text["body"].as_str().unwrap().contains("STOP"), "{text}");
}
