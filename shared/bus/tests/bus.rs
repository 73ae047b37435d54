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
    NatsSettings::at(url)
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

/// A time set while the clock's watch is broken (the broker restarting) is still followed:
/// the re-opened watch starts from the key's current value (the fault suite stalled when it
/// did not: a timer waited on a clock that had stopped moving).
#[tokio::test]
async fn the_clock_follows_a_time_set_while_its_watch_was_broken() {
    let mut nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let cs = arflow_runtime::ClockSettings { mode: arflow_runtime::ClockMode::Simulated, start: Some(start) };
    let token = tokio_util::sync::CancellationToken::new();
    let clock = arflow_bus::clock::start(&bus, &cs, token.clone()).await.unwrap();
    nats.restart();
    // Set at once after the restart, before the old watch notices it is gone.
    let moved = arflow_testkit::eventually("the clock set after the restart", Duration::from_secs(20), || async {
        arflow_bus::clock::advance(&bus, chrono::Duration::days(3)).await.ok()
    })
    .await;
    let mut changes = clock.changes().unwrap();
    tokio::time::timeout(Duration::from_secs(30), changes.wait_for(|t| *t == moved))
        .await
        .expect("the process clock never saw the time set while its watch was broken")
        .unwrap();
    token.cancel();
}

/// Publishes `values` as envelopes on `billing.<tag>.<firm>`.
async fn publish_numbers(bus: &Bus, tag: &str, values: &[u32]) {
    let firm = Uuid::now_v7();
    for n in values {
        let env = Envelope::new("billing.test", "test", chrono::Utc::now(), firm, firm, None, *n);
        bus.publish_event(&format!("billing.{tag}.{firm}"), &format!("{tag}:{n}"), &env).await.unwrap();
    }
}

fn spec(tag: &str) -> ConsumerSpec {
    ConsumerSpec { durable: tag.into(), stream: "BILLING".into(), filter_subjects: vec![format!("billing.{tag}.*")] }
}

fn fast() -> ConsumerSettings {
    ConsumerSettings { backoff_ms: vec![20, 50, 100], ack_wait_secs: 30, ..ConsumerSettings::default() }
}

async fn dlq_count(bus: &Bus) -> u64 {
    bus.js.get_stream("DLQ").await.unwrap().get_info().await.unwrap().state.messages
}

/// Fails every call with a transient error until `down` is cleared, then records what it sees.
struct Flaky {
    down: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicU32,
    seen: Mutex<Vec<u32>>,
}

impl Handler for Flaky {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(HandlerError::Retry("database unavailable".into()));
        }
        for m in batch {
            self.seen.lock().unwrap().push(m.envelope.data_as().unwrap());
        }
        Ok(vec![])
    }
}

