//! The durable pull-consumer loop (STYLE.md "Messages").
//!
//! Messages arrive in batches of whatever is ready (up to `batch_size`). The handler
//! processes a batch in one database transaction that also records every event id in
//! its inbox, and returns only after commit; then each message is acked with
//! `double_ack`.
//!
//! - A dependency down (`HandlerError::Retry`): the batch is NAKed with capped backoff and
//!   the consumer stops pulling until a probe batch succeeds. The server redelivers without
//!   limit, so an outage of any length dead-letters nothing.
//! - A permanent failure (`Permanent`, or a panic) of a batch: each message is tried alone;
//!   one that fails permanently alone, a rejection, or an undecodable body goes to
//!   `dlq.<service>` (confirmed) and is then terminated. A panic alone is NAKed and counted.
//! - A message is settled even when the handler's future is dropped (a drop guard NAKs it).
use crate::{Bus, BusError};
use arflow_contracts::{Envelope, envelope::RawEnvelope, events::DeadLetter, msg_id, subjects};
use arflow_runtime::metrics::DurableLabels;
use arflow_runtime::{Metrics, Shutdown};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    /// NAK delays by consecutive failure, in milliseconds; the last one repeats (the cap).
    #[serde(default = "backoff_ms")]
    pub backoff_ms: Vec<u64>,
    #[serde(default = "ack_wait_secs")]
    pub ack_wait_secs: u64,
    #[serde(default = "max_ack_pending")]
    pub max_ack_pending: i64,
    #[serde(default = "batch_size")]
    pub batch_size: usize,
}

fn backoff_ms() -> Vec<u64> {
    vec![100, 500, 2_000, 10_000, 30_000]
}
fn ack_wait_secs() -> u64 {
    30
}
fn max_ack_pending() -> i64 {
    5_000
}
fn batch_size() -> usize {
    256
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            backoff_ms: backoff_ms(),
            ack_wait_secs: ack_wait_secs(),
            max_ack_pending: max_ack_pending(),
            batch_size: batch_size(),
        }
    }
}

impl ConsumerSettings {
    /// The wait after the `n`th consecutive failure (1-based), capped by the last entry.
    pub fn delay_for(&self, n: i64) -> Duration {
        let i = usize::try_from(n.max(1) - 1).unwrap_or(0);
        let ms = self.backoff_ms.get(i).or(self.backoff_ms.last()).copied().unwrap_or(1_000);
        Duration::from_millis(ms)
    }
}

/// One decoded message handed to a handler.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: RawEnvelope,
    pub subject: String,
    /// 1 on first delivery.
    pub deliveries: i64,
    pub stream_sequence: u64,
    /// The W3C `traceparent` header the message came with, if any.
    pub traceparent: Option<String>,
}

impl Incoming {
    /// The span every handler runs in: firm, subject and correlation ids.
    pub fn span(&self) -> tracing::Span {
        let span = tracing::info_span!(
            "event",
            kind = %self.envelope.kind,
            firm_id = %self.envelope.firm_id,
            subject_id = %self.envelope.subject_id,
            correlation_id = %self.envelope.correlation_id,
            event_id = %self.envelope.id,
            // Recorded by handlers once they know it (the subject id is not always an invoice).
            invoice_id = tracing::field::Empty,
        );
        arflow_runtime::telemetry::continue_trace(
            &span,
            self.traceparent.as_deref(),
            self.envelope.correlation_id,
            self.envelope.id,
        );
        span
    }
}

/// What to do with a batch that failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A dependency is unavailable (database, broker, an upstream 5xx): the messages wait
    /// (NAK with capped backoff, redelivered without limit) and the consumer stops pulling
    /// until the dependency answers again. Never dead-lettered.
    #[error("transient failure, will retry: {0}")]
    Retry(String),
    /// This batch can never be processed as it is (a constraint violated, data the handler
    /// cannot read): each message is tried alone, and the one that fails alone is dead-lettered.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The handler cannot go on at all: the consumer stops and the service exits.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// A message in the batch that can never be processed: it is dead-lettered.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub index: usize,
    pub reason: String,
}

pub trait Handler: Send + Sync + 'static {
    /// Handles the batch in one transaction (recording each id in the inbox) and
    /// returns after commit, naming the messages it rejected.
    fn handle(&self, batch: &[Incoming]) -> impl Future<Output = Result<Vec<Rejection>, HandlerError>> + Send;
}

/// A durable consumer: its name, stream and subject filters.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub durable: String,
    pub stream: String,
    pub filter_subjects: Vec<String>,
}

/// How a batch went, for the pulling loop.
enum Flow {
    Continue,
    /// A dependency is down: stop pulling, wait, then try again (the circuit is open).
    Unavailable,
    Fatal(String),
}

