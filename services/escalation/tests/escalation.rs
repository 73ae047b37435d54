//! The escalation service on the real stack: a nats-server, a fresh database, the Application
//! in-process, its HTTP API called with the gateway's headers. Events are published as the
//! gateway, eligibility, the email service and the scheduler publish them; cases are read back
//! from the ESCALATION stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    AllContactsOptedOut, CadenceExhausted, CaseActionKind, CaseStatus, ClientUpserted, Consent, ContactUpserted,
    EscalationCase, EscalationReason, FirmUpdated, HaltReason, IntentScore, InvoiceHalted, InvoiceStatus,
    InvoiceUpserted, MarkUncollectible, PromiseBroken, ReplyClassified, ReplyIntent, ReplyKind, StripeCommandFailed,
    Tier,
};
use arflow_contracts::{Envelope, subjects};
use arflow_core::{Channel, Currency, SendWindow};
use arflow_escalation::{Application, Config};
use arflow_runtime::{ClockMode, ClockSettings, Metrics, NatsSettings};
use arflow_testkit::{TestDb, TestNats};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOKEN: &str = "internal-token-for-tests";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
}

struct TestApp {
    _nats: TestNats,
    _db: TestDb,
    bus: Bus,
    port: u16,
    firm: Uuid,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), arflow_service::StartupError>>,
}

/// A client with a primary contact and an invoice due 2026-03-01 (9 days past due at t0).
struct Setup {
    client: ClientUpserted,
    contact: ContactUpserted,
    invoice: InvoiceUpserted,
}

impl TestApp {
    async fn spawn() -> TestApp {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let mut config: Config = arflow_runtime::config::load_defaults(include_str!("../config/default.toml")).unwrap();
        config.nats.url = nats.url();
        config.database.url = Some(db.url().into());
        config.http.port = 0;
        config.clock = ClockSettings { mode: ClockMode::Simulated, start: Some(t0()) };
        config.internal.token = TOKEN.to_string().into();
        config.escalation.public_base_url = "https://arflow.test".into();
        config.escalation.poll_interval_secs = 1;
        let shutdown = CancellationToken::new();
        let app = Application::build(config, shutdown.clone()).await.unwrap();
        let port = app.port();
        let task = tokio::spawn(app.run());
        let settings = NatsSettings::at(nats.url());
        let bus = Bus::connect(&settings, "gateway", Metrics::new("test")).await.unwrap();
        TestApp { _nats: nats, _db: db, bus, port, firm: Uuid::now_v7(), http: reqwest::Client::new(), shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    async fn publish<T: Serialize>(&self, kind: &str, subject_id: Uuid, data: T) -> Envelope<T> {
        let env = Envelope::new(kind, "gateway", t0(), self.firm, subject_id, None, data);
        self.publish_envelope(&env, &format!("test:{}", env.id)).await;
        env
    }

    async fn publish_envelope<T: Serialize>(&self, env: &Envelope<T>, msg_id: &str) {
        self.bus.publish_event(&subjects::subject(&env.kind, env.firm_id), msg_id, env).await.unwrap();
    }

    /// Firm, client, contact and invoice records, as the gateway publishes them.
    async fn setup(&self) -> Setup {
        let firm = FirmUpdated {
            firm_id: self.firm,
            name: "Acme CPA".into(),
            sender_email: "ar@acme.test".into(),
            stripe_connected: true,
            timezone: "America/New_York".into(),
            min_amounts: BTreeMap::new(),
            email_window: SendWindow::business_hours(),
            call_window: None,
            version: 1,
        };
        self.publish(subjects::billing::FIRM_UPDATED, self.firm, firm).await;
        self.records().await
    }

    /// Another client, contact and invoice of the same firm.
    async fn records(&self) -> Setup {
        let client = ClientUpserted {
            client_id: Uuid::now_v7(),
            stripe_customer_id: Some("cus_1".into()),
            name: "Globex".into(),
            tier: Tier::LongStanding,
            timezone: Some("America/Los_Angeles".into()),
            excluded: false,
            version: 1,
        };
        let contact = ContactUpserted {
            contact_id: Uuid::now_v7(),
            client_id: client.client_id,
            name: "Hank Scorpio".into(),
            email: Some("hank@globex.test".into()),
            phone: Some("+15555550100".into()),
            timezone: None,
            primary: true,
            consent: Consent { email: true, voice: true, sms: false },
            version: 1,
        };
        let invoice = InvoiceUpserted {
            invoice_id: Uuid::now_v7(),
            client_id: client.client_id,
            stripe_invoice_id: format!("in_{}", Uuid::now_v7().simple()),
            number: Some("INV-0001".into()),
            currency: Currency::parse("USD").unwrap(),
            amount_due: Decimal::new(320000, 2),
            amount_remaining: Decimal::new(120000, 2),
            due_date: NaiveDate::from_ymd_opt(2026, 3, 1),
            status: InvoiceStatus::Open,
            hosted_invoice_url: Some("https://pay.test/in_123".into()),
            excluded: false,
            disputed: false,
            version: 1,
        };
        self.publish(subjects::billing::CLIENT_UPSERTED, client.client_id, client.clone()).await;
        self.publish(subjects::billing::CONTACT_UPSERTED, contact.contact_id, contact.clone()).await;
        self.publish(subjects::billing::INVOICE_UPSERTED, invoice.invoice_id, invoice.clone()).await;
        Setup { client, contact, invoice }
    }

    async fn reply(
        &self,
        s: &Setup,
        intent: ReplyIntent,
        channel: Channel,
        evidence: &str,
    ) -> Envelope<ReplyClassified> {
        let r = classified(s, intent, channel, evidence);
        self.publish(subjects::reply::CLASSIFIED, r.reply_id, r).await
    }

    async fn stream(&self, name: &str) -> Vec<RawEnvelope> {
        let stream = self.bus.js.get_stream(name).await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut out = vec![];
        for seq in 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push(RawEnvelope::parse(&m.payload).unwrap());
            }
        }
        out
    }

