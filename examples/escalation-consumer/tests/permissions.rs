//! The example consumer against a real nats-server with per-firm users: firm A's credentials
//! read exactly firm A's escalations (durably, across a restart) and nothing of firm B's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::events::{
    CaseAction, CaseActionKind, CaseClient, CaseFirm, CaseInvoice, CaseLinks, CaseStatus, EscalationCase,
    EscalationReason, Tier,
};
use arflow_contracts::subjects::{self, escalation};
use arflow_contracts::{Envelope, msg_id};
use arflow_runtime::{Metrics, NatsSettings};
use arflow_testkit::{NatsUser, TestNats};
use chrono::{TimeZone, Utc};
use escalation_consumer::{Auth, Cases, Handled, Settings, bind, connect, run};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

async fn services_bus(nats: &TestNats) -> Bus {
    let settings = NatsSettings::at(nats.url());
    Bus::connect(&settings, "escalation", Metrics::new("escalation")).await.unwrap()
}

fn case(firm_id: Uuid, case_id: Uuid, version: i64, status: CaseStatus) -> EscalationCase {
    let at = Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap() + chrono::Duration::hours(version);
    EscalationCase {
        case_id,
        version,
        status,
        reason: EscalationReason::Dispute,
        evidence: "the amount is wrong".into(),
        firm: CaseFirm { firm_id, name: "Firm".into(), timezone: "UTC".into() },
        client: CaseClient { client_id: Uuid::now_v7(), name: "Acme Ltd".into(), tier: Tier::Standard },
        contact: None,
        invoice: Some(CaseInvoice {
            invoice_id: Uuid::now_v7(),
            stripe_invoice_id: "in_1".into(),
            number: Some("INV-7".into()),
            currency: arflow_core::Currency::USD,
            amount_due: Decimal::new(320_000, 2),
            amount_remaining: Decimal::new(320_000, 2),
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 2, 1),
            days_past_due: 59,
            hosted_invoice_url: None,
        }),
        opened_at: at,
        updated_at: at,
        resolved_at: (status == CaseStatus::Resolved).then_some(at),
        action: CaseAction {
            action: CaseActionKind::Opened,
            actor: "arflow".into(),
            note: String::new(),
            at,
            paused_until: None,
            agency: None,
        },
        latest_activity: None,
        links: CaseLinks {
            case: format!("https://api.example/v1/escalations/{case_id}"),
            invoice_activity: None,
            hosted_invoice: None,
        },
        review: None,
    }
}

/// Publishes as the escalation service does: `escalation.<kind>.<firm>`, the envelope, the
/// deterministic message id (`msg_suffix` makes a replayed copy of an old version).
async fn publish(bus: &Bus, kind: &str, data: EscalationCase, msg_suffix: &str) {
    let firm = data.firm.firm_id;
    let id = format!("{}{msg_suffix}", msg_id::case(data.case_id, data.version));
    let event = Envelope::new(kind, "escalation", data.updated_at, firm, data.case_id, None, data);
    bus.publish_event(&subjects::subject(kind, firm), &id, &event).await.unwrap();
}

fn settings(nats: &TestNats, user: &NatsUser, firm_id: Uuid, consumer: &str) -> Settings {
    Settings {
        url: nats.url(),
        firm_id,
        consumer: consumer.into(),
        auth: Auth::UserPassword { user: user.name.clone(), password: user.password.clone() },
        inbox_prefix: Some(user.inbox_prefix()),
    }
}

/// The example consumer running in a task, reporting what it handled.
struct Running {
    handled: mpsc::UnboundedReceiver<Handled>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Cases>,
}

async fn start(settings: &Settings) -> Running {
    let client = connect(settings).await.unwrap();
    let consumer = bind(&client, settings).await.unwrap();
    let (tx, handled) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut cases = Cases::default();
        let shutdown = async {
            let _ = stopped.await;
        };
        run(&consumer, &mut cases, |h| drop(tx.send(h.clone())), shutdown).await.unwrap();
        client.drain().await.unwrap();
        cases
    });
    Running { handled, stop, task }
}

impl Running {
    async fn next(&mut self) -> Handled {
        tokio::time::timeout(WAIT, self.handled.recv()).await.expect("an event in time").unwrap()
    }

