//! The durable pull-consumer loop (STYLE.md "Messages").
//!
//! Messages arrive in batches of whatever is ready (up to `batch_size`). The handler
//! processes a batch in one database transaction that also records every event id in
//! its inbox, and returns only after commit; then each message is acked with
//! `double_ack`. A failed batch is retried message by message so one poison message
//! cannot hold back the rest. Retry -> NAK with the backoff for that attempt; the last
//! allowed attempt, a rejection, or an undecodable body -> `dlq.<service>` + terminate.
use crate::{Bus, BusError};
use arflow_contracts::{Envelope, envelope::RawEnvelope, events::DeadLetter, msg_id, subjects};
use arflow_runtime::Shutdown;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    #[serde(default = "max_deliver")]
    pub max_deliver: i64,
    /// NAK delays by attempt, in milliseconds; the last one repeats.
    #[serde(default = "backoff_ms")]
    pub backoff_ms: Vec<u64>,
    #[serde(default = "ack_wait_secs")]
    pub ack_wait_secs: u64,
    #[serde(default = "max_ack_pending")]
    pub max_ack_pending: i64,
    #[serde(default = "batch_size")]
    pub batch_size: usize,
}

fn max_deliver() -> i64 {
    8
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
            max_deliver: max_deliver(),
            backoff_ms: backoff_ms(),
            ack_wait_secs: ack_wait_secs(),
            max_ack_pending: max_ack_pending(),
            batch_size: batch_size(),
        }
    }
}

impl ConsumerSettings {
    fn delay_for(&self, deliveries: i64) -> Duration {
        let i = usize::try_from(deliveries.max(1) - 1).unwrap_or(0);
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
}

impl Incoming {
    /// The span every handler runs in: firm, subject and correlation ids.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "event",
            kind = %self.envelope.kind,
            firm_id = %self.envelope.firm_id,
            subject_id = %self.envelope.subject_id,
            correlation_id = %self.envelope.correlation_id,
            event_id = %self.envelope.id,
            // Recorded by handlers once they know it (the subject id is not always an invoice).
            invoice_id = tracing::field::Empty,
        )
    }
}

/// What to do with a batch that failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Transient (database or broker unavailable): NAK with backoff and try again.
    #[error("transient failure, will retry: {0}")]
    Retry(String),
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
        max_deliver: settings.max_deliver,
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(|e| err(e.to_string()))?;
    tracing::info!(consumer = %spec.durable, stream = %spec.stream, "consumer started");
    let runner = Runner { bus, spec, settings, handler };
    while !shutdown.is_cancelled() {
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
            if !batch.is_empty() {
                // In-flight work always completes, even when shutdown fires meanwhile.
                if let Err(fatal) = runner.process(batch).await {
                    return Err(err(fatal));
                }
            }
        }
    }
    tracing::info!(consumer = %runner.spec.durable, "consumer drained and stopped");
    Ok(())
}

struct Runner<H> {
    bus: Bus,
    spec: ConsumerSpec,
    settings: ConsumerSettings,
    handler: Arc<H>,
}

impl<H: Handler> Runner<H> {
    /// Returns `Err` only for a fatal handler error.
    async fn process(&self, messages: Vec<jetstream::Message>) -> Result<(), String> {
        let started = std::time::Instant::now();
        let mut decoded = Vec::with_capacity(messages.len());
        let mut kept = Vec::with_capacity(messages.len());
        for m in messages {
            let (deliveries, seq) = m.info().map(|i| (i.delivered, i.stream_sequence)).unwrap_or((1, 0));
            match RawEnvelope::parse(&m.payload) {
                Ok(envelope) => {
                    decoded.push(Incoming {
                        envelope,
                        subject: m.subject.to_string(),
                        deliveries,
                        stream_sequence: seq,
                    });
                    kept.push(m);
                }
                Err(e) => self.dead_letter(&m, deliveries, seq, &e.to_string()).await,
            }
        }
        if decoded.is_empty() {
            return Ok(());
        }
        match self.handler.handle(&decoded).await {
            Ok(rejections) => self.settle(&kept, &decoded, rejections).await,
            Err(HandlerError::Fatal(reason)) => {
                for m in &kept {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                }
                return Err(reason);
            }
            Err(HandlerError::Retry(reason)) if kept.len() == 1 => {
                self.retry(&kept[0], &decoded[0], &reason).await;
            }
            Err(HandlerError::Retry(reason)) => {
                tracing::warn!(consumer = %self.spec.durable, %reason, size = kept.len(), "batch failed; retrying one by one");
                for (m, inc) in kept.iter().zip(&decoded) {
                    match self.handler.handle(std::slice::from_ref(inc)).await {
                        Ok(rej) => self.settle(std::slice::from_ref(m), std::slice::from_ref(inc), rej).await,
                        Err(HandlerError::Retry(reason)) => self.retry(m, inc, &reason).await,
                        Err(HandlerError::Fatal(reason)) => {
                            let _ = m.ack_with(AckKind::Nak(None)).await;
                            return Err(reason);
                        }
                    }
                }
            }
        }
        self.bus.metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn settle(&self, kept: &[jetstream::Message], decoded: &[Incoming], rejections: Vec<Rejection>) {
        let mut rejected = vec![None; kept.len()];
        for r in rejections {
            if let Some(slot) = rejected.get_mut(r.index) {
                *slot = Some(r.reason);
            }
        }
        let mut acks = Vec::new();
        for ((m, inc), rej) in kept.iter().zip(decoded).zip(rejected) {
            match rej {
                Some(reason) => self.dead_letter(m, inc.deliveries, inc.stream_sequence, &reason).await,
                None => acks.push(m.double_ack()),
            }
        }
        let n = acks.len() as u64;
        for result in futures::future::join_all(acks).await {
            if let Err(e) = result {
                // Committed but not acked: redelivery is a no-op thanks to the inbox.
                tracing::warn!(consumer = %self.spec.durable, error = %e, "ack failed; the inbox absorbs the redelivery");
            }
        }
        self.bus.metrics.consumed(&self.spec.durable, "acked", n);
    }

    async fn retry(&self, m: &jetstream::Message, inc: &Incoming, reason: &str) {
        if inc.deliveries >= self.settings.max_deliver {
            let why = format!("gave up after {} deliveries: {reason}", inc.deliveries);
            self.dead_letter(m, inc.deliveries, inc.stream_sequence, &why).await;
            return;
        }
        let delay = self.settings.delay_for(inc.deliveries);
        tracing::warn!(consumer = %self.spec.durable, event_id = %inc.envelope.id, deliveries = inc.deliveries, ?delay, %reason, "retrying");
        if let Err(e) = m.ack_with(AckKind::Nak(Some(delay))).await {
            tracing::warn!(error = %e, "NAK failed; the message comes back after ack_wait");
        }
        self.bus.metrics.consumed(&self.spec.durable, "retried", 1);
    }

    /// Publishes to `dlq.<service>` and then terminates; if the DLQ publish fails the
    /// message is NAKed instead, so it is never lost.
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
        let firm_id = RawEnvelope::parse(&m.payload).map(|e| e.firm_id).unwrap_or(Uuid::nil());
        let subject_id = RawEnvelope::parse(&m.payload).map(|e| e.subject_id).unwrap_or(Uuid::nil());
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
                    tracing::warn!(error = %e, "terminate failed after dead-lettering");
                }
                self.bus.metrics.consumed(&self.spec.durable, "dead_lettered", 1);
            }
            Err(e) => {
                tracing::error!(error = %e, "dead-letter publish failed; NAKing so nothing is lost");
                let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            }
        }
    }
}
