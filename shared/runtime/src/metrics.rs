//! Prometheus metrics shared by the bus, store and HTTP layers of a service.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
    /// `acked`, `retried`, `dead_lettered`, `duplicate`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishLabels {
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CounterLabels {
    pub name: String,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub consumed: Family<ConsumerLabels, Counter>,
    pub published: Family<PublishLabels, Counter>,
    /// Domain counters named by the service (`emails_sent`, `holds_written`...).
    pub domain: Family<CounterLabels, Counter>,
    pub batch_seconds: Histogram,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix(format!("arflow_{}", service.replace('-', "_")));
        let consumed = Family::<ConsumerLabels, Counter>::default();
        let published = Family::<PublishLabels, Counter>::default();
        let domain = Family::<CounterLabels, Counter>::default();
        let batch_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register("events_consumed", "Events handled by outcome", consumed.clone());
        registry.register("events_published", "Events published by stream", published.clone());
        registry.register("domain", "Domain counters", domain.clone());
        registry.register("batch_seconds", "Time to handle one consumer batch", batch_seconds.clone());
        Metrics { registry: Arc::new(Mutex::new(registry)), consumed, published, domain, batch_seconds }
    }

    pub fn count(&self, name: &str, by: u64) {
        self.domain.get_or_create(&CounterLabels { name: name.to_string() }).inc_by(by);
    }

    pub fn consumed(&self, consumer: &str, outcome: &str, by: u64) {
        self.consumed
            .get_or_create(&ConsumerLabels { consumer: consumer.to_string(), outcome: outcome.to_string() })
            .inc_by(by);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}
