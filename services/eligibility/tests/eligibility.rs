//! The eligibility service on the real stack: a nats-server, a fresh database and the
//! Application in-process. Events are published as the gateway and the opt-out
//! service will; decisions are read back from the ELIGIBILITY stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    AllContactsOptedOut, AutomationStatus, CaseAction, CaseActionKind, CaseClient, CaseFirm, CaseInvoice, CaseLinks,
    CaseReview, CaseStatus, ClientUpserted, Consent, ConsentChanged, ContactUpserted, EligibilityChanged,
    EscalationCase, EscalationReason, FirmUpdated, HaltReason, IntentScore, InvoiceHalted, InvoicePaused,
    InvoiceStatus, InvoiceUpserted, PromiseBroken, ReplyClassified, ReplyIntent, ReplyKind, Tier,
};
use arflow_contracts::{Envelope, subjects};
use arflow_core::{Channel, Currency, SendWindow};
use arflow_eligibility::{Application, Config};
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockMode, ClockSettings, Metrics, NatsSettings};
use arflow_testkit::{TestDb, TestNats};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
}

struct TestApp {
    _nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    port: u16,
    firm: Uuid,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), arflow_service::StartupError>>,
    /// Messages read from the ELIGIBILITY stream so far, and the next sequence to read.
    seen: Mutex<(Vec<RawEnvelope>, u64)>,
}

/// A client with one consenting primary contact and an overdue open invoice.
struct Setup {
    client: ClientUpserted,
    contact: ContactUpserted,
    invoice: InvoiceUpserted,
}