    /// Stops it and waits until the server has dropped its outstanding pull: a message
    /// published afterwards waits for the next run instead of going to the old connection.
    async fn stop(self, bus: &Bus, consumer: &str) -> Cases {
        self.stop.send(()).unwrap();
        let cases = self.task.await.unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let info = consumer_info(bus, consumer).await;
            if info.num_waiting == 0 {
                return cases;
            }
            assert!(Instant::now() < deadline, "consumer {consumer} still has a pull waiting: {info:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn applied(h: Handled) -> (String, EscalationCaseView) {
    match h {
        Handled::Applied { kind, case, .. } => (kind, (case.case_id, case.version, case.firm.firm_id)),
        other => panic!("expected an applied event, got {other}"),
    }
}

type EscalationCaseView = (Uuid, i64, Uuid);

async fn consumer_info(bus: &Bus, consumer: &str) -> async_nats::jetstream::consumer::Info {
    let stream = bus.js.get_stream("ESCALATION").await.unwrap();
    let mut c = stream.get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer).await.unwrap();
    c.info().await.unwrap().clone()
}

/// Waits until the durable consumer has nothing pending and nothing unacknowledged.
async fn drained(bus: &Bus, consumer: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let info = consumer_info(bus, consumer).await;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "consumer {consumer} still has {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_firm_reads_its_own_escalations_durably_and_nothing_else() {
    let mut nats = TestNats::start_with_users(vec![]);
    let bus = services_bus(&nats).await;
    let (firm_a, firm_b) = (Uuid::now_v7(), Uuid::now_v7());
    // Firm A exists first; its user is added at run time (config reload, no restart).
    let user_a = NatsUser::escalation_consumer(firm_a, "platform-a", "secret-a");
    nats.add_user(user_a.clone()).await;

    let (case_1, case_2, case_b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    publish(&bus, escalation::OPENED, case(firm_a, case_1, 1, CaseStatus::Open), "").await;
    publish(&bus, escalation::OPENED, case(firm_b, case_b, 1, CaseStatus::Open), "").await;
    publish(&bus, escalation::UPDATED, case(firm_a, case_1, 2, CaseStatus::Paused), "").await;
    publish(&bus, escalation::OPENED, case(firm_a, case_2, 1, CaseStatus::Open), "").await;
    // An old version arriving late (a replay): the consumer keeps v2.
    publish(&bus, escalation::OPENED, case(firm_a, case_1, 1, CaseStatus::Open), ":replay").await;

    let a = settings(&nats, &user_a, firm_a, "platform-a");
    let mut consumer = start(&a).await;
    assert_eq!(applied(consumer.next().await), (escalation::OPENED.into(), (case_1, 1, firm_a)));
    assert_eq!(applied(consumer.next().await), (escalation::UPDATED.into(), (case_1, 2, firm_a)));
    assert_eq!(applied(consumer.next().await), (escalation::OPENED.into(), (case_2, 1, firm_a)));
    match consumer.next().await {
        Handled::Stale { case_id, version: 1, latest: 2 } => assert_eq!(case_id, case_1),
        other => panic!("expected the replayed v1 to be stale, got {other}"),
    }
    drained(&bus, "platform-a").await;
    let cases = consumer.stop(&bus, "platform-a").await;
    assert_eq!((cases.latest(case_1), cases.latest(case_2), cases.latest(case_b)), (Some(2), Some(1), None));

    // While it is stopped: more for both firms, and firm B gets its own user (another reload).
    publish(&bus, escalation::RESOLVED, case(firm_a, case_1, 3, CaseStatus::Resolved), "").await;
    publish(&bus, escalation::UPDATED, case(firm_b, case_b, 2, CaseStatus::Paused), "").await;
    let user_b = NatsUser::escalation_consumer(firm_b, "platform-b", "secret-b");
    nats.add_user(user_b.clone()).await;

    // Restarted, A resumes after what it acked: exactly the one new event of its firm.
    let mut consumer = start(&a).await;
    assert_eq!(applied(consumer.next().await), (escalation::RESOLVED.into(), (case_1, 3, firm_a)));
    drained(&bus, "platform-a").await;
    consumer.stop(&bus, "platform-a").await;

    // B reads B's two events and none of A's.
    let mut consumer_b = start(&settings(&nats, &user_b, firm_b, "platform-b")).await;
    assert_eq!(applied(consumer_b.next().await), (escalation::OPENED.into(), (case_b, 1, firm_b)));
    assert_eq!(applied(consumer_b.next().await), (escalation::UPDATED.into(), (case_b, 2, firm_b)));
    drained(&bus, "platform-b").await;
    consumer_b.stop(&bus, "platform-b").await;
}

/// A's connection, with every server error (permission violations) reported on a channel.
async fn connect_watching(nats: &TestNats, user: &NatsUser) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, errors) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.name.clone(), user.password.clone())
        .custom_inbox_prefix(user.inbox_prefix())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap();
    (client, errors)
}

