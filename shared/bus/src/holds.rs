//! The fence (DESIGN.md fences 1 and 2). The gateway and the opt-out service write
//! holds; a channel service claims the invoice and the contact right before it hands a
//! message to SMTP or telephony. A claim is a compare-and-swap on the key, so the
//! bucket's order, not timing, decides whether a send came before a hold.
use crate::BusError;
use async_nats::jetstream::kv;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HoldValue {
    /// A sender took the key to send; any later hold is ordered after this send.
    Claimed { by: String, at: DateTime<Utc> },
    /// Nothing may be sent for this key any more.
    Held { reason: String, source_event: String, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The send may go ahead; it is ordered before any hold with a higher revision.
    Granted { revision: u64 },
    /// A hold came first: do not send.
    Held { value: HoldValue, revision: u64 },
}

/// The hold that stopped a send (see [`Holds::claim_send`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub key: String,
    /// `invoice_held`, `contact_held`, or `hold_undecodable` (a value that is not a hold or a
    /// claim: refused, fail closed).
    pub reason: &'static str,
    pub value: HoldValue,
    pub revision: u64,
}

/// The reason a value that is not a `HoldValue` refuses a send (fail closed).
pub const UNDECODABLE: &str = "undecodable hold value";

#[derive(Clone)]
pub struct Holds {
    kv: kv::Store,
    metrics: arflow_runtime::Metrics,
}

impl Holds {
    pub(crate) fn new(kv: kv::Store, metrics: arflow_runtime::Metrics) -> Self {
        Holds { kv, metrics }
    }

    /// Writes a hold unconditionally and returns its revision (it wins over every later claim).
    pub async fn hold(&self, key: &str, reason: &str, source_event: &str, at: DateTime<Utc>) -> Result<u64, BusError> {
        let value = HoldValue::Held { reason: reason.to_string(), source_event: source_event.to_string(), at };
        self.kv.put(key, Bytes::from(serde_json::to_vec(&value)?)).await.map_err(|e| BusError::KeyValue {
            op: "put",
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// Releases a hold (an opt-in recorded by a firm user): later claims are granted again.
    /// The live value is deleted only at the revision it was read at, and not at all when `keep`
    /// says so (a hold written by an opt-out that is not recorded yet must stay). Returns the
    /// revision of the value kept, or `None` when nothing is held any more.
    pub async fn release_unless(
        &self,
        key: &str,
        keep: impl Fn(&HoldValue, u64) -> bool,
    ) -> Result<Option<u64>, BusError> {
        let kv_err = |op: &'static str, e: String| BusError::KeyValue { op, key: key.to_string(), reason: e };
        for _ in 0..32 {
            let entry = self.kv.entry(key).await.map_err(|e| kv_err("get", e.to_string()))?;
            let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else { return Ok(None) };
            let value: Option<HoldValue> = serde_json::from_slice(&entry.value).ok();
            if value.is_some_and(|v| keep(&v, entry.revision)) {
                return Ok(Some(entry.revision));
            }
            match self.kv.delete_expect_revision(key, Some(entry.revision)).await {
                Ok(()) => return Ok(None),
                Err(e) => {
                    // Written in between (a hold or a claim): look again; otherwise a real failure.
                    let now = self.kv.entry(key).await.map_err(|e| kv_err("get", e.to_string()))?;
                    if now.is_some_and(|n| n.revision != entry.revision) {
                        continue;
                    }
                    return Err(kv_err("delete", e.to_string()));
                }
            }
        }
        Err(kv_err("release", "too much contention on the key".into()))
    }

    pub async fn get(&self, key: &str) -> Result<Option<(HoldValue, u64)>, BusError> {
        let entry = self.kv.entry(key).await.map_err(|e| BusError::KeyValue {
            op: "get",
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        Ok(entry.and_then(|e| match e.operation {
            // Read closed: a value that is not a hold or a claim counts as a hold.
            kv::Operation::Put => Some(match serde_json::from_slice(&e.value) {
                Ok(v) => (v, e.revision),
                Err(_) => (
                    HoldValue::Held {
                        reason: UNDECODABLE.to_string(),
                        source_event: String::from_utf8_lossy(&e.value).chars().take(200).collect(),
                        at: DateTime::from_timestamp(e.created.unix_timestamp(), 0).unwrap_or_default(),
                    },
                    e.revision,
                ),
            }),
            _ => None,
        }))
    }

    /// Atomically checks for a hold and claims the key for a send. A value that cannot be read
    /// as a hold or a claim refuses the send (fail closed): it is reported, never overwritten.
    pub async fn claim(&self, key: &str, by: &str, at: DateTime<Utc>) -> Result<Claim, BusError> {
        let claim = self.try_claim(key, by, at).await;
        if claim.is_err() {
            self.metrics.holds_bucket_errors.inc();
        }
        claim
    }

    async fn try_claim(&self, key: &str, by: &str, at: DateTime<Utc>) -> Result<Claim, BusError> {
        let claimed = Bytes::from(serde_json::to_vec(&HoldValue::Claimed { by: by.to_string(), at })?);
        let kv_err = |op: &'static str, e: String| BusError::KeyValue { op, key: key.to_string(), reason: e };
        for _ in 0..32 {
            let entry = self.kv.entry(key).await.map_err(|e| kv_err("get", e.to_string()))?;
            let live = entry.filter(|e| e.operation == kv::Operation::Put);
            match live {
                None => match self.kv.create(key, claimed.clone()).await {
                    Ok(revision) => return Ok(Claim::Granted { revision }),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(kv_err("create", e.to_string())),
                },
                Some(entry) => {
                    let value = match serde_json::from_slice::<HoldValue>(&entry.value) {
                        Ok(v) => v,
                        Err(e) => {
                            let raw: String = String::from_utf8_lossy(&entry.value).chars().take(200).collect();
                            tracing::error!(%key, revision = entry.revision, error = %e, %raw, "hold value cannot be read; refusing the send");
                            let value = HoldValue::Held { reason: UNDECODABLE.to_string(), source_event: raw, at };
                            return Ok(Claim::Held { value, revision: entry.revision });
                        }
                    };
                    if let v @ HoldValue::Held { .. } = value {
                        return Ok(Claim::Held { value: v, revision: entry.revision });
                    }
                    match self.kv.update(key, claimed.clone(), entry.revision).await {
                        Ok(revision) => return Ok(Claim::Granted { revision }),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                        Err(e) => return Err(kv_err("update", e.to_string())),
                    }
                }
            }
        }
        Err(kv_err("claim", "too much contention on the key".into()))
    }

    /// Fences 1 and 2 right before a send on `channel`: claims the invoice, the contact on every
    /// channel and the contact's `channel`, in that order; the first hold found refuses the send.
    pub async fn claim_send(
        &self,
        invoice_id: uuid::Uuid,
        contact_id: uuid::Uuid,
        channel: arflow_core::Channel,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Refusal>, BusError> {
        use arflow_contracts::streams::{contact_channel_hold_key, contact_hold_key, invoice_hold_key};
        for (key, reason) in [
            (invoice_hold_key(invoice_id), "invoice_held"),
            (contact_hold_key(contact_id), "contact_held"),
            (contact_channel_hold_key(contact_id, channel), "contact_held"),
        ] {
            if let Claim::Held { value, revision } = self.claim(&key, by, at).await? {
                let reason = match &value {
                    HoldValue::Held { reason: r, .. } if r == UNDECODABLE => "hold_undecodable",
                    _ => reason,
                };
                self.metrics.hold_refused(reason);
                return Ok(Some(Refusal { key, reason, value, revision }));
            }
        }
        Ok(None)
    }
}
