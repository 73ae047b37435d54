//! The opt-out service on the real stack: every source of an opt-out ends in a ledger entry with
//! its evidence, a hold in the `holds` bucket and (when the state changes) a consent event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::{ConsentCommand, ReplyIntent, ReplyKind};
use arflow_contracts::streams::{contact_channel_hold_key, contact_hold_key};
use arflow_contracts::subjects::command;
use arflow_core::Channel;
use common::{TestApp, classified, hard_bounce};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn every_source_is_recorded_with_evidence_held_and_published() {
    let app = TestApp::spawn().await;
    let firm = Uuid::now_v7();

    // An email reply asking to stop: every channel.
    let a = app.person(firm, "a@client.test").await;
    let reply =
        app.reply(&a, classified(&a, ReplyKind::Reply, Some(ReplyIntent::OptOut), "please stop emailing me")).await;
    let h = app.history(&a, 1).await;
    assert_eq!((h[0]["source"].as_str(), h[0]["action"].as_str()), (Some("email_reply"), Some("opt_out")));
    assert!(h[0]["channel"].is_null());
    assert!(h[0]["evidence"].as_str().unwrap().contains("please stop emailing me"), "{}", h[0]);
    assert_eq!(h[0]["cause_event_id"], reply.id.to_string());
    assert!(app.held(&contact_hold_key(a.contact)).await.is_some());
    // Redelivered (the same event again): one entry, one event.
    app.publish_envelope(&reply).await;

    // A call where the client asks not to be called: every channel, source call_request.
    let b = app.person(firm, "b@client.test").await;
    let mut call = classified(&b, ReplyKind::Reply, Some(ReplyIntent::OptOut), "don't call me again");
    call.channel = Channel::Voice;
    app.reply(&b, call).await;
    let h = app.history(&b, 1).await;
    assert_eq!(h[0]["source"], "call_request");
    assert!(h[0]["channel"].is_null(), "every channel, not just calls: {}", h[0]);
    assert!(app.held(&contact_hold_key(b.contact)).await.is_some());

    // A text saying STOP: every channel, source sms_stop.
    let t = app.person(firm, "t@client.test").await;
    let mut text = classified(&t, ReplyKind::Reply, Some(ReplyIntent::OptOut), "STOP");
    text.channel = Channel::Sms;
    app.reply(&t, text).await;
    let h = app.history(&t, 1).await;
    assert_eq!(h[0]["source"], "sms_stop");
    assert!(h[0]["channel"].is_null(), "every channel, not just texts: {}", h[0]);
    assert!(h[0]["evidence"].as_str().unwrap().contains("\"STOP\" (sms"), "{}", h[0]);
    assert!(app.held(&contact_hold_key(t.contact)).await.is_some());

    // A reply arflow was not sure of, labelled an opt-out by a firm user (the escalation service
    // republishes it): held and recorded like any opt-out, the evidence names who labelled it.
    let l = app.person(firm, "l@client.test").await;
    let mut labelled = classified(&l, ReplyKind::Reply, Some(ReplyIntent::OptOut), "");
    labelled.client_text = "see the comments from my colleague below".into();
    labelled.labelled_by = Some("dana@firm.test".into());
    app.reply(&l, labelled).await;
    let h = app.history(&l, 1).await;
    assert_eq!((h[0]["source"].as_str(), h[0]["actor"].as_str()), (Some("email_reply"), Some("client")));
    let evidence = h[0]["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("see the comments from my colleague")
            && evidence.ends_with("labelled opt_out by dana@firm.test)"),
        "{evidence}"
    );
    assert!(app.held(&contact_hold_key(l.contact)).await.is_some());
    // An unsure reply guessed to be something else is not an opt-out.
    let u = app.person(firm, "u@client.test").await;
    let mut unsure = classified(&u, ReplyKind::Reply, Some(ReplyIntent::Question), "see below");
    unsure.needs_review = true;
    app.reply(&u, unsure).await;

    // A spam complaint: every channel.
    let c = app.person(firm, "c@client.test").await;
    app.reply(&c, classified(&c, ReplyKind::Complaint, None, "")).await;
    let h = app.history(&c, 1).await;
    assert_eq!(h[0]["source"], "spam_complaint");
    assert!(h[0]["evidence"].as_str().unwrap().contains("spam"));
    assert!(app.held(&contact_hold_key(c.contact)).await.is_some());
    // Handled in order before the complaint: the unsure reply held and recorded nothing.
    assert!(app.held(&contact_hold_key(u.contact)).await.is_none());

    // A hard bounce: email only (its own key; the contact's key stays free for calls).
    let d = app.person(firm, "d@client.test").await;
    app.reply(&d, hard_bounce(&d)).await;
    let h = app.history(&d, 1).await;
    assert_eq!((h[0]["source"].as_str(), h[0]["channel"].as_str()), (Some("hard_bounce"), Some("email")));
    assert!(h[0]["evidence"].as_str().unwrap().contains("5.1.1"));
    assert!(app.held(&contact_channel_hold_key(d.contact, Channel::Email)).await.is_some());
    assert!(app.held(&contact_hold_key(d.contact)).await.is_none());
    let state = app.get_json(firm, &format!("/v1/consent/contacts/{}", d.contact)).await;
    assert_eq!(state["channels"]["email"]["opted_out"], true);
    assert_eq!(state["channels"]["voice"]["opted_out"], false);

    // The one-click link: the gateway wrote the hold and sends the command.
    let e = app.person(firm, "e@client.test").await;
    let revision = app
        .bus
        .holds()
        .hold(&contact_hold_key(e.contact), "opted_out", "unsubscribe:x", chrono::Utc::now())
        .await
        .unwrap();
    let link = ConsentCommand {
        contact_id: e.contact,
        channel: None,
        source: "unsubscribe_link".into(),
        actor: "client".into(),
        reason: "token sha256 abc123".into(),
        hold_revision: Some(revision),
    };
    app.command(firm, command::CONSENT_OPT_OUT, link).await;
    let h = app.history(&e, 1).await;
    assert_eq!((h[0]["source"].as_str(), h[0]["actor"].as_str()), (Some("unsubscribe_link"), Some("client")));
    assert!(h[0]["evidence"].as_str().unwrap().contains("abc123"));
    assert_eq!(h[0]["hold_revision"], revision, "the gateway's hold is the one recorded");

    // A firm user through the API: the hold is there when the answer comes.
    let f = app.person(firm, "f@client.test").await;
    let r = app
        .post_json(
            firm,
            "/v1/consent/opt-outs",
            json!({"contact_id": f.contact, "channel": "voice", "reason": "asked on the phone"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let entry: Value = r.json().await.unwrap();
    assert_eq!((entry["source"].as_str(), entry["actor"].as_str()), (Some("firm_user"), Some("dana@acme.test")));
    assert_eq!(entry["channel"], "voice");
    let held = app.held(&contact_channel_hold_key(f.contact, Channel::Voice)).await;
    assert_eq!(held, entry["hold_revision"].as_u64());

    // An unmatched opt-out names nobody: nothing recorded, nothing held.
    let mut stray = classified(&a, ReplyKind::Reply, Some(ReplyIntent::OptOut), "unsubscribe");
    stray.contact_id = None;
    stray.client_id = None;
    app.publish(arflow_contracts::subjects::reply::CLASSIFIED, firm, stray.reply_id, stray).await;
    // Other intents are not consent.
    app.reply(&a, classified(&a, ReplyKind::Reply, Some(ReplyIntent::PromiseToPay), "we'll pay friday")).await;

    // The CSV import is tested with the suppression list below; every event, once each:
    let expected = [
        (&a, "email_reply", Value::Null),
        (&b, "call_request", Value::Null),
        (&t, "sms_stop", Value::Null),
        (&l, "email_reply", Value::Null),
        (&c, "spam_complaint", Value::Null),
        (&d, "hard_bounce", json!("email")),
        (&e, "unsubscribe_link", Value::Null),
        (&f, "firm_user", json!("voice")),
    ];
    for (p, source, channel) in expected {
        let events = common::eventually("consent event", || async {
            let ev = app.consent_events(p.contact).await;
            (!ev.is_empty()).then_some(ev)
        })
        .await;
        assert_eq!(events.len(), 1, "{source}");
        assert_eq!(events[0].kind, "consent.opted_out");
        assert_eq!(events[0].data["source"], source);
        assert_eq!(events[0].data["channel"], channel);
        assert_eq!(events[0].data["client_id"], p.client.to_string());
    }
    // Drained: the redelivered reply, the stray, the unsure reply and the promise added nothing.
    let ledger = app.get_json(firm, "/v1/consent/ledger?limit=100").await;
    assert_eq!(ledger["data"].as_array().unwrap().len(), 8);
    assert!(app.dead_letters().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_opt_in_needs_a_firm_users_reason_and_releases_only_its_channels() {
    let app = TestApp::spawn().await;
    let firm = Uuid::now_v7();
    let p = app.person(firm, "jane@client.test").await;
    let r =
        app.post_json(firm, "/v1/consent/opt-outs", json!({"contact_id": p.contact, "reason": "client asked"})).await;
    assert_eq!(r.status(), 201);
    assert!(app.held(&contact_hold_key(p.contact)).await.is_some());
    // Asked again: recorded (evidence matters), no second event.
    let again: Value = app
        .post_json(firm, "/v1/consent/opt-outs", json!({"contact_id": p.contact, "channel": "email"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["changed"], false);

    let no_reason = app.post_json(firm, "/v1/consent/opt-ins", json!({"contact_id": p.contact, "reason": "  "})).await;
    assert_eq!(no_reason.status(), 422);
    let problem: Value = no_reason.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("/validation"));
    // Only a firm user opts a contact back in: a command from the link is dead-lettered.
    let forged = ConsentCommand {
        contact_id: p.contact,
        channel: None,
        source: "unsubscribe_link".into(),
        actor: "client".into(),
        reason: "resubscribe".into(),
        hold_revision: None,
    };
    app.command(firm, command::CONSENT_OPT_IN, forged).await;
    common::eventually("dead letter", || async { (!app.dead_letters().await.is_empty()).then_some(()) }).await;
    assert!(app.held(&contact_hold_key(p.contact)).await.is_some());

    // Email back on with a reason: voice and SMS stay held under their own keys.
    let r = app
        .post_json(
            firm,
            "/v1/consent/opt-ins",
            json!({"contact_id": p.contact, "channel": "email", "reason": "client called to re-subscribe to email"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let entry: Value = r.json().await.unwrap();
    assert_eq!((entry["action"].as_str(), entry["changed"].as_bool()), (Some("opt_in"), Some(true)));
    assert!(app.held(&contact_hold_key(p.contact)).await.is_none());
    assert!(app.held(&contact_channel_hold_key(p.contact, Channel::Email)).await.is_none());
    assert!(app.held(&contact_channel_hold_key(p.contact, Channel::Voice)).await.is_some());
    assert!(app.held(&contact_channel_hold_key(p.contact, Channel::Sms)).await.is_some());
    let claim = app.bus.holds().claim(&contact_hold_key(p.contact), "email:test", chrono::Utc::now()).await.unwrap();
    assert!(matches!(claim, arflow_bus::Claim::Granted { .. }), "email can be sent again");

    let state = app.get_json(firm, &format!("/v1/consent/contacts/{}", p.contact)).await;
    assert_eq!(state["channels"]["email"]["opted_out"], false);
    assert_eq!(state["channels"]["voice"]["opted_out"], true);
    assert_eq!(state["history"].as_array().unwrap().len(), 3);
    let events = common::eventually("two consent events", || async {
        let ev = app.consent_events(p.contact).await;
        (ev.len() >= 2).then_some(ev)
    })
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["consent.opted_out", "consent.opted_in"]);
    assert_eq!(events[1].data["channel"], "email");
    assert_eq!(events[1].data["evidence"], "client called to re-subscribe to email");
    app.stop().await;
}

/// An opt-out that arrives while a firm user's opt-in holds the contact's lock writes its hold
/// at once; the opt-in, recorded first, must not delete that hold on its way out (the opt-out is
/// recorded after it, and no send may be claimed after its hold).
#[tokio::test]
async fn an_opt_in_does_not_release_the_hold_of_an_opt_out_waiting_behind_it() {
    use futures::TryStreamExt;
    let app = TestApp::spawn().await;
    let firm = Uuid::now_v7();
    let p = app.person(firm, "race@client.test").await;
    let r = app.post_json(firm, "/v1/consent/opt-outs", json!({"contact_id": p.contact, "reason": "asked"})).await;
    assert_eq!(r.status(), 201);
    let key = contact_hold_key(p.contact);
    let first = app.held(&key).await.unwrap();

    // The contact's lock, taken here, so the opt-in and then the opt-out queue behind it in that order.
    let mut lock = app.pool.acquire().await.unwrap();
    let lock_key = arflow_optout::store::lock_key(p.contact);
    sqlx::query("SELECT pg_advisory_lock($1)").bind(lock_key).execute(&mut *lock).await.unwrap();
    let waiting = |n: i64| {
        let pool = app.pool.clone();
        async move {
            let w: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (w >= n).then_some(())
        }
    };
    let opt_in = app
        .as_firm(reqwest::Method::POST, firm, "/v1/consent/opt-ins")
        .json(&json!({"contact_id": p.contact, "reason": "client called to resubscribe"}))
        .send();
    let opt_in = tokio::spawn(opt_in);
    common::eventually("the opt-in waiting for the lock", || waiting(1)).await;
    let opt_out = app
        .as_firm(reqwest::Method::POST, firm, "/v1/consent/opt-outs")
        .json(&json!({"contact_id": p.contact, "reason": "changed their mind again"}))
        .send();
    let opt_out = tokio::spawn(opt_out);
    let hold =
        common::eventually("the second opt-out's hold", || async { app.held(&key).await.filter(|r| *r != first) })
            .await;
    common::eventually("the opt-out waiting for the lock", || waiting(2)).await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(lock_key).execute(&mut *lock).await.unwrap();
    assert_eq!(opt_in.await.unwrap().unwrap().status(), 201);
    assert_eq!(opt_out.await.unwrap().unwrap().status(), 201);

    // From the second hold on, the key was never without it: no claim could be granted.
    let kv = async_nats::jetstream::new(async_nats::connect(app.nats.url()).await.unwrap())
        .get_key_value(arflow_contracts::streams::HOLDS_BUCKET)
        .await
        .unwrap();
    let history: Vec<_> = kv.history(&key).await.unwrap().try_collect().await.unwrap();
    for e in history.iter().filter(|e| e.revision >= hold) {
        let value: Option<arflow_bus::HoldValue> = serde_json::from_slice(&e.value).ok();
        assert!(
            e.operation == async_nats::jetstream::kv::Operation::Put
                && matches!(value, Some(arflow_bus::HoldValue::Held { .. })),
            "{key} at revision {} after the hold {hold}: {:?} {value:?}",
            e.revision,
            e.operation
        );
    }
    let h = app.history(&p, 3).await;
    let actions: Vec<&str> = h.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["opt_out", "opt_in", "opt_out"]);
    assert_eq!(h[2]["hold_revision"].as_u64(), Some(hold));
    let state = app.get_json(firm, &format!("/v1/consent/contacts/{}", p.contact)).await;
    assert_eq!(state["channels"]["email"]["opted_out"], true);
    drop(lock);
    app.stop().await;
}

/// A suppression list of thousands of contacts (up to `import_max_rows`): more contact locks
/// than one PostgreSQL transaction can take with the default `max_locks_per_transaction`.
#[tokio::test]
async fn a_suppression_list_larger_than_one_transactions_locks_is_imported() {
    let app = TestApp::spawn().await;
    let (firm, client) = (Uuid::now_v7(), Uuid::now_v7());
    let n = 15_000;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO optout.contacts (contact_id, firm_id, client_id, version, name, email) \
         SELECT gen_random_uuid(), $1, $2, 1, 'c' || g, 'c' || g || '@client.test' FROM generate_series(1, $3) g \
         RETURNING contact_id",
    )
    .bind(firm)
    .bind(client)
    .bind(n)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let csv: String =
        std::iter::once("contact_id".to_string()).chain(ids.iter().map(Uuid::to_string)).collect::<Vec<_>>().join("\n");
    let r = app
        .as_firm(reqwest::Method::POST, firm, "/v1/consent/suppressions.csv")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let report: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["imported"], n);
    assert!(app.held(&contact_hold_key(ids[n as usize - 1])).await.is_some());
    app.stop().await;
}

#[tokio::test]
async fn the_ledger_is_append_only_and_firms_are_isolated() {
    let app = TestApp::spawn().await;
    let (firm, other) = (Uuid::now_v7(), Uuid::now_v7());
    let p = app.person(firm, "ap@client.test").await;
    for _ in 0..3 {
        let r = app.post_json(firm, "/v1/consent/opt-outs", json!({"contact_id": p.contact})).await;
        assert_eq!(r.status(), 201);
    }
    for sql in [
        "UPDATE optout.consent_ledger SET evidence = 'rewritten'",
        "DELETE FROM optout.consent_ledger",
        "TRUNCATE optout.consent_ledger",
    ] {
        let err = sqlx::query(sql).execute(&app.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }

    // Another firm cannot see, opt out or opt in this contact.
    let r = app.post_json(other, "/v1/consent/opt-outs", json!({"contact_id": p.contact})).await;
    assert_eq!(r.status(), 404);
    let r = app.post_json(other, "/v1/consent/opt-ins", json!({"contact_id": p.contact, "reason": "x"})).await;
    assert_eq!(r.status(), 404);
    let r =
        app.as_firm(reqwest::Method::GET, other, &format!("/v1/consent/contacts/{}", p.contact)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.get_json(other, "/v1/consent/ledger").await["data"].as_array().unwrap().len(), 0);
    // ... nor through a command carrying its own firm id: dead-lettered, nothing recorded.
    let cmd = ConsentCommand {
        contact_id: p.contact,
        channel: None,
        source: "firm_user".into(),
        actor: "mallory".into(),
        reason: "x".into(),
        hold_revision: None,
    };
    app.command(other, command::CONSENT_OPT_OUT, cmd).await;
    let dead = common::eventually("dead letter", || async {
        let d = app.dead_letters().await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert!(dead[0].contains("another firm"), "{}", dead[0]);
    // Without the gateway's token nothing is answered.
    let r =
        app.http.get(app.url("/v1/consent/ledger")).header("x-arflow-firm-id", firm.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Pagination, newest first.
    let page = app.get_json(firm, "/v1/consent/ledger?limit=2").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app.get_json(firm, &format!("/v1/consent/ledger?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let changed: Vec<bool> = [&page["data"][0], &page["data"][1], &rest["data"][0]]
        .iter()
        .map(|e| e["changed"].as_bool().unwrap())
        .collect();
    assert_eq!(changed, [false, false, true], "only the first changed the state");
    assert_eq!(app.consent_events(p.contact).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_suppression_list_round_trips_through_csv() {
    let app = TestApp::spawn().await;
    let firm = Uuid::now_v7();
    let a = app.person(firm, "a@client.test").await;
    let b = app.person(firm, "B@Client.test").await;
    let c = app.person(firm, "c@client.test").await;
    app.post_json(firm, "/v1/consent/opt-outs", json!({"contact_id": a.contact, "reason": "asked"})).await;
    app.reply(&c, hard_bounce(&c)).await;
    app.history(&c, 1).await;

    let r = app.as_firm(reqwest::Method::GET, firm, "/v1/consent/suppressions.csv").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let exported = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(exported.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["email", "phone", "contact_id", "client_id", "channel", "source", "evidence", "opted_out_at"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let summary: Vec<(String, String, String)> =
        rows.iter().map(|r| (r[0].to_string(), r[4].to_string(), r[5].to_string())).collect();
    assert_eq!(
        summary,
        [
            ("a@client.test".into(), "email".into(), "firm_user".into()),
            ("a@client.test".into(), "voice".into(), "firm_user".into()),
            ("a@client.test".into(), "sms".into(), "firm_user".into()),
            ("c@client.test".into(), "email".into(), "hard_bounce".into()),
        ]
    );

    // The export imported back changes nothing; new rows by address (any case) are imported;
    // unknown and malformed rows are reported with their line.
    let mut import = exported.clone();
    import.push_str(",,,,email,,from our old system,\n");
    import.push_str("b@client.TEST,,,,,,from our old system,\n");
    import.push_str("nobody@else.test,,,,,,,\n");
    import.push_str(&format!(",,{},,,,,\n", Uuid::now_v7()));
    import.push_str(",,not-a-uuid,,,,,\n");
    import.push_str(&format!("{},,,,fax,,,\n", c.email));
    let r = app
        .as_firm(reqwest::Method::POST, firm, "/v1/consent/suppressions.csv")
        .header("content-type", "text/csv")
        .body(import)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["already_opted_out"], 4, "{report}");
    let unknown = report["unknown"].as_array().unwrap();
    assert_eq!(unknown.len(), 2, "{report}");
    assert_eq!(unknown[0]["email"], "nobody@else.test");
    assert_eq!(unknown[0]["line"], 8);
    assert!(unknown[1]["contact_id"].is_string());
    let invalid = report["invalid"].as_array().unwrap();
    let lines: Vec<u64> = invalid.iter().map(|i| i["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [6, 10, 11], "{report}");

    let h = app.history(&b, 1).await;
    assert_eq!((h[0]["source"].as_str(), h[0]["actor"].as_str()), (Some("csv_import"), Some("dana@acme.test")));
    assert!(h[0]["evidence"].as_str().unwrap().starts_with("from our old system"));
    assert!(app.held(&contact_hold_key(b.contact)).await.is_some());
    let events = common::eventually("b's event", || async {
        let ev = app.consent_events(b.contact).await;
        (!ev.is_empty()).then_some(ev)
    })
    .await;
    assert_eq!(events[0].data["source"], "csv_import");

    // A file without either column is refused as a whole.
    let r = app
        .as_firm(reqwest::Method::POST, firm, "/v1/consent/suppressions.csv")
        .body("name\nx\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    app.stop().await;
}

/// An opt-in whose NATS calls hang (the server is down) and whose caller gives up holds no
/// database lock meanwhile: the contact's lock is a transaction lock, released at the commit,
/// before any NATS call, so later opt-outs for that contact never queue behind it.
#[tokio::test]
async fn an_opt_in_cut_off_while_nats_is_down_holds_no_lock_on_the_contact() {
    let mut app = TestApp::spawn().await;
    let firm = Uuid::now_v7();
    let p = app.person(firm, "cutoff@client.test").await;
    let r = app.post_json(firm, "/v1/consent/opt-outs", json!({"contact_id": p.contact, "reason": "asked"})).await;
    assert_eq!(r.status(), 201);
    app.nats.kill();
    let cut = app
        .as_firm(reqwest::Method::POST, firm, "/v1/consent/opt-ins")
        .json(&json!({"contact_id": p.contact, "reason": "client called to resubscribe"}))
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await;
    assert!(cut.is_err() || !cut.unwrap().status().is_success(), "the holds cannot be released without NATS");
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(locks, 0, "no advisory lock may outlive its transaction");
    app.nats.restart();
}
