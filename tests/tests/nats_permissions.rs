//! deploy/nats on a real nats-server: the users of `deploy/nats/accounts.conf` (rendered from the
//! Helm values, `deploy/nats/values.yaml`) each do what their service does at start-up and in
//! steady state, and nothing of another service's.
//!
//! Per service, connected as `arflow-<service>` through `arflow_bus::Bus::connect`: provision every
//! stream and bucket (create, then update on a restart), start and follow the simulated clock,
//! publish one of its events, run each of its durable consumers (ack one message, dead-letter
//! another to `dlq.<service>`), use the holds bucket and the inbound object store where it does;
//! then a publish to another service's subject and a bind of another service's durable are refused
//! with `Permissions Violation` and nothing reaches the stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::consumer::{self, ConsumerSpec};
use arflow_bus::{Bus, Claim, ConsumerSettings, Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::{Envelope, subjects};
use arflow_runtime::{ClockMode, ClockSettings, Metrics, NatsSettings};
use arflow_testkit::TestNats;
use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);
/// The account every arflow user lives in.
const ACCOUNT: &str = "ARFLOW";
const BLESS: &str = "ARFLOW_BLESS";

fn deploy_nats(file: &str) -> PathBuf {
    arflow_testkit::repo_root().join("deploy/nats").join(file)
}

