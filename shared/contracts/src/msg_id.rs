//! Deterministic `Nats-Msg-Id`s: derived from what caused the event, so a retry
//! after a crash publishes the same id and JetStream drops the duplicate.
use uuid::Uuid;

pub fn stripe_event(event_id: &str) -> String {
    format!("stripe:{event_id}")
}

/// A record change from the gateway's REST API or backfill, by row and version.
pub fn record(kind: &str, id: Uuid, version: i64) -> String {
    format!("{kind}:{id}:v{version}")
}

pub fn eligibility(invoice_id: Uuid, version: i64) -> String {
    format!("elig:{invoice_id}:v{version}")
}

/// `step:<id>:due`, `step:<id>:sent`, `step:<id>:skipped`...
pub fn step(step_id: Uuid, what: &str) -> String {
    format!("step:{step_id}:{what}")
}

pub fn plan(invoice_id: Uuid, version: i64) -> String {
    format!("plan:{invoice_id}:v{version}")
}

/// The dead letter of one delivery of one message.
pub fn dead_letter(service: &str, stream: &str, stream_seq: u64) -> String {
    format!("dlq:{service}:{stream}:{stream_seq}")
}

/// An inbound message, by the SHA-256 of its bytes and its firm: a webhook retried by the
/// mail provider is the same message.
pub fn inbound(firm_id: Uuid, sha256: &str) -> String {
    format!("inbound:{firm_id}:{sha256}")
}

/// What a service concluded from one inbound message (`what`: `classified`, `opted_out`...).
pub fn reply(reply_id: Uuid, what: &str) -> String {
    format!("reply:{reply_id}:{what}")
}

/// A consent ledger entry: `consent:<entry_id>`.
pub fn consent(entry_id: Uuid) -> String {
    format!("consent:{entry_id}")
}

/// A case event, by case and version: `case:<id>:v<version>`.
pub fn case(case_id: Uuid, version: i64) -> String {
    format!("case:{case_id}:v{version}")
}

/// The reply a firm user labelled through a `needs_review` case: `label:<case_id>`.
pub fn label(case_id: Uuid) -> String {
    format!("label:{case_id}")
}

/// A command from the public API, by its request id.
pub fn command(request_id: Uuid) -> String {
    format!("command:{request_id}")
}

/// A notification outcome: `notification:<delivery_id>:<what>`.
pub fn notification(delivery_id: Uuid, what: &str) -> String {
    format!("notification:{delivery_id}:{what}")
}

/// An event about one call attempt: `call:<call_id>:<what>` (`ended`, `turn-3`...).
pub fn call(call_id: Uuid, what: &str) -> String {
    format!("call:{call_id}:{what}")
}
