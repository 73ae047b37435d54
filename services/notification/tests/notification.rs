//! The notification service on the real stack: a nats-server, a fresh database, the SMTP
//! sink, real HTTP receivers (axum servers in this file), the Application in-process.
//! Events are published as the gateway, the email, eligibility, escalation and opt-out
//! services do. The webhook receiver checks Standard Webhooks signatures with the spec's
//! algorithm written here with hmac/sha2/base64, independently of the service's code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    CaseAction, CaseActionKind, CaseClient, CaseFirm, CaseInvoice, CaseLinks, CaseStatus, ConsentChanged, DeadLetter,
    EmailSent, EscalationCase, EscalationReason, Explanation, FirmUpdated, HaltReason, InvoiceHalted,
    NotificationOutcome, ReplyClassified, ReplyIntent, ReplyKind, Tier,
};
use arflow_contracts::{Envelope, subjects};
use arflow_core::{Channel, Currency, SendWindow};
use arflow_notification::{Application, Config};
use arflow_runtime::config::load_defaults;
use arflow_runtime::{ClockMode, ClockSettings, Metrics, NatsSettings};
use arflow_testkit::smtp::SmtpSink;
use arflow_testkit::{TestDb, TestNats};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOKEN: &str = "test-internal-token-0123456789";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
}

// ---------- receivers ----------

/// One request a receiver accepted or refused.
#[derive(Debug, Clone)]
struct Received {
    webhook_id: String,
    body: Value,
    /// What the receiver answered.
    status: u16,
}

/// A webhook endpoint: verifies signatures, answers `status` (200 unless told otherwise).
#[derive(Clone, Default)]
struct Receiver {
    secret: Arc<Mutex<Option<String>>>,
    status: Arc<AtomicU16>,
    log: Arc<Mutex<Vec<Received>>>,
    bad_signatures: Arc<Mutex<usize>>,
}

/// The Standard Webhooks check, from the spec (not the service's signer).
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    arflow_testkit::standard_webhooks::verify(secret, headers, body).is_some()
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = r.secret.lock().unwrap().clone();
    if let Some(secret) = secret
        && !verify(&secret, &headers, &body)
    {
        *r.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let status = match r.status.load(Ordering::SeqCst) {
        0 => 200,
        s => s,
    };
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    r.log.lock().unwrap().push(Received { webhook_id, body: serde_json::from_slice(&body).unwrap(), status });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Listens on `port` (0: any); returns the URL.
    async fn listen(&self, port: u16) -> String {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://127.0.0.1:{port}/hook")
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn accepted(&self) -> Vec<Received> {
        self.log.lock().unwrap().iter().filter(|r| (200..300).contains(&r.status)).cloned().collect()
    }

    fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    async fn wait_accepted(&self, n: usize) -> Vec<Received> {
        wait(&format!("{n} accepted webhooks"), || {
            let a = self.accepted();
            (a.len() >= n).then_some(a)
        })
        .await
    }
}

/// Polls `f` until it returns something (a generous deadline for "eventually").
async fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------- the app ----------

struct TestApp {
    nats: TestNats,
    _db: TestDb,
    smtp: SmtpSink,
    config: Config,
    bus: Bus,
    port: u16,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), arflow_service::StartupError>>,
}

impl TestApp {
    async fn spawn(tune: impl FnOnce(&mut Config)) -> TestApp {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let smtp = SmtpSink::start();
        let mut config: Config = load_defaults(include_str!("../config/default.toml")).unwrap();
        config.internal.token = TOKEN.to_string().into();
        config.nats.url = nats.url();
        config.database.url = Some(db.url().into());
        config.http.port = 0;
        config.clock = ClockSettings { mode: ClockMode::Simulated, start: Some(t0()) };
        config.smtp.port = smtp.port();
        config.notification.retry_backoff_ms = vec![100, 200, 400];
        config.notification.poll_ms = 50;
        // The test's receivers listen on 127.0.0.1.
        config.notification.allow_private_targets = true;
        tune(&mut config);
        let shutdown = CancellationToken::new();
        let app = Application::build(config.clone(), shutdown.clone()).await.unwrap();
        let port = app.port();
        let task = tokio::spawn(app.run());
        let settings = NatsSettings::at(nats.url());
        let bus = Bus::connect(&settings, "gateway", Metrics::new("test")).await.unwrap();
        TestApp { nats, _db: db, smtp, config, bus, port, http: reqwest::Client::new(), shutdown, task }
    }

    /// Stops the service and starts it again on the same database and NATS.
    async fn restart(&mut self) {
        self.shutdown.cancel();
        (&mut self.task).await.unwrap().unwrap();
        self.shutdown = CancellationToken::new();
        let app = Application::build(self.config.clone(), self.shutdown.clone()).await.unwrap();
        self.port = app.port();
        self.task = tokio::spawn(app.run());
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        drop(self.nats);
    }

