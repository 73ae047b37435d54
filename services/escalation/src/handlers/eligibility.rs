//! `eligibility.>`: decisions keep the invoice read model (snapshots, automation status); every
//! contact opted out and a payment promise broken for the second time open cases.
use super::{Apply, ApplyError, Context, data, opened, process};
use crate::cases::{self, ARFLOW, Trigger};
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{
    AllContactsOptedOut, AutomationStatus, EligibilityChanged, EscalationReason, PromiseBroken,
};
use arflow_contracts::subjects::eligibility;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "escalation-eligibility";

pub struct EligibilityHandler {
    ctx: Arc<Context>,
}

impl EligibilityHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        EligibilityHandler { ctx }
    }
}

impl Handler for EligibilityHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, self).await
    }
}

fn automation(s: AutomationStatus) -> &'static str {
    match s {
        AutomationStatus::Enabled => "enabled",
        AutomationStatus::Paused => "paused",
        AutomationStatus::Escalated => "escalated",
        AutomationStatus::HaltedPaid => "halted_paid",
        AutomationStatus::Uncollectible => "uncollectible",
    }
}

impl Apply for EligibilityHandler {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        ctx: &Context,
        m: &Incoming,
        now: DateTime<Utc>,
        out: &mut Vec<OutboxMessage>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let firm_id = env.firm_id;
        match env.kind.as_str() {
            eligibility::CHANGED => {
                let d: EligibilityChanged = data(env)?;
                // Records only fill gaps here: the gateway's own records are versioned and win.
                store::fill_firm(conn, firm_id, &d.firm.name, &d.firm.timezone).await?;
                store::fill_client(conn, firm_id, &d.client).await?;
                for (i, c) in d.contacts.iter().enumerate() {
                    store::fill_contact(conn, firm_id, d.client.client_id, c, i == 0).await?;
                }
                let open = d.checks.iter().any(|c| c.rule == "invoice_open" && c.passed);
                let status = automation(d.automation_status);
                store::apply_decision(conn, firm_id, d.client.client_id, d.version, status, open, &d.invoice).await?;
            }
            eligibility::ALL_CONTACTS_OPTED_OUT => {
                let a: AllContactsOptedOut = data(env)?;
                let evidence =
                    format!("every contact of {} opted out: no channel is left on any contact", a.client_name);
                // One case per open invoice, so each invoice's automation is visibly stopped;
                // a client with no open invoice gets one client-wide case.
                let invoices: Vec<Option<uuid::Uuid>> = if a.invoice_ids.is_empty() {
                    vec![None]
                } else {
                    a.invoice_ids.iter().copied().map(Some).collect()
                };
                for invoice_id in invoices {
                    let t = Trigger {
                        firm_id,
                        client_id: a.client_id,
                        invoice_id,
                        contact_id: None,
                        review: None,
                        reason: EscalationReason::AllContactsOptedOut,
                        evidence: evidence.clone(),
                        actor: ARFLOW.into(),
                        note: format!("{evidence}: automation stopped for the client; reach them another way"),
                        details: json!({ "event_id": env.id, "invoice_ids": a.invoice_ids }),
                    };
                    let (outcome, messages) = cases::open_or_note(conn, &ctx.links, t, now, Some(env)).await?;
                    opened(ctx, &outcome);
                    out.extend(messages);
                }
            }
            eligibility::PROMISE_BROKEN => {
                let p: PromiseBroken = data(env)?;
                if store::invoice(conn, firm_id, p.invoice_id).await?.is_none() {
                    return Err(ApplyError::Retry(format!("invoice {} not known yet", p.invoice_id)));
                }
                let promised = p.promised_date.map_or_else(|| "with no date".to_string(), |d| format!("by {d}"));
                let summary = format!("payment promise {promised} broken: \"{}\"", p.evidence);
                let activity = cases::activity(eligibility::PROMISE_BROKEN, env.time, summary.clone());
                store::record_activity(conn, firm_id, p.invoice_id, &activity).await?;
                // Once per promise: the reply that made it, else when its pause ended.
                let key = p.reply_id.map_or_else(|| p.paused_until.to_rfc3339(), |r| r.to_string());
                let Some(count) = store::count_broken_promise(conn, firm_id, p.invoice_id, &key).await? else {
                    tracing::debug!(invoice_id = %p.invoice_id, "broken promise already counted");
                    return Ok(());
                };
                if count < 2 {
                    tracing::info!(invoice_id = %p.invoice_id, count, "payment promise broken");
                    return Ok(());
                }
                let t = Trigger {
                    firm_id,
                    client_id: p.client_id,
                    invoice_id: Some(p.invoice_id),
                    contact_id: None,
                    review: None,
                    reason: EscalationReason::PromiseBrokenTwice,
                    evidence: format!("{count} payment promises broken; the latest {promised}: \"{}\"", p.evidence),
                    actor: ARFLOW.into(),
                    note: summary,
                    details: json!({ "event_id": env.id, "broken_promises": count, "reply_id": p.reply_id }),
                };
                let (outcome, messages) = cases::open_or_note(conn, &ctx.links, t, now, Some(env)).await?;
                opened(ctx, &outcome);
                out.extend(messages);
            }
            other => tracing::debug!(kind = other, "not an eligibility event escalation acts on; skipped"),
        }
        Ok(())
    }
}