impl TestApp {
    async fn spawn() -> TestApp {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let mut config = Config::defaults().unwrap();
        config.nats.url = nats.url();
        config.database.url = Some(db.url().into());
        config.http.port = 0;
        config.clock = ClockSettings { mode: ClockMode::Simulated, start: Some(t0()) };
        config.eligibility.poll_interval_secs = 1;
        let shutdown = CancellationToken::new();
        let app = Application::build(config, shutdown.clone()).await.unwrap();
        let port = app.port();
        let task = tokio::spawn(app.run());
        let settings = NatsSettings::at(nats.url());
        let bus = Bus::connect(&settings, "gateway", Metrics::new("test")).await.unwrap();
        let pool = PgPool::connect(&db.url()).await.unwrap();
        TestApp {
            _nats: nats,
            _db: db,
            bus,
            pool,
            port,
            firm: Uuid::now_v7(),
            shutdown,
            task,
            seen: Mutex::new((vec![], 1)),
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Publishes as the gateway (or opt-out service) does; returns the envelope.
    async fn publish<T: Serialize>(&self, kind: &str, subject_id: Uuid, data: T) -> Envelope<T> {
        let env = Envelope::new(kind, "gateway", t0(), self.firm, subject_id, None, data);
        self.publish_envelope(&env, &format!("test:{}", env.id)).await;
        env
    }

    async fn publish_envelope<T: Serialize>(&self, env: &Envelope<T>, msg_id: &str) {
        let ack = self.bus.publish_event(&subjects::subject(&env.kind, self.firm), msg_id, env).await.unwrap();
        assert!(!ack.duplicate, "{msg_id} was a duplicate");
    }

    fn firm_record(&self, version: i64) -> FirmUpdated {
        FirmUpdated {
            firm_id: self.firm,
            name: "Acme CPA".into(),
            sender_email: "ar@acme.test".into(),
            stripe_connected: true,
            timezone: "America/New_York".into(),
            min_amounts: BTreeMap::from([(usd(), Decimal::new(5000, 2))]),
            email_window: SendWindow::business_hours(),
            call_window: None,
            version,
        }
    }

    async fn firm_updated(&self, f: FirmUpdated) {
        self.publish(subjects::billing::FIRM_UPDATED, self.firm, f).await;
    }

    async fn client_upserted(&self, c: &ClientUpserted) {
        self.publish(subjects::billing::CLIENT_UPSERTED, c.client_id, c.clone()).await;
    }

    async fn contact_upserted(&self, c: &ContactUpserted) {
        self.publish(subjects::billing::CONTACT_UPSERTED, c.contact_id, c.clone()).await;
    }

    async fn invoice_upserted(&self, i: &InvoiceUpserted) {
        self.publish(subjects::billing::INVOICE_UPSERTED, i.invoice_id, i.clone()).await;
    }

    async fn opt_out(&self, contact: &ContactUpserted, channel: Option<Channel>) -> Envelope<ConsentChanged> {
        let data = ConsentChanged {
            contact_id: contact.contact_id,
            client_id: contact.client_id,
            channel,
            source: "reply".into(),
            evidence: "please stop emailing me".into(),
        };
        self.publish(subjects::consent::OPTED_OUT, contact.contact_id, data).await
    }

    async fn opt_in(&self, contact: &ContactUpserted) -> Envelope<ConsentChanged> {
        let data = ConsentChanged {
            contact_id: contact.contact_id,
            client_id: contact.client_id,
            channel: None,
            source: "firm".into(),
            evidence: "client asked to be contacted again".into(),
        };
        self.publish(subjects::consent::OPTED_IN, contact.contact_id, data).await
    }

    /// Firm, client, contact and an invoice due 2026-03-01 (overdue at t0) for 3,200.00 USD.
    async fn setup(&self) -> Setup {
        let c = client();
        let s = Setup { contact: contact_of(c.client_id), invoice: invoice_of(c.client_id), client: c };
        self.firm_updated(self.firm_record(1)).await;
        self.client_upserted(&s.client).await;
        self.contact_upserted(&s.contact).await;
        self.invoice_upserted(&s.invoice).await;
        s
    }

    /// Reads what is new on the ELIGIBILITY stream.
    async fn read_stream(&self) -> Vec<RawEnvelope> {
        let stream = self.bus.js.get_stream("ELIGIBILITY").await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut next = self.seen.lock().unwrap().1;
        let mut fresh = vec![];
        while next <= last {
            let m = stream.get_raw_message(next).await.unwrap();
            fresh.push(RawEnvelope::parse(&m.payload).unwrap());
            next += 1;
        }
        let mut seen = self.seen.lock().unwrap();
        seen.0.extend(fresh);
        seen.1 = next;
        seen.0.clone()
    }

    /// Every `eligibility.changed` of the invoice, in order.
    async fn decisions(&self, invoice_id: Uuid) -> Vec<EligibilityChanged> {
        self.read_stream()
            .await
            .into_iter()
            .filter(|e| e.kind == subjects::eligibility::CHANGED && e.subject_id == invoice_id)
            .map(|e| e.data_as().unwrap())
            .collect()
    }

    /// Waits for the invoice's latest decision to satisfy `pred`.
    async fn wait_decision(&self, invoice_id: Uuid, pred: impl Fn(&EligibilityChanged) -> bool) -> EligibilityChanged {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.decisions(invoice_id).await;
            if let Some(last) = all.last()
                && pred(last)
            {
                return last.clone();
            }
            assert!(Instant::now() < deadline, "no matching decision for {invoice_id}; last: {:#?}", all.last());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes a classified reply to an email about `s.invoice`, as the email service does.
    async fn reply(
        &self,
        s: &Setup,
        intent: ReplyIntent,
        promised_date: Option<NaiveDate>,
        evidence: &str,
        received_at: DateTime<Utc>,
    ) -> ReplyClassified {
        let r = classified(s, intent, promised_date, evidence, received_at);
        self.publish(subjects::reply::CLASSIFIED, r.reply_id, r.clone()).await;
        r
    }

    async fn promises_broken(&self) -> Vec<PromiseBroken> {
        self.read_stream()
            .await
            .into_iter()
            .filter(|e| e.kind == subjects::eligibility::PROMISE_BROKEN)
            .map(|e| e.data_as().unwrap())
            .collect()
    }

    async fn opted_out_warnings(&self) -> Vec<AllContactsOptedOut> {
        self.read_stream()
            .await
            .into_iter()
            .filter(|e| e.kind == subjects::eligibility::ALL_CONTACTS_OPTED_OUT)
            .map(|e| e.data_as().unwrap())
            .collect()
    }

    /// Waits until both consumers have nothing pending and the outbox is empty.
    async fn process_until_idle(&self) {
        self.process_until_idle_within(Duration::from_secs(20)).await;
    }

    async fn process_until_idle_within(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        loop {
            let mut busy = 0u64;
            for (stream, consumer) in [
                ("BILLING", "eligibility-billing"),
                ("CONSENT", "eligibility-consent"),
                ("REPLY", "eligibility-replies"),
                ("ESCALATION", "eligibility-escalation"),
            ] {
                let s = self.bus.js.get_stream(stream).await.unwrap();
                let info = s.consumer_info(consumer).await.unwrap();
                busy += info.num_pending + info.num_ack_pending as u64;
            }
            let (outbox,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM eligibility.outbox").fetch_one(&self.pool).await.unwrap();
            busy += outbox as u64;
            quiet = if busy == 0 { quiet + 1 } else { 0 };
            if quiet >= 3 {
                return;
            }
            assert!(Instant::now() < deadline, "still busy: {busy}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stored_decisions(&self, invoice_id: Uuid) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM eligibility.decisions WHERE invoice_id = $1")
            .bind(invoice_id)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        n
    }
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn client() -> ClientUpserted {
    ClientUpserted {
        client_id: Uuid::now_v7(),
        stripe_customer_id: Some("cus_1".into()),
        name: "Globex".into(),
        tier: Tier::Standard,
        timezone: Some("America/Los_Angeles".into()),
        excluded: false,
        version: 1,
    }
}

fn contact_of(client_id: Uuid) -> ContactUpserted {
    ContactUpserted {
        contact_id: Uuid::now_v7(),
        client_id,
        name: "Hank Scorpio".into(),
        email: Some("hank@globex.test".into()),
        phone: Some("+15555550100".into()),
        timezone: None,
        primary: true,
        consent: Consent { email: true, voice: false, sms: false },
        version: 1,
    }
}

fn invoice_of(client_id: Uuid) -> InvoiceUpserted {
    InvoiceUpserted {
        invoice_id: Uuid::now_v7(),
        client_id,
        stripe_invoice_id: "in_123".into(),
        number: Some("INV-0001".into()),
        currency: usd(),
        amount_due: Decimal::new(320000, 2),
        amount_remaining: Decimal::new(320000, 2),
        due_date: NaiveDate::from_ymd_opt(2026, 3, 1),
        status: InvoiceStatus::Open,
        hosted_invoice_url: Some("https://pay.test/in_123".into()),
        excluded: false,
        disputed: false,
        version: 1,
    }
}

fn failing(d: &EligibilityChanged, rule: &str) -> bool {
    d.failed_rules() == vec![rule]
}

fn detail<'a>(d: &'a EligibilityChanged, rule: &str) -> &'a str {
    &d.checks.iter().find(|c| c.rule == rule).unwrap().detail
}

/// A reply to an email about `s.invoice`, matched and classified.
fn classified(
    s: &Setup,
    intent: ReplyIntent,
    promised_date: Option<NaiveDate>,
    evidence: &str,
    received_at: DateTime<Utc>,
) -> ReplyClassified {
    ReplyClassified {
        reply_id: Uuid::now_v7(),
        channel: Channel::Email,
        kind: ReplyKind::Reply,
        intent: Some(intent),
        promised_date,
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
        answered_message_id: Some("<rem-INV-0001-3@acme.test>".into()),
        step: Some("overdue_7".into()),
        from: Some("hank@globex.test".into()),
        subject: Some("Re: Invoice INV-0001 is overdue".into()),
        received_at,
        reference_date: received_at.with_timezone(&chrono_tz::America::Los_Angeles).date_naive(),
        bounce: None,
        action: String::new(),
    }
}

#[tokio::test]
async fn all_checks_pass_makes_the_invoice_eligible() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let mut second = contact_of(s.client.client_id);
    second.primary = false;
    second.name = "Aaron".into();
    second.timezone = Some("Europe/London".into());
    app.contact_upserted(&second).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.eligible && d.contacts.len() == 2).await;
    assert!(d.past_due);
    assert_eq!(d.automation_status, AutomationStatus::Enabled);
    assert_eq!(d.checks.len(), 10);
    assert!(d.checks.iter().all(|c| c.passed));
    // Primary first; zone resolved contact -> client.
    assert_eq!(d.contacts[0].contact_id, s.contact.contact_id);
    assert_eq!(d.contacts[0].timezone.as_deref(), Some("America/Los_Angeles"));
    assert_eq!(d.contacts[1].timezone.as_deref(), Some("Europe/London"));
    assert_eq!(d.contacts[0].channels, vec![Channel::Email]);
    assert_eq!(d.firm.name, "Acme CPA");
    assert_eq!(d.invoice.amount_remaining, Decimal::new(320000, 2));
    // Versions are monotonic and each published decision is stored with its checks.
    let all = app.decisions(s.invoice.invoice_id).await;
    assert!(all.windows(2).all(|w| w[0].version < w[1].version));
    app.process_until_idle().await;
    assert_eq!(app.stored_decisions(s.invoice.invoice_id).await, all.len() as i64);
    // The HTTP API shows the latest decision.
    let body: serde_json::Value =
        http_get(app.port, &format!("/v1/invoices/{}/eligibility", s.invoice.invoice_id)).await;
    assert_eq!(body["eligible"], true);
    assert_eq!(body["version"], all.last().unwrap().version);
    app.stop().await;
}

/// A tiny HTTP GET without an HTTP client crate: the body of a `Connection: close` response.
async fn http_get(port: u16, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn rule_stripe_connected() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.firm_updated(FirmUpdated { stripe_connected: false, ..app.firm_record(2) }).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "stripe_connected")).await;
    assert!(detail(&d, "stripe_connected").contains("disconnected"));
    assert_eq!(d.automation_status, AutomationStatus::Paused);
    app.stop().await;
}

