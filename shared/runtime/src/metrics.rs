//! Prometheus metrics shared by the bus, store and HTTP layers of a service.
//!
//! Every family is named `arflow_<family>` and carries a constant `service` label, so one
//! dashboard panel or alert covers every service. `deploy/observability/` reads these names;
//! `tests/tests/observability.rs` fails when a dashboard or alert names a metric that no service
//! exports.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
    /// `acked`, `retried`, `dead_lettered`, `duplicate`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurableLabels {
    pub consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishLabels {
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CounterLabels {
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/v1/invoices/{id}`), never the raw path.
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// `smtp`, `telephony`, `stripe`, `webhook`...
    pub dependency: String,
    /// `ok`, `transient`, `permanent`, `timeout`, `unknown`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub stream: String,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub consumed: Family<ConsumerLabels, Counter>,
    pub published: Family<PublishLabels, Counter>,
    /// Domain counters named by the service (`emails_sent`, `holds_written`...).
    pub domain: Family<CounterLabels, Counter>,
    pub batch_seconds: Histogram,
    /// Deliveries after the first, per durable consumer.
    pub redeliveries: Family<DurableLabels, Counter>,
    /// Messages the server holds for the consumer and has not delivered yet (lag).
    pub consumer_pending: Family<DurableLabels, Gauge>,
    /// Delivered, not yet acknowledged.
    pub consumer_ack_pending: Family<DurableLabels, Gauge>,
    /// 1 while the consumer stopped pulling because a dependency is down.
    pub consumer_circuit_open: Family<DurableLabels, Gauge>,
    pub handler_panics: Family<DurableLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_seconds: Family<RouteLabels, Histogram>,
    /// Calls to what the service depends on outside the cluster (SMTP, the telephony provider...).
    pub dependency_seconds: Family<DependencyLabels, Histogram>,
    /// Sends refused by the fence, by reason (`invoice_held`, `contact_held`, `undecodable`).
    pub hold_claims_refused: Family<ReasonLabels, Counter>,
    pub holds_bucket_errors: Counter,
    pub db_pool_connections: Gauge,
    pub db_pool_idle: Gauge,
    pub db_pool_max: Gauge,
    /// Seconds (sampled each second) during which every connection was busy, so acquires
    /// waited; and acquires that timed out.
    pub db_pool_saturated_seconds: Counter<u64, AtomicU64>,
    pub db_pool_timeouts: Counter<u64, AtomicU64>,
    pub stream_bytes: Family<StreamLabels, Gauge>,
    pub stream_max_bytes: Family<StreamLabels, Gauge>,
    pub process_resident_memory_bytes: Gauge,
    pub process_open_fds: Gauge,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let labels = [(std::borrow::Cow::Borrowed("service"), std::borrow::Cow::Owned(service.to_string()))];
        let mut registry = Registry::with_prefix_and_labels("arflow", labels.into_iter());
        let m = Metrics {
            registry: Arc::new(Mutex::new(Registry::default())),
            consumed: Family::default(),
            published: Family::default(),
            domain: Family::default(),
            batch_seconds: seconds_histogram(),
            redeliveries: Family::default(),
            consumer_pending: Family::default(),
            consumer_ack_pending: Family::default(),
            consumer_circuit_open: Family::default(),
            handler_panics: Family::default(),
            http_requests: Family::default(),
            http_request_seconds: Family::new_with_constructor(seconds_histogram),
            dependency_seconds: Family::new_with_constructor(seconds_histogram),
            hold_claims_refused: Family::default(),
            holds_bucket_errors: Counter::default(),
            db_pool_connections: Gauge::default(),
            db_pool_idle: Gauge::default(),
            db_pool_max: Gauge::default(),
            db_pool_saturated_seconds: Counter::default(),
            db_pool_timeouts: Counter::default(),
            stream_bytes: Family::default(),
            stream_max_bytes: Family::default(),
            process_resident_memory_bytes: Gauge::default(),
            process_open_fds: Gauge::default(),
        };
        let r = &mut registry;
        r.register("events_consumed", "Events handled, by consumer and outcome", m.consumed.clone());
        r.register("events_published", "Events published, by stream", m.published.clone());
        r.register("domain", "Domain counters", m.domain.clone());
        r.register("batch_seconds", "Time to handle one consumer batch", m.batch_seconds.clone());
        r.register("consumer_redeliveries", "Deliveries after the first, by consumer", m.redeliveries.clone());
        r.register("consumer_pending", "Messages not yet delivered to the consumer (lag)", m.consumer_pending.clone());
        r.register(
            "consumer_ack_pending",
            "Messages delivered and not yet acknowledged",
            m.consumer_ack_pending.clone(),
        );
        r.register(
            "consumer_circuit_open",
            "1 while the consumer waits for a dependency that is down",
            m.consumer_circuit_open.clone(),
        );
        r.register("handler_panics", "Handler panics caught (the message is retried)", m.handler_panics.clone());
        r.register("http_requests", "HTTP requests, by route, method and status", m.http_requests.clone());
        r.register("http_request_seconds", "HTTP request duration, by route", m.http_request_seconds.clone());
        r.register(
            "dependency_seconds",
            "Calls to external dependencies, by dependency and outcome",
            m.dependency_seconds.clone(),
        );
        r.register("hold_claims_refused", "Sends refused by the fence, by reason", m.hold_claims_refused.clone());
        r.register("holds_bucket_errors", "Errors talking to the holds bucket", m.holds_bucket_errors.clone());
        r.register("db_pool_connections", "Open database connections", m.db_pool_connections.clone());
        r.register("db_pool_idle", "Idle database connections", m.db_pool_idle.clone());
        r.register("db_pool_max", "Largest database pool size allowed", m.db_pool_max.clone());
        r.register(
            "db_pool_saturated_seconds",
            "Seconds during which every pooled connection was busy (acquires waited)",
            m.db_pool_saturated_seconds.clone(),
        );
        r.register("db_pool_timeouts", "Connection acquires that timed out", m.db_pool_timeouts.clone());
        r.register("stream_bytes", "Bytes stored in a JetStream stream", m.stream_bytes.clone());
        r.register("stream_max_bytes", "The stream's byte limit", m.stream_max_bytes.clone());
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            m.process_resident_memory_bytes.clone(),
        );
        r.register("process_open_fds", "Open file descriptors of the process", m.process_open_fds.clone());
        Metrics { registry: Arc::new(Mutex::new(registry)), ..m }
    }

    pub fn count(&self, name: &str, by: u64) {
        self.domain.get_or_create(&CounterLabels { name: name.to_string() }).inc_by(by);
    }

    pub fn consumed(&self, consumer: &str, outcome: &str, by: u64) {
        self.consumed
            .get_or_create(&ConsumerLabels { consumer: consumer.to_string(), outcome: outcome.to_string() })
            .inc_by(by);
    }

    /// Records one call to an external dependency.
    pub fn dependency(&self, dependency: &str, outcome: &str, elapsed: std::time::Duration) {
        self.dependency_seconds
            .get_or_create(&DependencyLabels { dependency: dependency.to_string(), outcome: outcome.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn hold_refused(&self, reason: &str) {
        self.hold_claims_refused.get_or_create(&ReasonLabels { reason: reason.to_string() }).inc();
    }

    /// The text exposition format (process figures read at scrape time).
    pub fn encode(&self) -> String {
        self.sample_process();
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }

    fn sample_process(&self) {
        // statm: size resident shared ... in pages; Linux only, absent elsewhere (left at 0).
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let pages = statm.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
            self.process_resident_memory_bytes.set(pages.saturating_mul(4096));
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.process_open_fds.set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
    }
}
