//! `reply.classified.>`: what a client answered. A dispute, a payment-plan request, a question or
//! a wrong-contact reply opens a case with the client's words; a question asked during a call
//! (channel `voice`) means the client asked for a person (`person_requested`). A reply not
//! understood with confidence opens a `needs_review` case of its own (the client's text, the
//! evidence, the classifier's scores) and nothing is opened on the guess; its label comes back
//! here as a labelled `reply.classified` and opens what the label calls for.
use super::{Apply, ApplyError, Context, data, opened, process};
use crate::cases::{self, ARFLOW, Review, Trigger};
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{EscalationReason, ReplyClassified, ReplyIntent};
use arflow_contracts::subjects::reply;
use arflow_core::Channel;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "escalation-replies";

/// The client's own text kept in the opening note.
const NOTE_CHARS: usize = 2_000;

pub struct RepliesHandler {
    ctx: Arc<Context>,
}

impl RepliesHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        RepliesHandler { ctx }
    }
}

impl Handler for RepliesHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, self).await
    }
}

/// The reason a reply opens a case for, if any. The voice service (issue #6) reports a caller
/// asking for a person as a `question` on channel `voice`.
pub fn reason(intent: Option<ReplyIntent>, channel: Channel) -> Option<EscalationReason> {
    match intent? {
        ReplyIntent::Dispute => Some(EscalationReason::Dispute),
        ReplyIntent::PaymentPlan => Some(EscalationReason::PaymentPlan),
        ReplyIntent::Question if channel == Channel::Voice => Some(EscalationReason::PersonRequested),
        ReplyIntent::Question => Some(EscalationReason::Question),
        ReplyIntent::WrongContact => Some(EscalationReason::WrongContact),
        _ => None,
    }
}

impl Apply for RepliesHandler {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        ctx: &Context,
        m: &Incoming,
        now: DateTime<Utc>,
        out: &mut Vec<OutboxMessage>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        if env.kind != reply::CLASSIFIED {
            return Ok(());
        }
        let r: ReplyClassified = data(env)?;
        let Some(invoice_id) = r.invoice_id else {
            tracing::debug!(reply_id = %r.reply_id, "reply not matched to an invoice; nothing to escalate");
            return Ok(());
        };
        m.span().record("invoice_id", tracing::field::display(invoice_id));
        // The invoice's record first: a reply can only match an invoice the gateway published
        // before it, so a missing one is still on its way (another consumer), not unknown. Read
        // before writing the activity, or a record committed in between would be missed.
        let Some(invoice) = store::invoice(conn, env.firm_id, invoice_id).await? else {
            return Err(ApplyError::Retry(format!("invoice {invoice_id} not known yet")));
        };
        let intent = r.intent.map_or("none", |i| i.as_str());
        let words = if r.evidence.trim().is_empty() { r.client_text.clone() } else { r.evidence.clone() };
        let summary = match (&r.labelled_by, r.awaits_review()) {
            (Some(by), _) => format!("{} reply labelled {intent} by {by}: \"{words}\"", r.channel.as_str()),
            (None, true) => format!("{} reply not understood, awaiting review: \"{words}\"", r.channel.as_str()),
            (None, false) => format!("{} reply ({intent}): \"{}\"", r.channel.as_str(), r.evidence),
        };
        store::record_activity(
            conn,
            env.firm_id,
            invoice_id,
            &cases::activity(reply::CLASSIFIED, r.received_at, summary),
        )
        .await?;
        let reason = if r.awaits_review() {
            // Reviewed once: the same reply again (republished) opens nothing new.
            if store::reviewed(conn, env.firm_id, r.reply_id).await? {
                tracing::info!(reply_id = %r.reply_id, "reply already has a review case");
                return Ok(());
            }
            EscalationReason::NeedsReview
        } else {
            let Some(reason) = reason(r.actionable_intent(), r.channel) else { return Ok(()) };
            reason
        };
        let mut details = json!({
            "reply_id": r.reply_id, "channel": r.channel, "intent": r.intent, "from": r.from,
            "subject": r.subject, "received_at": r.received_at,
        });
        if reason == EscalationReason::NeedsReview {
            details["confidence"] = json!(r.confidence);
            details["scores"] = json!(r.scores);
        }
        if let Some(by) = &r.labelled_by {
            details["labelled_by"] = json!(by);
        }
        let t = Trigger {
            firm_id: env.firm_id,
            client_id: invoice.client_id,
            invoice_id: Some(invoice_id),
            contact_id: r.contact_id,
            review: (reason == EscalationReason::NeedsReview).then(|| Review {
                reply: r.clone(),
                cause_event_id: env.id,
                correlation_id: env.correlation_id,
            }),
            reason,
            evidence: words,
            actor: ARFLOW.into(),
            note: r.client_text.chars().take(NOTE_CHARS).collect(),
            details,
        };
        let (outcome, messages) = cases::open_or_note(conn, &ctx.links, t, now, Some(env)).await?;
        opened(ctx, &outcome);
        out.extend(messages);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_map_to_reasons() {
        assert_eq!(reason(Some(ReplyIntent::Dispute), Channel::Email), Some(EscalationReason::Dispute));
        assert_eq!(reason(Some(ReplyIntent::Question), Channel::Email), Some(EscalationReason::Question));
        assert_eq!(reason(Some(ReplyIntent::Question), Channel::Voice), Some(EscalationReason::PersonRequested));
        assert_eq!(reason(Some(ReplyIntent::WrongContact), Channel::Email), Some(EscalationReason::WrongContact));
        assert_eq!(reason(Some(ReplyIntent::PaymentPlan), Channel::Voice), Some(EscalationReason::PaymentPlan));
        assert_eq!(reason(Some(ReplyIntent::PromiseToPay), Channel::Email), None);
        assert_eq!(reason(None, Channel::Email), None);
    }

    /// A text is answered like an email: a question by text is a question, not a request for a
    /// person (only a caller asks for one); disputes, plans and wrong contacts open their cases.
    #[test]
    fn sms_replies_map_like_email_replies() {
        for intent in [
            ReplyIntent::Dispute,
            ReplyIntent::PaymentPlan,
            ReplyIntent::Question,
            ReplyIntent::WrongContact,
            ReplyIntent::PromiseToPay,
            ReplyIntent::OptOut,
            ReplyIntent::AlreadyPaid,
        ] {
            assert_eq!(reason(Some(intent), Channel::Sms), reason(Some(intent), Channel::Email), "{intent:?}");
        }
        assert_eq!(reason(Some(ReplyIntent::Question), Channel::Sms), Some(EscalationReason::Question));
        assert_eq!(reason(Some(ReplyIntent::Dispute), Channel::Voice), Some(EscalationReason::Dispute));
    }
}