#[tokio::test]
async fn rule_invoice_open() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    let halted = InvoiceHalted {
        invoice_id: s.invoice.invoice_id,
        client_id: s.client.client_id,
        stripe_invoice_id: "in_123".into(),
        reason: HaltReason::Paid,
        stripe_event_id: "evt_1".into(),
        hold_revision: 7,
        version: 2,
    };
    app.publish(subjects::billing::INVOICE_PAID, s.invoice.invoice_id, halted).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "invoice_open")).await;
    assert_eq!(detail(&d, "invoice_open"), "invoice is paid");
    assert_eq!(d.automation_status, AutomationStatus::HaltedPaid);
    // A snapshot of the same version saying "open" does not undo the payment.
    app.invoice_upserted(&InvoiceUpserted { version: 2, ..s.invoice.clone() }).await;
    app.process_until_idle().await;
    assert_eq!(
        app.decisions(s.invoice.invoice_id).await.last().unwrap().automation_status,
        AutomationStatus::HaltedPaid
    );
    app.stop().await;
}

#[tokio::test]
async fn rule_not_excluded() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.client_upserted(&ClientUpserted { excluded: true, version: 2, ..s.client.clone() }).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "not_excluded")).await;
    assert!(detail(&d, "not_excluded").contains("excluded client Globex"), "{}", detail(&d, "not_excluded"));
    app.stop().await;
}

#[tokio::test]
async fn rule_amount_above_minimum() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    let partly_paid = InvoiceUpserted { amount_remaining: Decimal::new(4999, 2), version: 2, ..s.invoice.clone() };
    app.invoice_upserted(&partly_paid).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "amount_above_minimum")).await;
    assert_eq!(
        detail(&d, "amount_above_minimum"),
        "amount remaining 49.99 USD is not above the firm's minimum 50.00 USD"
    );
    app.stop().await;
}

#[tokio::test]
async fn rule_contact_with_consent() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    // Calls only, with a phone to call: reachable, the invoice stays eligible.
    let voice_only =
        ContactUpserted { consent: Consent { email: false, voice: true, sms: false }, version: 2, ..s.contact.clone() };
    app.contact_upserted(&voice_only).await;
    let d = app
        .wait_decision(s.invoice.invoice_id, |d| d.contacts.first().is_some_and(|c| c.channels == [Channel::Voice]))
        .await;
    assert!(d.eligible, "{:?}", d.checks);
    assert_eq!(
        detail(&d, "contact_with_consent"),
        "1 contact(s) with consent and the contact info: Hank Scorpio (voice)"
    );
    // Consent to calls without a phone is no channel.
    let no_phone = ContactUpserted { phone: None, version: 3, ..voice_only.clone() };
    app.contact_upserted(&no_phone).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.failed_rules().contains(&"contact_with_consent")).await;
    assert!(
        detail(&d, "contact_with_consent").starts_with("none of the client's 1 contact(s) has consent on a channel"),
        "{}",
        detail(&d, "contact_with_consent")
    );
    assert!(d.contacts.is_empty());
    // Nothing was opted out: no warning.
    app.process_until_idle().await;
    assert!(app.opted_out_warnings().await.is_empty());
    app.stop().await;
}

