//! The fail-safe review path (issue 13) end to end: a client's email reply arflow does not
//! understand with confidence pauses the invoice and opens a `needs_review` case with the
//! classifier's scores; nothing is done on its guess while days pass. The firm's person labels it
//! an opt-out through the API: from then on arflow acts exactly as on a recognised opt-out (the
//! contact held on every channel within a second, the ledger entry, no email, call or text any
//! more), and the label is in the firm's training export.
use crate::optout::history;
use crate::replies::thread_of;
use arflow_bus::HoldValue;
use arflow_contracts::streams::contact_hold_key;
use arflow_replies::{Intent, Source};
use arflow_testkit::telephony::ClientScript;
use arflow_tests::{REPLY_DOMAIN, TestApp};
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

/// A reply a person must read: it names no intent a collector could act on.
const UNCLEAR: &str = "Well, we will see about that.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclear_reply_waits_for_a_person_whose_opt_out_label_then_stops_every_channel() {
    // The classifier is being replaced: this scenario needs a reply it is NOT confident of.
    let friday = arflow_replies::Date::new(2026, 3, 6).unwrap();
    let guess = arflow_replies::classify(Source::Email, UNCLEAR, friday);
    assert!(
        guess.needs_review && guess.intent != Intent::OptOut,
        "the classifier now understands {UNCLEAR:?} ({guess:?}): pick a reply it is not sure of for this scenario"
    );

    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    // A client whose billing contact takes email, calls and texts.
    let phone = "+13125550177";
    let client = app
        .post(
            &firm,
            "/v1/clients",
            json!({"name": "Juniper Freight", "tier": "standard", "timezone": "America/Chicago",
                   "stripe_customer_id": "cus_rv"}),
        )
        .await;
    let contact = app
        .post(
            &firm,
            &format!("/v1/clients/{}/contacts", client["id"].as_str().unwrap()),
            json!({"name": "Juniper billing", "email": "billing@cus_rv.test", "phone": phone,
                   "timezone": "America/Chicago", "primary": true,
                   "consent": {"email": true, "voice": true, "sms": true}}),
        )
        .await;
    let contact: Uuid = contact["id"].as_str().unwrap().parse().unwrap();
    app.telephony.set_script(phone, ClientScript::promises("on Friday"));
    let due = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
    let invoice = app.finalize_invoice(&firm, "in_rv_1", "cus_rv", 184_000, "usd", due).await;
    app.process_until_idle().await;
    // The pre-due reminder goes out Thursday 5 March; the client answers it on Friday.
    app.advance(Duration::days(4)).await;
    let sent = app.emails_for(invoice);
    assert_eq!(sent.len(), 1, "the pre-due reminder went out");
    let (token, message_id, subject) = thread_of(&sent[0]);
    let raw = format!(
        "From: Juniper billing <billing@cus_rv.test>\r\nTo: <reply+{token}@{REPLY_DOMAIN}>\r\nSubject: Re: {subject}\r\n\
         Date: Fri, 06 Mar 2026 10:05:00 -0600\r\nMessage-ID: <rv-{}@cus_rv.test>\r\nIn-Reply-To: {message_id}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{UNCLEAR}\r\n",
        Uuid::new_v4().simple()
    );
    let r = app.inbound_email(&firm, raw.as_bytes()).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    app.process_until_idle().await;

    // Classified, but not understood: flagged for review with the classifier's scores.
    let replies = app.events("REPLY", "reply.classified.").await;
    assert_eq!(replies.len(), 1);
    let reply = &replies[0].1.data;
    let reply_id = reply["reply_id"].as_str().unwrap().to_string();
    assert_eq!(reply["sure"], false);
    assert_eq!(reply["needs_review"], true, "{reply}");
    let scores: Vec<Value> =
        guess.scores.iter().map(|s| json!({"intent": s.intent.as_str(), "score": s.score})).collect();
    assert_eq!(reply["scores"], json!(scores), "the scores the classifier gave");
    let hold = app.bus.holds().get(&contact_hold_key(contact)).await.unwrap();
    assert!(!matches!(hold, Some((HoldValue::Held { .. }, _))), "no opt-out on a guess: {hold:?}");

    // The invoice is paused for it, and a review case is open with the text and the scores.
    let activity = app.activity(&firm, invoice).await;
    assert_eq!(activity["automation_status"], "escalated", "{activity}");
    let history_entries = activity["history"].as_array().unwrap();
    let paused = history_entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "eligibility_changed")
        .expect("an eligibility decision after the reply");
    assert!(paused["reason"].as_str().unwrap().contains("no_reply_awaiting_review"), "{paused}");
    assert!(paused["summary"].as_str().unwrap().contains(UNCLEAR), "the client's words in the reason: {paused}");
    let waiting = history_entries.iter().find(|e| e["kind"] == "reply_needs_review").expect("the reply in the history");
    assert!(waiting["intent"].is_null(), "{waiting}");
    let queue = app.get(&firm, "/v1/escalations?status=open").await;
    let cases = queue["data"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{queue}");
    let case = &cases[0];
    assert_eq!(case["reason"], "needs_review");
    assert_eq!(case["invoice"]["invoice_id"], invoice.to_string());
    assert_eq!(case["review"]["reply_id"], reply_id.as_str());
    assert!(case["review"]["client_text"].as_str().unwrap().contains(UNCLEAR), "{case}");
    // The scores as the classifier gave them (f32 on the wire: compared to that precision).
    let shown = case["review"]["scores"].as_array().unwrap();
    assert_eq!(shown.len(), guess.scores.len(), "{case}");
    for (got, want) in shown.iter().zip(&guess.scores) {
        assert_eq!(got["intent"], want.intent.as_str(), "{case}");
        assert!((got["score"].as_f64().unwrap() - f64::from(want.score)).abs() < 1e-6, "{case}");
    }
    let case_id = case["case_id"].as_str().unwrap().to_string();

    // Nothing goes out while it waits: not the due-date reminder of Thursday 12 March.
    app.advance(Duration::days(7)).await;
    assert_eq!(app.emails_for(invoice).len(), 1, "outreach paused while the reply waits for a person");

    // The firm's person reads it as a request to stop and labels it so.
    let asked = Instant::now();
    let r = app
        .http
        .post(app.url(&format!("/v1/escalations/{case_id}/actions")))
        .bearer_auth(&firm.key)
        .header("x-arflow-actor", "dana@harborpine.test")
        .json(&json!({"action": "label", "intent": "opt_out", "note": "they asked us by phone to stop writing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Fence 2: the contact is held on every channel within a second.
    let key = contact_hold_key(contact);
    loop {
        let hold = app.bus.holds().get(&key).await.unwrap();
        if matches!(hold, Some((HoldValue::Held { .. }, _))) {
            break;
        }
        assert!(asked.elapsed() < std::time::Duration::from_secs(1), "no hold a second after the label: {hold:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!("hold written {:?} after the label was asked", asked.elapsed());
    app.process_until_idle().await;

    // Exactly like a recognised opt-out: the ledger, the consent event, every channel.
    let ledger = app.get(&firm, &format!("/v1/consent/contacts/{contact}")).await;
    let entry = &ledger["history"][0];
    assert_eq!(
        (entry["source"].as_str(), entry["action"].as_str()),
        (Some("email_reply"), Some("opt_out")),
        "{ledger}"
    );
    assert!(entry["channel"].is_null(), "every channel: {ledger}");
    assert!(entry["evidence"].as_str().unwrap().contains("labelled opt_out by dana@harborpine.test"), "{ledger}");
    for channel in ["email", "voice", "sms"] {
        assert_eq!(ledger["channels"][channel]["opted_out"], true, "{channel}: {ledger}");
    }
    let consent = app.events("CONSENT", "consent.opted_out.").await;
    assert_eq!(consent.len(), 1);
    assert_eq!((consent[0].1.data["source"].as_str(), consent[0].1.source.as_str()), (Some("email_reply"), "optout"));
    let labelled = app.events("REPLY", "reply.classified.").await;
    let labelled = &labelled.last().unwrap().1;
    assert_eq!(
        (labelled.data["intent"].as_str(), labelled.data["labelled_by"].as_str()),
        (Some("opt_out"), Some("dana@harborpine.test"))
    );
    assert_eq!(labelled.data["reply_id"], reply_id.as_str(), "the same reply, labelled");
    let case = app.get(&firm, &format!("/v1/escalations/{case_id}")).await;
    assert_eq!(
        (case["case"]["status"].as_str(), case["case"]["action"]["action"].as_str()),
        (Some("resolved"), Some("label"))
    );
    assert_eq!(case["case"]["action"]["actor"], "dana@harborpine.test");
    let history_entries = app.activity(&firm, invoice).await["history"].as_array().unwrap().clone();
    let label = history_entries.iter().find(|e| e["kind"] == "reply_labelled").expect("the label in the history");
    assert_eq!(
        (label["intent"].as_str(), label["labelled_by"].as_str()),
        (Some("opt_out"), Some("dana@harborpine.test"))
    );

    // The label is a training example, in the corpus format, through the gateway.
    let r = app.http.get(app.url("/v1/escalations/training-examples")).bearer_auth(&firm.key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{body}");
    assert_eq!(
        lines[0],
        json!({"id": reply_id, "channel": "email", "reference_date": "2026-03-06", "text": UNCLEAR,
               "intent": "opt_out", "promised_date": null})
    );

    // Then the cadence's text (+10) and call (+21) days come, and nothing reaches the contact.
    app.advance(Duration::days(30)).await;
    assert_eq!(app.emails_for(invoice).len(), 1, "no email after the label");
    assert!(app.telephony.calls().iter().all(|c| c.to != phone), "no call after the label");
    assert!(app.telephony.messages().iter().all(|m| m.to != phone), "no text after the label");
    let h = history(&app, &key).await;
    let held_at = h.iter().position(|(_, v)| matches!(v, Some(HoldValue::Held { .. }))).unwrap();
    assert!(
        h[held_at..].iter().all(|(_, v)| !matches!(v, Some(HoldValue::Claimed { .. }))),
        "no send claimed the contact after the hold: {h:?}"
    );
}
