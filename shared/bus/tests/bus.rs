//! The bus against a real nats-server: dedup, consumer ack/retry/dead-letter, holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::consumer::{self, ConsumerSpec};
use arflow_bus::{Bus, Claim, ConsumerSettings, Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::Envelope;
use arflow_runtime::{Metrics, NatsSettings};
use arflow_testkit::TestNats;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

fn settings(url: String) -> NatsSettings {
    NatsSettings { url, replicas: 1, credentials_file: None, duplicate_window_secs: 120 }
}

struct Recorder {
    seen: Mutex<Vec<u32>>,
}

impl Handler for Recorder {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut rejections = vec![];
        for (i, m) in batch.iter().enumerate() {
            let n: u32 = m.envelope.data_as().map_err(|e| HandlerError::Retry(e.to_string()))?;
            if n == 13 {
                rejections.push(Rejection { index: i, reason: "unlucky".into() });
            } else {
                self.seen.lock().unwrap().push(n);
            }
        }
        Ok(rejections)
    }
}

#[tokio::test]
async fn publishes_once_consumes_and_dead_letters() {
    let nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    let firm = Uuid::now_v7();
    for n in [1u32, 2, 13, 3] {
        let env = Envelope::new("billing.test", "test", chrono::Utc::now(), firm, firm, None, n);
        let subject = format!("billing.test.{firm}");
        let a = bus.publish_event(&subject, &format!("n:{n}"), &env).await.unwrap();
        assert!(!a.duplicate);
        // The same id again is a duplicate.
        let b = bus.publish_event(&subject, &format!("n:{n}"), &env).await.unwrap();
        assert!(b.duplicate);
    }
    // An undecodable message is dead-lettered too.
    bus.publish(&format!("billing.test.{firm}"), "junk", "not json".into()).await.unwrap();

    let handler = Arc::new(Recorder { seen: Mutex::new(vec![]) });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let spec =
        ConsumerSpec { durable: "t".into(), stream: "BILLING".into(), filter_subjects: vec!["billing.test.*".into()] };
    let task =
        tokio::spawn(consumer::run(bus.clone(), spec, ConsumerSettings::default(), handler.clone(), shutdown.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let dlq = bus.js.get_stream("DLQ").await.unwrap().get_info().await.unwrap().state.messages;
        if handler.seen.lock().unwrap().len() == 3 && dlq == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not processed: {:?} dlq {dlq}", handler.seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*handler.seen.lock().unwrap(), vec![1, 2, 3]);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_hold_orders_against_claims() {
    let nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    let now = chrono::Utc::now();
    let first = bus.holds().claim("invoice.a", "step-1", now).await.unwrap();
    let Claim::Granted { revision: claimed } = first else { panic!("{first:?}") };
    let held = bus.holds().hold("invoice.a", "paid", "stripe:evt_1", now).await.unwrap();
    assert!(held > claimed);
    match bus.holds().claim("invoice.a", "step-2", now).await.unwrap() {
        Claim::Held { revision, .. } => assert_eq!(revision, held),
        other => panic!("claimed after the hold: {other:?}"),
    }
}

#[tokio::test]
async fn simulated_clock_is_shared_and_monotonic() {
    let nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let cs = arflow_runtime::ClockSettings { mode: arflow_runtime::ClockMode::Simulated, start: Some(start) };
    let token = tokio_util::sync::CancellationToken::new();
    let clock = arflow_bus::clock::start(&bus, &cs, token.clone()).await.unwrap();
    assert_eq!(clock.now(), start);
    let moved = arflow_bus::clock::advance(&bus, chrono::Duration::days(7)).await.unwrap();
    assert_eq!(moved, start + chrono::Duration::days(7));
    let mut changes = clock.changes().unwrap();
    tokio::time::timeout(Duration::from_secs(5), changes.wait_for(|t| *t == moved)).await.unwrap().unwrap();
    // Never backwards.
    assert_eq!(arflow_bus::clock::set(&bus, start).await.unwrap(), moved);
    token.cancel();
}