/// A hard bounce suppresses email only: a contact who agreed to calls keeps the invoice eligible
/// on voice, and the firm is warned only when no channel is left on any contact.
#[tokio::test]
async fn an_email_opt_out_leaves_the_other_channels_and_the_warning_waits_for_the_last() {
    let app = TestApp::spawn().await;
    let Setup { client: c, contact, invoice } = app.setup().await;
    let contact = ContactUpserted { consent: Consent { email: true, voice: true, sms: false }, version: 2, ..contact };
    app.contact_upserted(&contact).await;
    let d = app
        .wait_decision(invoice.invoice_id, |d| d.eligible && d.contacts.first().is_some_and(|k| k.channels.len() == 2))
        .await;
    assert_eq!(d.contacts[0].channels, vec![Channel::Email, Channel::Voice]);
    app.opt_out(&contact, Some(Channel::Email)).await;
    let d = app
        .wait_decision(invoice.invoice_id, |d| d.contacts.first().is_some_and(|c| c.channels == [Channel::Voice]))
        .await;
    assert!(d.eligible, "{:?}", d.checks);
    assert_eq!(d.automation_status, AutomationStatus::Enabled);
    assert_eq!(
        detail(&d, "contact_not_opted_out"),
        "1 contact(s) with a channel left: Hank Scorpio: voice (opted out of email)"
    );
    app.process_until_idle().await;
    assert!(app.opted_out_warnings().await.is_empty(), "a channel is left: no warning");
    // Calls opted out too: nothing is left, the invoice stops and the firm is warned once.
    app.opt_out(&contact, Some(Channel::Voice)).await;
    let d = app.wait_decision(invoice.invoice_id, |d| failing(d, "contact_not_opted_out")).await;
    assert_eq!(
        detail(&d, "contact_not_opted_out"),
        "no channel left on any contact: Hank Scorpio: none (opted out of email, voice)"
    );
    app.process_until_idle().await;
    let warnings = app.opted_out_warnings().await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].invoice_ids, vec![invoice.invoice_id]);
    // A second contact who may be texted makes the client reachable again, without a warning.
    let texter = ContactUpserted {
        contact_id: Uuid::now_v7(),
        name: "Aaron".into(),
        email: None,
        phone: Some("+15555550101".into()),
        primary: false,
        consent: Consent { email: false, voice: false, sms: true },
        ..contact_of(c.client_id)
    };
    app.contact_upserted(&texter).await;
    let d = app.wait_decision(invoice.invoice_id, |d| d.eligible).await;
    assert_eq!(
        detail(&d, "contact_not_opted_out"),
        "1 contact(s) with a channel left: Hank Scorpio: none (opted out of email, voice); Aaron: sms"
    );
    app.process_until_idle().await;
    assert_eq!(app.opted_out_warnings().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn rule_contact_not_opted_out_and_the_firm_is_warned() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.opt_out(&s.contact, Some(Channel::Email)).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "contact_not_opted_out")).await;
    assert!(detail(&d, "contact_not_opted_out").contains("opted out of email"));
    assert!(d.contacts.is_empty());
    app.process_until_idle().await;
    let warnings = app.opted_out_warnings().await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].client_id, s.client.client_id);
    assert_eq!(warnings[0].invoice_ids, vec![s.invoice.invoice_id]);
    // Once per transition: a second opt-out (every channel) does not warn again.
    app.opt_out(&s.contact, None).await;
    app.process_until_idle().await;
    assert_eq!(app.opted_out_warnings().await.len(), 1);
    // Opting back in makes the invoice eligible again.
    app.opt_in(&s.contact).await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.stop().await;
}

#[tokio::test]
async fn rule_not_disputed() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.invoice_upserted(&InvoiceUpserted { disputed: true, version: 2, ..s.invoice.clone() }).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "not_disputed")).await;
    assert_eq!(detail(&d, "not_disputed"), "the invoice is disputed");
    app.stop().await;
}

#[tokio::test]
async fn rule_no_open_escalation() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    // The escalation consumer (later work) maintains this count; set it as it will.
    sqlx::query("UPDATE eligibility.invoices SET cases_open = 1 WHERE invoice_id = $1")
        .bind(s.invoice.invoice_id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.invoice_upserted(&InvoiceUpserted { version: 2, ..s.invoice.clone() }).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_open_escalation")).await;
    assert_eq!(detail(&d, "no_open_escalation"), "1 escalation case(s) open");
    assert_eq!(d.automation_status, AutomationStatus::Escalated);
    app.stop().await;
}

#[tokio::test]
async fn rule_no_active_promise_or_plan_until_it_expires() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    let until = Utc.with_ymd_and_hms(2026, 3, 20, 8, 0, 0).unwrap();
    let pause = InvoicePaused {
        invoice_id: s.invoice.invoice_id,
        client_id: s.client.client_id,
        paused_until: Some(until),
        reason: "promise_to_pay".into(),
        version: 1,
    };
    app.publish(subjects::billing::INVOICE_PAUSED, s.invoice.invoice_id, pause).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_active_promise_or_plan")).await;
    // In the client's zone (Los Angeles): 2026-03-20 01:00 PDT.
    assert_eq!(detail(&d, "no_active_promise_or_plan"), "outreach paused until 2026-03-20 01:00 PDT (promise_to_pay)");
    assert_eq!(d.paused_until, Some(until));
    // The pause expires with the clock.
    arflow_bus::clock::advance(&app.bus, chrono::Duration::days(10)).await.unwrap();
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    assert_eq!(d.paused_until, None);
    app.stop().await;
}

#[tokio::test]
async fn an_invoice_without_firm_data_is_ineligible_until_the_firm_arrives() {
    let app = TestApp::spawn().await;
    let c = client();
    let k = contact_of(c.client_id);
    let i = invoice_of(c.client_id);
    app.client_upserted(&c).await;
    app.contact_upserted(&k).await;
    app.invoice_upserted(&i).await;
    let d = app.wait_decision(i.invoice_id, |d| !d.eligible).await;
    assert!(d.failed_rules().contains(&"stripe_connected"), "{:?}", d.checks);
    assert!(detail(&d, "stripe_connected").contains("firm settings not received yet"));
    app.firm_updated(app.firm_record(1)).await;
    app.wait_decision(i.invoice_id, |d| d.eligible).await;
    app.stop().await;
}

/// The firm's call window travels from billing.firm_updated into every decision's firm
/// snapshot (the scheduler and the voice service plan calls with it), and back to the default.
#[tokio::test]
async fn the_firms_call_window_reaches_the_decision() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    assert_eq!(d.firm.call_window, None);
    let window = SendWindow { start_hour: 10, end_hour: 17, days: vec![chrono::Weekday::Mon, chrono::Weekday::Wed] };
    app.firm_updated(FirmUpdated { call_window: Some(window.clone()), ..app.firm_record(2) }).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.firm.call_window.is_some()).await;
    assert_eq!(d.firm.call_window, Some(window));
    assert!(d.eligible);
    let stored: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT call_window FROM eligibility.firms WHERE firm_id = $1")
            .bind(app.firm)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.unwrap()["start_hour"], 10);
    // An older version is ignored; a newer one without a window clears it.
    app.firm_updated(app.firm_record(1)).await;
    app.firm_updated(app.firm_record(3)).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.firm.call_window.is_none()).await;
    assert!(d.eligible);
    app.stop().await;
}

