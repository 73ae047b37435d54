//! The opt-out service on the real stack: a nats-server, a fresh database, the Application
//! in-process and its HTTP API called as the gateway calls it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use arflow_bus::{Bus, HoldValue};
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    BounceInfo, Consent, ConsentCommand, ContactUpserted, ReplyClassified, ReplyIntent, ReplyKind,
};
use arflow_contracts::subjects::{self, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::Channel;
use arflow_optout::{Application, Config};
use arflow_runtime::{Metrics, NatsSettings};
use arflow_service::api::{ACTOR_HEADER, FIRM_HEADER, INTERNAL_TOKEN_HEADER};
use arflow_testkit::{TestDb, TestNats};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TOKEN: &str = "internal-token-for-tests";
pub const WAIT: Duration = Duration::from_secs(15);

pub struct TestApp {
    pub nats: TestNats,
    pub db: TestDb,
    pub bus: Bus,
    pub pool: PgPool,
    pub port: u16,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), arflow_service::StartupError>>,
}

pub fn config(nats: &TestNats, db: &TestDb) -> Config {
    let mut c: Config = arflow_runtime::config::load_defaults(include_str!("../../config/default.toml")).unwrap();
    c.nats.url = nats.url();
    c.database.url = Some(db.url().into());
    c.http.port = 0;
    c.internal.token = TOKEN.to_string().into();
    c.consumer.backoff_ms = vec![100, 200];
    c
}

/// A contact of a client of a firm.
#[derive(Debug, Clone)]
pub struct Person {
    pub firm: Uuid,
    pub client: Uuid,
    pub contact: Uuid,
    pub email: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let config = config(&nats, &db);
        let shutdown = CancellationToken::new();
        let app = Application::build(config, shutdown.clone()).await.unwrap();
        let port = app.port();
        let task = tokio::spawn(app.run());
        let settings = NatsSettings::at(nats.url());
        let bus = Bus::connect(&settings, "test", Metrics::new("test")).await.unwrap();
        let pool = PgPool::connect(&db.url()).await.unwrap();
        TestApp { nats, db, bus, pool, port, http: reqwest::Client::new(), shutdown, task }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A request as the gateway forwards it for `firm`.
    pub fn as_firm(&self, method: reqwest::Method, firm: Uuid, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header(FIRM_HEADER, firm.to_string())
            .header(ACTOR_HEADER, "dana@acme.test")
            .header(INTERNAL_TOKEN_HEADER, TOKEN)
    }

    pub async fn post_json(&self, firm: Uuid, path: &str, body: Value) -> reqwest::Response {
        self.as_firm(reqwest::Method::POST, firm, path).json(&body).send().await.unwrap()
    }

