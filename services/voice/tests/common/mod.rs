//! The voice service on the real stack: a nats-server, a fresh database, a fake provider that
//! speaks Twilio's REST contract (Calls.json / Messages.json, form-encoded, Basic auth), the
//! Application in-process on a simulated clock. The test plays the provider's callbacks itself
//! (as the gateway forwards them), so each persona is a sequence of HTTP calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    Check, ClientSnapshot, ContactSnapshot, Explanation, FirmSnapshot, InvoiceSnapshot, StepDue, Tier, Tone,
};
use arflow_contracts::subjects::{outreach, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::{Channel, Currency};
use arflow_runtime::{ClockMode, Metrics, NatsSettings};
use arflow_testkit::{TestDb, TestNats};
use arflow_voice::{Application, Config};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TOKEN: &str = "internal-token-for-tests";
pub const AUTH_TOKEN: &str = "telephony-auth-token";
pub const ACCOUNT: &str = "AC11111111111111111111111111111111";
pub const WAIT: Duration = Duration::from_secs(20);
/// A number the fake provider refuses (Twilio error 21211, invalid 'To').
pub const REFUSED_NUMBER: &str = "+14155550199";
/// The fake provider takes this long to answer a call to [`SLOW_NUMBER`] (past the client's
/// request timeout in the test that uses it): the call is placed, the answer is lost.
pub const SLOW_NUMBER: &str = "+14155550177";
pub const SLOW_ANSWER: std::time::Duration = std::time::Duration::from_secs(3);

/// Tuesday 10 March 2026, 15:00 UTC: 11:00 in New York (EDT).
pub fn tuesday_afternoon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
}

/// One REST request the fake provider received.
#[derive(Debug, Clone)]
pub struct Request {
    pub resource: String,
    pub account: String,
    pub authorization: String,
    pub form: Vec<(String, String)>,
}

impl Request {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.form.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

/// The fake Twilio REST API.
#[derive(Clone, Default)]
pub struct FakeProvider {
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub port: u16,
}

async fn create(
    State(p): State<FakeProvider>,
    Path((account, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let req = Request { resource: resource.clone(), account, authorization, form };
    let to = req.get("To").unwrap_or("").to_string();
    p.requests.lock().unwrap().push(req);
    if to == SLOW_NUMBER {
        tokio::time::sleep(SLOW_ANSWER).await;
    }
    if to == REFUSED_NUMBER {
        let body = serde_json::json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let prefix = if resource == "Calls.json" { "CA" } else { "SM" };
    let sid = format!("{prefix}{}", Uuid::new_v4().simple());
    (StatusCode::CREATED, axum::Json(serde_json::json!({"sid": sid, "status": "queued", "to": to}))).into_response()
}

impl FakeProvider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut p = FakeProvider { requests: Default::default(), port: listener.local_addr().unwrap().port() };
        p.port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/2010-04-01/Accounts/{account}/{resource}", axum::routing::post(create))
            .with_state(p.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        p
    }

    pub fn calls(&self) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.resource == "Calls.json").cloned().collect()
    }

    pub fn messages(&self) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.resource == "Messages.json").cloned().collect()
    }

    pub fn calls_to(&self, number: &str) -> Vec<Request> {
        self.calls().into_iter().filter(|r| r.get("To") == Some(number)).collect()
    }
}

pub struct TestApp {
    pub nats: TestNats,
    pub db: TestDb,
    pub bus: Bus,
    pub pool: PgPool,
    pub provider: FakeProvider,
    pub firm: Uuid,
    pub port: u16,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
    pub config: Config,
}

