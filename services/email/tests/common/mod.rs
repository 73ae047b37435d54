//! The email service on the real stack: a nats-server, a fresh database, an SMTP sink and
//! the Application in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    Check, ClientSnapshot, ContactSnapshot, Explanation, FirmSnapshot, InvoiceSnapshot, StepDue, Tier, Tone,
};
use arflow_contracts::subjects::{outreach, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::{Channel, Currency};
use arflow_email::{Application, Config};
use arflow_runtime::{Metrics, NatsSettings};
use arflow_testkit::smtp::SmtpSink;
use arflow_testkit::{TestDb, TestNats};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub mod dkim;

pub struct TestApp {
    pub nats: TestNats,
    pub db: TestDb,
    pub sink: SmtpSink,
    pub bus: Bus,
    pub pool: PgPool,
    pub firm: Uuid,
    /// The HTTP port of the running service (0 while it is stopped).
    pub port: u16,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
}

pub fn config(nats: &TestNats, db: &TestDb, sink: &SmtpSink) -> Config {
    let mut c: Config = arflow_runtime::config::load_defaults(include_str!("../../config/default.toml")).unwrap();
    c.unsubscribe.secret = UNSUB_SECRET.to_string().into();
    c.nats.url = nats.url();
    c.database.url = Some(db.url().into());
    c.http.port = 0;
    c.smtp.port = sink.port();
    // Fast transient retries in tests.
    c.email.retry_backoff_ms = vec![100, 200];
    c.email.poll_ms = 50;
    c.internal.token = TOKEN.to_string().into();
    c
}

/// The secret the service signs unsubscribe links with (the gateway's, in a deployment).
pub const UNSUB_SECRET: &str = "unsubscribe-secret-for-tests";

/// The internal token the tests play the gateway with.
pub const TOKEN: &str = "internal-token-for-tests";

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let sink = SmtpSink::start();
        let bus = Bus::connect(&NatsSettings::at(nats.url()), "test", Metrics::new("test")).await.unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&db.url()).await.unwrap();
        let mut app = TestApp {
            nats,
            db,
            sink,
            bus,
            pool,
            firm: Uuid::now_v7(),
            port: 0,
            shutdown: CancellationToken::new(),
            handle: None,
        };
        let mut c = config(&app.nats, &app.db, &app.sink);
        tweak(&mut c);
        app.start(c).await;
        app
    }

    pub async fn start(&mut self, config: Config) {
        self.shutdown = CancellationToken::new();
        let app = Application::build(config, self.shutdown.clone()).await.expect("email service starts");
        self.port = app.port();
        self.handle = Some(tokio::spawn(async move { app.run().await.expect("email service runs") }));
    }

    /// Stops the service cleanly (drains in-flight work).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h).await.expect("service stops").unwrap();
        }
    }

    /// Publishes a step as the scheduler does; `attempt` varies the envelope and msg id.
    /// GET on the API as the gateway forwards it for `firm`: status and body.
    pub async fn api_as(&self, firm: Uuid, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("x-arflow-internal-token", TOKEN)
            .header("x-arflow-firm-id", firm.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn publish_step(&self, step: &StepDue, attempt: u32) -> Envelope<StepDue> {
        self.publish_step_for(self.firm, step, attempt).await
    }

    /// Publishes a step of another firm.
    pub async fn publish_step_for(&self, firm: Uuid, step: &StepDue, attempt: u32) -> Envelope<StepDue> {
        let env = Envelope::new(
            outreach::STEP_DUE_EMAIL,
            "scheduler",
            chrono::Utc::now(),
            firm,
            step.invoice_id,
            None,
            step.clone(),
        );
        let msg = format!("{}:{attempt}", msg_id::step(step.step_id, "due"));
        self.bus.publish_event(&subject(outreach::STEP_DUE_EMAIL, firm), &msg, &env).await.unwrap();
        env
    }

    pub async fn publish_envelope(&self, env: &Envelope<StepDue>, msg: &str) {
        self.bus.publish_event(&subject(outreach::STEP_DUE_EMAIL, self.firm), msg, env).await.unwrap();
    }

    /// Every event of `kind` (e.g. `outreach.email.sent`) in the stream so far.
    pub async fn events(&self, kind: &str) -> Vec<RawEnvelope> {
        let stream = self.bus.js.get_stream("OUTREACH").await.unwrap();
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

    /// Waits until `n` events of `kind` exist.
    pub async fn wait_events(&self, kind: &str, n: usize, timeout: Duration) -> Vec<RawEnvelope> {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.events(kind).await;
            if e.len() >= n {
                return e;
            }
            assert!(Instant::now() < deadline, "{} of {n} {kind} events after {timeout:?}", e.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The state of a step's email, if it has one.
    pub async fn state(&self, step_id: Uuid) -> Option<String> {
        sqlx::query_as::<_, (String,)>("SELECT state FROM email.emails WHERE step_id = $1")
            .bind(step_id)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
            .map(|(s,)| s)
    }

    pub async fn wait_state(&self, step_id: Uuid, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.state(step_id).await;
            if s.as_deref() == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "email of step {step_id} is {s:?}, not {want}, after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn email_rows(&self) -> i64 {
        sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM email.emails").fetch_one(&self.pool).await.unwrap().0
    }
}

pub fn step(tone: Tone, days_overdue: i64, pay_link: bool) -> StepDue {
    let invoice_id = Uuid::now_v7();
    StepDue {
        step_id: Uuid::now_v7(),
        invoice_id,
        step: format!("overdue_{days_overdue}"),
        channel: Channel::Email,
        tone,
        pay_link,
        scheduled_for: chrono::Utc::now(),
        contact: ContactSnapshot {
            contact_id: Uuid::now_v7(),
            name: "Jane Doe".into(),
            email: Some("jane.doe@client.example".into()),
            phone: None,
            timezone: Some("America/New_York".into()),
            channels: vec![Channel::Email],
            call_timezone: None,
        },
        invoice: InvoiceSnapshot {
            invoice_id,
            stripe_invoice_id: "in_1Abc".into(),
            number: Some("INV-0042".into()),
            currency: Currency::parse("USD").unwrap(),
            amount_due: Decimal::new(320000, 2),
            amount_remaining: Decimal::new(320000, 2),
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 5),
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
        days_overdue,
        explanation: Explanation {
            rule: format!("default-email/overdue_{days_overdue}"),
            policy_id: Uuid::now_v7(),
            policy_version: 2,
            eligibility_version: 7,
            checks: vec![Check {
                rule: "amount_above_minimum".into(),
                passed: true,
                detail: "3,200.00 USD > 50.00 USD".into(),
            }],
        },
        promised_date: None,
        after_broken_promise: false,
        attempt: 1,
    }
}

pub const WAIT: Duration = Duration::from_secs(20);