#[tokio::test]
async fn an_outage_longer_than_any_delivery_limit_dead_letters_nothing() {
    let nats = TestNats::start();
    let metrics = Metrics::new("test");
    let bus = Bus::connect(&settings(nats.url()), "test", metrics.clone()).await.unwrap();
    publish_numbers(&bus, "outage", &[1, 2, 3]).await;
    let handler = Arc::new(Flaky { down: true.into(), calls: Default::default(), seen: Mutex::new(vec![]) });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(consumer::run(bus.clone(), spec("outage"), fast(), handler.clone(), shutdown.clone()));
    // Well past the old limit of 8 deliveries.
    arflow_testkit::eventually("20 failed attempts", Duration::from_secs(20), || async {
        (handler.calls.load(std::sync::atomic::Ordering::SeqCst) >= 20).then_some(())
    })
    .await;
    assert!(metrics.encode().contains("arflow_consumer_circuit_open{service=\"test\",consumer=\"outage\"} 1"));
    assert_eq!(dlq_count(&bus).await, 0, "an outage must not dead-letter anything");
    handler.down.store(false, std::sync::atomic::Ordering::SeqCst);
    arflow_testkit::eventually("everything handled after the outage", Duration::from_secs(10), || async {
        let mut seen = handler.seen.lock().unwrap().clone();
        seen.sort();
        seen.dedup();
        (seen == vec![1, 2, 3]).then_some(())
    })
    .await;
    assert_eq!(dlq_count(&bus).await, 0);
    let info = bus.js.get_stream("BILLING").await.unwrap().consumer_info("outage").await.unwrap();
    assert_eq!(info.config.max_deliver, -1, "the server must never give up on a message by itself");
    assert!(metrics.encode().contains("arflow_consumer_circuit_open{service=\"test\",consumer=\"outage\"} 0"));
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Fails a batch permanently while 13 is in it, and 13 alone; panics on 7 the first two times.
struct Poison {
    panics: std::sync::atomic::AtomicU32,
    seen: Mutex<Vec<u32>>,
}

impl Handler for Poison {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let values: Vec<u32> = batch.iter().map(|m| m.envelope.data_as().unwrap()).collect();
        if values.contains(&13) {
            return Err(HandlerError::Permanent("violates a constraint".into()));
        }
        if values.contains(&7) && self.panics.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            panic!("a bug met 7");
        }
        self.seen.lock().unwrap().extend(values);
        Ok(vec![])
    }
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_alone_and_a_panic_is_retried_without_killing_the_consumer() {
    let nats = TestNats::start();
    let metrics = Metrics::new("test");
    let bus = Bus::connect(&settings(nats.url()), "test", metrics.clone()).await.unwrap();
    publish_numbers(&bus, "poison", &[1, 13, 2, 7, 3]).await;
    let handler = Arc::new(Poison { panics: Default::default(), seen: Mutex::new(vec![]) });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(consumer::run(bus.clone(), spec("poison"), fast(), handler.clone(), shutdown.clone()));
    arflow_testkit::eventually("all but 13 handled, 13 dead-lettered", Duration::from_secs(15), || async {
        let mut seen = handler.seen.lock().unwrap().clone();
        seen.sort();
        (seen == vec![1, 2, 3, 7] && dlq_count(&bus).await == 1).then_some(())
    })
    .await;
    assert!(handler.panics.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    assert!(metrics.encode().contains("arflow_handler_panics_total{service=\"test\",consumer=\"poison\"}"));
    assert!(!task.is_finished(), "a panic must not stop the consumer");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Never finishes: the batch is in flight when the consumer is aborted.
struct Hangs;

impl Handler for Hangs {
    async fn handle(&self, _batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_batch_whose_handler_is_dropped_is_redelivered_at_once_not_after_ack_wait() {
    let nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    publish_numbers(&bus, "dropped", &[1, 2]).await;
    let slow = ConsumerSettings { ack_wait_secs: 120, ..fast() };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let hung =
        tokio::spawn(consumer::run(bus.clone(), spec("dropped"), slow.clone(), Arc::new(Hangs), shutdown.clone()));
    arflow_testkit::eventually("the batch in flight", Duration::from_secs(10), || async {
        // The consumer may not exist yet.
        let info = bus.js.get_stream("BILLING").await.unwrap().consumer_info("dropped").await.ok()?;
        (info.num_ack_pending == 2).then_some(())
    })
    .await;
    hung.abort();
    let _ = hung.await;
    let handler = Arc::new(Flaky { down: false.into(), calls: Default::default(), seen: Mutex::new(vec![]) });
    let task = tokio::spawn(consumer::run(bus.clone(), spec("dropped"), slow, handler.clone(), shutdown.clone()));
    // ack_wait is two minutes: only the drop guard's NAK brings them back this soon.
    arflow_testkit::eventually("redelivered after the abort", Duration::from_secs(10), || async {
        (handler.seen.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Rejects 13 (dead-letter), handles the rest.
#[tokio::test]
async fn a_rejection_waits_while_the_dead_letter_stream_is_unavailable_and_is_never_dropped() {
    let nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    bus.js.delete_stream("DLQ").await.unwrap();
    publish_numbers(&bus, "nodlq", &[13]).await;
    let handler = Arc::new(Recorder { seen: Mutex::new(vec![]) });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let nodlq = ConsumerSpec { filter_subjects: vec!["billing.nodlq.*".into()], ..spec("nodlq") };
    let task = tokio::spawn(consumer::run(bus.clone(), nodlq, fast(), handler.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = bus.js.get_stream("BILLING").await.unwrap().consumer_info("nodlq").await.unwrap();
    assert_eq!(info.num_pending + info.num_ack_pending as u64, 1, "the rejected message must still be there");
    // The stream is back (any service start provisions it): the message lands there once.
    let _again = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    arflow_testkit::eventually("dead-lettered once the DLQ exists", Duration::from_secs(15), || async {
        (dlq_count(&bus).await == 1).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_undecodable_hold_refuses_the_send_and_is_kept() {
    let nats = TestNats::start();
    let metrics = Metrics::new("test");
    let bus = Bus::connect(&settings(nats.url()), "test", metrics.clone()).await.unwrap();
    let invoice = Uuid::now_v7();
    let key = arflow_contracts::streams::invoice_hold_key(invoice);
    let kv = bus.js.get_key_value(arflow_contracts::streams::HOLDS_BUCKET).await.unwrap();
    kv.put(&key, "{\"state\":\"held_v9\"}".into()).await.unwrap();
    let now = chrono::Utc::now();
    match bus.holds().claim(&key, "step-1", now).await.unwrap() {
        Claim::Held { value: arflow_bus::HoldValue::Held { reason, .. }, .. } => {
            assert_eq!(reason, arflow_bus::holds::UNDECODABLE)
        }
        other => panic!("an unreadable hold was claimed over: {other:?}"),
    }
    let refusal =
        bus.holds().claim_send(invoice, Uuid::now_v7(), arflow_core::Channel::Email, "step-1", now).await.unwrap();
    assert_eq!(refusal.map(|r| r.reason), Some("hold_undecodable"));
    assert_eq!(&kv.get(&key).await.unwrap().unwrap()[..], b"{\"state\":\"held_v9\"}", "the value is kept for a person");
    assert!(
        metrics.encode().contains("arflow_hold_claims_refused_total{service=\"test\",reason=\"hold_undecodable\"} 1")
    );
}

#[tokio::test]
async fn every_stream_is_bounded_and_a_full_one_refuses_rather_than_drops() {
    let nats = TestNats::start();
    let metrics = Metrics::new("test");
    let bus = Bus::connect(&settings(nats.url()), "test", metrics.clone()).await.unwrap();
    for spec in arflow_contracts::streams::STREAMS {
        let info = bus.js.get_stream(spec.name).await.unwrap().info().await.unwrap().config.clone();
        assert_eq!(info.max_bytes, spec.max_bytes, "{}", spec.name);
        assert_eq!(info.max_age, Duration::from_secs(u64::from(spec.max_age_days) * 86_400), "{}", spec.name);
        assert_eq!(info.discard, async_nats::jetstream::stream::DiscardPolicy::New, "{}", spec.name);
    }
    // A deployment's own limits win.
    let small = arflow_runtime::NatsSettings {
        stream_max_bytes: Some(4_096),
        stream_max_age_days: Some(2),
        ..settings(nats.url())
    };
    let bus = Bus::connect(&small, "test", metrics.clone()).await.unwrap();
    let billing = bus.js.get_stream("BILLING").await.unwrap().info().await.unwrap().config.clone();
    assert_eq!((billing.max_bytes, billing.max_age), (4_096, Duration::from_secs(2 * 86_400)));
    // Full: the next publish is refused (the outbox keeps it and retries), nothing old is lost.
    let firm = Uuid::now_v7();
    let mut refused = false;
    for n in 0..200u32 {
        let env = Envelope::new("billing.test", "test", chrono::Utc::now(), firm, firm, None, n);
        if bus.publish_event(&format!("billing.full.{firm}"), &format!("full:{n}"), &env).await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "a full stream must refuse new messages");
    let state = bus.js.get_stream("BILLING").await.unwrap().info().await.unwrap().state.clone();
    assert_eq!(state.first_sequence, 1, "nothing was discarded to make room");
    bus.sample_streams().await;
    assert!(metrics.encode().contains("arflow_stream_max_bytes{service=\"test\",stream=\"BILLING\"} 4096"));
}

/// Fails every batch of more than one permanently; each message alone takes 1.5 s, longer than
/// half the 2 s ack_wait, so only in-progress acks keep the waiting ones from being redelivered.
struct SlowAlone {
    seen: Mutex<Vec<(u32, i64)>>,
}

impl Handler for SlowAlone {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        if batch.len() > 1 {
            return Err(HandlerError::Permanent("one of these is bad".into()));
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        self.seen.lock().unwrap().push((batch[0].envelope.data_as().unwrap(), batch[0].deliveries));
        Ok(vec![])
    }
}

#[tokio::test]
async fn a_long_one_by_one_pass_keeps_the_waiting_messages_its_own() {
    let nats = TestNats::start();
    let bus = Bus::connect(&settings(nats.url()), "test", Metrics::new("test")).await.unwrap();
    publish_numbers(&bus, "slowpass", &[1, 2, 3, 4]).await;
    let handler = Arc::new(SlowAlone { seen: Mutex::new(vec![]) });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let tight = ConsumerSettings { ack_wait_secs: 3, ..fast() };
    let task = tokio::spawn(consumer::run(bus.clone(), spec("slowpass"), tight, handler.clone(), shutdown.clone()));
    arflow_testkit::eventually("all four handled", Duration::from_secs(30), || async {
        (handler.seen.lock().unwrap().len() >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen = handler.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "each handled once: {seen:?}");
    assert!(seen.iter().all(|(_, deliveries)| *deliveries == 1), "redelivered during the pass: {seen:?}");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