pub fn config(nats: &TestNats, db: &TestDb, provider: &FakeProvider, start: DateTime<Utc>) -> Config {
    let mut c: Config = arflow_runtime::config::load_defaults(include_str!("../../config/default.toml")).unwrap();
    c.nats.url = nats.url();
    c.database.url = Some(db.url().into());
    c.http.port = 0;
    c.clock.mode = ClockMode::Simulated;
    c.clock.start = Some(start);
    c.internal.token = TOKEN.to_string().into();
    c.telephony.api_base = format!("http://127.0.0.1:{}", provider.port);
    c.telephony.account_sid = ACCOUNT.into();
    c.telephony.auth_token = AUTH_TOKEN.to_string().into();
    c.telephony.callback_base_url = "https://gateway.example".into();
    c.telephony.request_timeout_secs = 5;
    c.voice.poll_ms = 50;
    c.voice.uncertain_after_secs = 30;
    c
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_at(tuesday_afternoon()).await
    }

    pub async fn spawn_at(start: DateTime<Utc>) -> Self {
        Self::spawn_with(start, |_| {}).await
    }

    /// With the config changed by `tweak` (another provider, another callback base...).
    pub async fn spawn_with(start: DateTime<Utc>, tweak: impl FnOnce(&mut Config)) -> Self {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let provider = FakeProvider::start().await;
        let bus = Bus::connect(&NatsSettings::at(nats.url()), "test", Metrics::new("test")).await.unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&db.url()).await.unwrap();
        let mut config = config(&nats, &db, &provider, start);
        tweak(&mut config);
        let mut app = TestApp {
            nats,
            db,
            bus,
            pool,
            provider,
            firm: Uuid::now_v7(),
            port: 0,
            http: reqwest::Client::new(),
            shutdown: CancellationToken::new(),
            handle: None,
            config: config.clone(),
        };
        app.start().await;
        app
    }

    pub async fn start(&mut self) {
        self.shutdown = CancellationToken::new();
        let app = Application::build(self.config.clone(), self.shutdown.clone()).await.expect("voice service starts");
        self.port = app.port();
        self.handle = Some(tokio::spawn(async move { app.run().await.expect("voice service runs") }));
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h).await.expect("service stops").unwrap();
        }
    }

    /// Publishes a step as the scheduler does; `delivery` varies the msg id (a republish).
    pub async fn publish_step(&self, step: &StepDue, delivery: u32) -> Envelope<StepDue> {
        let kind = if step.channel == Channel::Sms { outreach::STEP_DUE_SMS } else { outreach::STEP_DUE_VOICE };
        let env = Envelope::new(kind, "scheduler", tuesday_afternoon(), self.firm, step.invoice_id, None, step.clone());
        self.publish_envelope(&env, delivery).await;
        env
    }

    pub async fn publish_envelope(&self, env: &Envelope<StepDue>, delivery: u32) {
        let msg = format!("{}:{delivery}", msg_id::step(env.data.step_id, "due"));
        self.bus.publish_event(&subject(&env.kind, self.firm), &msg, env).await.unwrap();
    }

    pub async fn set_clock(&self, to: DateTime<Utc>) {
        arflow_bus::clock::set(&self.bus, to).await.unwrap();
    }

    /// Every event of `kind` in `stream` so far.
    pub async fn events_in(&self, stream: &str, kind: &str) -> Vec<RawEnvelope> {
        let stream = self.bus.js.get_stream(stream).await.unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: format!("{kind}.>"),
                deliver_policy: DeliverPolicy::All,
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(5),
                ..Default::default()
            })
            .await
            .unwrap();
        let pending = consumer.cached_info().num_pending as usize;
        let mut out = vec![];
        if pending == 0 {
            return out;
        }
        let mut batch =
            consumer.fetch().max_messages(pending).expires(Duration::from_secs(2)).messages().await.unwrap();
        while let Some(m) = batch.next().await {
            out.push(RawEnvelope::parse(&m.unwrap().payload).unwrap());
            if out.len() == pending {
                break;
            }
        }
        out
    }

    pub async fn events(&self, kind: &str) -> Vec<RawEnvelope> {
        let stream = if kind.starts_with("reply.") { "REPLY" } else { "OUTREACH" };
        self.events_in(stream, kind).await
    }

    /// Waits until `n` events of `kind` exist.
    pub async fn wait_events(&self, kind: &str, n: usize) -> Vec<RawEnvelope> {
        let deadline = Instant::now() + WAIT;
        loop {
            let e = self.events(kind).await;
            if e.len() >= n {
                return e;
            }
            assert!(Instant::now() < deadline, "{} of {n} {kind} events after {WAIT:?}", e.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The events of `kind` about one step (or call).
    pub async fn events_for(&self, kind: &str, field: &str, id: Uuid) -> Vec<serde_json::Value> {
        self.events(kind)
            .await
            .into_iter()
            .map(|e| e.data)
            .filter(|d| d.get(field).and_then(|v| v.as_str()) == Some(id.to_string().as_str()))
            .collect()
    }

    pub async fn wait_event_for(&self, kind: &str, field: &str, id: Uuid) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events_for(kind, field, id).await.into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no {kind} with {field} = {id} after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `(state, id)` of a step's call.
    pub async fn call_of(&self, step_id: Uuid) -> Option<(String, Uuid)> {
        sqlx::query_as("SELECT state, id FROM voice.calls WHERE step_id = $1")
            .bind(step_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    pub async fn wait_call_state(&self, step_id: Uuid, want: &str) -> Uuid {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.call_of(step_id).await;
            if let Some((state, id)) = &s
                && state == want
            {
                return *id;
            }
            assert!(Instant::now() < deadline, "call of step {step_id} is {s:?}, not {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text_state(&self, step_id: Uuid) -> Option<(String, Uuid)> {
        sqlx::query_as("SELECT state, id FROM voice.texts WHERE step_id = $1")
            .bind(step_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    pub async fn wait_text_state(&self, step_id: Uuid, want: &str) -> Uuid {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.text_state(step_id).await;
            if let Some((state, id)) = &s
                && state == want
            {
                return *id;
            }
            assert!(Instant::now() < deadline, "text of step {step_id} is {s:?}, not {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A callback as the gateway forwards it: `/internal/telephony/<path>` with the token.
    pub async fn callback(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("http://127.0.0.1:{}/internal/telephony/{path}", self.port))
            .header("x-arflow-internal-token", TOKEN)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// The provider answers the call (`AnsweredBy`), the client says each line in turn until
    /// the agent hangs up, then the call completes. Returns the TwiML of every step.
    pub async fn converse(&self, call_id: Uuid, answered_by: &str, lines: &[&str]) -> Vec<String> {
        let sid = format!("CA{}", Uuid::new_v4().simple());
        let mut out = vec![];
        let (s, twiml) = self
            .callback(
                &format!("voice/{call_id}/answer"),
                &[("CallSid", &sid), ("CallStatus", "in-progress"), ("AnsweredBy", answered_by)],
            )
            .await;
        assert_eq!(s, 200, "{twiml}");
        out.push(twiml.clone());
        let mut last = twiml;
        for (i, line) in lines.iter().enumerate() {
            if !last.contains("<Gather") {
                break;
            }
            let turn = i + 1;
            let (s, twiml) = self
                .callback(
                    &format!("voice/{call_id}/gather?turn={turn}"),
                    &[("CallSid", &sid), ("SpeechResult", line), ("Confidence", "0.9")],
                )
                .await;
            assert_eq!(s, 200, "{twiml}");
            out.push(twiml.clone());
            last = twiml;
        }
        self.status(call_id, &sid, "completed", Some(answered_by), Some("42")).await;
        out
    }

    pub async fn status(
        &self,
        call_id: Uuid,
        sid: &str,
        status: &str,
        answered_by: Option<&str>,
        duration: Option<&str>,
    ) {
        let mut form = vec![("CallSid", sid), ("CallStatus", status), ("SequenceNumber", "3")];
        if let Some(a) = answered_by {
            form.push(("AnsweredBy", a));
        }
        if let Some(d) = duration {
            form.push(("CallDuration", d));
        }
        let (s, body) = self.callback(&format!("voice/{call_id}/status"), &form).await;
        assert_eq!(s, 204, "{body}");
    }

    /// GET on the read API as the gateway forwards it.
    pub async fn api(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("x-arflow-internal-token", TOKEN)
            .header("x-arflow-firm-id", self.firm.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// GET on the read API as the gateway forwards it for `firm`.
    pub async fn api_as(&self, firm: Uuid, path: &str) -> (u16, Option<String>, serde_json::Value) {
        let r = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("x-arflow-internal-token", TOKEN)
            .header("x-arflow-firm-id", firm.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        (status, content_type, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The gateway publishes `firm`'s invoice (`billing.invoice_upserted`).
    pub async fn publish_invoice(&self, firm: Uuid, invoice_id: Uuid) {
        let data = arflow_contracts::events::InvoiceUpserted {
            invoice_id,
            client_id: Uuid::now_v7(),
            stripe_invoice_id: format!("in_{}", invoice_id.simple()),
            number: Some("INV-0001".into()),
            currency: Currency::parse("USD").unwrap(),
            amount_due: Decimal::new(10_000, 2),
            amount_remaining: Decimal::new(10_000, 2),
            due_date: None,
            status: arflow_contracts::events::InvoiceStatus::Open,
            hosted_invoice_url: None,
            excluded: false,
            disputed: false,
            version: 1,
        };
        let kind = arflow_contracts::subjects::billing::INVOICE_UPSERTED;
        let env = Envelope::new(kind, "gateway", tuesday_afternoon(), firm, invoice_id, None, data);
        let msg = arflow_contracts::msg_id::record("invoice", invoice_id, 1);
        self.bus.publish_event(&subject(kind, firm), &msg, &env).await.unwrap();
    }

    pub async fn hold(&self, key: &str) {
        self.bus.holds().hold(key, "opted_out", "test", Utc::now()).await.unwrap();
    }

    pub async fn is_held(&self, key: &str) -> bool {
        matches!(self.bus.holds().get(key).await.unwrap(), Some((arflow_bus::holds::HoldValue::Held { .. }, _)))
    }
}

/// A call step for a New York contact who consented to calls and texts.
pub fn voice_step(tone: Tone) -> StepDue {
    step(Channel::Voice, tone, "+14155552671")
}

pub fn sms_step() -> StepDue {
    step(Channel::Sms, Tone::Friendly, "+14155552671")
}

pub fn step(channel: Channel, tone: Tone, phone: &str) -> StepDue {
    let invoice_id = Uuid::now_v7();
    StepDue {
        step_id: Uuid::now_v7(),
        invoice_id,
        step: "overdue_21".into(),
        channel,
        tone,
        pay_link: true,
        scheduled_for: tuesday_afternoon(),
        contact: ContactSnapshot {
            contact_id: Uuid::now_v7(),
            name: "Jane Doe".into(),
            email: Some("jane.doe@client.example".into()),
            phone: Some(phone.into()),
            timezone: Some("America/New_York".into()),
            channels: vec![Channel::Email, Channel::Voice, Channel::Sms],
            call_timezone: Some("America/New_York".into()),
        },
        invoice: InvoiceSnapshot {
            invoice_id,
            stripe_invoice_id: "in_1Abc".into(),
            number: Some("INV-0042".into()),
            currency: Currency::parse("USD").unwrap(),
            amount_due: Decimal::new(320000, 2),
            amount_remaining: Decimal::new(320000, 2),
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 2, 17),
            hosted_invoice_url: Some("https://invoice.stripe.com/i/acct_1/test_YWNjdF8x".into()),
        },
        client: ClientSnapshot { client_id: Uuid::now_v7(), name: "Client Co".into(), tier: Tier::Standard },
        firm: FirmSnapshot {
            name: "Acme Accounting".into(),
            sender_email: "billing@acme.example".into(),
            timezone: "America/New_York".into(),
            email_window: arflow_core::SendWindow::business_hours(),
            call_window: None,
        },
        days_overdue: 21,
        explanation: Explanation {
            rule: "default/overdue_21".into(),
            policy_id: Uuid::now_v7(),
            policy_version: 2,
            eligibility_version: 7,
            checks: vec![Check { rule: "amount_above_minimum".into(), passed: true, detail: "ok".into() }],
        },
        promised_date: None,
        after_broken_promise: false,
        attempt: 1,
    }
}
