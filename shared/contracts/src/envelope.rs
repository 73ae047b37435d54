//! The envelope every event travels in (DESIGN.md "Events").
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Envelope<T> {
    /// UUIDv7, unique per event.
    pub id: Uuid,
    /// Dotted event type without the firm, e.g. `billing.invoice_paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Contract version of `data` for this type.
    #[serde(default = "one")]
    pub version: u32,
    /// The service that published it.
    pub source: String,
    /// When it happened, from the publisher's `Clock`.
    pub time: DateTime<Utc>,
    pub firm_id: Uuid,
    /// The invoice, contact or case the event is about.
    pub subject_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub data: T,
}

fn one() -> u32 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message is not a valid event envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("event {kind} has data that does not match its contract: {source}")]
    Data {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What a handler starts from: the envelope, with `data` still raw.
pub type RawEnvelope = Envelope<serde_json::Value>;

impl<T: Serialize> Envelope<T> {
    /// A new event. `correlation_id` follows the chain; a new chain starts with the event's own id.
    pub fn new(
        kind: &str,
        source: &str,
        time: DateTime<Utc>,
        firm_id: Uuid,
        subject_id: Uuid,
        cause: Option<&RawEnvelope>,
        data: T,
    ) -> Self {
        let id = arflow_core::new_id();
        Envelope {
            id,
            kind: kind.to_string(),
            version: 1,
            source: source.to_string(),
            time,
            firm_id,
            subject_id,
            correlation_id: cause.map(|c| c.correlation_id).unwrap_or(id),
            causation_id: cause.map(|c| c.id),
            data,
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// The same envelope with `data` as JSON, for outboxes and generic handling.
    pub fn into_raw(self) -> Result<RawEnvelope, serde_json::Error> {
        Ok(Envelope {
            id: self.id,
            kind: self.kind,
            version: self.version,
            source: self.source,
            time: self.time,
            firm_id: self.firm_id,
            subject_id: self.subject_id,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data: serde_json::to_value(self.data)?,
        })
    }
}

impl RawEnvelope {
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        serde_json::from_slice(bytes).map_err(EnvelopeError::Malformed)
    }

    /// Decodes `data` into the payload type the handler expects.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_value(self.data.clone())
            .map_err(|source| EnvelopeError::Data { kind: self.kind.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_follows_the_chain() {
        let firm = Uuid::now_v7();
        let first =
            Envelope::new("billing.invoice_paid", "gateway", Utc::now(), firm, firm, None, 1u32).into_raw().unwrap();
        assert_eq!(first.correlation_id, first.id);
        let next = Envelope::new("eligibility.changed", "eligibility", Utc::now(), firm, firm, Some(&first), 2u32);
        assert_eq!(next.correlation_id, first.id);
        assert_eq!(next.causation_id, Some(first.id));
        let bytes = next.to_json().unwrap();
        let back = RawEnvelope::parse(&bytes).unwrap();
        assert_eq!(back.data_as::<u32>().unwrap(), 2);
        assert!(back.data_as::<String>().is_err());
        assert!(RawEnvelope::parse(b"{}").is_err());
    }
}