#[tokio::test]
async fn out_of_order_records_converge() {
    let app = TestApp::spawn().await;
    let c = client();
    let k = contact_of(c.client_id);
    let i = invoice_of(c.client_id);
    // Opt-out before the contact exists, contact and invoice before their client,
    // a newer client before an older one.
    app.opt_out(&k, Some(Channel::Email)).await;
    app.contact_upserted(&k).await;
    app.invoice_upserted(&i).await;
    app.client_upserted(&ClientUpserted { name: "Globex Corp".into(), version: 3, ..c.clone() }).await;
    app.client_upserted(&ClientUpserted { excluded: true, version: 2, ..c.clone() }).await;
    app.firm_updated(app.firm_record(5)).await;
    app.firm_updated(FirmUpdated { stripe_connected: false, ..app.firm_record(4) }).await;
    app.wait_decision(i.invoice_id, |d| d.failed_rules() == vec!["contact_not_opted_out"]).await;
    app.process_until_idle().await;
    // The opt-out that came first still holds; the older client and firm were ignored.
    let d = app.decisions(i.invoice_id).await.pop().unwrap();
    assert_eq!(d.failed_rules(), vec!["contact_not_opted_out"]);
    assert_eq!(d.client.name, "Globex Corp");
    app.opt_in(&k).await;
    let d = app.wait_decision(i.invoice_id, |d| d.eligible).await;
    assert_eq!(d.client.name, "Globex Corp");
    // An older invoice snapshot after a newer one changes nothing.
    app.invoice_upserted(&InvoiceUpserted { amount_remaining: Decimal::new(100, 0), version: 3, ..i.clone() }).await;
    app.wait_decision(i.invoice_id, |d| d.invoice.amount_remaining == Decimal::new(100, 0)).await;
    app.invoice_upserted(&InvoiceUpserted { amount_remaining: Decimal::new(5, 0), version: 2, ..i.clone() }).await;
    app.process_until_idle().await;
    assert_eq!(app.decisions(i.invoice_id).await.last().unwrap().invoice.amount_remaining, Decimal::new(100, 0));
    app.stop().await;
}

#[tokio::test]
async fn the_clock_passing_the_due_date_flips_past_due() {
    let app = TestApp::spawn().await;
    let c = client();
    let k = contact_of(c.client_id);
    // Due 2026-03-12 in Los Angeles; t0 is 2026-03-10 08:00 PDT.
    let i = InvoiceUpserted { due_date: NaiveDate::from_ymd_opt(2026, 3, 12), ..invoice_of(c.client_id) };
    app.firm_updated(app.firm_record(1)).await;
    app.client_upserted(&c).await;
    app.contact_upserted(&k).await;
    app.invoice_upserted(&i).await;
    let d = app.wait_decision(i.invoice_id, |d| d.eligible).await;
    assert!(!d.past_due, "pre-due: eligible for courtesy steps only");
    // 2026-03-12 23:00 PDT: still the due date locally, not past due.
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 13, 6, 0, 0).unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.process_until_idle().await;
    assert!(!app.decisions(i.invoice_id).await.last().unwrap().past_due);
    // 2026-03-13 00:30 PDT: past due.
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 13, 7, 30, 0).unwrap()).await.unwrap();
    let d = app.wait_decision(i.invoice_id, |d| d.past_due).await;
    assert!(d.eligible);
    assert_eq!(d.evaluated_at, Utc.with_ymd_and_hms(2026, 3, 13, 7, 30, 0).unwrap());
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    let out = app.opt_out(&s.contact, None).await;
    app.wait_decision(s.invoice.invoice_id, |d| !d.eligible).await;
    app.opt_in(&s.contact).await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.process_until_idle().await;
    let before = app.decisions(s.invoice.invoice_id).await.len();
    let stored = app.stored_decisions(s.invoice.invoice_id).await;
    // The same envelope again under another Nats-Msg-Id (past the duplicate window):
    // the inbox recognises it, so the old opt-out is not applied a second time.
    app.publish_envelope(&out, "redelivered-1").await;
    app.publish_envelope(&out, "redelivered-2").await;
    app.process_until_idle().await;
    assert_eq!(app.decisions(s.invoice.invoice_id).await.len(), before);
    assert_eq!(app.stored_decisions(s.invoice.invoice_id).await, stored);
    assert!(app.decisions(s.invoice.invoice_id).await.last().unwrap().eligible);
    assert_eq!(app.opted_out_warnings().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_not_dropped() {
    let app = TestApp::spawn().await;
    let env = Envelope::new(subjects::billing::INVOICE_UPSERTED, "gateway", t0(), app.firm, app.firm, None, 42u32);
    app.publish_envelope(&env, "bad-1").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dlq = app.bus.js.get_stream("DLQ").await.unwrap().get_info().await.unwrap().state.messages;
        if dlq == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_disputing_reply_makes_the_invoice_ineligible_with_the_clients_words() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    // Replies that need nothing from eligibility change nothing.
    app.reply(&s, ReplyIntent::Acknowledged, None, "forwarded to our AP team", t0()).await;
    app.reply(&s, ReplyIntent::AutoReply, None, "I am out of the office", t0()).await;
    let unmatched = ReplyClassified {
        invoice_id: None,
        contact_id: None,
        client_id: None,
        matched_by: None,
        ..classified(&s, ReplyIntent::Dispute, None, "wrong amount", t0())
    };
    app.publish(subjects::reply::CLASSIFIED, unmatched.reply_id, unmatched).await;
    app.process_until_idle().await;
    let before = app.decisions(s.invoice.invoice_id).await;
    assert!(before.last().unwrap().eligible);

    app.reply(&s, ReplyIntent::Dispute, None, "the extra hours were never approved", t0()).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "not_disputed")).await;
    assert_eq!(detail(&d, "not_disputed"), "the client disputes the invoice: \"the extra hours were never approved\"");
    assert_eq!(d.automation_status, AutomationStatus::Escalated);
    // The client's dispute is not the snapshot's flag: a Stripe update does not clear it.
    app.invoice_upserted(&InvoiceUpserted {
        amount_remaining: Decimal::new(300000, 2),
        version: 2,
        ..s.invoice.clone()
    })
    .await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.invoice.amount_remaining == Decimal::new(300000, 2)).await;
    assert!(failing(&d, "not_disputed"), "{:?}", d.checks);
    // What was applied is on the invoice.
    let (intent, evidence): (String, String) =
        sqlx::query_as("SELECT last_reply_intent, last_reply_evidence FROM eligibility.invoices WHERE invoice_id = $1")
            .bind(s.invoice.invoice_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((intent.as_str(), evidence.as_str()), ("dispute", "the extra hours were never approved"));
    app.stop().await;
}

#[tokio::test]
async fn a_question_waits_for_a_person() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.reply(&s, ReplyIntent::Question, None, "can you send us a W-9 first", t0()).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_open_escalation")).await;
    assert_eq!(detail(&d, "no_open_escalation"), "waiting for a person: question: \"can you send us a W-9 first\"");
    assert_eq!(d.automation_status, AutomationStatus::Escalated);
    app.stop().await;
}

