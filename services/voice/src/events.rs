//! The events the voice service publishes (through the transactional outbox), each in the chain
//! of the StepDue that asked for the call or text.
use crate::SERVICE;
use crate::store::{CallRow, TextRow, TurnRow};
use arflow_contracts::events::{
    CallEnded, CallOutcome, ChannelStepSkipped, ReplyClassified, ReplyIntent, SmsFailed, SmsSent, Speaker,
    TranscriptTurn,
};
use arflow_contracts::subjects::{outreach, reply, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::Channel;
use arflow_replies::Intent;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Where an event comes from: the firm, the invoice and the StepDue's chain.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub correlation_id: Uuid,
    pub cause_event_id: Uuid,
}

impl From<&CallRow> for Origin {
    fn from(r: &CallRow) -> Self {
        Origin {
            firm_id: r.firm_id,
            invoice_id: r.invoice_id,
            correlation_id: r.correlation_id,
            cause_event_id: r.cause_event_id,
        }
    }
}

impl From<&TextRow> for Origin {
    fn from(r: &TextRow) -> Self {
        Origin {
            firm_id: r.firm_id,
            invoice_id: r.invoice_id,
            correlation_id: r.correlation_id,
            cause_event_id: r.cause_event_id,
        }
    }
}

fn message<T: Serialize>(
    kind: &str,
    origin: Origin,
    msg: String,
    now: DateTime<Utc>,
    data: T,
) -> Result<OutboxMessage, serde_json::Error> {
    let mut env = Envelope::new(kind, SERVICE, now, origin.firm_id, origin.invoice_id, None, data);
    env.correlation_id = origin.correlation_id;
    env.causation_id = Some(origin.cause_event_id);
    OutboxMessage::new(subject(kind, origin.firm_id), msg, env)
}

/// A skipped call step (`outreach.voice.skipped`).
pub fn call_skipped(
    row: &CallRow,
    reason: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = ChannelStepSkipped {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        channel: Channel::Voice,
        attempt: u32::try_from(row.attempt).unwrap_or(1),
        reason: reason.to_string(),
        detail: detail.to_string(),
    };
    message(outreach::VOICE_SKIPPED, row.into(), msg_id::step(row.step_id, "voice-skipped"), now, data)
}

/// A skipped text step (`outreach.sms.skipped`).
pub fn text_skipped(
    row: &TextRow,
    reason: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = ChannelStepSkipped {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        channel: Channel::Sms,
        attempt: u32::try_from(row.attempt).unwrap_or(1),
        reason: reason.to_string(),
        detail: detail.to_string(),
    };
    message(outreach::SMS_SKIPPED, row.into(), msg_id::step(row.step_id, "sms-skipped"), now, data)
}

/// The call's transcript as published.
pub fn transcript(turns: &[TurnRow]) -> Vec<TranscriptTurn> {
    turns
        .iter()
        .map(|t| TranscriptTurn {
            speaker: if t.speaker == "client" { Speaker::Client } else { Speaker::Agent },
            text: t.text.clone(),
            intent: t.intent.as_deref().and_then(|i| i.parse::<Intent>().ok()).map(ReplyIntent::from),
            at: t.at,
        })
        .collect()
}

/// `outreach.voice.<outcome>`, once per call (`call:<id>:ended`).
pub fn call_ended(row: &CallRow, turns: &[TurnRow], now: DateTime<Utc>) -> Result<OutboxMessage, serde_json::Error> {
    let outcome = match row.outcome.as_deref() {
        Some("completed") => CallOutcome::Completed,
        Some("no_answer") => CallOutcome::NoAnswer,
        Some("voicemail") => CallOutcome::Voicemail,
        _ => CallOutcome::Failed,
    };
    let transcript = transcript(turns);
    let intents = transcript.iter().filter_map(|t| t.intent).collect();
    let data = CallEnded {
        call_id: row.id,
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        client_id: row.client_id,
        step: row.step.clone(),
        attempt: u32::try_from(row.attempt).unwrap_or(1),
        outcome,
        provider_status: row.provider_status.clone().unwrap_or_else(|| "failed".into()),
        answered_by: row.answered_by.clone(),
        provider_call_sid: row.provider_sid.clone(),
        to: row.to_number.clone().unwrap_or_default(),
        duration_secs: row.duration_secs.and_then(|d| u32::try_from(d).ok()),
        placed_at: row.placed_at.unwrap_or(now),
        ended_at: row.ended_at.unwrap_or(now),
        transcript,
        intents,
        promised_date: row.promised_date,
        recording_url: row.recording_url.clone(),
        script: row.script.clone(),
        detail: row.detail.clone().unwrap_or_default(),
        explanation: row.step_due.0.explanation.clone(),
    };
    message(outcome.subject(), row.into(), msg_id::call(row.id, "ended"), now, data)
}

pub fn sms_sent(row: &TextRow, now: DateTime<Utc>) -> Result<OutboxMessage, serde_json::Error> {
    let data = SmsSent {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        to: row.to_number.clone().unwrap_or_default(),
        message_sid: row.message_sid.clone().unwrap_or_default(),
        template: row.template.clone().unwrap_or_else(|| crate::sms::TEMPLATE_NAME.into()),
        template_version: row.template_version.unwrap_or(crate::sms::TEMPLATE_VERSION),
        body: row.body.clone().unwrap_or_default(),
        explanation: row.step_due.0.explanation.clone(),
    };
    message(outreach::SMS_SENT, row.into(), msg_id::step(row.step_id, "sms-sent"), now, data)
}

pub fn sms_failed(
    row: &TextRow,
    reason: &str,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = SmsFailed {
        step_id: row.step_id,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        step: row.step.clone(),
        reason: reason.to_string(),
        permanent,
    };
    message(outreach::SMS_FAILED, row.into(), msg_id::step(row.step_id, "sms-failed"), now, data)
}

/// `reply.classified.<firm>` for something the client said on a call or wrote in a text.
pub fn reply_classified(
    origin: Origin,
    classified: &ReplyClassified,
    msg: String,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, serde_json::Error> {
    message(reply::CLASSIFIED, origin, msg, now, classified)
}

/// What is done about an answer a person must label first.
pub const REVIEW_ACTION: &str =
    "not understood with confidence: outreach paused until a person labels it (needs_review case)";

/// What arflow does about what the client said, in words.
pub fn action_for(intent: Intent) -> &'static str {
    match intent {
        Intent::OptOut => "contact opted out on every channel",
        Intent::Dispute => "invoice disputed: outreach halted, an escalation case opened for the firm",
        Intent::AlreadyPaid => "client says it is paid: outreach paused pending reconciliation with Stripe",
        Intent::PromiseToPay => "payment promised: outreach paused until the promised date plus grace",
        Intent::PaymentPlan => "payment plan requested: handed to a person (escalation case)",
        Intent::Question => "question: handed to a person (escalation case)",
        Intent::WrongContact => "wrong contact: handed to a person (escalation case)",
        Intent::Acknowledged => "acknowledged; the cadence continues",
        Intent::AutoReply => "auto-reply ignored; the cadence continues",
    }
}
