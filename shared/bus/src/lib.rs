//! JetStream for arflow services.
//!
//! - [`Bus::connect`] connects and provisions every stream and bucket (create-or-update, never delete).
//! - [`Bus::publish`] publishes with a deterministic `Nats-Msg-Id` and waits for the stream's ack.
//! - [`consumer::run`] is the durable pull-consumer loop: batches, ack after the handler commits,
//!   NAK with backoff on retry, terminate + `dlq.<service>` on reject.
//! - [`holds::Holds`] is the payment/opt-out fence; [`clock`] keeps a simulated clock in step.
pub mod clock;
pub mod consumer;
pub mod holds;

use arflow_contracts::{Envelope, streams};
use arflow_runtime::{Metrics, NatsSettings};
use async_nats::jetstream::{self, kv, object_store, stream};
use bytes::Bytes;
use serde::Serialize;

pub use consumer::{ConsumerSettings, Handler, HandlerError, Incoming, Rejection};
pub use holds::{Claim, HoldValue, Holds, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect { url: String, source: async_nats::ConnectError },
    #[error("JetStream set-up of {what} failed: {reason}")]
    Provision { what: String, reason: String },
    #[error("publish to {subject} failed: {reason}")]
    Publish { subject: String, reason: String },
    #[error("key-value {op} on {key} failed: {reason}")]
    KeyValue { op: &'static str, key: String, reason: String },
    #[error("consumer {consumer} failed: {reason}")]
    Consumer { consumer: String, reason: String },
    #[error("object {op} of {name} failed: {reason}")]
    Object { op: &'static str, name: String, reason: String },
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One service's handle on NATS and JetStream.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    /// The service name: `source` of its events and the `dlq.<service>` subject.
    pub service: String,
    pub metrics: Metrics,
    holds: Holds,
    clock_kv: kv::Store,
    inbound: object_store::ObjectStore,
}

/// `_INBOX_arflow-<service>`: the subjects a service's request replies arrive on.
pub fn inbox_prefix(service: &str) -> String {
    format!("_INBOX_arflow-{service}")
}

impl Bus {
    pub async fn connect(settings: &NatsSettings, service: &str, metrics: Metrics) -> Result<Self, BusError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("arflow-{service}"))
            // Replies (JetStream API answers, pulled messages, KV reads) come to this service's
            // own inbox subjects, so its NATS user is granted `_INBOX_arflow-<service>.>` and
            // cannot read another service's replies.
            .custom_inbox_prefix(inbox_prefix(service))
            .retry_on_initial_connect()
            .connection_timeout(std::time::Duration::from_secs(5));
        // A user and password in the URL (`nats://arflow-<service>:<password>@nats:4222`, the
        // per-service users of deploy/nats): async-nats parses them but does not send them itself.
        if let Ok(addr) = settings.url.parse::<async_nats::ServerAddr>()
            && let (Some(user), Some(password)) = (addr.username(), addr.password())
        {
            opts = opts.user_and_password(user.to_string(), password.to_string());
        }
        if let Some(path) = &settings.credentials_file {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| BusError::Provision { what: format!("credentials file {path}"), reason: e.to_string() })?;
        }
        let client = tokio::time::timeout(std::time::Duration::from_secs(30), opts.connect(&settings.url))
            .await
            .map_err(|_| BusError::Provision {
                what: format!("connection to {}", settings.url),
                reason: "timed out after 30 s".into(),
            })?
            .map_err(|source| BusError::Connect { url: settings.url.clone(), source })?;
        let js = jetstream::new(client.clone());
        provision_streams(&js, settings).await?;
        let holds = Holds::new(bucket(&js, streams::HOLDS_BUCKET, 16, settings.replicas).await?, metrics.clone());
        let clock_kv = bucket(&js, streams::CLOCK_BUCKET, 1, settings.replicas).await?;
        let inbound = objects(&js, streams::INBOUND_OBJECTS, settings.replicas).await?;
        Ok(Bus { client, js, service: service.to_string(), metrics, holds, clock_kv, inbound })
    }

    pub fn holds(&self) -> &Holds {
        &self.holds
    }

    pub fn clock_bucket(&self) -> &kv::Store {
        &self.clock_kv
    }

    /// Stores a raw inbound message under `name` (idempotent: same name, same bytes).
    pub async fn put_inbound(&self, name: &str, bytes: &[u8]) -> Result<(), BusError> {
        let mut reader = bytes;
        self.inbound.put(name, &mut reader).await.map(|_| ()).map_err(|e| BusError::Object {
            op: "put",
            name: name.to_string(),
            reason: e.to_string(),
        })
    }

    /// The raw inbound message stored under `name`.
    pub async fn get_inbound(&self, name: &str) -> Result<Vec<u8>, BusError> {
        use tokio::io::AsyncReadExt;
        let err = |e: String| BusError::Object { op: "get", name: name.to_string(), reason: e };
        let mut object = self.inbound.get(name).await.map_err(|e| err(e.to_string()))?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(|e| err(e.to_string()))?;
        Ok(bytes)
    }

    /// Publishes and waits for the stream's ack. A repeated `msg_id` inside the duplicate
    /// window is acknowledged as a duplicate and stored once.
    pub async fn publish(
        &self,
        subject: &str,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<jetstream::publish::PublishAck, BusError> {
        let err = |reason: String| BusError::Publish { subject: subject.to_string(), reason };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        // The event's place in its chain's trace (see `arflow_runtime::telemetry`).
        if let Ok(ids) = serde_json::from_slice::<TraceIds>(&payload)
            && let Some(tp) = arflow_runtime::telemetry::traceparent(ids.correlation_id, ids.id)
        {
            headers.insert("traceparent", tp.as_str());
        }
        let ack = self
            .js
            .publish_with_headers(subject.to_string(), headers, payload)
            .await
            .map_err(|e| err(e.to_string()))?
            .await
            .map_err(|e| err(e.to_string()))?;
        self.metrics
            .published
            .get_or_create(&arflow_runtime::metrics::PublishLabels { stream: ack.stream.clone() })
            .inc();
        Ok(ack)
    }

    /// Samples every stream's size and limit into the metrics (`arflow_stream_bytes`,
    /// `arflow_stream_max_bytes`), for the disk-usage alert.
    pub async fn sample_streams(&self) {
        use arflow_runtime::metrics::StreamLabels;
        for spec in streams::STREAMS {
            if let Ok(mut stream) = self.js.get_stream(spec.name).await
                && let Ok(info) = stream.info().await
            {
                let labels = StreamLabels { stream: spec.name.to_string() };
                self.metrics
                    .stream_bytes
                    .get_or_create(&labels)
                    .set(i64::try_from(info.state.bytes).unwrap_or(i64::MAX));
                self.metrics.stream_max_bytes.get_or_create(&labels).set(info.config.max_bytes);
            }
        }
    }

    /// Deletes a raw inbound message (retention).
    pub async fn delete_inbound(&self, name: &str) -> Result<(), BusError> {
        match self.inbound.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(BusError::Object { op: "delete", name: name.to_string(), reason: e.to_string() }),
        }
    }

    pub async fn publish_event<T: Serialize>(
        &self,
        subject: &str,
        msg_id: &str,
        event: &Envelope<T>,
    ) -> Result<jetstream::publish::PublishAck, BusError> {
        self.publish(subject, msg_id, Bytes::from(event.to_json()?)).await
    }
}