#[tokio::test]
async fn a_claimed_payment_pauses_outreach_until_stripe_has_had_its_days() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.reply(&s, ReplyIntent::AlreadyPaid, None, "we paid this last Tuesday", t0()).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_active_promise_or_plan")).await;
    // received_at + reconcile_days (5), shown in the client's zone.
    assert_eq!(d.paused_until, Some(t0() + chrono::Duration::days(5)));
    assert_eq!(d.pause_reason.as_deref(), Some("already_paid"));
    assert_eq!(
        detail(&d, "no_active_promise_or_plan"),
        "outreach paused until 2026-03-15 08:00 PDT: client says it is already paid: \"we paid this last Tuesday\"; \
         awaiting Stripe"
    );
    assert_eq!(d.automation_status, AutomationStatus::Paused);
    // Stripe says nothing: the pause expires and reminders resume; no promise was made, none is broken.
    arflow_bus::clock::set(&app.bus, t0() + chrono::Duration::days(5)).await.unwrap();
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    assert_eq!((d.paused_until, d.pause_reason.as_deref(), d.broken_promise.as_ref()), (None, None, None));
    app.process_until_idle().await;
    assert!(app.promises_broken().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_promise_pauses_until_its_day_plus_grace_in_the_clients_zone_then_breaks_once() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    let friday = NaiveDate::from_ymd_opt(2026, 3, 13).unwrap();
    let promise = app.reply(&s, ReplyIntent::PromiseToPay, Some(friday), "we will pay it on Friday", t0()).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_active_promise_or_plan")).await;
    // The end of Friday 13 March in Los Angeles plus 3 days of grace: Tuesday 17 March 00:00 PDT.
    let until = Utc.with_ymd_and_hms(2026, 3, 17, 7, 0, 0).unwrap();
    assert_eq!(d.paused_until, Some(until));
    assert_eq!(d.pause_reason.as_deref(), Some("promise_to_pay"));
    assert_eq!(
        detail(&d, "no_active_promise_or_plan"),
        "outreach paused until 2026-03-17 00:00 PDT: client promised to pay by 2026-03-13: \"we will pay it on Friday\""
    );
    // An older reply delivered late does not replace the newer promise.
    let older = t0() - chrono::Duration::hours(2);
    app.reply(&s, ReplyIntent::PromiseToPay, NaiveDate::from_ymd_opt(2026, 3, 11), "by Wednesday", older).await;
    app.process_until_idle().await;
    assert_eq!(app.decisions(s.invoice.invoice_id).await.last().unwrap().paused_until, Some(until));

    // A minute before the end: still paused. At the end, unpaid: broken.
    arflow_bus::clock::set(&app.bus, until - chrono::Duration::minutes(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.process_until_idle().await;
    assert!(app.promises_broken().await.is_empty());
    arflow_bus::clock::set(&app.bus, until).await.unwrap();
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.broken_promise.is_some()).await;
    assert!(d.eligible, "{:?}", d.checks);
    assert_eq!(d.paused_until, None);
    let broken = d.broken_promise.clone().unwrap();
    assert_eq!(broken.promised_date, Some(friday));
    assert_eq!(broken.paused_until, until);
    assert_eq!(broken.evidence, "we will pay it on Friday");
    assert_eq!(broken.reply_id, Some(promise.reply_id));
    assert_eq!(
        detail(&d, "no_active_promise_or_plan"),
        "no active payment promise or plan (a promise to pay by 2026-03-13 was broken)"
    );
    app.process_until_idle().await;
    assert_eq!(app.promises_broken().await, vec![broken.clone()]);
    // Recorded once: later evaluations carry it and publish nothing new about it.
    app.client_upserted(&ClientUpserted { name: "Globex Corp".into(), version: 2, ..s.client.clone() }).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| d.client.name == "Globex Corp").await;
    assert_eq!(d.broken_promise, Some(broken.clone()));
    arflow_bus::clock::advance(&app.bus, chrono::Duration::days(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.process_until_idle().await;
    assert_eq!(app.promises_broken().await.len(), 1);
    app.stop().await;
}

/// A promise made on a call or by text pauses outreach exactly like one by email (the pause
/// holds every channel, calls included).
#[tokio::test]
async fn a_promise_on_a_call_or_by_text_pauses_like_an_email_one() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    let friday = NaiveDate::from_ymd_opt(2026, 3, 13).unwrap();
    let call = ReplyClassified {
        channel: Channel::Voice,
        matched_by: Some("call".into()),
        answered_message_id: None,
        subject: None,
        from: Some("+14155550123".into()),
        step: Some("call_21".into()),
        ..classified(&s, ReplyIntent::PromiseToPay, Some(friday), "I can pay it on Friday", t0())
    };
    app.publish(subjects::reply::CLASSIFIED, call.reply_id, call.clone()).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_active_promise_or_plan")).await;
    assert_eq!(d.paused_until, Some(Utc.with_ymd_and_hms(2026, 3, 17, 7, 0, 0).unwrap()));
    assert_eq!(d.pause_reason.as_deref(), Some("promise_to_pay"));
    assert!(detail(&d, "no_active_promise_or_plan").contains("\"I can pay it on Friday\""));

    // A later text promising a later day replaces it.
    let monday = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
    let text = ReplyClassified {
        channel: Channel::Sms,
        matched_by: Some("sender_phone".into()),
        ..classified(&s, ReplyIntent::PromiseToPay, Some(monday), "paying monday", t0() + chrono::Duration::hours(1))
    };
    app.publish(subjects::reply::CLASSIFIED, text.reply_id, text).await;
    let d = app
        .wait_decision(s.invoice.invoice_id, |d| {
            d.paused_until == Some(Utc.with_ymd_and_hms(2026, 3, 20, 7, 0, 0).unwrap())
        })
        .await;
    assert!(detail(&d, "no_active_promise_or_plan").contains("\"paying monday\""));
    app.stop().await;
}

#[tokio::test]
async fn a_promise_kept_is_not_broken() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    app.wait_decision(s.invoice.invoice_id, |d| d.eligible).await;
    app.reply(&s, ReplyIntent::PromiseToPay, None, "we'll get this paid shortly", t0()).await;
    let d = app.wait_decision(s.invoice.invoice_id, |d| failing(d, "no_active_promise_or_plan")).await;
    // No date: promise_default_days (7) from the reply.
    assert_eq!(d.paused_until, Some(t0() + chrono::Duration::days(7)));
    assert!(detail(&d, "no_active_promise_or_plan").contains("client promised to pay (no date given)"));
    let paid = InvoiceHalted {
        invoice_id: s.invoice.invoice_id,
        client_id: s.client.client_id,
        stripe_invoice_id: "in_123".into(),
        reason: HaltReason::Paid,
        stripe_event_id: "evt_paid".into(),
        hold_revision: 3,
        version: 2,
    };
    app.publish(subjects::billing::INVOICE_PAID, s.invoice.invoice_id, paid).await;
    app.wait_decision(s.invoice.invoice_id, |d| d.automation_status == AutomationStatus::HaltedPaid).await;
    arflow_bus::clock::advance(&app.bus, chrono::Duration::days(8)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.process_until_idle().await;
    assert!(app.promises_broken().await.is_empty());
    assert_eq!(app.decisions(s.invoice.invoice_id).await.last().unwrap().broken_promise, None);
    app.stop().await;
}

/// The benchmark's shape: 20,000 invoices through the billing consumer.
/// `cargo test -p arflow-eligibility --release -- --ignored throughput` to run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_20k_invoices() {
    let app = TestApp::spawn().await;
    app.firm_updated(app.firm_record(1)).await;
    let clients: Vec<ClientUpserted> = (0..2_000).map(|_| client()).collect();
    let started = Instant::now();
    let mut envelopes = vec![];
    for c in &clients {
        let k = contact_of(c.client_id);
        envelopes.push(Envelope::new(
            subjects::billing::CLIENT_UPSERTED,
            "gateway",
            t0(),
            app.firm,
            c.client_id,
            None,
            serde_json::to_value(c).unwrap(),
        ));
        envelopes.push(Envelope::new(
            subjects::billing::CONTACT_UPSERTED,
            "gateway",
            t0(),
            app.firm,
            k.contact_id,
            None,
            serde_json::to_value(&k).unwrap(),
        ));
        for _ in 0..10 {
            let i = invoice_of(c.client_id);
            envelopes.push(Envelope::new(
                subjects::billing::INVOICE_UPSERTED,
                "gateway",
                t0(),
                app.firm,
                i.invoice_id,
                None,
                serde_json::to_value(&i).unwrap(),
            ));
        }
    }
    let last_invoice = envelopes.last().unwrap().subject_id;
    for chunk in envelopes.chunks(500) {
        let publishes = chunk.iter().map(|e| async {
            app.bus.publish_event(&subjects::subject(&e.kind, app.firm), &format!("test:{}", e.id), e).await.unwrap()
        });
        futures::future::join_all(publishes).await;
    }
    let published = started.elapsed();
    app.process_until_idle_within(Duration::from_secs(300)).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(DISTINCT invoice_id) FROM eligibility.decisions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 20_000);
    let (eligible,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM eligibility.decisions d WHERE version = (SELECT max(version) FROM eligibility.decisions e WHERE e.invoice_id = d.invoice_id) AND eligible",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(eligible, 20_000);
    assert!(app.stored_decisions(last_invoice).await >= 1);
    eprintln!("published {} events in {published:?}; all decided after {:?}", envelopes.len(), started.elapsed());
    app.stop().await;
}

