//! The events the email service publishes (through the transactional outbox).
use crate::SERVICE;
use crate::store::EmailRow;
use arflow_contracts::events::{EmailFailed, EmailSent, EmailSuppressed};
use arflow_contracts::subjects::{outreach, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An event about `row`, in the chain of the StepDue that asked for it.
fn message<T: Serialize>(
    kind: &str,
    what: &str,
    row: &EmailRow,
    now: DateTime<Utc>,
    data: T,
) -> Result<OutboxMessage, serde_json::Error> {
    let mut env = Envelope::new(kind, SERVICE, now, row.firm_id, row.invoice_id, None, data);
    env.correlation_id = row.correlation_id;
    env.causation_id = Some(row.cause_event_id);
    OutboxMessage::new(subject(kind, row.firm_id), msg_id::step(row.step_id, what), env)
}

pub fn sent(row: &EmailRow, message_id: &str, now: DateTime<Utc>) -> Result<OutboxMessage, serde_json::Error> {
    let data = EmailSent {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        to: row.to_address.clone(),
        message_id: message_id.to_string(),
        template: row.template.clone(),
        template_version: row.template_version,
        subject: row.subject.clone(),
        body_text: row.body_text.clone(),
        explanation: row.explanation.0.clone(),
    };
    message(outreach::EMAIL_SENT, "sent", row, now, data)
}

pub fn failed(
    row: &EmailRow,
    reason: &str,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, serde_json::Error> {
    failure(row, reason, permanent, now, "failed")
}

/// A person dropped an uncertain email: final, never sent again (its own message id, since the
/// uncertain `failed` event of the same step came first).
pub fn dropped(row: &EmailRow, reason: &str, now: DateTime<Utc>) -> Result<OutboxMessage, serde_json::Error> {
    failure(row, reason, true, now, "dropped")
}

/// `outreach.email.failed`, its message id ending in `what`.
fn failure(
    row: &EmailRow,
    reason: &str,
    permanent: bool,
    now: DateTime<Utc>,
    what: &str,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = EmailFailed {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        reason: reason.to_string(),
        permanent,
    };
    message(outreach::EMAIL_FAILED, what, row, now, data)
}

pub fn suppressed(
    row: &EmailRow,
    reason: &str,
    hold: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = EmailSuppressed {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        reason: reason.to_string(),
        hold,
    };
    message(outreach::EMAIL_SUPPRESSED, "suppressed", row, now, data)
}
