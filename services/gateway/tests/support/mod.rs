//! `TestApp`: a fresh nats-server, a fresh database and the gateway in-process, with
//! helpers named after what a firm, Stripe or a client does.
#![allow(dead_code)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_gateway::{Application, Config};
use arflow_runtime::ServiceConfig;
use arflow_runtime::{Metrics, NatsSettings};
use arflow_testkit::{TestDb, TestNats};
use serde_json::{Value, json};
use sqlx::PgPool;

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN: &str = "admin-token-for-tests";
pub const UNSUB_SECRET: &str = "unsubscribe-secret-for-tests";
pub const SECRET: &str = "whsec_test_current";

pub struct TestApp {
    pub nats: TestNats,
    pub db: TestDb,
    pub port: u16,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub bus: Bus,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

pub struct Firm {
    pub id: Uuid,
    pub key: String,
    pub inbound_token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let nats = TestNats::start();
    let db = TestDb::create().await;
    let mut config: Config = arflow_runtime::config::load_defaults(Config::DEFAULTS).expect("defaults");
    config.nats.url = nats.url();
    config.database.url = Some(db.url().into());
    config.http.port = 0;
    config.gateway.admin_token = ADMIN.to_string().into();
    config.unsubscribe.secret = UNSUB_SECRET.to_string().into();
    adjust(&mut config);
    let shutdown = CancellationToken::new();
    let app = Application::build(config, shutdown.clone()).await.expect("gateway starts");
    let port = app.port();
    let task = tokio::spawn(async move {
        app.run().await.expect("gateway runs");
    });
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            db.url().parse::<sqlx::postgres::PgConnectOptions>().expect("db url").options([("search_path", "gateway")]),
        )
        .await
        .expect("test pool");
    let settings = NatsSettings::at(nats.url());
    let bus = Bus::connect(&settings, "test", Metrics::new("test")).await.expect("test bus");
    TestApp { nats, db, port, http: reqwest::Client::new(), pool, bus, shutdown, task }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// Polls `check` until it returns Some, or fails after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    arflow_testkit::eventually(what, Duration::from_secs(10), check).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn create_firm(&self, secrets: &[&str]) -> Firm {
        let r = self
            .http
            .post(self.url("/v1/firms"))
            .bearer_auth(ADMIN)
            .json(&json!({
                "name": "Acme Accounting",
                "sender_email": "billing@acme.test",
                "timezone": "America/New_York",
                "stripe_webhook_secrets": secrets,
                "stripe_api_key": "sk_test_123",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let body: Value = r.json().await.unwrap();
        Firm {
            id: body["firm"]["id"].as_str().unwrap().parse().unwrap(),
            key: body["api_key"].as_str().unwrap().into(),
            inbound_token: body["inbound_token"].as_str().unwrap().into(),
        }
    }

    /// Stripe delivers `event` to the firm's endpoint, signed with `secret`.
    pub async fn deliver(&self, firm: Uuid, secret: &str, event: &Value) -> reqwest::Response {
        let (sig, body) = arflow_testkit::stripe::signed_webhook(secret, event);
        self.post_webhook(&firm.to_string(), Some(&sig), body).await
    }

    pub async fn post_webhook(&self, firm: &str, sig: Option<&str>, body: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.post(self.url(&format!("/webhooks/stripe/{firm}"))).body(body);
        if let Some(s) = sig {
            req = req.header("Stripe-Signature", s);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(key).send().await.unwrap()
    }

    pub async fn webhook_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM webhook_events").fetch_one(&self.pool).await.unwrap()
    }

    /// Every message on a stream, in order, as (subject, envelope).
    pub async fn stream(&self, name: &str) -> Vec<(String, RawEnvelope)> {
        let stream = self.bus.js.get_stream(name).await.unwrap();
        let info = stream.get_info().await.unwrap().state;
        let mut out = Vec::new();
        if info.messages == 0 {
            return out;
        }
        for seq in info.first_sequence..=info.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push((m.subject.to_string(), RawEnvelope::parse(&m.payload).unwrap()));
            }
        }
        out
    }

    /// Subjects on BILLING other than firm updates (what webhooks and records produce).
    pub async fn billing_record_subjects(&self) -> Vec<String> {
        self.stream("BILLING")
            .await
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| !s.starts_with("billing.firm_updated"))
            .collect()
    }

    /// Waits until the outbox table is empty (everything published).
    pub async fn outbox_drained(&self) {
        let pool = self.pool.clone();
        eventually("the outbox to drain", || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&pool).await.unwrap();
                (n == 0).then_some(())
            }
        })
        .await;
    }
}