/// Waits for the server to report a permission violation on `subject`.
async fn refused(errors: &mut mpsc::UnboundedReceiver<String>, what: &str, subject: &str) {
    let expected = format!("permissions violation for {what} to \"{subject}\"").to_lowercase();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let error = tokio::time::timeout_at(deadline, errors.recv()).await.expect("a permission violation").unwrap();
        if error.to_lowercase().contains(&expected) {
            return;
        }
    }
}

#[tokio::test]
async fn a_firm_cannot_read_another_firms_escalations() {
    let mut nats = TestNats::start_with_users(vec![]);
    let bus = services_bus(&nats).await;
    let (firm_a, firm_b) = (Uuid::now_v7(), Uuid::now_v7());
    let user_a = NatsUser::escalation_consumer(firm_a, "platform-a", "secret-a");
    nats.add_user(user_a.clone()).await;
    publish(&bus, escalation::OPENED, case(firm_b, Uuid::now_v7(), 1, CaseStatus::Open), "").await;
    let (client, mut errors) = connect_watching(&nats, &user_a).await;

    // Core subscriptions to B's subjects, or to everyone's inboxes, are refused.
    let b_subject = format!("escalation.opened.{firm_b}");
    let _sub = client.subscribe(b_subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    refused(&mut errors, "subscription", &b_subject).await;
    let _sub = client.subscribe("_INBOX.>").await.unwrap();
    client.flush().await.unwrap();
    refused(&mut errors, "subscription", "_INBOX.>").await;

    // A consumer filtered to B's events cannot be created, under A's consumer name or another.
    // A refused request is never answered: short timeouts keep the test quick.
    let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(client.clone());
    for name in ["platform-a", "platform-b"] {
        let config = async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(name.into()),
            filter_subject: format!("escalation.*.{firm_b}"),
            ..Default::default()
        };
        assert!(js.create_consumer_on_stream(config, "ESCALATION").await.is_err());
        refused(&mut errors, "publish", &format!("$JS.API.CONSUMER.CREATE.ESCALATION.{name}.escalation.*.{firm_b}"))
            .await;
    }
    // Nor one over the whole stream.
    let config = async_nats::jetstream::consumer::pull::Config {
        durable_name: Some("platform-a".into()),
        filter_subject: "escalation.>".into(),
        ..Default::default()
    };
    assert!(js.create_consumer_on_stream(config, "ESCALATION").await.is_err());
    refused(&mut errors, "publish", "$JS.API.CONSUMER.CREATE.ESCALATION.platform-a.escalation.>").await;

    // The stream cannot be read directly, nor described.
    let request = async_nats::Request::new().payload(r#"{"seq":1}"#.into()).timeout(Some(Duration::from_secs(1)));
    assert!(client.send_request("$JS.API.STREAM.MSG.GET.ESCALATION", request).await.is_err());
    refused(&mut errors, "publish", "$JS.API.STREAM.MSG.GET.ESCALATION").await;
    assert!(js.get_stream("ESCALATION").await.is_err());
    refused(&mut errors, "publish", "$JS.API.STREAM.INFO.ESCALATION").await;

    // A's own consumer works on the same connection's credentials.
    let own = async_nats::jetstream::consumer::pull::Config {
        durable_name: Some("platform-a".into()),
        filter_subject: format!("escalation.*.{firm_a}"),
        ..Default::default()
    };
    js.create_consumer_on_stream(own, "ESCALATION").await.unwrap();
}