    /// Every case event of the firm, in order.
    async fn cases(&self) -> Vec<(String, EscalationCase)> {
        self.stream("ESCALATION")
            .await
            .into_iter()
            .filter(|e| e.firm_id == self.firm)
            .map(|e| (e.kind.clone(), e.data_as().unwrap()))
            .collect()
    }

    /// Waits until `n` case events exist, then a little longer to see that no more follow.
    async fn wait_cases(&self, n: usize) -> Vec<(String, EscalationCase)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.cases().await;
            if all.len() >= n {
                self.settle().await;
                let all = self.cases().await;
                assert_eq!(
                    all.len(),
                    n,
                    "{:#?}",
                    all.iter().map(|(k, c)| (k, c.reason, c.version)).collect::<Vec<_>>()
                );
                return all;
            }
            assert!(Instant::now() < deadline, "{} case events, wanted {n}", all.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the service's consumers have nothing pending.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet = 0;
        loop {
            let mut busy = 0;
            for (stream, consumer) in [
                ("BILLING", "escalation-billing"),
                ("ELIGIBILITY", "escalation-eligibility"),
                ("REPLY", "escalation-replies"),
                ("OUTREACH", "escalation-outreach"),
            ] {
                let s = self.bus.js.get_stream(stream).await.unwrap();
                match s.consumer_info(consumer).await {
                    Ok(info) => busy += info.num_pending + info.num_ack_pending as u64,
                    Err(_) => busy += 1,
                }
            }
            quiet = if busy == 0 { quiet + 1 } else { 0 };
            if quiet >= 4 {
                return;
            }
            assert!(Instant::now() < deadline, "escalation still busy: {busy}");
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }

    async fn call(&self, firm: Uuid, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.port))
            .header("x-arflow-internal-token", TOKEN)
            .header("x-arflow-firm-id", firm.to_string())
            .header("x-arflow-actor", "pat@acme.test");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn act(&self, case_id: Uuid, body: Value) -> (u16, Value) {
        self.call(self.firm, reqwest::Method::POST, &format!("/v1/escalations/{case_id}/actions"), Some(body)).await
    }

    async fn set_clock(&self, at: DateTime<Utc>) {
        arflow_bus::clock::set(&self.bus, at).await.unwrap();
    }
}