fn values() -> Value {
    let text = std::fs::read_to_string(deploy_nats("values.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// accounts.conf is the Helm values' `config.merge` (system_account, accounts) as nats-server reads it

fn render_accounts(values: &Value) -> String {
    let merge = &values["config"]["merge"];
    let mut out = String::from(
        "# Generated from deploy/nats/values.yaml (config.merge: system_account, accounts) by\n\
         # tests/tests/nats_permissions.rs. Do not edit: change values.yaml, then run\n\
         #   ARFLOW_BLESS=1 cargo nextest run -p arflow-tests --test nats_permissions\n\
         # Passwords are NATS variables ($NAME) read from the server's environment (Secrets).\n\n",
    );
    for key in ["system_account", "accounts"] {
        assert!(!merge[key].is_null(), "values.yaml has no config.merge.{key}");
        out += &format!("{key}: {}\n", render(&merge[key], 0));
    }
    out
}

/// NATS config syntax: maps in braces, lists in brackets, strings JSON-quoted except the chart's
/// unquoted variables (`<< $NAME >>` becomes `$NAME`).
fn render(v: &Value, depth: usize) -> String {
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::String(s) => match s.strip_prefix("<<").and_then(|r| r.strip_suffix(">>")) {
            Some(raw) => raw.trim().to_string(),
            None => serde_json::to_string(s).unwrap(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Sequence(items) => {
            let mut out = String::from("[\n");
            for item in items {
                out += &format!("{}{}\n", pad(depth + 1), render(item, depth + 1));
            }
            out + &pad(depth) + "]"
        }
        Value::Mapping(map) => {
            let mut out = String::from("{\n");
            for (k, v) in map {
                let k = k.as_str().expect("string keys");
                let key = if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    k.to_string()
                } else {
                    serde_json::to_string(k).unwrap()
                };
                out += &format!("{}{key}: {}\n", pad(depth + 1), render(v, depth + 1));
            }
            out + &pad(depth) + "}"
        }
        other => panic!("no NATS config form for {other:?}"),
    }
}

#[test]
fn accounts_conf_is_the_helm_values_rendered() {
    let rendered = render_accounts(&values());
    let path = deploy_nats("accounts.conf");
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == rendered,
        "deploy/nats/accounts.conf differs from deploy/nats/values.yaml: run \
         `{BLESS}=1 cargo nextest run -p arflow-tests --test nats_permissions` and commit both"
    );
}

/// `user -> (password variable, the user's map)` of the ARFLOW account.
fn users(values: &Value) -> BTreeMap<String, (String, Value)> {
    let list = values["config"]["merge"]["accounts"][ACCOUNT]["users"].as_sequence().expect("ARFLOW users");
    list.iter()
        .map(|u| {
            let name = u["user"].as_str().unwrap().to_string();
            let var = u["password"]
                .as_str()
                .and_then(|p| p.strip_prefix("<< $"))
                .and_then(|p| p.strip_suffix(" >>"))
                .unwrap_or_else(|| panic!("user {name}: the password must be `<< $VAR >>` (a Secret), never literal"))
                .to_string();
            (name, (var, u.clone()))
        })
        .collect()
}

#[test]
fn every_service_has_a_user_whose_password_comes_from_a_secret() {
    let values = values();
    let users = users(&values);
    let env = values["container"]["env"].as_mapping().expect("container.env");
    let services = std::fs::read_dir(arflow_testkit::repo_root().join("services")).unwrap();
    let mut names: Vec<String> = services
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for service in &names {
        let user = format!("arflow-{service}");
        let (var, entry) = users.get(&user).unwrap_or_else(|| panic!("no NATS user {user} in deploy/nats/values.yaml"));
        let publish = entry["permissions"]["publish"]["allow"].as_sequence().expect("publish.allow");
        assert!(
            publish.iter().any(|s| s.as_str() == Some(&subjects::dlq(service))),
            "{user} cannot dead-letter to dlq.{service}"
        );
        let secret = &env.get(var.as_str()).unwrap_or_else(|| panic!("{var} is not in container.env"))["valueFrom"]["secretKeyRef"];
        assert_eq!(secret["name"].as_str(), Some(format!("arflow-nats-{service}").as_str()), "{var}");
        assert_eq!(secret["key"].as_str(), Some("password"), "{var}");
    }
    // Every user but the operators' has allow-lists (everything else denied).
    for (user, (_, entry)) in &users {
        if user != "arflow-admin" {
            assert!(entry["permissions"]["publish"]["allow"].is_sequence(), "{user} has no publish allow-list");
            assert!(entry["permissions"]["subscribe"]["allow"].is_sequence(), "{user} has no subscribe allow-list");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A real nats-server with deploy/nats/accounts.conf

struct Broker {
    nats: TestNats,
    passwords: BTreeMap<String, String>,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Broker {
    /// accounts.conf as it is, with its password variables defined in front (in Kubernetes they
    /// come from the environment).
    fn start() -> Self {
        let conf = std::fs::read_to_string(deploy_nats("accounts.conf")).unwrap();
        let mut passwords = BTreeMap::new();
        let mut defs = String::new();
        for (user, (var, _)) in users(&values()) {
            let password = format!("pw-{}", Uuid::new_v4().simple());
            defs += &format!("{var}: \"{password}\"\n");
            passwords.insert(user, password);
        }
        defs += "NATS_SYS_PASSWORD: \"sys\"\n";
        let dir = std::env::temp_dir().join(format!("arflow-nats-conf-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.conf");
        std::fs::write(&path, defs + &conf).unwrap();
        let nats = TestNats::start_with_config(Some(path));
        Broker { nats, passwords, dir }
    }

    fn url(&self, user: &str) -> String {
        let password = self.passwords.get(user).unwrap_or_else(|| panic!("no user {user}"));
        format!("nats://{user}:{password}@127.0.0.1:{}", self.nats.port)
    }

    /// `Bus::connect` as `user`: what the service does first at start-up (provisioning included).
    async fn bus(&self, user: &str, service: &str) -> Bus {
        let settings = NatsSettings::at(self.url(user));
        tokio::time::timeout(WAIT, Bus::connect(&settings, service, Metrics::new(service)))
            .await
            .unwrap_or_else(|_| panic!("{user}: Bus::connect timed out"))
            .unwrap_or_else(|e| panic!("{user}: Bus::connect failed: {e}"))
    }

    /// A plain client as `user` that reports the server's errors (permission violations).
    async fn raw(
        &self,
        user: &str,
        inbox_prefix: Option<&str>,
    ) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut opts = async_nats::ConnectOptions::with_user_and_password(
            user.to_string(),
            self.passwords.get(user).unwrap().clone(),
        )
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        });
        if let Some(prefix) = inbox_prefix {
            opts = opts.custom_inbox_prefix(prefix);
        }
        let client = opts.connect(format!("127.0.0.1:{}", self.nats.port)).await.unwrap();
        (client, rx)
    }
}

/// Publishes on `subject` as the raw client and waits for the server's permission violation.
async fn refused(client: &async_nats::Client, errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) {
    client.publish(subject.to_string(), "{}".into()).await.unwrap();
    client.flush().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = tokio::time::timeout(left, errors.recv())
            .await
            .unwrap_or_else(|_| panic!("a publish to {subject} was not refused"))
            .unwrap();
        if error.contains("Permissions Violation") && error.contains(subject) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What each service does

/// Records what it consumed; rejects (dead-letters) events of kind `probe.reject`.
struct Recorder {
    seen: mpsc::UnboundedSender<(String, String)>,
    durable: String,
}

impl Handler for Recorder {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut rejections = vec![];
        for (index, m) in batch.iter().enumerate() {
            if m.envelope.kind == "probe.reject" {
                rejections.push(Rejection { index, reason: "a probe to dead-letter".into() });
            } else {
                let _ = self.seen.send((self.durable.clone(), m.subject.clone()));
            }
        }
        Ok(rejections)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Objects {
    None,
    /// Stores raw inbound messages (the gateway).
    Write,
    /// Reads them (the email service).
    Read,
}

struct Service {
    name: &'static str,
    /// Event kinds it publishes (`<kind>.<firm>`), each with its stream.
    publishes: &'static [(&'static str, &'static str)],
    /// Its durable consumers, exactly as its start-up declares them.
    consumers: Vec<ConsumerSpec>,
    holds: bool,
    objects: Objects,
    /// Another service's event kind and durable (stream, name) it must not touch.
    forbidden: (&'static str, (&'static str, &'static str)),
}

fn spec(stream: &str, durable: &str, filters: &[&str]) -> ConsumerSpec {
    ConsumerSpec {
        durable: durable.to_string(),
        stream: stream.to_string(),
        filter_subjects: filters.iter().map(|f| f.to_string()).collect(),
    }
}

/// A subject inside `filter` for `firm`.
fn subject_in(filter: &str, firm: Uuid) -> String {
    let concrete: Vec<String> = filter
        .split('.')
        .map(|t| match t {
            "*" => firm.to_string(),
            ">" => format!("probe.{firm}"),
            t => t.to_string(),
        })
        .collect();
    concrete.join(".")
}

fn envelope(kind: &str, firm: Uuid) -> Envelope<serde_json::Value> {
    Envelope::new(kind, "probe", chrono::Utc::now(), firm, Uuid::now_v7(), None, serde_json::json!({"probe": true}))
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exercise(service: Service) {
    let broker = Broker::start();
    let user = format!("arflow-{}", service.name);
    // Start-up on an empty server: creates every stream and bucket. A restart: updates them.
    let bus = broker.bus(&user, service.name).await;
    drop(broker.bus(&user, service.name).await);
    let admin = broker.bus("arflow-admin", "admin").await;
    let firm = Uuid::now_v7();

    // The simulated clock: started by the service (the bucket is empty), then followed.
    let shutdown = CancellationToken::new();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap().to_utc();
    let clock = arflow_bus::clock::start(
        &bus,
        &ClockSettings { mode: ClockMode::Simulated, start: Some(start) },
        shutdown.clone(),
    )
    .await
    .unwrap();
    arflow_bus::clock::advance(&admin, chrono::Duration::hours(1)).await.unwrap();
    wait_for("the service's clock to follow the bucket", || {
        let now = clock.now();
        async move { now >= start + chrono::Duration::hours(1) }
    })
    .await;

    // Its events.
    for &(kind, stream) in service.publishes {
        let ack =
            bus.publish_event(&subjects::subject(kind, firm), &format!("probe:{kind}"), &envelope(kind, firm)).await;
        assert_eq!(ack.unwrap_or_else(|e| panic!("{user} cannot publish {kind}: {e}")).stream, stream);
    }

    // Its durable consumers: one message each is handled and acked; one is dead-lettered.
    let (tx, mut seen) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, spec) in service.consumers.iter().enumerate() {
        let subject = subject_in(&spec.filter_subjects[0], firm);
        admin
            .publish_event(&subject, &format!("probe:{}:{}", spec.durable, spec.stream), &envelope("probe.ok", firm))
            .await
            .unwrap();
        if i == 0 {
            admin.publish_event(&subject, "probe:reject", &envelope("probe.reject", firm)).await.unwrap();
        }
        let handler = Arc::new(Recorder { seen: tx.clone(), durable: format!("{}/{}", spec.stream, spec.durable) });
        tasks.push(tokio::spawn(consumer::run(
            bus.clone(),
            spec.clone(),
            ConsumerSettings::default(),
            handler,
            shutdown.clone(),
        )));
    }
    let mut pending: Vec<String> = service.consumers.iter().map(|s| format!("{}/{}", s.stream, s.durable)).collect();
    while !pending.is_empty() {
        let (durable, _) = tokio::time::timeout(WAIT, seen.recv())
            .await
            .unwrap_or_else(|_| panic!("{user}: nothing consumed on {pending:?}"))
            .unwrap();
        pending.retain(|p| *p != durable);
    }
    for spec in &service.consumers {
        let admin = admin.clone();
        wait_for(&format!("{} on {} to ack everything", spec.durable, spec.stream), || {
            let admin = admin.clone();
            let spec = spec.clone();
            async move {
                let stream = admin.js.get_stream(&spec.stream).await.unwrap();
                let mut c = stream.get_consumer::<pull::Config>(&spec.durable).await.unwrap();
                let info = c.info().await.unwrap();
                info.num_pending == 0 && info.num_ack_pending == 0
            }
        })
        .await;
    }
    let dlq = subjects::dlq(service.name);
    wait_for(&format!("a dead letter on {dlq}"), || {
        let admin = admin.clone();
        let dlq = dlq.clone();
        async move {
            let stream = admin.js.get_stream("DLQ").await.unwrap();
            stream.get_last_raw_message_by_subject(&dlq).await.is_ok()
        }
    })
    .await;

    // The fences.
    if service.holds {
        let now = chrono::Utc::now();
        let key = format!("invoice.{}", Uuid::now_v7());
        assert!(matches!(bus.holds().claim(&key, "probe", now).await.unwrap(), Claim::Granted { .. }));
        bus.holds().hold(&key, "paid", "probe", now).await.unwrap();
        assert!(matches!(bus.holds().claim(&key, "probe", now).await.unwrap(), Claim::Held { .. }));
        assert_eq!(bus.holds().release_unless(&key, |_, _| false).await.unwrap(), None);
        assert!(bus.holds().get(&key).await.unwrap().is_none());
    }

    // Raw inbound messages.
    let name = format!("{firm}/probe");
    let raw = vec![7u8; 300_000];
    match service.objects {
        Objects::Write => {
            bus.put_inbound(&name, &raw).await.unwrap();
            bus.put_inbound(&name, &raw).await.unwrap();
            assert_eq!(admin.get_inbound(&name).await.unwrap(), raw);
        }
        Objects::Read => {
            admin.put_inbound(&name, &raw).await.unwrap();
            assert_eq!(bus.get_inbound(&name).await.unwrap(), raw);
        }
        Objects::None => {}
    }

    // Another service's subject and durable: refused, and nothing reached the stream.
    let (other_kind, (other_stream, other_durable)) = service.forbidden;
    // Another firm: the probes above may have put this firm's events on the same subject.
    let forbidden = subjects::subject(other_kind, Uuid::now_v7());
    assert!(bus.publish(&forbidden, "probe:forbidden", "{}".into()).await.is_err(), "{user} published {forbidden}");
    let (raw_client, mut errors) = broker.raw(&user, None).await;
    refused(&raw_client, &mut errors, &forbidden).await;
    refused(&raw_client, &mut errors, &format!("$JS.API.CONSUMER.CREATE.{other_stream}.{other_durable}")).await;
    refused(&raw_client, &mut errors, &format!("$JS.API.CONSUMER.MSG.NEXT.{other_stream}.{other_durable}")).await;
    refused(&raw_client, &mut errors, &format!("$JS.API.STREAM.DELETE.{other_stream}")).await;
    if !service.holds {
        refused(&raw_client, &mut errors, &format!("$KV.holds.invoice.{firm}")).await;
    }
    let stream = admin.js.get_stream(&*stream_of(other_kind)).await.unwrap();
    assert!(stream.get_last_raw_message_by_subject(&forbidden).await.is_err(), "{forbidden} reached the stream");
    // Replies come to the service's own inbox prefix: every other inbox is out of reach.
    for other_inbox in ["_INBOX.>".to_string(), format!("{}.>", arflow_bus::inbox_prefix("gateway-or-another"))] {
        refused_subscription(&raw_client, &mut errors, &other_inbox).await;
    }

    shutdown.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

fn stream_of(kind: &str) -> String {
    let prefix = kind.split('.').next().unwrap();
    arflow_contracts::streams::STREAMS
        .iter()
        .find(|s| s.subjects.iter().any(|p| p.split('.').next() == Some(prefix)))
        .map(|s| s.name.to_string())
        .unwrap()
}

// The consumers below are each service's start-up (services/*/src/startup.rs), by its constants
// where it has them.

#[tokio::test]
async fn gateway_user_does_what_the_gateway_does_and_no_more() {
    use arflow_gateway::handlers::{reconcile, stripe_commands};
    use arflow_gateway::startup::ACTIVITY_CONSUMER;
    exercise(Service {
        name: arflow_gateway::SERVICE,
        publishes: &[(subjects::billing::INVOICE_PAID, "BILLING")],
        consumers: vec![
            spec("ELIGIBILITY", ACTIVITY_CONSUMER, &["eligibility.>"]),
            spec("OUTREACH", ACTIVITY_CONSUMER, &["outreach.>"]),
            spec("REPLY", ACTIVITY_CONSUMER, &["reply.classified.>"]),
            spec("REPLY", reconcile::CONSUMER, &["reply.classified.>"]),
            spec("COMMAND", stripe_commands::CONSUMER, &["command.stripe.mark_uncollectible.>"]),
        ],
        holds: true,
        objects: Objects::Write,
        forbidden: (subjects::consent::OPTED_OUT, ("BILLING", "eligibility-billing")),
    })
    .await;
}

#[tokio::test]
async fn eligibility_user_does_what_eligibility_does_and_no_more() {
    use arflow_eligibility::handlers::{billing, consent, escalation, replies};
    exercise(Service {
        name: arflow_eligibility::SERVICE,
        publishes: &[(subjects::eligibility::CHANGED, "ELIGIBILITY")],
        consumers: vec![
            spec("BILLING", billing::CONSUMER, &["billing.>"]),
            spec("CONSENT", consent::CONSUMER, &["consent.>"]),
            spec("REPLY", replies::CONSUMER, &["reply.classified.>"]),
            spec("ESCALATION", escalation::CONSUMER, &["escalation.>"]),
        ],
        holds: false,
        objects: Objects::None,
        forbidden: (subjects::billing::INVOICE_PAID, ("OUTREACH", "email-steps")),
    })
    .await;
}

#[tokio::test]
async fn scheduler_user_does_what_the_scheduler_does_and_no_more() {
    exercise(Service {
        name: arflow_scheduler::SERVICE,
        publishes: &[(subjects::outreach::STEP_DUE_EMAIL, "OUTREACH")],
        consumers: vec![
            spec("ELIGIBILITY", "scheduler-eligibility", &["eligibility.changed.*"]),
            spec(
                "BILLING",
                "scheduler-billing",
                &["billing.invoice_paid.*", "billing.invoice_voided.*", "billing.invoice_uncollectible.*"],
            ),
            spec("CONSENT", "scheduler-consent", &["consent.opted_out.*", "consent.opted_in.*"]),
            spec("OUTREACH", "scheduler-voice-outcomes", &["outreach.voice.>", "outreach.sms.>"]),
        ],
        holds: false,
        objects: Objects::None,
        forbidden: (subjects::outreach::EMAIL_SENT, ("OUTREACH", "voice-steps")),
    })
    .await;
}

#[tokio::test]
async fn email_user_does_what_the_email_service_does_and_no_more() {
    use arflow_email::handlers::{replies, steps};
    exercise(Service {
        name: arflow_email::SERVICE,
        publishes: &[(subjects::outreach::EMAIL_SENT, "OUTREACH")],
        consumers: vec![
            spec("OUTREACH", steps::DURABLE, &["outreach.step_due.email.>"]),
            spec("REPLY", replies::DURABLE, &["reply.received.>"]),
        ],
        holds: true,
        objects: Objects::Read,
        forbidden: (subjects::consent::OPTED_OUT, ("OUTREACH", "voice-steps")),
    })
    .await;
}

#[tokio::test]
async fn voice_user_does_what_the_voice_service_does_and_no_more() {
    use arflow_voice::handlers::{invoices, steps};
    exercise(Service {
        name: arflow_voice::SERVICE,
        publishes: &[(subjects::outreach::VOICE_COMPLETED, "OUTREACH")],
        consumers: vec![
            spec("OUTREACH", steps::DURABLE, &["outreach.step_due.voice.>", "outreach.step_due.sms.>"]),
            spec("BILLING", invoices::DURABLE, &["billing.invoice_upserted.>"]),
        ],
        holds: true,
        objects: Objects::None,
        forbidden: (subjects::outreach::STEP_DUE_VOICE, ("OUTREACH", "email-steps")),
    })
    .await;
}

#[tokio::test]
async fn optout_user_does_what_the_optout_service_does_and_no_more() {
    use arflow_optout::handlers::{commands, contacts, replies};
    exercise(Service {
        name: arflow_optout::SERVICE,
        publishes: &[(subjects::consent::OPTED_OUT, "CONSENT")],
        consumers: vec![
            spec("BILLING", contacts::CONSUMER, &["billing.contact_upserted.>"]),
            spec("REPLY", replies::CONSUMER, &["reply.classified.>"]),
            spec("COMMAND", commands::CONSUMER, &["command.consent.opt_out.>", "command.consent.opt_in.>"]),
        ],
        holds: true,
        objects: Objects::None,
        forbidden: (subjects::escalation::OPENED, ("COMMAND", "gateway-stripe-commands")),
    })
    .await;
}

#[tokio::test]
async fn escalation_user_does_what_the_escalation_service_does_and_no_more() {
    use arflow_escalation::handlers::{billing, eligibility, outreach, replies};
    exercise(Service {
        name: arflow_escalation::SERVICE,
        // Its cases, a person's label of a reply (issue 13), and the Stripe command.
        publishes: &[
            (subjects::escalation::OPENED, "ESCALATION"),
            (subjects::reply::CLASSIFIED, "REPLY"),
            (subjects::command::STRIPE_MARK_UNCOLLECTIBLE, "COMMAND"),
        ],
        consumers: vec![
            spec("BILLING", billing::CONSUMER, &["billing.>"]),
            spec("ELIGIBILITY", eligibility::CONSUMER, &["eligibility.>"]),
            spec("REPLY", replies::CONSUMER, &["reply.classified.>"]),
            spec("OUTREACH", outreach::CONSUMER, &["outreach.email.sent.>", "outreach.cadence_exhausted.>"]),
        ],
        holds: false,
        objects: Objects::None,
        forbidden: (subjects::billing::INVOICE_UNCOLLECTIBLE, ("REPLY", "optout-replies")),
    })
    .await;
}

#[tokio::test]
async fn notification_user_does_what_the_notification_service_does_and_no_more() {
    let consumers = arflow_notification::handlers::CONSUMERS
        .iter()
        .map(|(durable, stream, filters)| spec(stream, durable, filters))
        .collect();
    exercise(Service {
        name: arflow_notification::SERVICE,
        publishes: &[(subjects::notification::DELIVERED, "NOTIFY")],
        consumers,
        holds: false,
        objects: Objects::None,
        forbidden: (subjects::escalation::OPENED, ("ESCALATION", "eligibility-escalation")),
    })
    .await;
}

/// The external escalation consumer: its own durable on ESCALATION through its own inbox,
/// nothing else (not a service's durable, not another inbox, no publishing).
#[tokio::test]
async fn escalation_consumer_reads_escalations_and_nothing_else() {
    let broker = Broker::start();
    let admin = broker.bus("arflow-admin", "escalation").await;
    let firm = Uuid::now_v7();
    let opened = subjects::subject(subjects::escalation::OPENED, firm);
    admin.publish_event(&opened, "probe:opened", &envelope(subjects::escalation::OPENED, firm)).await.unwrap();

    let user = "escalation-consumer";
    let (client, mut errors) = broker.raw(user, Some("_INBOX_escalation-consumer")).await;
    let config = pull::Config {
        durable_name: Some(user.to_string()),
        filter_subject: "escalation.>".to_string(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    let js = jetstream::new(client.clone());
    let consumer = js.create_consumer_on_stream(config, "ESCALATION").await.unwrap();
    let mut messages = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages().await.unwrap();
    let message = messages.next().await.expect("an escalation").unwrap();
    assert_eq!(message.subject.as_str(), opened);
    message.double_ack().await.unwrap();

    // A service's durable, the services' inboxes, another stream, publishing: refused.
    let other = pull::Config { durable_name: Some("notification-escalation".into()), ..Default::default() };
    let mut quick = js.clone();
    quick.set_timeout(Duration::from_secs(2));
    assert!(quick.create_consumer_on_stream(other, "ESCALATION").await.is_err());
    refused(&client, &mut errors, "$JS.API.CONSUMER.MSG.NEXT.ESCALATION.notification-escalation").await;
    refused(&client, &mut errors, "$JS.API.STREAM.INFO.BILLING").await;
    refused(&client, &mut errors, &opened).await;
    refused_subscription(&client, &mut errors, "_INBOX.>").await;
}

/// Subscribes to `subject` and waits for the server's permissions violation.
async fn refused_subscription(
    client: &async_nats::Client,
    errors: &mut mpsc::UnboundedReceiver<String>,
    subject: &str,
) {
    let _sub = client.subscribe(subject.to_string()).await.unwrap();
    client.flush().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let error = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), errors.recv())
            .await
            .unwrap_or_else(|_| panic!("a subscription to {subject} was not refused"))
            .unwrap();
        if error.contains("Permissions Violation for Subscription") && error.contains(subject) {
            break;
        }
    }
}
