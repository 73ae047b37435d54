//! `TestApp`: every arflow service in-process on a fresh nats-server, a fresh database, a
//! real SMTP sink and a simulated clock, with helpers named after what a firm, Stripe or
//! time does. Services can be killed and restarted one by one; NATS can be restarted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockMode, ClockSettings, Metrics, NatsSettings};
use arflow_testkit::smtp::{ReceivedMail, SmtpSink};
use arflow_testkit::telephony::{ClientScript, SimConfig, TelephonySim};
use arflow_testkit::{TestDb, TestNats, free_port, stripe};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN: &str = "admin-token-for-tests";
pub const UNSUB_SECRET: &str = "unsubscribe-secret-for-tests";
/// Where clients' answers go: `Reply-To: reply+<token>@in.harborpine.test`.
pub const REPLY_DOMAIN: &str = "in.harborpine.test";
/// The services behind the gateway come first so that it can forward to them.
pub const SERVICES: [&str; 8] =
    ["optout", "escalation", "notification", "voice", "gateway", "eligibility", "scheduler", "email"];
/// What the gateway proves itself with to the services behind it.
pub const INTERNAL_TOKEN: &str = "internal-token-for-tests";
/// The telephony account the voice service calls with and the simulator signs callbacks with.
pub const TELEPHONY_ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TELEPHONY_TOKEN: &str = "telephony-auth-token-for-tests";
/// The number calls and texts come from (clients text back to it).
pub const FROM_NUMBER: &str = "+12025550100";

/// A service's compiled-in defaults before the test sets what a deployment must (the internal
/// token), which `Config::defaults` would refuse.
fn unvalidated_defaults<C: ServiceConfig>() -> C {
    arflow_runtime::config::load_defaults(C::DEFAULTS).unwrap()
}

/// Monday 2 March 2026, 00:00 UTC: where every scenario's clock starts.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

/// Points a service's config at this test's NATS, database and clock (every service's config
/// has these fields, but each is its own type).
macro_rules! on_test_stack {
    ($c:expr, $nats:expr, $db:expr, $clock:expr) => {{
        $c.nats.url = $nats;
        $c.database.url = $db;
        $c.http.port = 0;
        $c.clock = $clock;
        // Redelivery after a lost ack (NATS restarts) within seconds, not half a minute.
        $c.consumer.ack_wait_secs = 5;
        // Seven services per test, tests in parallel, one PostgreSQL (max_connections 100).
        $c.database.max_connections = 3;
    }};
}

pub struct TestApp {
    pub nats: TestNats,
    pub db: TestDb,
    pub smtp: SmtpSink,
    pub bus: Bus,
    /// A pool without search_path: queries name the schema (`scheduler.steps`).
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub gateway_port: u16,
    /// Stripe's API as the gateway sees it (firms created with `create_firm_with_stripe_key`).
    pub stripe_api: stripe::StripeSim,
    /// The telephony provider (Twilio's contract) with scripted people on the other end.
    pub telephony: TelephonySim,
    /// Fixed for the test's life, so a restarted service is where the gateway forwards.
    pub ports: HashMap<&'static str, u16>,
    running: HashMap<&'static str, (CancellationToken, JoinHandle<()>)>,
}