    pub async fn get_json(&self, firm: Uuid, path: &str) -> Value {
        let r = self.as_firm(reqwest::Method::GET, firm, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn publish<T: Serialize>(&self, kind: &str, firm: Uuid, subject_id: Uuid, data: T) -> Envelope<T> {
        let env = Envelope::new(kind, "test", chrono::Utc::now(), firm, subject_id, None, data);
        self.publish_envelope(&env).await;
        env
    }

    pub async fn publish_envelope<T: Serialize>(&self, env: &Envelope<T>) {
        let subject = subject(&env.kind, env.firm_id);
        self.bus.publish_event(&subject, &format!("test:{}", env.id), env).await.unwrap();
    }

    /// A new contact, known to the service (its `billing.contact_upserted` applied).
    pub async fn person(&self, firm: Uuid, email: &str) -> Person {
        let p = Person { firm, client: Uuid::now_v7(), contact: Uuid::now_v7(), email: email.to_string() };
        let data = ContactUpserted {
            contact_id: p.contact,
            client_id: p.client,
            name: format!("Contact {email}"),
            email: Some(email.to_string()),
            phone: Some("+15555550100".into()),
            timezone: Some("America/New_York".into()),
            primary: true,
            consent: Consent { email: true, voice: true, sms: false },
            version: 1,
        };
        self.publish(subjects::billing::CONTACT_UPSERTED, firm, p.contact, data).await;
        let pool = self.pool.clone();
        eventually("contact known", || {
            let pool = pool.clone();
            async move {
                let n: (i64,) = sqlx::query_as("SELECT count(*) FROM optout.contacts WHERE contact_id = $1")
                    .bind(p.contact)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                (n.0 == 1).then_some(())
            }
        })
        .await;
        p
    }

    pub async fn held(&self, key: &str) -> Option<u64> {
        match self.bus.holds().get(key).await.unwrap() {
            Some((HoldValue::Held { .. }, revision)) => Some(revision),
            _ => None,
        }
    }

    /// Every event on `stream` whose subject starts with `prefix`.
    pub async fn events(&self, stream: &str, prefix: &str) -> Vec<RawEnvelope> {
        let stream = self.bus.js.get_stream(stream).await.unwrap();
        let state = stream.get_info().await.unwrap().state;
        let mut out = vec![];
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await
                && m.subject.starts_with(prefix)
            {
                out.push(RawEnvelope::parse(&m.payload).unwrap_or_else(|_| panic!("envelope on {}", m.subject)));
            }
        }
        out
    }

    pub async fn consent_events(&self, contact: Uuid) -> Vec<RawEnvelope> {
        self.events("CONSENT", "consent.").await.into_iter().filter(|e| e.subject_id == contact).collect()
    }

    /// The contact's ledger history (oldest first), once it has `n` entries.
    pub async fn history(&self, p: &Person, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self.get_json(p.firm, &format!("/v1/consent/contacts/{}", p.contact)).await;
            let history = body["history"].as_array().cloned().unwrap_or_default();
            if history.len() >= n {
                return history;
            }
            assert!(Instant::now() < deadline, "{} of {n} ledger entries for {}", history.len(), p.contact);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn dead_letters(&self) -> Vec<String> {
        let stream = self.bus.js.get_stream("DLQ").await.unwrap();
        let state = stream.get_info().await.unwrap().state;
        let mut out = vec![];
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push(String::from_utf8_lossy(&m.payload).to_string());
            }
        }
        out
    }

    pub async fn reply(&self, p: &Person, r: ReplyClassified) -> Envelope<ReplyClassified> {
        self.publish(subjects::reply::CLASSIFIED, p.firm, r.invoice_id.unwrap_or(r.reply_id), r).await
    }

    pub async fn command(&self, firm: Uuid, kind: &str, c: ConsentCommand) -> Envelope<ConsentCommand> {
        let env = Envelope::new(kind, "gateway", chrono::Utc::now(), firm, c.contact_id, None, c);
        let id = env.id;
        self.bus.publish_event(&subject(kind, firm), &msg_id::command(id), &env).await.unwrap();
        env
    }
}

/// A classified message from `p` (an email reply unless changed).
pub fn classified(p: &Person, kind: ReplyKind, intent: Option<ReplyIntent>, evidence: &str) -> ReplyClassified {
    ReplyClassified {
        reply_id: Uuid::now_v7(),
        channel: Channel::Email,
        kind,
        intent,
        promised_date: None,
        evidence: evidence.into(),
        sure: true,
        confidence: 1.0,
        needs_review: false,
        scores: vec![],
        labelled_by: None,
        client_text: evidence.into(),
        invoice_id: Some(Uuid::now_v7()),
        contact_id: Some(p.contact),
        client_id: Some(p.client),
        matched_by: Some("reply_token".into()),
        answered_message_id: Some("<m1@acme.test>".into()),
        step: Some("friendly_reminder".into()),
        from: Some(p.email.clone()),
        subject: Some("Re: Invoice".into()),
        received_at: chrono::Utc::now(),
        reference_date: chrono::Utc::now().date_naive(),
        bounce: None,
        action: "test".into(),
    }
}

pub fn hard_bounce(p: &Person) -> ReplyClassified {
    let mut r = classified(p, ReplyKind::Bounce, None, "");
    r.bounce = Some(BounceInfo { recipient: p.email.clone(), hard: true, status: "5.1.1".into() });
    r
}

pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    arflow_testkit::eventually(what, WAIT, check).await
}