/// A reply to an email about `s.invoice`, matched and classified, as the email service publishes it.
fn classified(s: &Setup, intent: ReplyIntent, channel: Channel, evidence: &str) -> ReplyClassified {
    ReplyClassified {
        reply_id: Uuid::now_v7(),
        channel,
        kind: ReplyKind::Reply,
        intent: Some(intent),
        promised_date: None,
        evidence: evidence.into(),
        sure: true,
        confidence: 1.0,
        needs_review: false,
        scores: vec![],
        labelled_by: None,
        client_text: format!("Hi, {evidence}. Thanks, Hank"),
        invoice_id: Some(s.invoice.invoice_id),
        contact_id: Some(s.contact.contact_id),
        client_id: Some(s.client.client_id),
        matched_by: Some("reply_token".into()),
        answered_message_id: None,
        step: Some("overdue_7".into()),
        from: Some("hank@globex.test".into()),
        subject: Some("Re: Invoice INV-0001".into()),
        received_at: t0(),
        reference_date: t0().date_naive(),
        bounce: None,
        action: String::new(),
    }
}

#[tokio::test]
async fn replies_open_cases_with_the_whole_payload_and_a_repeat_notes_the_open_case() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let dispute = app.reply(&s, ReplyIntent::Dispute, Channel::Email, "the extra hours were never approved").await;
    let events = app.wait_cases(1).await;
    let (kind, c) = &events[0];
    assert_eq!(kind, subjects::escalation::OPENED);
    assert_eq!((c.version, c.status, c.reason), (1, CaseStatus::Open, EscalationReason::Dispute));
    assert_eq!(c.evidence, "the extra hours were never approved");
    assert_eq!(
        (c.firm.firm_id, c.firm.name.as_str(), c.firm.timezone.as_str()),
        (app.firm, "Acme CPA", "America/New_York")
    );
    assert_eq!(
        (c.client.client_id, c.client.name.as_str(), c.client.tier),
        (s.client.client_id, "Globex", Tier::LongStanding)
    );
    let contact = c.contact.as_ref().unwrap();
    assert_eq!((contact.contact_id, contact.email.as_deref()), (s.contact.contact_id, Some("hank@globex.test")));
    assert_eq!(contact.phone.as_deref(), Some("+15555550100"));
    let i = c.invoice.as_ref().unwrap();
    assert_eq!((i.invoice_id, i.number.as_deref(), i.currency.code()), (s.invoice.invoice_id, Some("INV-0001"), "USD"));
    assert_eq!((i.amount_due, i.amount_remaining), (Decimal::new(320000, 2), Decimal::new(120000, 2)));
    assert_eq!((i.due_date, i.days_past_due), (NaiveDate::from_ymd_opt(2026, 3, 1), 9));
    assert_eq!(i.stripe_invoice_id, s.invoice.stripe_invoice_id);
    assert_eq!((c.opened_at, c.updated_at, c.resolved_at), (t0(), t0(), None));
    assert_eq!((c.action.action, c.action.actor.as_str()), (CaseActionKind::Opened, "arflow"));
    assert_eq!(c.action.note, "Hi, the extra hours were never approved. Thanks, Hank");
    let activity = c.latest_activity.as_ref().unwrap();
    assert_eq!(activity.kind, "reply.classified");
    assert!(activity.summary.contains("the extra hours were never approved"), "{}", activity.summary);
    assert_eq!(c.links.case, format!("https://arflow.test/v1/escalations/{}", c.case_id));
    assert_eq!(
        c.links.invoice_activity.as_deref(),
        Some(format!("https://arflow.test/v1/invoices/{}/activity", s.invoice.invoice_id).as_str())
    );
    assert_eq!(c.links.hosted_invoice.as_deref(), Some("https://pay.test/in_123"));
    let case_id = c.case_id;

    // The same dispute again: a note on the open case, not a second case.
    app.reply(&s, ReplyIntent::Dispute, Channel::Email, "we will not pay for those hours").await;
    let events = app.wait_cases(2).await;
    let (kind, c) = &events[1];
    assert_eq!((kind.as_str(), c.case_id, c.version), (subjects::escalation::UPDATED, case_id, 2));
    assert_eq!(c.action.action, CaseActionKind::Note);
    assert!(c.action.note.contains("we will not pay for those hours"), "{}", c.action.note);
    // Redelivered (a new Nats-Msg-Id, the same event id): the inbox makes it harmless.
    app.publish_envelope(&dispute, "test:redelivery").await;
    // A caller asks for a person during a call; then the same client asks a question by email.
    app.reply(&s, ReplyIntent::Question, Channel::Voice, "can I talk to someone").await;
    let events = app.wait_cases(3).await;
    assert_eq!(events[2].1.reason, EscalationReason::PersonRequested);
    app.reply(&s, ReplyIntent::Question, Channel::Email, "can you send the timesheets").await;
    let events = app.wait_cases(4).await;
    assert_eq!((events[3].1.case_id, events[3].1.version), (events[2].1.case_id, 2));
    // Wrong contact and a payment plan are the same family (a person must answer the client).
    let other = app.records().await;
    app.settle().await;
    app.reply(&other, ReplyIntent::WrongContact, Channel::Email, "I no longer work there").await;
    app.reply(&other, ReplyIntent::PaymentPlan, Channel::Email, "can we pay in three instalments").await;
    let events = app.wait_cases(6).await;
    assert_eq!(events[4].1.reason, EscalationReason::WrongContact);
    assert_eq!((events[5].0.as_str(), events[5].1.version), (subjects::escalation::UPDATED, 2));

    // The invoice is paid: its cases resolve themselves.
    let paid = InvoiceHalted {
        invoice_id: s.invoice.invoice_id,
        client_id: s.client.client_id,
        stripe_invoice_id: s.invoice.stripe_invoice_id.clone(),
        reason: HaltReason::Paid,
        stripe_event_id: "evt_paid".into(),
        hold_revision: 7,
        version: 2,
    };
    app.publish(subjects::billing::INVOICE_PAID, s.invoice.invoice_id, paid).await;
    let events = app.wait_cases(8).await;
    for (kind, c) in &events[6..] {
        assert_eq!(
            (kind.as_str(), c.status, c.action.action),
            (subjects::escalation::RESOLVED, CaseStatus::Resolved, CaseActionKind::Paid)
        );
        assert_eq!(c.resolved_at, Some(t0()));
    }
    app.stop().await;
}