/// A case as the escalation service publishes it (only what eligibility reads matters here).
fn case_event(
    s: &Setup,
    firm: Uuid,
    case_id: Uuid,
    version: i64,
    status: CaseStatus,
    action: CaseActionKind,
) -> EscalationCase {
    EscalationCase {
        case_id,
        version,
        status,
        reason: EscalationReason::Dispute,
        evidence: "the extra hours were never approved".into(),
        firm: CaseFirm { firm_id: firm, name: "Acme CPA".into(), timezone: "America/New_York".into() },
        client: CaseClient { client_id: s.client.client_id, name: "Globex".into(), tier: Tier::Standard },
        contact: None,
        invoice: Some(CaseInvoice {
            invoice_id: s.invoice.invoice_id,
            stripe_invoice_id: "in_123".into(),
            number: Some("INV-0001".into()),
            currency: usd(),
            amount_due: Decimal::new(320000, 2),
            amount_remaining: Decimal::new(320000, 2),
            due_date: s.invoice.due_date,
            days_past_due: 9,
            hosted_invoice_url: None,
        }),
        opened_at: t0(),
        updated_at: t0() + chrono::Duration::minutes(version),
        resolved_at: None,
        action: CaseAction {
            action,
            actor: "pat@acme.test".into(),
            note: "checked the timesheets with the client".into(),
            at: t0() + chrono::Duration::minutes(version),
            paused_until: None,
            agency: None,
        },
        latest_activity: None,
        links: CaseLinks { case: String::new(), invoice_activity: None, hosted_invoice: None },
        review: None,
    }
}

#[tokio::test]
async fn escalation_cases_stop_pause_and_resume_automation() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let invoice = s.invoice.invoice_id;
    app.wait_decision(invoice, |d| d.eligible).await;
    app.reply(&s, ReplyIntent::Dispute, None, "the extra hours were never approved", t0()).await;
    app.wait_decision(invoice, |d| failing(d, "not_disputed")).await;

    // The escalation service opened a case: automation is escalated by the case too.
    let case_id = Uuid::now_v7();
    let opened = case_event(&s, app.firm, case_id, 1, CaseStatus::Open, CaseActionKind::Opened);
    app.publish(subjects::escalation::OPENED, case_id, opened).await;
    let d =
        app.wait_decision(invoice, |d| detail(d, "no_open_escalation") == "1 escalation case(s) open (dispute)").await;
    assert_eq!(d.automation_status, AutomationStatus::Escalated);

    // Paused by a person until a date: the dispute is taken over, automation paused.
    let until = t0() + chrono::Duration::days(5);
    let mut paused = case_event(&s, app.firm, case_id, 2, CaseStatus::Paused, CaseActionKind::Pause);
    paused.action.paused_until = Some(until);
    app.publish(subjects::escalation::UPDATED, case_id, paused).await;
    let d = app.wait_decision(invoice, |d| failing(d, "no_open_escalation") && !d.eligible).await;
    assert_eq!(d.automation_status, AutomationStatus::Paused);
    assert!(detail(&d, "no_open_escalation").starts_with("automation paused by a person"));

    // An older version arriving late changes nothing.
    let stale = case_event(&s, app.firm, case_id, 1, CaseStatus::Open, CaseActionKind::Opened);
    app.publish(subjects::escalation::OPENED, case_id, stale).await;
    // Resolved with continue_automation: the case and the client's dispute are cleared.
    let resolved = case_event(&s, app.firm, case_id, 3, CaseStatus::Resolved, CaseActionKind::ContinueAutomation);
    app.publish(subjects::escalation::RESOLVED, case_id, resolved).await;
    let d = app.wait_decision(invoice, |d| d.eligible).await;
    assert_eq!(d.automation_status, AutomationStatus::Enabled);
    app.process_until_idle().await;
    assert!(app.decisions(invoice).await.last().unwrap().eligible, "the stale version re-escalated the invoice");
    let (open, disputed): (i32, Option<String>) =
        sqlx::query_as("SELECT cases_open, client_dispute_evidence FROM eligibility.invoices WHERE invoice_id = $1")
            .bind(invoice)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((open, disputed), (0, None));
    app.stop().await;
}

