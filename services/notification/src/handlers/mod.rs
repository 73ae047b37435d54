//! The consumers: one durable consumer per stream the service listens to, all with the
//! same handler. A batch is ONE transaction: inbox, read models, one `deliveries` row per
//! matching subscription (unique on subscription and event key, so a redelivery is a no-op).
pub mod events;

use crate::config::NotificationSettings;
use arflow_core::Clock;
use arflow_runtime::Metrics;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;

/// What the handlers, the delivery worker and the digest share.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: arflow_store::Outbox,
    pub metrics: Metrics,
    pub settings: NotificationSettings,
    /// Wakes the delivery worker when new deliveries are committed.
    pub wake: Arc<Notify>,
}

/// `(durable name, stream, filters)` of every consumer: only the subjects acted on, so the
/// busy ones (`eligibility.changed`, `billing.invoice_upserted`) never reach this service.
pub const CONSUMERS: &[(&str, &str, &[&str])] = &[
    ("notification-billing", "BILLING", &["billing.firm_updated.*", "billing.invoice_paid.*"]),
    ("notification-outreach", "OUTREACH", &["outreach.email.sent.*"]),
    ("notification-consent", "CONSENT", &["consent.opted_out.*"]),
    ("notification-escalation", "ESCALATION", &["escalation.opened.*"]),
    ("notification-replies", "REPLY", &["reply.classified.*"]),
    (
        "notification-eligibility",
        "ELIGIBILITY",
        &["eligibility.promise_broken.*", "eligibility.all_contacts_opted_out.*"],
    ),
    ("notification-dlq", "DLQ", &["dlq.>"]),
];
