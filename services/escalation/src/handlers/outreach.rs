//! `outreach.>`: an email sent is the invoice's latest activity; the scheduler's
//! `outreach.cadence_exhausted` (every step done, invoice still open) opens a case.
use super::{Apply, ApplyError, Context, data, opened, process};
use crate::cases::{self, ARFLOW, Trigger};
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{CadenceExhausted, EmailSent, EscalationReason};
use arflow_contracts::subjects::outreach;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "escalation-outreach";

pub struct OutreachHandler {
    ctx: Arc<Context>,
}

impl OutreachHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        OutreachHandler { ctx }
    }
}

impl Handler for OutreachHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, self).await
    }
}

impl Apply for OutreachHandler {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        ctx: &Context,
        m: &Incoming,
        now: DateTime<Utc>,
        out: &mut Vec<OutboxMessage>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        match env.kind.as_str() {
            outreach::EMAIL_SENT => {
                let e: EmailSent = data(env)?;
                let summary = format!("email {} sent to {}: {}", e.step, e.to, e.subject);
                let activity = cases::activity(outreach::EMAIL_SENT, env.time, summary);
                store::record_activity(conn, env.firm_id, e.invoice_id, &activity).await?;
            }
            outreach::CADENCE_EXHAUSTED => {
                let c: CadenceExhausted = data(env)?;
                let Some(invoice) = store::invoice(conn, env.firm_id, c.invoice_id).await? else {
                    return Err(ApplyError::Retry(format!("invoice {} not known yet", c.invoice_id)));
                };
                if invoice.status.as_deref() != Some("open") {
                    tracing::info!(invoice_id = %c.invoice_id, status = ?invoice.status, "cadence exhausted on an invoice no longer open; no case");
                    return Ok(());
                }
                let evidence = format!(
                    "the cadence ran its course ({} steps sent, the last step {} on {}); the invoice is still open",
                    c.steps_fired,
                    c.last_step,
                    c.fired_at.format("%Y-%m-%d")
                );
                let t = Trigger {
                    firm_id: env.firm_id,
                    client_id: invoice.client_id,
                    invoice_id: Some(c.invoice_id),
                    contact_id: None,
                    review: None,
                    reason: EscalationReason::CadenceExhausted,
                    evidence: evidence.clone(),
                    actor: ARFLOW.into(),
                    note: evidence,
                    details: json!({ "event_id": env.id, "last_step_id": c.last_step_id, "policy_id": c.policy_id,
                        "policy_version": c.policy_version }),
                };
                let (outcome, messages) = cases::open_or_note(conn, &ctx.links, t, now, Some(env)).await?;
                opened(ctx, &outcome);
                out.extend(messages);
            }
            _ => {}
        }
        Ok(())
    }
}