pub struct Firm {
    pub id: Uuid,
    pub key: String,
    pub secret: String,
    /// Authenticates the firm's inbound email webhook.
    pub inbound_token: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let smtp = SmtpSink::start();
        let settings = NatsSettings::at(nats.url());
        let bus = Bus::connect(&settings, "test", Metrics::new("test")).await.expect("test bus");
        arflow_bus::clock::set(&bus, start_time()).await.expect("clock");
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&db.url()).await.expect("test pool");
        // The gateway's port is fixed before it starts: the provider signs the public URL it calls.
        let gateway_port = free_port();
        let telephony = TelephonySim::start(SimConfig {
            account_sid: TELEPHONY_ACCOUNT.into(),
            auth_token: TELEPHONY_TOKEN.into(),
            sms_webhook_url: Some(format!("http://127.0.0.1:{gateway_port}/webhooks/telephony/sms/inbound")),
            default_script: ClientScript::NoAnswer,
        })
        .await;
        let mut app = TestApp {
            nats,
            db,
            smtp,
            bus,
            pool,
            http: reqwest::Client::new(),
            gateway_port,
            stripe_api: stripe::StripeSim::start().await,
            telephony,
            ports: ["optout", "escalation", "notification", "voice", "email"]
                .into_iter()
                .map(|s| (s, free_port()))
                .collect(),
            running: HashMap::new(),
        };
        for s in SERVICES {
            app.start_service(s).await;
        }
        app
    }

    fn clock(&self) -> ClockSettings {
        ClockSettings { mode: ClockMode::Simulated, start: Some(start_time()) }
    }

    /// Starts (or restarts) one service in-process. Each build future is boxed: eight of them
    /// inline make this future too large for a test thread's stack.
    pub async fn start_service(&mut self, name: &'static str) {
        self.start_service_with(name, |_| {}).await
    }

    /// Like `start_service`, with the email service's config adjusted first (ignored by the others).
    pub async fn start_service_with(&mut self, name: &'static str, adjust: impl FnOnce(&mut arflow_email::Config)) {
        let token = CancellationToken::new();
        let (db_url, nats_url, clock) = (Some(self.db.url().into()), self.nats.url(), self.clock());
        let handle = match name {
            "gateway" => {
                let mut c: arflow_gateway::Config = unvalidated_defaults();
                on_test_stack!(c, nats_url, db_url, clock);
                c.gateway.admin_token = ADMIN.to_string().into();
                c.unsubscribe.secret = UNSUB_SECRET.to_string().into();
                c.internal.token = INTERNAL_TOKEN.to_string().into();
                c.gateway.stripe_api_base = self.stripe_api.base_url();
                c.gateway.upstreams.optout = self.service_url("optout");
                c.gateway.upstreams.escalation = self.service_url("escalation");
                c.gateway.upstreams.notification = self.service_url("notification");
                c.gateway.upstreams.voice = self.service_url("voice");
                c.gateway.upstreams.email = self.service_url("email");
                c.http.port = self.gateway_port;
                c.gateway.public_base_url = self.url("");
                c.telephony.auth_token = TELEPHONY_TOKEN.to_string().into();
                let app = Box::pin(arflow_gateway::Application::build(c, token.clone())).await.expect("gateway starts");
                self.gateway_port = app.port();
                tokio::spawn(async move { app.run().await.expect("gateway runs") })
            }
            "eligibility" => {
                let mut c = arflow_eligibility::Config::defaults().unwrap();
                on_test_stack!(c, nats_url, db_url, clock);
                let app = Box::pin(arflow_eligibility::Application::build(c, token.clone()))
                    .await
                    .expect("eligibility starts");
                tokio::spawn(async move { app.run().await.expect("eligibility runs") })
            }
            "scheduler" => {
                let mut c = arflow_scheduler::Config::defaults().unwrap();
                on_test_stack!(c, nats_url, db_url, clock);
                let app =
                    Box::pin(arflow_scheduler::Application::build(c, token.clone())).await.expect("scheduler starts");
                tokio::spawn(async move { app.run().await.expect("scheduler runs") })
            }
            "email" => {
                let mut c: arflow_email::Config = unvalidated_defaults();
                on_test_stack!(c, nats_url, db_url, clock);
                c.http.port = self.ports["email"];
                c.internal.token = INTERNAL_TOKEN.to_string().into();
                c.smtp.port = self.smtp.port();
                c.unsubscribe.secret = UNSUB_SECRET.to_string().into();
                c.email.unsubscribe_base_url = format!("http://127.0.0.1:{}", self.gateway_port);
                c.email.retry_backoff_ms = vec![100, 200];
                c.email.poll_ms = 50;
                // A killed sender's rows are judged 3 s after its lease (30 s in production).
                c.email.lease_secs = 3;
                c.email.reply_domain = Some(REPLY_DOMAIN.into());
                adjust(&mut c);
                let app = Box::pin(arflow_email::Application::build(c, token.clone())).await.expect("email starts");
                tokio::spawn(async move { app.run().await.expect("email runs") })
            }
            "optout" => {
                let mut c: arflow_optout::Config = unvalidated_defaults();
                on_test_stack!(c, nats_url, db_url, clock);
                c.http.port = self.ports["optout"];
                c.internal.token = INTERNAL_TOKEN.to_string().into();
                let app = Box::pin(arflow_optout::Application::build(c, token.clone())).await.expect("optout starts");
                tokio::spawn(async move { app.run().await.expect("optout runs") })
            }
            "escalation" => {
                let mut c: arflow_escalation::Config = unvalidated_defaults();
                on_test_stack!(c, nats_url, db_url, clock);
                c.http.port = self.ports["escalation"];
                c.internal.token = INTERNAL_TOKEN.to_string().into();
                c.escalation.poll_interval_secs = 1;
                let app =
                    Box::pin(arflow_escalation::Application::build(c, token.clone())).await.expect("escalation starts");
                tokio::spawn(async move { app.run().await.expect("escalation runs") })
            }
            "voice" => {
                let mut c: arflow_voice::Config = unvalidated_defaults();
                on_test_stack!(c, nats_url, db_url, clock);
                c.http.port = self.ports["voice"];
                c.internal.token = INTERNAL_TOKEN.to_string().into();
                c.telephony.api_base = self.telephony.base_url();
                c.telephony.account_sid = TELEPHONY_ACCOUNT.into();
                c.telephony.auth_token = TELEPHONY_TOKEN.to_string().into();
                c.telephony.from_number = FROM_NUMBER.into();
                c.telephony.callback_base_url = self.url("");
                c.voice.poll_ms = 50;
                let app = Box::pin(arflow_voice::Application::build(c, token.clone())).await.expect("voice starts");
                tokio::spawn(async move { app.run().await.expect("voice runs") })
            }
            "notification" => {
                let mut c: arflow_notification::Config = unvalidated_defaults();
                on_test_stack!(c, nats_url, db_url, clock);
                c.http.port = self.ports["notification"];
                c.internal.token = INTERNAL_TOKEN.to_string().into();
                c.smtp.port = self.smtp.port();
                c.notification.poll_ms = 50;
                c.notification.allow_private_targets = true;
                c.notification.retry_backoff_ms = vec![200, 400, 800];
                let app = Box::pin(arflow_notification::Application::build(c, token.clone()))
                    .await
                    .expect("notification starts");
                tokio::spawn(async move { app.run().await.expect("notification runs") })
            }
            other => panic!("unknown service {other}"),
        };
        self.running.insert(name, (token, handle));
    }

    /// Stops one service the way SIGTERM does (drain, then exit) and waits for it.
    pub async fn stop_service(&mut self, name: &'static str) {
        if let Some((token, handle)) = self.running.remove(name) {
            token.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
    }

    /// Kills one service abruptly (its task is aborted mid-flight, like a crash).
    pub async fn kill_service(&mut self, name: &'static str) {
        if let Some((token, handle)) = self.running.remove(name) {
            handle.abort();
            let _ = handle.await;
            token.cancel();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway_port)
    }

    fn service_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[name])
    }

    /// The simulated now.
    pub async fn now(&self) -> DateTime<Utc> {
        arflow_bus::clock::read(&self.bus).await.unwrap().unwrap().0
    }

    /// Moves the simulated clock by `by`, stopping at every timer on the way (as Stripe test
    /// clocks do), and runs the pipeline until it is idle at each stop.
    pub async fn advance(&self, by: chrono::Duration) {
        arflow_testkit::idle::advance_stepwise(&self.bus, &self.pool, by, Duration::from_secs(60))
            .await
            .expect("pipeline settles");
    }

    /// Advances one day at a time, `days` times.
    pub async fn advance_days(&self, days: u32) {
        for _ in 0..days {
            self.advance(chrono::Duration::days(1)).await;
        }
    }

    pub async fn process_until_idle(&self) {
        let now = self.now().await;
        // Give clock watchers a moment to see the new time before measuring quiet.
        tokio::time::sleep(Duration::from_millis(30)).await;
        arflow_testkit::idle::wait_until_idle(&self.bus.js, &self.pool, now, Duration::from_secs(60))
            .await
            .expect("pipeline settles");
    }

    pub async fn create_firm(&self) -> Firm {
        self.create_firm_with(json!({})).await
    }

    /// A firm whose Stripe API key lets arflow act on Stripe (`stripe_api`).
    pub async fn create_firm_with_stripe_key(&self) -> Firm {
        self.create_firm_with(json!({"stripe_api_key": "sk_test_arflow"})).await
    }

    async fn create_firm_with(&self, extra: Value) -> Firm {
        let secret = format!("whsec_{}", Uuid::new_v4().simple());
        let mut body = json!({
            "name": "Harbor & Pine Accounting",
            "sender_email": "ar@harborpine.test",
            "timezone": "America/New_York",
            "stripe_webhook_secrets": [secret],
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self.http.post(self.url("/v1/firms")).bearer_auth(ADMIN).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let body: Value = r.json().await.unwrap();
        Firm {
            id: body["firm"]["id"].as_str().unwrap().parse().unwrap(),
            key: body["api_key"].as_str().unwrap().into(),
            secret,
            inbound_token: body["inbound_token"].as_str().unwrap().into(),
        }
    }

    pub async fn get(&self, firm: &Firm, path: &str) -> Value {
        let r = self.http.get(self.url(path)).bearer_auth(&firm.key).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn post(&self, firm: &Firm, path: &str, body: Value) -> Value {
        let r = self.http.post(self.url(path)).bearer_auth(&firm.key).json(&body).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    pub async fn patch(&self, firm: &Firm, path: &str, body: Value) -> Value {
        let r = self.http.patch(self.url(path)).bearer_auth(&firm.key).json(&body).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "PATCH {path}: {status} {v}");
        v
    }

    /// A client with one primary billing contact (email consent) in time zone `tz`.
    pub async fn add_client(&self, firm: &Firm, customer: &str, name: &str, tier: &str, tz: &str) -> (Uuid, Uuid) {
        let contact = json!({"name": format!("{name} billing"), "email": format!("billing@{customer}.test"),
                             "timezone": tz, "primary": true, "consent": {"email": true, "voice": false, "sms": false}});
        self.add_client_with(firm, customer, name, tier, tz, contact).await
    }

    /// A client in time zone `tz` with the contact `contact` (the body of
    /// `POST /v1/clients/{id}/contacts`: name, email, phone, zone, consent...). Returns the
    /// client's and the contact's ids.
    pub async fn add_client_with(
        &self,
        firm: &Firm,
        customer: &str,
        name: &str,
        tier: &str,
        tz: &str,
        contact: Value,
    ) -> (Uuid, Uuid) {
        let client = self
            .post(
                firm,
                "/v1/clients",
                json!({"name": name, "tier": tier, "timezone": tz, "stripe_customer_id": customer}),
            )
            .await;
        let client_id: Uuid = client["id"].as_str().unwrap().parse().unwrap();
        let contact = self.post(firm, &format!("/v1/clients/{client_id}/contacts"), contact).await;
        (client_id, contact["id"].as_str().unwrap().parse().unwrap())
    }

    /// Stripe sends a signed event to the firm's webhook endpoint.
    pub async fn stripe(&self, firm: &Firm, event: &Value) -> reqwest::Response {
        let (sig, body) = stripe::signed_webhook(&firm.secret, event);
        self.http
            .post(self.url(&format!("/webhooks/stripe/{}", firm.id)))
            .header("Stripe-Signature", sig)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Stripe finalizes an open invoice; returns arflow's invoice id.
    pub async fn finalize_invoice(
        &self,
        firm: &Firm,
        stripe_id: &str,
        customer: &str,
        amount_minor: i64,
        currency: &str,
        due: NaiveDate,
    ) -> Uuid {
        let due_unix = Utc.from_utc_datetime(&due.and_hms_opt(0, 0, 0).unwrap()).timestamp();
        let object =
            stripe::invoice(stripe_id, customer, &format!("INV-{stripe_id}"), amount_minor, currency, due_unix, "open");
        let event =
            stripe::event(&format!("evt_fin_{stripe_id}"), "invoice.finalized", self.now().await.timestamp(), object);
        let r = self.stripe(firm, &event).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        v["invoice_id"].as_str().expect("invoice_id in the webhook answer").parse().unwrap()
    }

    /// Stripe reports the invoice paid.
    pub async fn pay_invoice(
        &self,
        firm: &Firm,
        stripe_id: &str,
        customer: &str,
        amount_minor: i64,
        currency: &str,
    ) -> reqwest::Response {
        let mut object =
            stripe::invoice(stripe_id, customer, &format!("INV-{stripe_id}"), amount_minor, currency, 0, "paid");
        object["amount_paid"] = json!(amount_minor);
        object["amount_remaining"] = json!(0);
        let event =
            stripe::event(&format!("evt_paid_{stripe_id}"), "invoice.paid", self.now().await.timestamp() + 1, object);
        self.stripe(firm, &event).await
    }

    /// The firm's mail provider posts a raw inbound message to the gateway.
    pub async fn inbound_email(&self, firm: &Firm, raw: &[u8]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/webhooks/email/inbound/{}", firm.id)))
            .bearer_auth(&firm.inbound_token)
            .header("Content-Type", "message/rfc822")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn activity(&self, firm: &Firm, invoice: Uuid) -> Value {
        self.get(firm, &format!("/v1/invoices/{invoice}/activity")).await
    }

    pub fn emails(&self) -> Vec<ReceivedMail> {
        self.smtp.messages()
    }

    /// Emails received for one invoice (by the `X-Arflow-Invoice` header).
    pub fn emails_for(&self, invoice: Uuid) -> Vec<ReceivedMail> {
        let id = invoice.to_string();
        self.emails().into_iter().filter(|m| m.header("X-Arflow-Invoice") == Some(id.as_str())).collect()
    }

    /// Every message on a stream whose subject starts with `prefix`, as envelopes.
    pub async fn events(&self, stream: &str, prefix: &str) -> Vec<(String, RawEnvelope)> {
        let s = self.bus.js.get_stream(stream).await.unwrap();
        let state = s.get_info().await.unwrap().state;
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = s.get_raw_message(seq).await
                && m.subject.starts_with(prefix)
                && let Ok(env) = RawEnvelope::parse(&m.payload)
            {
                out.push((m.subject.to_string(), env));
            }
        }
        out
    }
}

/// A hard bounce as a recipient's mail server sends it (RFC 3464 DSN, status 5.1.1: the mailbox
/// does not exist) about the email `message_id` we sent to `recipient`.
pub fn hard_bounce(recipient: &str, message_id: &str) -> String {
    let domain = recipient.rsplit('@').next().unwrap_or("client.test");
    format!(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.{domain}>\r\nTo: <ar@harborpine.test>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nDate: Thu, 05 Mar 2026 09:01:00 -0500\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsn\"\r\n\r\n\
         --dsn\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
         --dsn\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{domain}\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --dsn\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: ar@harborpine.test\r\nTo: {recipient}\r\n\
         Message-ID: {message_id}\r\nSubject: Reminder\r\n\r\n--dsn--\r\n"
    )
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for (_, (token, handle)) in self.running.drain() {
            token.cancel();
            handle.abort();
        }
    }
}
