//! Building the gateway's events as outbox rows (published by the relay with their
//! deterministic `Nats-Msg-Id`).
use crate::SERVICE;
use arflow_contracts::{Envelope, msg_id, subjects::subject};
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// An event of type `kind` (e.g. `billing.invoice_upserted`) on `<kind>.<firm>`.
pub fn message<T: Serialize>(
    kind: &str,
    firm_id: Uuid,
    subject_id: Uuid,
    now: DateTime<Utc>,
    msg_id: String,
    data: T,
) -> Result<OutboxMessage, serde_json::Error> {
    let event = Envelope::new(kind, SERVICE, now, firm_id, subject_id, None, data);
    OutboxMessage::new(subject(kind, firm_id), msg_id, event)
}

/// What caused a record change: decides its deterministic message id.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A Stripe webhook event: `stripe:<evt>` (+ `:<kind>:<id>` for the records it touched,
    /// since JetStream deduplicates by id across a whole stream).
    Stripe(&'a str),
    /// REST or backfill: `<kind>:<id>:v<version>`.
    Record,
}

impl Origin<'_> {
    pub fn msg_id(&self, kind: &str, id: Uuid, version: i64) -> String {
        match self {
            Origin::Stripe(evt) => format!("{}:{kind}:{id}", msg_id::stripe_event(evt)),
            Origin::Record => msg_id::record(kind, id, version),
        }
    }
}