/// Runs `handler` on the consumer until `shutdown`; finishes the batch in hand first.
pub async fn run<H: Handler>(
    bus: Bus,
    spec: ConsumerSpec,
    settings: ConsumerSettings,
    handler: Arc<H>,
    shutdown: Shutdown,
) -> Result<(), BusError> {
    let durable = spec.durable.clone();
    let err = |reason: String| BusError::Consumer { consumer: durable.clone(), reason };
    let stream = bus.js.get_stream(&spec.stream).await.map_err(|e| err(e.to_string()))?;
    let config = pull::Config {
        durable_name: Some(spec.durable.clone()),
        filter_subjects: spec.filter_subjects.clone(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(settings.ack_wait_secs),
        // Unlimited: the server never gives up on a message by itself. Only the client decides
        // that a message can never be processed, and then it is dead-lettered first (a server-side
        // limit would drop a message NAKed or left to time out on its last delivery).
        max_deliver: -1,
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(|e| err(e.to_string()))?;
    tracing::info!(consumer = %spec.durable, stream = %spec.stream, "consumer started");
    let _lag = arflow_runtime::AbortOnDrop::spawn(report_lag(
        consumer.clone(),
        bus.metrics.clone(),
        spec.durable.clone(),
        shutdown.clone(),
    ));
    let labels = DurableLabels { consumer: spec.durable.clone() };
    let runner = Runner { bus, spec, settings, handler };
    // Consecutive batches that found a dependency down.
    let mut outages: i64 = 0;
    while !shutdown.is_cancelled() {
        if outages > 0 {
            // The circuit is open: nothing is pulled while the dependency is down. The next
            // batch is the probe.
            runner.bus.metrics.consumer_circuit_open.get_or_create(&labels).set(1);
            let wait = runner.settings.delay_for(outages);
            tracing::warn!(consumer = %runner.spec.durable, outages, ?wait, "a dependency is down; pausing the consumer");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        let messages = match consumer
            .stream()
            .max_messages_per_batch(runner.settings.batch_size)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %runner.spec.durable, error = %e, "cannot pull; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut chunks = messages.ready_chunks(runner.settings.batch_size);
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => break,
                c = chunks.next() => c,
            };
            let Some(chunk) = chunk else { break };
            let mut batch = Vec::with_capacity(chunk.len());
            for item in chunk {
                match item {
                    Ok(m) => batch.push(m),
                    Err(e) => tracing::debug!(consumer = %runner.spec.durable, error = %e, "pull status"),
                }
            }
            if batch.is_empty() {
                continue;
            }
            // In-flight work always completes, even when shutdown fires meanwhile.
            match runner.process(batch, outages).await {
                Flow::Continue => {
                    if outages > 0 {
                        tracing::info!(consumer = %runner.spec.durable, "dependency back; consumer resumed");
                        runner.bus.metrics.consumer_circuit_open.get_or_create(&labels).set(0);
                    }
                    outages = 0;
                }
                Flow::Unavailable => {
                    outages += 1;
                    // Dropping the pull stops the server from sending more; whatever it had
                    // already sent comes back after ack_wait.
                    break;
                }
                Flow::Fatal(reason) => return Err(err(reason)),
            }
        }
    }
    tracing::info!(consumer = %runner.spec.durable, "consumer drained and stopped");
    Ok(())
}

/// Publishes the consumer's lag (pending and unacknowledged counts) every few seconds.
async fn report_lag(
    mut consumer: jetstream::consumer::Consumer<pull::Config>,
    metrics: Metrics,
    durable: String,
    shutdown: Shutdown,
) {
    let labels = DurableLabels { consumer: durable };
    loop {
        if let Ok(info) = consumer.info().await {
            metrics.consumer_pending.get_or_create(&labels).set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
            metrics.consumer_ack_pending.get_or_create(&labels).set(i64::try_from(info.num_ack_pending).unwrap_or(0));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The messages of a batch that are not settled yet. Whatever is still here when the guard
/// is dropped (the handler's future was cancelled, the task aborted) is NAKed, so the
/// server redelivers it at once instead of after ack_wait.
struct Unsettled {
    messages: Vec<Option<jetstream::Message>>,
}

impl Unsettled {
    fn take(&mut self, i: usize) -> Option<jetstream::Message> {
        self.messages.get_mut(i).and_then(Option::take)
    }

    fn remaining(&self) -> impl Iterator<Item = &jetstream::Message> {
        self.messages.iter().flatten()
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        let left: Vec<jetstream::Message> = self.messages.iter_mut().filter_map(Option::take).collect();
        if left.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for m in left {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                }
            });
        }
    }
}

/// What the handler did with one call, panics included.
enum Outcome {
    Done(Vec<Rejection>),
    Failed(HandlerError),
    Panicked(String),
}

struct Runner<H> {
    bus: Bus,
    spec: ConsumerSpec,
    settings: ConsumerSettings,
    handler: Arc<H>,
}

impl<H: Handler> Runner<H> {
    async fn call(&self, batch: &[Incoming]) -> Outcome {
        match std::panic::AssertUnwindSafe(self.handler.handle(batch)).catch_unwind().await {
            Ok(Ok(rejections)) => Outcome::Done(rejections),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                self.bus
                    .metrics
                    .handler_panics
                    .get_or_create(&DurableLabels { consumer: self.spec.durable.clone() })
                    .inc();
                tracing::error!(consumer = %self.spec.durable, panic = %what, size = batch.len(), "handler panicked; the messages will be retried");
                Outcome::Panicked(what)
            }
        }
    }

    async fn process(&self, messages: Vec<jetstream::Message>, outages: i64) -> Flow {
        let started = std::time::Instant::now();
        let mut decoded = Vec::with_capacity(messages.len());
        let mut kept = Vec::with_capacity(messages.len());
        let redeliveries = DurableLabels { consumer: self.spec.durable.clone() };
        for m in messages {
            let (deliveries, seq) = m.info().map(|i| (i.delivered, i.stream_sequence)).unwrap_or((1, 0));
            if deliveries > 1 {
                self.bus.metrics.redeliveries.get_or_create(&redeliveries).inc();
            }
            match RawEnvelope::parse(&m.payload) {
                Ok(envelope) => {
                    let traceparent =
                        m.headers.as_ref().and_then(|h| h.get("traceparent")).map(|v| v.as_str().to_string());
                    decoded.push(Incoming {
                        envelope,
                        subject: m.subject.to_string(),
                        deliveries,
                        stream_sequence: seq,
                        traceparent,
                    });
                    kept.push(Some(m));
                }
                Err(e) => self.dead_letter(&m, deliveries, seq, &format!("not an arflow envelope: {e}")).await,
            }
        }
        if decoded.is_empty() {
            return Flow::Continue;
        }
        let mut pending = Unsettled { messages: kept };
        let flow = match self.call(&decoded).await {
            Outcome::Done(rejections) => {
                self.settle(&mut pending, &decoded, 0..decoded.len(), rejections).await;
                Flow::Continue
            }
            Outcome::Failed(HandlerError::Fatal(reason)) => {
                self.nak_all(&mut pending, None).await;
                Flow::Fatal(reason)
            }
            Outcome::Failed(HandlerError::Retry(reason)) => {
                tracing::warn!(consumer = %self.spec.durable, %reason, size = decoded.len(), "a dependency is unavailable; the batch waits");
                self.nak_all(&mut pending, Some(self.settings.delay_for(outages + 1))).await;
                Flow::Unavailable
            }
            Outcome::Failed(HandlerError::Permanent(reason)) | Outcome::Panicked(reason) if decoded.len() > 1 => {
                tracing::warn!(consumer = %self.spec.durable, %reason, size = decoded.len(), "batch failed; trying each message alone");
                self.one_by_one(&mut pending, &decoded).await
            }
            Outcome::Failed(HandlerError::Permanent(reason)) => {
                if let Some(m) = pending.take(0) {
                    self.dead_letter(&m, decoded[0].deliveries, decoded[0].stream_sequence, &reason).await;
                }
                Flow::Continue
            }
            Outcome::Panicked(_) => {
                if let Some(m) = pending.take(0) {
                    self.nak(&m, Some(self.settings.delay_for(decoded[0].deliveries))).await;
                }
                Flow::Continue
            }
        };
        self.bus.metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
        flow
    }

    /// Finds the message(s) at fault in a batch that failed as a whole. Messages still waiting
    /// their turn are told the server every ack_wait/3 that they are in progress, so a long pass
    /// never lets them be redelivered behind its back.
    async fn one_by_one(&self, pending: &mut Unsettled, decoded: &[Incoming]) -> Flow {
        let touch_every = Duration::from_secs(self.settings.ack_wait_secs.max(3) / 3);
        let mut touched = std::time::Instant::now();
        for (i, inc) in decoded.iter().enumerate() {
            if touched.elapsed() >= touch_every {
                for m in pending.remaining() {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
                touched = std::time::Instant::now();
            }
            match self.call(std::slice::from_ref(inc)).await {
                Outcome::Done(rejections) => {
                    let shifted = rejections.into_iter().map(|r| Rejection { index: i, reason: r.reason }).collect();
                    self.settle(pending, decoded, i..i + 1, shifted).await;
                }
                Outcome::Failed(HandlerError::Permanent(reason)) => {
                    if let Some(m) = pending.take(i) {
                        self.dead_letter(&m, inc.deliveries, inc.stream_sequence, &reason).await;
                    }
                }
                Outcome::Panicked(_) => {
                    if let Some(m) = pending.take(i) {
                        self.nak(&m, Some(self.settings.delay_for(inc.deliveries))).await;
                    }
                }
                Outcome::Failed(HandlerError::Retry(reason)) => {
                    tracing::warn!(consumer = %self.spec.durable, %reason, "a dependency is unavailable; the rest of the batch waits");
                    self.nak_all(pending, Some(self.settings.delay_for(1))).await;
                    return Flow::Unavailable;
                }
                Outcome::Failed(HandlerError::Fatal(reason)) => {
                    self.nak_all(pending, None).await;
                    return Flow::Fatal(reason);
                }
            }
        }
        Flow::Continue
    }

    /// Acks the handled messages `range` of `decoded` and dead-letters the rejected ones
    /// (rejection indices are positions in `decoded`).
    async fn settle(
        &self,
        pending: &mut Unsettled,
        decoded: &[Incoming],
        range: std::ops::Range<usize>,
        rejections: Vec<Rejection>,
    ) {
        let mut rejected: Vec<Option<String>> = vec![None; decoded.len()];
        for r in rejections {
            if let Some(slot) = rejected.get_mut(r.index) {
                *slot = Some(r.reason);
            }
        }
        let mut to_ack = Vec::new();
        for i in range {
            let Some(m) = pending.take(i) else { continue };
            match rejected.get_mut(i).and_then(Option::take) {
                Some(reason) => self.dead_letter(&m, decoded[i].deliveries, decoded[i].stream_sequence, &reason).await,
                None => to_ack.push(m),
            }
        }
        let n = to_ack.len() as u64;
        let acks = to_ack.iter().map(|m| m.double_ack());
        for result in futures::future::join_all(acks).await {
            if let Err(e) = result {
                // Committed but not acked: redelivery is a no-op thanks to the inbox.
                tracing::warn!(consumer = %self.spec.durable, error = %e, "ack failed; the inbox absorbs the redelivery");
            }
        }
        self.bus.metrics.consumed(&self.spec.durable, "acked", n);
    }

    async fn nak(&self, m: &jetstream::Message, delay: Option<Duration>) {
        if let Err(e) = m.ack_with(AckKind::Nak(delay)).await {
            tracing::warn!(error = %e, "NAK failed; the message comes back after ack_wait");
        }
        self.bus.metrics.consumed(&self.spec.durable, "retried", 1);
    }

    async fn nak_all(&self, pending: &mut Unsettled, delay: Option<Duration>) {
        for i in 0..pending.messages.len() {
            if let Some(m) = pending.take(i) {
                self.nak(&m, delay).await;
            }
        }
    }

    /// Publishes to `dlq.<service>`, waits for the stream to confirm it, and only then
    /// terminates the message; if the DLQ publish fails the message is NAKed instead, and the
    /// server (no delivery limit) brings it back, so it is never lost.
    async fn dead_letter(&self, m: &jetstream::Message, deliveries: i64, seq: u64, reason: &str) {
        tracing::error!(consumer = %self.spec.durable, subject = %m.subject, stream_sequence = seq, %reason, "dead-lettering message");
        let letter = DeadLetter {
            service: self.bus.service.clone(),
            consumer: self.spec.durable.clone(),
            stream: self.spec.stream.clone(),
            stream_sequence: seq,
            subject: m.subject.to_string(),
            deliveries,
            reason: reason.to_string(),
            payload: String::from_utf8_lossy(&m.payload).into_owned(),
            dead_lettered_at: chrono::Utc::now(),
        };
        let parsed = RawEnvelope::parse(&m.payload).ok();
        let firm_id = parsed.as_ref().map(|e| e.firm_id).unwrap_or(Uuid::nil());
        let subject_id = parsed.as_ref().map(|e| e.subject_id).unwrap_or(Uuid::nil());
        let env =
            Envelope::new("dlq.message", &self.bus.service, chrono::Utc::now(), firm_id, subject_id, None, letter);
        let published = match env.to_json() {
            Ok(bytes) => self
                .bus
                .publish(
                    &subjects::dlq(&self.bus.service),
                    &msg_id::dead_letter(&self.bus.service, &self.spec.stream, seq),
                    Bytes::from(bytes),
                )
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(_) => {
                if let Err(e) = m.ack_with(AckKind::Term).await {
                    // Dead-lettered but redelivered: the DLQ publish of the redelivery carries the
                    // same Nats-Msg-Id, so the DLQ still holds it once.
                    tracing::warn!(error = %e, "terminate failed after dead-lettering");
                }
                self.bus.metrics.consumed(&self.spec.durable, "dead_lettered", 1);
            }
            Err(e) => {
                tracing::error!(error = %e, "dead-letter publish failed; NAKing so nothing is lost");
                self.nak(m, Some(Duration::from_secs(5))).await;
            }
        }
    }
}