#[tokio::test]
async fn automation_triggers_open_cases_once() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    // The scheduler says the cadence ran out.
    let exhausted = CadenceExhausted {
        invoice_id: s.invoice.invoice_id,
        last_step: "overdue_30".into(),
        last_step_id: Uuid::now_v7(),
        fired_at: t0(),
        steps_fired: 6,
        policy_id: Uuid::now_v7(),
        policy_version: 1,
    };
    app.publish(subjects::outreach::CADENCE_EXHAUSTED, s.invoice.invoice_id, exhausted).await;
    let events = app.wait_cases(1).await;
    assert_eq!(events[0].1.reason, EscalationReason::CadenceExhausted);
    assert!(events[0].1.evidence.contains("6 steps sent, the last step overdue_30"), "{}", events[0].1.evidence);

    // A promise broken once is recorded; the second opens a case (another invoice: the first
    // already has an active case of that family).
    let b = app.records().await;
    for n in 0..2 {
        let p = PromiseBroken {
            invoice_id: b.invoice.invoice_id,
            client_id: b.client.client_id,
            promised_date: NaiveDate::from_ymd_opt(2026, 3, 5 + n),
            paused_until: t0() + chrono::Duration::days(i64::from(n)),
            evidence: "we'll pay Friday".into(),
            reply_id: Some(Uuid::now_v7()),
        };
        let env = app.publish(subjects::eligibility::PROMISE_BROKEN, b.invoice.invoice_id, p).await;
        if n == 0 {
            app.settle().await;
            assert_eq!(app.cases().await.len(), 1);
            // Redelivered: still counted once.
            app.publish_envelope(&env, "test:again").await;
            app.settle().await;
        }
    }
    let events = app.wait_cases(2).await;
    assert_eq!(events[1].1.reason, EscalationReason::PromiseBrokenTwice);
    assert!(events[1].1.evidence.starts_with("2 payment promises broken"), "{}", events[1].1.evidence);
    assert_eq!(events[1].1.latest_activity.as_ref().unwrap().kind, "eligibility.promise_broken");

    // Every contact of a client opted out: one case per open invoice named.
    let c = app.records().await;
    let warning = AllContactsOptedOut {
        client_id: c.client.client_id,
        client_name: "Globex".into(),
        invoice_ids: vec![c.invoice.invoice_id],
    };
    app.publish(subjects::eligibility::ALL_CONTACTS_OPTED_OUT, c.client.client_id, warning).await;
    let events = app.wait_cases(3).await;
    assert_eq!(events[2].1.reason, EscalationReason::AllContactsOptedOut);
    assert_eq!(events[2].1.invoice.as_ref().unwrap().invoice_id, c.invoice.invoice_id);
    assert!(events[2].1.evidence.ends_with("no channel is left on any contact"), "{}", events[2].1.evidence);

    // Days past due beyond the firm's threshold (set to 30 through the API), on the simulated
    // clock: due 1 March, 30 days past due on 31 March, beyond it on 1 April (New York).
    let (status, body) = app
        .call(app.firm, reqwest::Method::PUT, "/v1/escalations/settings", Some(json!({"days_past_due_threshold": 30})))
        .await;
    assert_eq!((status, body["days_past_due_threshold"].as_i64()), (200, Some(30)));
    app.set_clock(Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap()).await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.cases().await.len(), 3, "opened at the threshold, not beyond it");
    app.set_clock(Utc.with_ymd_and_hms(2026, 4, 1, 15, 0, 0).unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let dpd = loop {
        let dpd: Vec<EscalationCase> = app
            .cases()
            .await
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| c.reason == EscalationReason::DaysPastDue)
            .collect();
        if !dpd.is_empty() {
            break dpd;
        }
        assert!(Instant::now() < deadline, "no days-past-due case");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Only the invoice without an active case of the collection family opens one (c: its case is
    // `unreachable`); a and b get a note on their active collection case instead.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = app.cases().await;
    assert_eq!(dpd[0].invoice.as_ref().unwrap().days_past_due, 31);
    let notes = all.iter().filter(|(_, c)| c.action.action == CaseActionKind::Note).count();
    assert_eq!(
        (dpd.len(), notes),
        (1, 2),
        "{:#?}",
        all.iter().map(|(k, c)| (k, c.reason, c.action.action)).collect::<Vec<_>>()
    );
    // The clock moves on: nothing escalates twice for the same reason.
    app.set_clock(Utc.with_ymd_and_hms(2026, 4, 20, 15, 0, 0).unwrap()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.cases().await.len(), all.len());
    app.stop().await;
}

#[tokio::test]
async fn a_firm_user_acts_on_cases_with_who_and_why_and_another_firm_sees_nothing() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.settle().await;
    let post = reqwest::Method::POST;
    // A manual case needs a note.
    let (status, _) =
        app.call(app.firm, post.clone(), "/v1/escalations", Some(json!({"invoice_id": s.invoice.invoice_id}))).await;
    assert_eq!(status, 422);
    let (status, body) = app
        .call(
            app.firm,
            post.clone(),
            "/v1/escalations",
            Some(json!({"invoice_id": s.invoice.invoice_id, "note": "client called the partner"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let case_id: Uuid = body["case_id"].as_str().unwrap().parse().unwrap();
    assert_eq!((body["reason"].as_str(), body["action"]["actor"].as_str()), (Some("manual"), Some("pat@acme.test")));

    // Another firm cannot see or act on it.
    let other = Uuid::now_v7();
    let (status, _) = app.call(other, reqwest::Method::GET, &format!("/v1/escalations/{case_id}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            other,
            post.clone(),
            &format!("/v1/escalations/{case_id}/actions"),
            Some(json!({"action": "resolve", "note": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, page) = app.call(other, reqwest::Method::GET, "/v1/escalations", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 0);
    // Without the gateway's token: 401.
    let res = app.http.get(format!("http://127.0.0.1:{}/v1/escalations", app.port)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);

    // Pause until a date: paused; when the date comes, automation resumes by itself.
    let (status, _) = app.act(case_id, json!({"action": "pause", "note": "no note"})).await;
    assert_eq!(status, 200);
    let (status, _) = app.act(case_id, json!({"action": "note"})).await;
    assert_eq!(status, 422, "a note is required");
    let until = t0() + chrono::Duration::days(3);
    let (status, body) =
        app.act(case_id, json!({"action": "pause", "note": "client is travelling", "paused_until": until})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("paused")));
    app.set_clock(t0() + chrono::Duration::days(4)).await;
    let events = app.wait_cases(4).await;
    let (kind, c) = &events[3];
    assert_eq!(
        (kind.as_str(), c.status, c.action.action),
        (subjects::escalation::RESOLVED, CaseStatus::Resolved, CaseActionKind::ContinueAutomation)
    );
    assert_eq!(c.action.actor, "arflow");
    let (status, _) = app.act(case_id, json!({"action": "resolve", "note": "again"})).await;
    assert_eq!(status, 409, "a resolved case takes no more actions");

    // A new manual case: referred to an agency with a hand-off summary.
    let (_, body) = app
        .call(
            app.firm,
            post.clone(),
            "/v1/escalations",
            Some(json!({"invoice_id": s.invoice.invoice_id, "note": "three months late"})),
        )
        .await;
    let second: Uuid = body["case_id"].as_str().unwrap().parse().unwrap();
    let (status, _) = app.act(second, json!({"action": "refer_to_agency", "note": "hand it over"})).await;
    assert_eq!(status, 422, "the agency is required");
    let (status, body) =
        app.act(second, json!({"action": "refer_to_agency", "note": "hand it over", "agency": "Dunning & Co"})).await;
    assert_eq!(
        (status, body["status"].as_str(), body["action"]["agency"].as_str()),
        (200, Some("referred"), Some("Dunning & Co"))
    );
    let (_, detail) = app.call(app.firm, reqwest::Method::GET, &format!("/v1/escalations/{second}"), None).await;
    let actions = detail["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    assert_eq!(
        (actions[1]["actor"].as_str(), actions[1]["note"].as_str()),
        (Some("pat@acme.test"), Some("hand it over"))
    );
    let summary = actions[1]["details"]["summary"].as_str().unwrap();
    assert!(summary.contains("Referral to Dunning & Co from Acme CPA") && summary.contains("INV-0001"), "{summary}");

    // Mark uncollectible: a command for the gateway; Stripe refuses: a note, the case stays.
    let (status, _) = app.act(second, json!({"action": "mark_uncollectible", "note": "agency gave up"})).await;
    assert_eq!(status, 200);
    let (status, _) = app.act(second, json!({"action": "mark_uncollectible", "note": "again"})).await;
    assert_eq!(status, 409, "one request waits for Stripe at a time");
    // The outbox relay publishes after the commit the answer follows: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let commands: Vec<MarkUncollectible> = loop {
        let commands: Vec<MarkUncollectible> = app
            .stream("COMMAND")
            .await
            .into_iter()
            .filter(|e| e.kind == subjects::command::STRIPE_MARK_UNCOLLECTIBLE)
            .map(|e| e.data_as().unwrap())
            .collect();
        if !commands.is_empty() || Instant::now() > deadline {
            break commands;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(commands.len(), 1);
    let cmd = &commands[0];
    assert_eq!((cmd.case_id, cmd.invoice_id, cmd.actor.as_str()), (second, s.invoice.invoice_id, "pat@acme.test"));
    assert_eq!(
        (cmd.stripe_invoice_id.as_str(), cmd.note.as_str()),
        (s.invoice.stripe_invoice_id.as_str(), "agency gave up")
    );
    let refused = StripeCommandFailed {
        command: "mark_uncollectible".into(),
        request_id: cmd.request_id,
        case_id: Some(second),
        invoice_id: s.invoice.invoice_id,
        stripe_invoice_id: s.invoice.stripe_invoice_id.clone(),
        status: Some(400),
        message: "You can only mark an open invoice as uncollectible.".into(),
    };
    app.publish(subjects::billing::STRIPE_COMMAND_FAILED, s.invoice.invoice_id, refused).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, detail) = app.call(app.firm, reqwest::Method::GET, &format!("/v1/escalations/{second}"), None).await;
        let last = detail["actions"].as_array().unwrap().last().unwrap().clone();
        if last["note"].as_str().unwrap().starts_with("Stripe refused") {
            assert_eq!(detail["case"]["status"].as_str(), Some("referred"));
            break;
        }
        assert!(Instant::now() < deadline, "no refusal note: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Asked again, Stripe agrees: the gateway's ingest publishes billing.invoice_uncollectible.
    let (status, _) = app.act(second, json!({"action": "mark_uncollectible", "note": "retry after fixing"})).await;
    assert_eq!(status, 200);
    let halted = InvoiceHalted {
        invoice_id: s.invoice.invoice_id,
        client_id: s.client.client_id,
        stripe_invoice_id: s.invoice.stripe_invoice_id.clone(),
        reason: HaltReason::Uncollectible,
        stripe_event_id: "evt_unc".into(),
        hold_revision: 3,
        version: 5,
    };
    app.publish(subjects::billing::INVOICE_UNCOLLECTIBLE, s.invoice.invoice_id, halted).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, detail) = app.call(app.firm, reqwest::Method::GET, &format!("/v1/escalations/{second}"), None).await;
        if detail["case"]["status"] == "resolved" {
            assert_eq!(detail["case"]["action"]["action"].as_str(), Some("mark_uncollectible"));
            break;
        }
        assert!(Instant::now() < deadline, "not resolved: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The queue, oldest first, paginated.
    let (_, page) = app.call(app.firm, reqwest::Method::GET, "/v1/escalations?status=all&limit=1", None).await;
    assert_eq!(page["data"][0]["case_id"].as_str(), Some(case_id.to_string().as_str()));
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page) = app
        .call(app.firm, reqwest::Method::GET, &format!("/v1/escalations?status=all&limit=1&cursor={cursor}"), None)
        .await;
    assert_eq!(page["data"][0]["case_id"].as_str(), Some(second.to_string().as_str()));
    assert!(page["next_cursor"].is_null());
    let (_, open) = app.call(app.firm, reqwest::Method::GET, "/v1/escalations?status=open", None).await;
    assert_eq!(open["data"].as_array().unwrap().len(), 0);
    app.stop().await;
}

/// An unsure reply about `s.invoice`: the classifier's guess and scores, `needs_review`.
fn unsure(s: &Setup, text: &str) -> ReplyClassified {
    ReplyClassified {
        intent: Some(ReplyIntent::Question),
        evidence: String::new(),
        sure: false,
        confidence: 0.38,
        needs_review: true,
        scores: vec![
            IntentScore { intent: ReplyIntent::Question, score: 0.38 },
            IntentScore { intent: ReplyIntent::OptOut, score: 0.31 },
            IntentScore { intent: ReplyIntent::Acknowledged, score: 0.2 },
        ],
        client_text: text.into(),
        answered_message_id: Some("<rem-1@acme.test>".into()),
        action: "not understood with confidence".into(),
        ..classified(s, ReplyIntent::Question, Channel::Email, text)
    }
}

#[tokio::test]
async fn an_unsure_reply_opens_a_review_case_and_its_label_is_published_as_the_reply() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let text = "Re your note: see the comments from my colleague below, regards";
    let r = unsure(&s, text);
    let sent = app.publish(subjects::reply::CLASSIFIED, r.reply_id, r.clone()).await;
    // A review case, not a question case on the guess; the reviewer sees the text and the scores.
    let events = app.wait_cases(1).await;
    let c = &events[0].1;
    assert_eq!((c.reason, c.status), (EscalationReason::NeedsReview, CaseStatus::Open));
    assert_eq!(c.evidence, text, "no evidence phrase: the client's words");
    assert_eq!(c.action.note, text);
    let review = c.review.as_ref().expect("a review case carries its reply");
    assert_eq!((review.reply_id, review.channel, review.client_text.as_str()), (r.reply_id, Channel::Email, text));
    assert_eq!((review.confidence, review.scores.clone(), review.label.clone()), (0.38, r.scores.clone(), None));
    let case_id = c.case_id;
    let (status, detail) = app.call(app.firm, reqwest::Method::GET, &format!("/v1/escalations/{case_id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(detail["actions"][0]["details"]["cause"]["scores"][1]["intent"], "opt_out", "{detail}");
    // The same reply again (republished): no second case.
    app.publish(subjects::reply::CLASSIFIED, r.reply_id, r.clone()).await;
    app.settle().await;
    assert_eq!(app.cases().await.len(), 1);

    // Refused: resolving without a label, an unknown or missing intent, a date with another intent.
    let (status, body) = app.act(case_id, json!({"action": "resolve", "note": "done"})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app.act(case_id, json!({"action": "label", "intent": "angry"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("opt_out, dispute"), "{body}");
    let (status, _) = app.act(case_id, json!({"action": "label"})).await;
    assert_eq!(status, 422);
    let (status, _) =
        app.act(case_id, json!({"action": "label", "intent": "dispute", "promised_date": "2026-03-20"})).await;
    assert_eq!(status, 422);

    // Labelled opt_out (no note needed): resolved, and the reply republished with the label.
    let (status, body) = app.act(case_id, json!({"action": "label", "intent": "opt_out"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].as_str(), body["action"]["action"].as_str()), (Some("resolved"), Some("label")));
    assert_eq!(body["action"]["actor"], "pat@acme.test");
    assert_eq!(body["review"]["label"]["intent"], "opt_out");
    assert_eq!(body["review"]["label"]["labelled_by"], "pat@acme.test");
    let deadline = Instant::now() + Duration::from_secs(20);
    let labelled = loop {
        let found = app
            .stream("REPLY")
            .await
            .into_iter()
            .find(|e| e.data["labelled_by"].is_string() && e.data["reply_id"] == r.reply_id.to_string());
        if let Some(e) = found {
            break e;
        }
        assert!(Instant::now() < deadline, "the labelled reply was not published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let l: ReplyClassified = labelled.data_as().unwrap();
    assert_eq!((l.intent, l.needs_review, l.sure, l.confidence), (Some(ReplyIntent::OptOut), false, true, 1.0));
    assert_eq!(l.labelled_by.as_deref(), Some("pat@acme.test"));
    assert_eq!((l.invoice_id, l.contact_id, l.client_text.as_str()), (r.invoice_id, r.contact_id, text));
    assert_eq!((labelled.source.as_str(), labelled.correlation_id), ("escalation", sent.correlation_id));
    let stream = app.bus.js.get_stream("REPLY").await.unwrap();
    let info = stream.get_info().await.unwrap();
    let mut msg_ids = vec![];
    for seq in 1..=info.state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        msg_ids.extend(m.headers.get("Nats-Msg-Id").map(|v| v.to_string()));
    }
    assert!(msg_ids.contains(&format!("label:{case_id}")), "{msg_ids:?}");
    // Labelled once.
    let (status, _) = app.act(case_id, json!({"action": "label", "intent": "dispute"})).await;
    assert_eq!(status, 409);

    // A label on a case that is not a review case is refused.
    app.reply(&s, ReplyIntent::Dispute, Channel::Email, "wrong amount").await;
    let events = app.wait_cases(3).await;
    let dispute = events.iter().find(|(_, c)| c.reason == EscalationReason::Dispute).unwrap().1.case_id;
    let (status, body) = app.act(dispute, json!({"action": "label", "intent": "dispute"})).await;
    assert_eq!(status, 422, "{body}");

    // A second unsure reply labelled a promise with its date: in the training export with the first.
    let r2 = ReplyClassified {
        reply_id: Uuid::now_v7(),
        client_text: "will see with accounts next friday".into(),
        ..unsure(&s, "")
    };
    app.publish(subjects::reply::CLASSIFIED, r2.reply_id, r2.clone()).await;
    let events = app.wait_cases(4).await;
    let second = events[3].1.case_id;
    assert_eq!(events[3].1.reason, EscalationReason::NeedsReview, "each unsure reply has its own case");
    let (status, _) = app
        .act(second, json!({"action": "label", "intent": "promise_to_pay", "promised_date": "2026-03-13", "note": "called them"}))
        .await;
    assert_eq!(status, 200);
    let res = app
        .http
        .get(format!("http://127.0.0.1:{}/v1/escalations/training-examples", app.port))
        .header("x-arflow-internal-token", TOKEN)
        .header("x-arflow-firm-id", app.firm.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        vec![
            json!({"id": r.reply_id.to_string(), "channel": "email", "reference_date": "2026-03-10", "text": text,
                   "intent": "opt_out", "promised_date": null}),
            json!({"id": r2.reply_id.to_string(), "channel": "email", "reference_date": "2026-03-10",
                   "text": "will see with accounts next friday", "intent": "promise_to_pay", "promised_date": "2026-03-13"}),
        ]
    );
    // Another firm's export is empty.
    let (status, _) = app.call(Uuid::now_v7(), reqwest::Method::GET, "/v1/escalations/training-examples", None).await;
    assert_eq!(status, 200);
    app.stop().await;
}
