//! `escalation.>` from the escalation service, kept per case (version order: an older version
//! changes nothing). An open or referred case fails `no_open_escalation` (automation escalated);
//! a paused one pauses automation until its date or indefinitely; a case resolved with
//! `continue_automation` (or paused) also clears what the client's replies set (dispute,
//! hand-off, and for a `needs_review` case the review of its reply), so automation resumes; any
//! other resolution just closes the case here (a `label` ends the review through the labelled
//! `reply.classified`, which is then applied).
use super::{Apply, ApplyError, Context, data, process};
use crate::evaluate::Touched;
use crate::store::{self, CaseRecord, ReplyRecord};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{CaseActionKind, CaseStatus, EscalationCase, EscalationReason};
use arflow_contracts::subjects::escalation;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "eligibility-escalation";

pub struct EscalationHandler {
    ctx: Arc<Context>,
}

impl EscalationHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        EscalationHandler { ctx }
    }
}

impl Handler for EscalationHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, self).await
    }
}

fn snake<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl Apply for EscalationHandler {
    async fn apply<'b>(
        &self,
        conn: &mut PgConnection,
        m: &'b Incoming,
        touched: &mut Touched<'b>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        if ![escalation::OPENED, escalation::UPDATED, escalation::RESOLVED].contains(&env.kind.as_str()) {
            return Ok(());
        }
        let c: EscalationCase = data(env)?;
        if c.firm.firm_id != env.firm_id {
            return Err(ApplyError::Invalid(format!(
                "case of firm {} in firm {}'s envelope",
                c.firm.firm_id, env.firm_id
            )));
        }
        // A client-wide case names no invoice: there is no invoice decision to change.
        let Some(invoice) = &c.invoice else { return Ok(()) };
        let (status, action) = (snake(c.status), snake(c.action.action));
        let record = CaseRecord {
            case_id: c.case_id,
            firm_id: env.firm_id,
            invoice_id: invoice.invoice_id,
            client_id: c.client.client_id,
            version: c.version,
            status: &status,
            reason: c.reason.as_str(),
            agency: c.action.agency.as_deref(),
            paused_until: if c.status == CaseStatus::Paused { c.action.paused_until } else { None },
            action: &action,
            actor: &c.action.actor,
            note: &c.action.note,
            at: c.action.at,
        };
        if !store::record_case(conn, &record).await? {
            tracing::debug!(case_id = %c.case_id, version = c.version, "case version not newer (or another firm's invoice); ignored");
            return Ok(());
        }
        let takes_over = c.status == CaseStatus::Paused
            || (c.status == CaseStatus::Resolved && c.action.action == CaseActionKind::ContinueAutomation);
        if takes_over {
            store::clear_reply_holds(conn, invoice.invoice_id, c.action.at).await?;
            // A person took a review case over without labelling the reply: it waits no more
            // (and nothing is done on the classifier's guess).
            if let Some(review) = c.review.as_ref().filter(|_| c.reason == EscalationReason::NeedsReview) {
                let reply = ReplyRecord {
                    invoice_id: invoice.invoice_id,
                    reply_id: review.reply_id,
                    intent: "none",
                    evidence: &review.client_text,
                    received_at: c.opened_at,
                };
                store::resolve_review(conn, env.firm_id, reply, None, &c.action.actor, c.action.at).await?;
                store::refresh_reviews(conn, invoice.invoice_id).await?;
            }
        }
        store::refresh_cases(conn, invoice.invoice_id).await?;
        tracing::info!(case_id = %c.case_id, invoice_id = %invoice.invoice_id, status = %status, action = %action, actor = %c.action.actor, "escalation case applied");
        touched.invoice(invoice.invoice_id, Some(env));
        Ok(())
    }
}