    /// The API as the gateway forwards it for `firm`.
    async fn api(&self, firm: Uuid, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.port))
            .header("x-arflow-internal-token", TOKEN)
            .header("x-arflow-firm-id", firm.to_string())
            .header("x-arflow-actor", "pat@firm.test");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn subscribe(&self, firm: Uuid, kinds: &[&str], channel: Value) -> Value {
        let (status, body) = self
            .api(
                firm,
                reqwest::Method::POST,
                "/v1/notifications/subscriptions",
                Some(json!({"user": "pat@firm.test", "kinds": kinds, "channel": channel})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// A webhook subscription whose secret the receiver then checks.
    async fn subscribe_webhook(&self, firm: Uuid, kinds: &[&str], receiver: &Receiver, url: &str) -> Value {
        let sub = self.subscribe(firm, kinds, json!({"type": "webhook", "url": url})).await;
        let secret = sub["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        *receiver.secret.lock().unwrap() = Some(secret);
        sub
    }

    async fn deliveries(&self, firm: Uuid, query: &str) -> Vec<Value> {
        let (status, body) = self
            .api(firm, reqwest::Method::GET, &format!("/v1/notifications/deliveries?limit=200&{query}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    async fn publish<T: Serialize>(&self, firm: Uuid, kind: &str, subject_id: Uuid, data: T) -> Envelope<T> {
        let env = Envelope::new(kind, "test", t0(), firm, subject_id, None, data);
        self.publish_envelope(&env).await;
        env
    }

    async fn publish_envelope<T: Serialize>(&self, env: &Envelope<T>) {
        let subject = subjects::subject(&env.kind, env.firm_id);
        let ack = self.bus.publish_event(&subject, &format!("test:{}", env.id), env).await.unwrap();
        assert!(!ack.duplicate);
    }

    async fn opt_out(&self, firm: Uuid) -> Envelope<ConsentChanged> {
        let data = ConsentChanged {
            contact_id: Uuid::now_v7(),
            client_id: Uuid::now_v7(),
            channel: None,
            source: "email_reply".into(),
            evidence: "please stop emailing me".into(),
        };
        self.publish(firm, subjects::consent::OPTED_OUT, data.contact_id, data).await
    }

    async fn firm_updated(&self, firm: Uuid, timezone: &str) {
        let f = FirmUpdated {
            firm_id: firm,
            name: "Acme CPA".into(),
            sender_email: "ar@acme.test".into(),
            stripe_connected: true,
            timezone: timezone.into(),
            min_amounts: BTreeMap::new(),
            email_window: SendWindow::business_hours(),
            call_window: None,
            version: 1,
        };
        self.publish(firm, subjects::billing::FIRM_UPDATED, firm, f).await;
    }

    async fn wait_outcomes(&self, n: usize) -> Vec<(String, NotificationOutcome)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = self.outcomes().await;
            if o.len() >= n {
                return o;
            }
            assert!(Instant::now() < deadline, "{} of {n} outcome events", o.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every `notification.*` event published so far.
    async fn outcomes(&self) -> Vec<(String, NotificationOutcome)> {
        let stream = self.bus.js.get_stream("NOTIFY").await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut out = vec![];
        for seq in 1..=last {
            let m = stream.get_raw_message(seq).await.unwrap();
            let env = RawEnvelope::parse(&m.payload).unwrap();
            out.push((env.kind.clone(), env.data_as().unwrap()));
        }
        out
    }
}

fn reply(intent: ReplyIntent) -> ReplyClassified {
    ReplyClassified {
        reply_id: Uuid::now_v7(),
        channel: Channel::Email,
        kind: ReplyKind::Reply,
        intent: Some(intent),
        promised_date: NaiveDate::from_ymd_opt(2026, 3, 20),
        evidence: "we never ordered this".into(),
        sure: true,
        confidence: 1.0,
        needs_review: false,
        scores: vec![],
        labelled_by: None,
        client_text: "We never ordered this, we will not pay.".into(),
        invoice_id: Some(Uuid::now_v7()),
        contact_id: Some(Uuid::now_v7()),
        client_id: Some(Uuid::now_v7()),
        matched_by: Some("reply_token".into()),
        answered_message_id: None,
        step: Some("reminder_1".into()),
        from: Some("ap@client.test".into()),
        subject: Some("Re: Invoice INV-1".into()),
        received_at: t0(),
        reference_date: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
        bounce: None,
        action: "escalated".into(),
    }
}

fn dispute_case(firm: Uuid) -> EscalationCase {
    let case_id = Uuid::now_v7();
    EscalationCase {
        case_id,
        version: 1,
        status: CaseStatus::Open,
        reason: EscalationReason::Dispute,
        evidence: "we never ordered this".into(),
        firm: CaseFirm { firm_id: firm, name: "Acme CPA".into(), timezone: "UTC".into() },
        client: CaseClient { client_id: Uuid::now_v7(), name: "Globex".into(), tier: Tier::Standard },
        contact: None,
        invoice: Some(CaseInvoice {
            invoice_id: Uuid::now_v7(),
            stripe_invoice_id: "in_1".into(),
            number: Some("INV-1".into()),
            currency: Currency::parse("usd").unwrap(),
            amount_due: Decimal::new(320000, 2),
            amount_remaining: Decimal::new(320000, 2),
            due_date: NaiveDate::from_ymd_opt(2026, 3, 1),
            days_past_due: 9,
            hosted_invoice_url: None,
        }),
        opened_at: t0(),
        updated_at: t0(),
        resolved_at: None,
        action: CaseAction {
            action: CaseActionKind::Opened,
            actor: "arflow".into(),
            note: String::new(),
            at: t0(),
            paused_until: None,
            agency: None,
        },
        latest_activity: None,
        links: CaseLinks {
            case: format!("http://gw.test/v1/escalations/{case_id}"),
            invoice_activity: None,
            hosted_invoice: None,
        },
        review: None,
    }
}

// ---------- tests ----------

/// Signed webhooks, verified independently; kind filtering; a dispute told once per reply;
/// tenant isolation in events and in the API; outcomes on `notification.delivered`.
#[tokio::test]
async fn webhooks_are_signed_filtered_by_kind_and_kept_to_their_firm() {
    let app = TestApp::spawn(|_| {}).await;
    let (firm_a, firm_b) = (Uuid::now_v7(), Uuid::now_v7());
    let (ra, rb) = (Receiver::default(), Receiver::default());
    let (url_a, url_b) = (ra.listen(0).await, rb.listen(0).await);
    let sub_a = app.subscribe_webhook(firm_a, &["opt_out", "dispute", "dead_letter"], &ra, &url_a).await;
    app.subscribe_webhook(firm_b, &["opt_out"], &rb, &url_b).await;

    // A forged signature is refused by the receiver's own check.
    let forged = app
        .http
        .post(&url_a)
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let out_a = app.opt_out(firm_a).await;
    // Not subscribed to promises.
    app.publish(firm_a, subjects::reply::CLASSIFIED, Uuid::now_v7(), reply(ReplyIntent::PromiseToPay)).await;
    // A dispute reply and the escalation it opened (same correlation): one dispute notification.
    let dispute = app.publish(firm_a, subjects::reply::CLASSIFIED, Uuid::now_v7(), reply(ReplyIntent::Dispute)).await;
    let cause = dispute.clone().into_raw().unwrap();
    let case = dispute_case(firm_a);
    let opened =
        Envelope::new(subjects::escalation::OPENED, "escalation", t0(), firm_a, case.case_id, Some(&cause), case);
    app.publish_envelope(&opened).await;
    let out_b = app.opt_out(firm_b).await;
    // Dead letters: one of firm A's, one without a firm (nobody is told).
    for firm in [firm_a, Uuid::nil()] {
        let letter = DeadLetter {
            service: "email".into(),
            consumer: "email-steps".into(),
            stream: "OUTREACH".into(),
            stream_sequence: 7,
            subject: "outreach.step_due.email.x".into(),
            deliveries: 8,
            reason: "template missing: SELECT * FROM email.templates".into(),
            payload: r#"{"id":"01a25000-0000-7000-8000-000000000001","data":{"email":"secret@client.test"}}"#.into(),
            dead_lettered_at: t0(),
        };
        let env = Envelope::new("dlq.message", "email", t0(), firm, firm, None, letter);
        app.bus.publish_event("dlq.email", &format!("test:{}", env.id), &env).await.unwrap();
    }

    let got_a = ra.wait_accepted(3).await;
    let got_b = rb.wait_accepted(1).await;
    // Settle: nothing else arrives (the escalation's dispute is the reply's).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_a = if ra.accepted().len() > got_a.len() { ra.accepted() } else { got_a };
    let types: BTreeSet<&str> = got_a.iter().map(|r| r.body["type"].as_str().unwrap()).collect();
    assert_eq!(types, BTreeSet::from(["opt_out", "dispute", "dead_letter"]), "{got_a:#?}");
    let ids: BTreeSet<&str> = got_a.iter().map(|r| r.webhook_id.as_str()).collect();
    assert_eq!((got_a.len(), ids.len()), (3, 3), "one delivery per notification");
    let letter = got_a.iter().find(|r| r.body["type"] == "dead_letter").unwrap();
    // Ids and a reason, never the payload or the internal error text.
    let told = letter.body.to_string();
    assert!(
        !told.contains("template missing") && !told.contains("SELECT") && !told.contains("secret@client.test"),
        "{told}"
    );
    assert!(
        letter.body["data"]["summary"].as_str().unwrap().contains("01a25000-0000-7000-8000-000000000001"),
        "{told}"
    );
    let opt = got_a.iter().find(|r| r.body["type"] == "opt_out").unwrap();
    assert_eq!(opt.body["data"]["event_id"], json!(out_a.id));
    assert_eq!(opt.body["data"]["firm_id"], json!(firm_a));
    assert!(opt.body["data"]["summary"].as_str().unwrap().contains("please stop emailing me"));
    assert_eq!(got_b.len(), 1);
    assert_eq!(got_b[0].body["data"]["event_id"], json!(out_b.id));
    assert_eq!((*ra.bad_signatures.lock().unwrap(), *rb.bad_signatures.lock().unwrap()), (1, 0), "only the forgery");

    // The API shows each firm only its own.
    let sub_id = sub_a["id"].as_str().unwrap();
    let (status, _) =
        app.api(firm_b, reqwest::Method::GET, &format!("/v1/notifications/subscriptions/{sub_id}"), None).await;
    assert_eq!(status, 404);
    let (_, list_b) = app.api(firm_b, reqwest::Method::GET, "/v1/notifications/subscriptions", None).await;
    assert_eq!(list_b["data"].as_array().unwrap().len(), 1);
    assert!(list_b["data"][0].get("secret").is_none(), "the secret is shown once");
    let a_deliveries = app.deliveries(firm_a, "status=delivered").await;
    assert_eq!(a_deliveries.len(), 3);
    // Pages follow the cursor.
    let (_, page1) = app.api(firm_a, reqwest::Method::GET, "/v1/notifications/deliveries?limit=2", None).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .api(firm_a, reqwest::Method::GET, &format!("/v1/notifications/deliveries?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!((page1["data"].as_array().unwrap().len(), page2["data"].as_array().unwrap().len()), (2, 1));
    assert!(page2["next_cursor"].is_null());
    assert_eq!(app.deliveries(firm_b, "").await.len(), 1);
    let a_id = a_deliveries[0]["id"].as_str().unwrap();
    let (status, _) =
        app.api(firm_b, reqwest::Method::POST, &format!("/v1/notifications/deliveries/{a_id}/replay"), None).await;
    assert_eq!(status, 404);
    let (status, _) =
        app.api(firm_b, reqwest::Method::DELETE, &format!("/v1/notifications/subscriptions/{sub_id}"), None).await;
    assert_eq!(status, 404);
    // Without the gateway's token nothing is answered.
    let anon =
        app.http.get(format!("http://127.0.0.1:{}/v1/notifications/subscriptions", app.port)).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    // Validation: a non-http URL and an unknown kind.
    for body in [
        json!({"user": "pat", "kinds": ["opt_out"], "channel": {"type": "webhook", "url": "ftp://x.test/h"}}),
        json!({"user": "pat", "kinds": ["payments"], "channel": {"type": "email", "address": "pat@firm.test"}}),
        json!({"user": "pat", "kinds": ["opt_out"], "channel": {"type": "email", "address": "not-an-address"}}),
    ] {
        let (status, problem) =
            app.api(firm_a, reqwest::Method::POST, "/v1/notifications/subscriptions", Some(body)).await;
        assert_eq!(status, 422, "{problem}");
    }

    // A repeated Idempotency-Key answers the first subscription again.
    let create = |key: &'static str| {
        app.http
            .post(format!("http://127.0.0.1:{}/v1/notifications/subscriptions", app.port))
            .header("x-arflow-internal-token", TOKEN)
            .header("x-arflow-firm-id", firm_b.to_string())
            .header("idempotency-key", key)
            .json(&json!({"user": "pat", "kinds": ["opt_out"], "channel": {"type": "email", "address": "pat@b.test"}}))
            .send()
    };
    let first: Value = create("k1").await.unwrap().json().await.unwrap();
    let again: Value = create("k1").await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let (_, list_b) = app.api(firm_b, reqwest::Method::GET, "/v1/notifications/subscriptions", None).await;
    assert_eq!(list_b["data"].as_array().unwrap().len(), 2);

    let outcomes = app.wait_outcomes(4).await;
    assert!(outcomes.iter().all(|(k, o)| k == "notification.delivered" && o.channel == "webhook" && o.attempts == 1));
    app.stop().await;
}

/// A receiver that is not listening, then answers 503, then comes back: every notification
/// arrives, each `webhook-id` accepted once, without the simulated clock moving.
#[tokio::test]
async fn a_receiver_that_is_down_for_a_while_gets_every_notification_once_back() {
    let mut app = TestApp::spawn(|_| {}).await;
    let firm = Uuid::now_v7();
    let receiver = Receiver::default();
    let port = arflow_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    app.subscribe_webhook(firm, &["opt_out"], &receiver, &url).await;
    let mut events = vec![];
    for _ in 0..6 {
        events.push(app.opt_out(firm).await.id);
    }
    // Nothing listens: attempts fail with connection refused and are retried on wall time.
    let failed_once = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = app.deliveries(firm, "").await;
            if d.len() == 6 && d.iter().all(|x| x["attempts"].as_i64().unwrap() >= 2) {
                return d;
            }
            assert!(Instant::now() < deadline, "deliveries not retried: {d:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let pending = failed_once.await;
    assert!(pending.iter().all(|d| d["status"] == "pending" && d["last_error"].as_str().is_some()));
    // The deliveries live in PostgreSQL: a restart while the receiver is down loses none.
    app.restart().await;
    // Back, but overloaded for its first requests.
    receiver.answer(503);
    receiver.listen(port).await;
    wait("503 answers", || (receiver.requests() >= 3).then_some(())).await;
    receiver.answer(200);
    let accepted = receiver.wait_accepted(6).await;
    let delivered = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = app.deliveries(firm, "status=delivered").await;
            if d.len() == 6 {
                return d;
            }
            assert!(Instant::now() < deadline, "only {} delivered", d.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    .await;
    let accepted = if receiver.accepted().len() > accepted.len() { receiver.accepted() } else { accepted };
    let delivery_ids: BTreeSet<String> = delivered.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    let accepted_ids: BTreeSet<String> = accepted.iter().map(|r| r.webhook_id.clone()).collect();
    assert_eq!(accepted_ids, delivery_ids, "every delivery reached the receiver under its own webhook-id");
    let event_ids: BTreeSet<Uuid> =
        accepted.iter().map(|r| serde_json::from_value(r.body["data"]["event_id"].clone()).unwrap()).collect();
    assert_eq!(event_ids, events.into_iter().collect::<BTreeSet<_>>(), "none lost");
    // At-least-once: a repeat would carry the same id; here each id was accepted once.
    assert_eq!(accepted.len(), accepted_ids.len(), "{accepted:#?}");
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    // The endpoint's record: failures, then a success that cleared them.
    let (_, subs) = app.api(firm, reqwest::Method::GET, "/v1/notifications/subscriptions", None).await;
    let health = &subs["data"][0]["health"];
    assert_eq!(health["consecutive_failures"], 0);
    assert!(health["last_success_at"].is_string() && health["last_error"].is_string(), "{health}");
    app.stop().await;
}

/// A Slack incoming-webhook URL is the credential: when the endpoint cannot be reached, the error
/// kept on the delivery and the endpoint (shown by the API, logged) does not carry it.
#[tokio::test]
async fn a_failed_slack_attempt_does_not_reveal_the_webhook_url() {
    let app = TestApp::spawn(|_| {}).await;
    let firm = Uuid::now_v7();
    let port = arflow_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/s3cr3t-slack-token");
    app.subscribe(firm, &["opt_out"], json!({"type": "slack", "webhook_url": url})).await;
    app.opt_out(firm).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        let d = app.deliveries(firm, "").await;
        if d.len() == 1 && d[0]["last_error"].is_string() {
            break d[0].clone();
        }
        assert!(Instant::now() < deadline, "no failed attempt: {d:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, subs) = app.api(firm, reqwest::Method::GET, "/v1/notifications/subscriptions", None).await;
    let health = &subs["data"][0]["health"];
    assert!(health["last_error"].is_string(), "{health}");
    for shown in [&delivery["last_error"], &health["last_error"]] {
        assert!(!shown.as_str().unwrap().contains("s3cr3t"), "the webhook URL leaked: {shown}");
    }
    app.stop().await;
}

/// Persistent failure disables the endpoint; new and waiting deliveries park as
/// `endpoint_disabled`; after enabling, a replay delivers with the same `webhook-id`.
/// A 410 Gone disables another endpoint at its first answer.
#[tokio::test]
async fn an_endpoint_failing_persistently_is_disabled_then_enabled_and_replayed() {
    let app = TestApp::spawn(|c| c.notification.disable_after_failures = 4).await;
    let firm = Uuid::now_v7();
    let (broken, gone) = (Receiver::default(), Receiver::default());
    broken.answer(500);
    gone.answer(410);
    let (url_broken, url_gone) = (broken.listen(0).await, gone.listen(0).await);
    let sub = app.subscribe_webhook(firm, &["opt_out"], &broken, &url_broken).await;
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let sub_gone = app.subscribe(firm, &["opt_out"], json!({"type": "webhook", "url": url_gone})).await;
    *gone.secret.lock().unwrap() = sub_gone["secret"].as_str().map(str::to_string);
    app.opt_out(firm).await;
    app.opt_out(firm).await;

    let status_of = |id: String| {
        let app = &app;
        async move {
            let (_, s) =
                app.api(firm, reqwest::Method::GET, &format!("/v1/notifications/subscriptions/{id}"), None).await;
            s
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (a, b) = (status_of(sub_id.clone()).await, status_of(sub_gone["id"].as_str().unwrap().into()).await);
        if a["status"] == "disabled" && b["status"] == "disabled" {
            // At least 4: an attempt already in flight when the 4th failed is still recorded.
            assert!(a["health"]["consecutive_failures"].as_i64().unwrap() >= 4, "{a}");
            assert!(a["health"]["disabled_reason"].as_str().unwrap().contains("consecutive"));
            assert!(b["health"]["disabled_reason"].as_str().unwrap().contains("410"), "{b}");
            // 410 disables at once: no retry; only the two first attempts (sent together) reached it.
            assert!(gone.requests() <= 2, "{}", gone.requests());
            break;
        }
        assert!(Instant::now() < deadline, "not disabled: {a} {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests_when_disabled = broken.requests();
    // New events park too.
    app.opt_out(firm).await;
    let parked = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = app.deliveries(firm, &format!("status=endpoint_disabled&subscription_id={sub_id}")).await;
            if d.len() == 3 {
                break d;
            }
            assert!(Instant::now() < deadline, "{d:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(broken.requests(), requests_when_disabled, "a disabled endpoint gets nothing");
    assert!(gone.requests() <= 2);
    let first = parked[0]["id"].as_str().unwrap().to_string();
    let (status, problem) =
        app.api(firm, reqwest::Method::POST, &format!("/v1/notifications/deliveries/{first}/replay"), None).await;
    assert_eq!(status, 409, "{problem}");

    // The receiver is fixed; the firm re-enables and replays.
    broken.answer(200);
    let (status, enabled) =
        app.api(firm, reqwest::Method::POST, &format!("/v1/notifications/subscriptions/{sub_id}/enable"), None).await;
    assert_eq!((status, enabled["status"].as_str()), (200, Some("active")));
    for d in &parked {
        let id = d["id"].as_str().unwrap();
        let (status, body) =
            app.api(firm, reqwest::Method::POST, &format!("/v1/notifications/deliveries/{id}/replay"), None).await;
        assert_eq!(status, 202, "{body}");
    }
    let accepted = broken.wait_accepted(3).await;
    let ids: BTreeSet<String> = accepted.iter().map(|r| r.webhook_id.clone()).collect();
    let parked_ids: BTreeSet<String> = parked.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, parked_ids, "replays keep the delivery's webhook-id");
    // The same ids were what the failing attempts carried.
    let tried: BTreeSet<String> =
        broken.log.lock().unwrap().iter().filter(|r| r.status == 500).map(|r| r.webhook_id.clone()).collect();
    assert!(tried.is_subset(&parked_ids));
    // Replaying a delivered one sends it again, same id.
    let (status, _) =
        app.api(firm, reqwest::Method::POST, &format!("/v1/notifications/deliveries/{first}/replay"), None).await;
    assert_eq!(status, 202);
    let again = broken.wait_accepted(4).await;
    assert_eq!(again.iter().filter(|r| r.webhook_id == first).count(), 2);
    let outcomes = app.wait_outcomes(2).await;
    assert!(outcomes.iter().any(|(k, o)| k == "notification.failed" && o.detail.contains("endpoint disabled")));

    // The gone endpoint comes back: enabling with `replay_parked` queues all it missed.
    gone.answer(200);
    let gone_id = sub_gone["id"].as_str().unwrap();
    let (status, enabled) = app
        .api(
            firm,
            reqwest::Method::POST,
            &format!("/v1/notifications/subscriptions/{gone_id}/enable"),
            Some(json!({"replay_parked": true})),
        )
        .await;
    assert_eq!((status, enabled["replayed"].as_i64()), (200, Some(3)), "{enabled}");
    let got = gone.wait_accepted(3).await;
    assert_eq!(got.iter().map(|r| r.webhook_id.clone()).collect::<BTreeSet<_>>().len(), 3);
    app.stop().await;
}

fn email_sent(invoice_id: Uuid) -> EmailSent {
    EmailSent {
        step_id: Uuid::now_v7(),
        invoice_id,
        contact_id: Uuid::now_v7(),
        step: "overdue_3".into(),
        to: "ap@client.test".into(),
        message_id: "<m1@arflow>".into(),
        template: "reminder".into(),
        template_version: 1,
        subject: "Invoice INV-1".into(),
        body_text: "Please pay".into(),
        explanation: Explanation {
            rule: "default/overdue_3".into(),
            policy_id: Uuid::now_v7(),
            policy_version: 1,
            eligibility_version: 1,
            checks: vec![],
        },
    }
}

fn paid(invoice_id: Uuid, reason: HaltReason) -> InvoiceHalted {
    InvoiceHalted {
        invoice_id,
        client_id: Uuid::now_v7(),
        stripe_invoice_id: "in_paid_1".into(),
        reason,
        stripe_event_id: format!("evt_{}", Uuid::now_v7().simple()),
        hold_revision: 1,
        version: 1,
    }
}

/// Slack gets `{text, blocks}`; a firm user gets an email through the SMTP sink; a payment
/// is told only when the invoice had outreach, once per invoice.
#[tokio::test]
async fn slack_and_email_notify_a_payment_after_outreach_once() {
    let app = TestApp::spawn(|_| {}).await;
    let firm = Uuid::now_v7();
    let slack = Receiver::default(); // no secret: Slack webhooks are not signed
    let slack_url = slack.listen(0).await;
    let created =
        app.subscribe(firm, &["payment_after_outreach"], json!({"type": "slack", "webhook_url": slack_url})).await;
    assert_eq!(created["channel"]["webhook_url"], json!(slack_url));
    // The Slack URL is a credential: listed, only its start shows.
    let (_, listed) = app.api(firm, reqwest::Method::GET, "/v1/notifications/subscriptions", None).await;
    assert!(listed["data"][0]["channel"]["webhook_url"].as_str().unwrap().ends_with("ho…"), "{listed}");
    app.subscribe(firm, &["payment_after_outreach", "opt_out"], json!({"type": "email", "address": "pat@firm.test"}))
        .await;
    let (reminded, silent) = (Uuid::now_v7(), Uuid::now_v7());
    app.publish(firm, subjects::outreach::EMAIL_SENT, reminded, email_sent(reminded)).await;
    app.publish(firm, subjects::outreach::EMAIL_SENT, reminded, email_sent(reminded)).await;
    // The streams are separate: the reminders are recorded before the payment arrives
    // (in production days apart).
    let db = sqlx::PgPool::connect(&app._db.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlx::query_scalar::<_, i32>("SELECT emails_sent FROM notification.invoice_outreach")
        .fetch_optional(&db)
        .await
        .unwrap()
        != Some(2)
    {
        assert!(Instant::now() < deadline, "reminders not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Paid without any reminder: nothing to tell.
    app.publish(firm, subjects::billing::INVOICE_PAID, silent, paid(silent, HaltReason::Paid)).await;
    // Stripe sends paid and payment_succeeded for one payment.
    app.publish(firm, subjects::billing::INVOICE_PAID, reminded, paid(reminded, HaltReason::Paid)).await;
    app.publish(firm, subjects::billing::INVOICE_PAID, reminded, paid(reminded, HaltReason::PaymentSucceeded)).await;

    let got = slack.wait_accepted(1).await;
    let body = &got[0].body;
    assert!(body["text"].as_str().unwrap().contains("in_paid_1 was paid after 2 reminder(s)"), "{body}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks.iter().any(|b| b["type"] == "context"
        && b["elements"][0]["text"].as_str().unwrap().contains(&format!("/v1/invoices/{reminded}/activity"))));
    let mails = app.smtp.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mails[0].to, vec!["pat@firm.test".to_string()]);
    assert!(mails[0].subject().unwrap().contains("was paid after outreach"), "{:?}", mails[0].subject());
    let text = mails[0].text();
    assert!(text.contains("paid after 2 reminder(s)") && text.contains(&format!("/v1/invoices/{reminded}/activity")));
    // Settle, then: one of each, no more.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!((slack.accepted().len(), app.smtp.count()), (1, 1));
    assert_eq!(app.deliveries(firm, "").await.len(), 2);

    // An SMTP server that refuses for a while: the email is retried and arrives.
    app.smtp.fail_next(2, false);
    app.opt_out(firm).await;
    let mails = app.smtp.wait_for(2, Duration::from_secs(30)).await;
    assert!(mails[1].subject().unwrap().contains("opted out"));
    assert_eq!(app.smtp.refused(), 2);
    // A permanent refusal (5xx) fails the delivery at once, and says so on the bus.
    app.smtp.fail_next(1, true);
    app.opt_out(firm).await;
    let outcomes = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = app.outcomes().await;
            if o.iter().any(|(k, _)| k == "notification.failed") {
                break o;
            }
            assert!(Instant::now() < deadline, "{o:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (_, failed) = outcomes.iter().find(|(k, _)| k == "notification.failed").unwrap();
    assert_eq!((failed.channel.as_str(), failed.event_kind.as_str(), failed.attempts), ("email", "opt_out", 1));
    assert_eq!(app.deliveries(firm, "status=failed").await.len(), 1);
    app.stop().await;
}

/// At 08:00 in the firm's zone (Asia/Tokyo, on the simulated clock) one digest of the previous
/// local day goes to each digest subscription, once, also across a restart.
#[tokio::test]
async fn the_daily_digest_goes_out_at_eight_local_once() {
    let mut app = TestApp::spawn(|_| {}).await;
    let firm = Uuid::now_v7();
    app.firm_updated(firm, "Asia/Tokyo").await;
    let receiver = Receiver::default();
    let url = receiver.listen(0).await;
    app.subscribe_webhook(firm, &["daily_digest"], &receiver, &url).await;
    // t0 = 2026-03-11 00:00 JST. Two opt-outs and a dispute that day, one opt-out the day before.
    for (kind, at, data) in [
        (subjects::consent::OPTED_OUT, t0() + chrono::Duration::hours(1), None),
        (subjects::consent::OPTED_OUT, t0() + chrono::Duration::hours(20), None),
        (subjects::consent::OPTED_OUT, t0() - chrono::Duration::minutes(1), None),
        (subjects::reply::CLASSIFIED, t0() + chrono::Duration::hours(2), Some(reply(ReplyIntent::Dispute))),
    ] {
        let payload = match data {
            Some(r) => serde_json::to_value(r).unwrap(),
            None => serde_json::to_value(ConsentChanged {
                contact_id: Uuid::now_v7(),
                client_id: Uuid::now_v7(),
                channel: None,
                source: "email_reply".into(),
                evidence: "stop".into(),
            })
            .unwrap(),
        };
        let env = Envelope::new(kind, "test", at, firm, Uuid::now_v7(), None, payload);
        app.publish_envelope(&env).await;
    }
    // Every event recorded (the firm zone too) before the clock moves.
    let deadline = Instant::now() + Duration::from_secs(30);
    let db = sqlx::PgPool::connect(&app._db.url()).await.unwrap();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notification.firm_events").fetch_one(&db).await.unwrap();
        let tz: Option<String> =
            sqlx::query_scalar("SELECT timezone FROM notification.firms").fetch_optional(&db).await.unwrap();
        if n == 4 && tz.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "events not recorded ({n})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 07:59 JST on the 11th: not yet.
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 10, 22, 59, 0).unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.requests(), 0, "no digest before 08:00 local");
    // 08:00 JST on the 11th: the 10th's digest (the opt-out a minute before midnight).
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 10, 23, 0, 0).unwrap()).await.unwrap();
    let got = receiver.wait_accepted(1).await;
    assert_eq!(got[0].body["data"]["event"]["date"], "2026-03-10");
    assert_eq!(got[0].body["data"]["event"]["counts"]["opt_out"], 1, "{}", got[0].body);
    // 08:00 JST on the 12th: the 11th's.
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 11, 23, 0, 0).unwrap()).await.unwrap();
    let got = receiver.wait_accepted(2).await;
    let digest = &got[1].body;
    assert_eq!(digest["type"], "daily_digest");
    assert_eq!(digest["data"]["event"]["date"], "2026-03-11");
    assert_eq!(digest["data"]["event"]["timezone"], "Asia/Tokyo");
    let counts = &digest["data"]["event"]["counts"];
    assert_eq!((counts["opt_out"].as_i64(), counts["dispute"].as_i64()), (Some(2), Some(1)), "{digest}");
    assert_eq!(counts["escalation_opened"], 0);
    assert!(digest["data"]["summary"].as_str().unwrap().contains("Opt-outs: 2"));

    // Restarted, and the clock moves on within the day: still one.
    app.restart().await;
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 12, 3, 0, 0).unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.accepted().len(), 2, "one digest per subscription and local day");
    assert_eq!(app.deliveries(firm, "").await.len(), 2);
    // The next morning, the next day's digest.
    arflow_bus::clock::set(&app.bus, Utc.with_ymd_and_hms(2026, 3, 12, 23, 0, 0).unwrap()).await.unwrap();
    let got = receiver.wait_accepted(3).await;
    assert_eq!(got[2].body["data"]["event"]["date"], "2026-03-12");
    app.stop().await;
}

/// The reminder's `sent` event comes after the payment (they travel on different streams, and a
/// payment can arrive moments after the first reminder): the notice is still sent, once.
#[tokio::test]
async fn a_payment_seen_before_its_reminder_is_still_told_once() {
    let app = TestApp::spawn(|_| {}).await;
    let firm = Uuid::now_v7();
    let slack = Receiver::default();
    let slack_url = slack.listen(0).await;
    app.subscribe(firm, &["payment_after_outreach"], json!({"type": "slack", "webhook_url": slack_url})).await;
    let invoice = Uuid::now_v7();
    app.publish(firm, subjects::billing::INVOICE_PAID, invoice, paid(invoice, HaltReason::Paid)).await;
    let db = sqlx::PgPool::connect(&app._db.url()).await.unwrap();
    arflow_testkit::eventually("the payment recorded", Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notification.invoice_payments")
            .fetch_one(&db)
            .await
            .ok()
            .filter(|n| *n == 1)
    })
    .await;
    app.publish(firm, subjects::outreach::EMAIL_SENT, invoice, email_sent(invoice)).await;
    let got = slack.wait_accepted(1).await;
    assert!(got[0].body["text"].as_str().unwrap().contains("was paid after 1 reminder(s)"), "{}", got[0].body);
    // A second payment event (payment_succeeded) changes nothing.
    app.publish(firm, subjects::billing::INVOICE_PAID, invoice, paid(invoice, HaltReason::PaymentSucceeded)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(slack.accepted().len(), 1);
}

#[tokio::test]
async fn lists_are_pages_and_a_subscription_filter_is_scoped_to_the_firm() {
    let app = TestApp::spawn(|_| {}).await;
    let (firm, other) = (Uuid::now_v7(), Uuid::now_v7());
    let email = |a: &str| json!({"type": "email", "address": a});
    let mine = app.subscribe(firm, &["opt_out"], email("pat@firm.test")).await;
    app.subscribe(firm, &["dispute"], email("sam@firm.test")).await;
    let theirs = app.subscribe(other, &["opt_out"], email("lee@other.test")).await;

    let app = &app;
    let get = |firm: Uuid, path: String| async move { app.api(firm, reqwest::Method::GET, &path, None).await };
    let (status, first) = get(firm, "/v1/notifications/subscriptions?limit=1".into()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().expect("a second page").to_string();
    let (_, last) = get(firm, format!("/v1/notifications/subscriptions?limit=1&cursor={cursor}")).await;
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert!(last["next_cursor"].is_null(), "the last page has no cursor: {last}");

    // The firm's own subscription without deliveries: an empty page.
    let (status, none) =
        get(firm, format!("/v1/notifications/deliveries?subscription_id={}", mine["id"].as_str().unwrap())).await;
    assert_eq!((status, none["data"].clone(), none["next_cursor"].clone()), (200, json!([]), Value::Null));
    // Another firm's subscription, or an unknown one: 404, as every route answers for them.
    for id in [theirs["id"].as_str().unwrap().to_string(), Uuid::now_v7().to_string()] {
        let (status, body) = get(firm, format!("/v1/notifications/deliveries?subscription_id={id}")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["status"], 404);
    }
}