/// The two envelope fields a trace is made of (the rest of the payload is skipped).
#[derive(serde::Deserialize)]
struct TraceIds {
    id: uuid::Uuid,
    correlation_id: uuid::Uuid,
}

async fn provision_streams(js: &jetstream::Context, settings: &NatsSettings) -> Result<(), BusError> {
    for spec in streams::STREAMS {
        let config = stream::Config {
            name: spec.name.to_string(),
            description: Some(spec.description.to_string()),
            subjects: spec.subjects.iter().map(|s| s.to_string()).collect(),
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window(),
            // Bounded, and never by dropping what is not consumed yet: a full stream refuses new
            // messages (the publishers' outboxes retry) instead of discarding old ones.
            max_age: std::time::Duration::from_secs(
                u64::from(settings.stream_max_age_days.unwrap_or(spec.max_age_days)) * 86_400,
            ),
            max_bytes: settings.stream_max_bytes.unwrap_or(spec.max_bytes),
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        js.create_or_update_stream(config)
            .await
            .map_err(|e| BusError::Provision { what: format!("stream {}", spec.name), reason: e.to_string() })?;
    }
    Ok(())
}

async fn bucket(js: &jetstream::Context, name: &str, history: i64, replicas: usize) -> Result<kv::Store, BusError> {
    let err = |e: String| BusError::Provision { what: format!("bucket {name}"), reason: e };
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    let config = kv::Config {
        bucket: name.to_string(),
        history,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Another service created it in the meantime.
        Err(_) => js.get_key_value(name).await.map_err(|e| err(e.to_string())),
    }
}

async fn objects(js: &jetstream::Context, name: &str, replicas: usize) -> Result<object_store::ObjectStore, BusError> {
    let err = |e: String| BusError::Provision { what: format!("object store {name}"), reason: e };
    if let Ok(store) = js.get_object_store(name).await {
        return Ok(store);
    }
    let config = object_store::Config {
        bucket: name.to_string(),
        description: Some("Raw inbound messages (email as received), by firm and SHA-256".to_string()),
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    match js.create_object_store(config).await {
        Ok(store) => Ok(store),
        Err(_) => js.get_object_store(name).await.map_err(|e| err(e.to_string())),
    }
}