/// The firm user who labels replies in these tests.
const LABELLER: &str = "pat@acme.test";

/// The same reply as the classifier sent it, unsure of what it means.
fn unsure(s: &Setup, words: &str, received_at: DateTime<Utc>) -> ReplyClassified {
    ReplyClassified {
        sure: false,
        confidence: 0.35,
        needs_review: true,
        scores: vec![
            IntentScore { intent: ReplyIntent::Question, score: 0.35 },
            IntentScore { intent: ReplyIntent::Dispute, score: 0.3 },
        ],
        evidence: String::new(),
        client_text: words.into(),
        ..classified(s, ReplyIntent::Question, None, words, received_at)
    }
}

#[tokio::test]
async fn a_reply_not_understood_pauses_the_invoice_until_a_person_labels_it() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let invoice = s.invoice.invoice_id;
    app.wait_decision(invoice, |d| d.eligible).await;
    // Unsure, with a guess of "question" and "dispute": neither is acted on, the invoice waits.
    let r = unsure(&s, "see the comments from my colleague below", t0());
    app.publish(subjects::reply::CLASSIFIED, r.reply_id, r.clone()).await;
    let d = app.wait_decision(invoice, |d| failing(d, "no_reply_awaiting_review")).await;
    assert_eq!(d.failed_rules(), vec!["no_reply_awaiting_review"], "no guess acted on: {:?}", d.checks);
    assert_eq!(
        detail(&d, "no_reply_awaiting_review"),
        "a reply awaits a person's review (not understood with confidence): \"see the comments from my colleague below\""
    );
    assert_eq!(d.automation_status, AutomationStatus::Escalated);
    // The same event again changes nothing.
    app.publish(subjects::reply::CLASSIFIED, Uuid::now_v7(), r.clone()).await;
    app.process_until_idle().await;

    // Labelled a dispute by a person: the review ends and the dispute applies, quoting the client.
    app.publish(subjects::reply::CLASSIFIED, Uuid::now_v7(), r.labelled(ReplyIntent::Dispute, None, LABELLER)).await;
    let d = app.wait_decision(invoice, |d| failing(d, "not_disputed")).await;
    assert!(detail(&d, "not_disputed").contains("see the comments from my colleague below"), "{:?}", d.checks);

    // A second unsure reply labelled a promise: paused until the promised day plus grace.
    let r2 = unsure(&s, "will sort it with accounts, end of next week probably", t0() + chrono::Duration::hours(1));
    app.publish(subjects::reply::CLASSIFIED, r2.reply_id, r2.clone()).await;
    app.wait_decision(invoice, |d| d.failed_rules() == ["not_disputed", "no_reply_awaiting_review"]).await;
    let friday = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
    app.publish(
        subjects::reply::CLASSIFIED,
        Uuid::now_v7(),
        r2.labelled(ReplyIntent::PromiseToPay, Some(friday), LABELLER),
    )
    .await;
    let d = app.wait_decision(invoice, |d| d.failed_rules() == ["not_disputed", "no_active_promise_or_plan"]).await;
    assert!(detail(&d, "no_active_promise_or_plan").contains("client promised to pay by 2026-03-20"), "{:?}", d.checks);
    app.stop().await;
}

#[tokio::test]
async fn a_label_that_overtakes_its_reply_and_a_review_case_taken_over_never_leave_the_invoice_waiting() {
    let app = TestApp::spawn().await;
    let s = app.setup().await;
    let invoice = s.invoice.invoice_id;
    app.wait_decision(invoice, |d| d.eligible).await;
    // The label arrives first (a replay, a lagging consumer): the unsure reply after it waits for nothing.
    let r = unsure(&s, "ok noted, regards", t0());
    app.publish(subjects::reply::CLASSIFIED, Uuid::now_v7(), r.labelled(ReplyIntent::Acknowledged, None, LABELLER))
        .await;
    app.process_until_idle().await;
    app.publish(subjects::reply::CLASSIFIED, r.reply_id, r).await;
    app.process_until_idle().await;
    let d = app.decisions(invoice).await.pop().unwrap();
    assert!(d.eligible, "{:?}", d.checks);

    // Another unsure reply; its review case is resolved with continue_automation by a person.
    let r = unsure(&s, "see below", t0() + chrono::Duration::hours(2));
    app.publish(subjects::reply::CLASSIFIED, r.reply_id, r.clone()).await;
    app.wait_decision(invoice, |d| failing(d, "no_reply_awaiting_review")).await;
    let case_id = Uuid::now_v7();
    let mut case = case_event(&s, app.firm, case_id, 2, CaseStatus::Resolved, CaseActionKind::ContinueAutomation);
    case.reason = EscalationReason::NeedsReview;
    case.review = Some(CaseReview {
        reply_id: r.reply_id,
        channel: Channel::Email,
        client_text: r.client_text.clone(),
        evidence: String::new(),
        confidence: r.confidence,
        scores: r.scores.clone(),
        label: None,
    });
    app.publish(subjects::escalation::RESOLVED, case_id, case).await;
    let d = app.wait_decision(invoice, |d| d.eligible).await;
    assert_eq!(detail(&d, "no_reply_awaiting_review"), "no reply awaiting review");
    app.stop().await;
}
