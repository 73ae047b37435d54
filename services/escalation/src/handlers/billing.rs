//! `billing.>` from the gateway: firm, client, contact and invoice records; a paid, void or
//! uncollectible invoice resolves its cases; a Stripe refusal of a mark-uncollectible notes the case.
use super::{Apply, ApplyError, Context, data, process};
use crate::cases::{self, ARFLOW, ActionInput};
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{
    CaseActionKind, ClientUpserted, ContactUpserted, FirmUpdated, InvoiceHalted, InvoiceStatus, InvoiceUpserted,
    StripeCommandFailed,
};
use arflow_contracts::subjects::billing;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "escalation-billing";

pub struct BillingHandler {
    ctx: Arc<Context>,
}

impl BillingHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        BillingHandler { ctx }
    }
}

impl Handler for BillingHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, self).await
    }
}

impl Apply for BillingHandler {
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
            billing::FIRM_UPDATED => {
                let f: FirmUpdated = data(env)?;
                if f.firm_id != firm_id {
                    return Err(ApplyError::Invalid(format!(
                        "firm_updated for {} in firm {firm_id}'s envelope",
                        f.firm_id
                    )));
                }
                store::upsert_firm(conn, &f).await?;
            }
            billing::CLIENT_UPSERTED => {
                let c: ClientUpserted = data(env)?;
                store::upsert_client(conn, firm_id, &c).await?;
            }
            billing::CONTACT_UPSERTED => {
                let c: ContactUpserted = data(env)?;
                store::upsert_contact(conn, firm_id, &c).await?;
            }
            billing::INVOICE_UPSERTED => {
                let i: InvoiceUpserted = data(env)?;
                store::upsert_invoice(conn, firm_id, &i).await?;
            }
            kind @ (billing::INVOICE_PAID | billing::INVOICE_VOIDED | billing::INVOICE_UNCOLLECTIBLE) => {
                let h: InvoiceHalted = data(env)?;
                let (status, what) = match kind {
                    billing::INVOICE_PAID => (InvoiceStatus::Paid, "paid"),
                    billing::INVOICE_VOIDED => (InvoiceStatus::Void, "voided"),
                    _ => (InvoiceStatus::Uncollectible, "marked uncollectible"),
                };
                store::halt_invoice(conn, firm_id, h.invoice_id, h.client_id, status, h.version).await?;
                for mut case in store::lock_active_cases_of_invoice(conn, firm_id, h.invoice_id).await? {
                    let (kind, note) = match (status, case.pending_command) {
                        (InvoiceStatus::Paid, _) => {
                            (CaseActionKind::Paid, format!("the invoice was paid ({:?})", h.reason))
                        }
                        // The write-off a firm user asked for: Stripe confirmed it.
                        (InvoiceStatus::Uncollectible, Some(request)) => (
                            CaseActionKind::MarkUncollectible,
                            format!("Stripe marked invoice {} uncollectible (request {request})", h.stripe_invoice_id),
                        ),
                        _ => (CaseActionKind::Resolve, format!("the invoice was {what} in Stripe")),
                    };
                    let input = ActionInput::new(kind, ARFLOW, &note)
                        .with_details(json!({ "stripe_event_id": h.stripe_event_id, "event_id": env.id }));
                    out.extend(cases::resolve(conn, &ctx.links, &mut case, input, now, Some(env)).await?);
                }
            }
            billing::STRIPE_COMMAND_FAILED => {
                let f: StripeCommandFailed = data(env)?;
                let Some(case_id) = f.case_id else { return Ok(()) };
                let Some(mut case) = store::lock_case(conn, firm_id, case_id).await? else {
                    return Err(ApplyError::Invalid(format!("case {case_id} is not a case of firm {firm_id}")));
                };
                if case.pending_command != Some(f.request_id) || case.status == "resolved" {
                    tracing::info!(%case_id, request_id = %f.request_id, "Stripe refusal of a request no longer pending; ignored");
                    return Ok(());
                }
                case.pending_command = None;
                let note = format!(
                    "Stripe refused to mark invoice {} uncollectible{}: {}",
                    f.stripe_invoice_id,
                    f.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                    f.message
                );
                let input = ActionInput::new(CaseActionKind::Note, ARFLOW, &note)
                    .with_details(json!({ "request_id": f.request_id, "command": f.command, "status": f.status }));
                out.extend(cases::note(conn, &ctx.links, &mut case, input, now, Some(env)).await?);
            }
            other => tracing::debug!(kind = other, "not a billing event escalation acts on; skipped"),
        }
        Ok(())
    }
}
