//! `billing.>` from the gateway: firm, client, contact and invoice records, halts and pauses.
use super::{Apply, ApplyError, Context, data, process};
use crate::evaluate::Touched;
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{
    ClientUpserted, ContactUpserted, FirmUpdated, InvoiceHalted, InvoicePaused, InvoicePaymentFailed, InvoiceStatus,
    InvoiceUpserted,
};
use arflow_contracts::subjects::billing;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "eligibility-billing";

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

/// An unknown zone is stored as sent (the record is still newer data) but said out loud:
/// decisions fall back to the next zone in line (client -> firm -> UTC).
fn warn_unknown_zone(what: &str, zone: Option<&str>) {
    if let Some(z) = zone
        && arflow_core::window::parse_tz(z).is_err()
    {
        tracing::warn!(what, zone = z, "unknown IANA time zone; the next zone in line is used instead");
    }
}

fn ignored_older(what: &str, version: i64) {
    tracing::debug!(what, version, "not newer than the stored record; ignored");
}

/// Every invoice of `clients` is re-evaluated, and each client's opt-out state re-checked.
async fn touch_clients<'b>(
    conn: &mut PgConnection,
    clients: &[uuid::Uuid],
    m: &'b Incoming,
    touched: &mut Touched<'b>,
) -> Result<(), ApplyError> {
    for (invoice_id, _) in store::invoices_of_clients(conn, clients).await? {
        touched.invoice(invoice_id, Some(&m.envelope));
    }
    for c in clients {
        touched.client(*c, Some(&m.envelope));
    }
    Ok(())
}

impl Apply for BillingHandler {
    async fn apply<'b>(
        &self,
        conn: &mut PgConnection,
        m: &'b Incoming,
        touched: &mut Touched<'b>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let firm_id = env.firm_id;
        match env.kind.as_str() {
            billing::FIRM_UPDATED => {
                let f: FirmUpdated = data(env)?;
                if f.firm_id != firm_id {
                    return Err(ApplyError::Invalid(format!(
                        "firm_updated for firm {} arrived in an envelope of firm {firm_id}",
                        f.firm_id
                    )));
                }
                warn_unknown_zone("firm", Some(&f.timezone));
                if !store::upsert_firm(conn, &f).await? {
                    ignored_older("firm", f.version);
                    return Ok(());
                }
                for invoice_id in store::invoices_of_firm(conn, firm_id).await? {
                    touched.invoice(invoice_id, Some(env));
                }
            }
            billing::CLIENT_UPSERTED => {
                let c: ClientUpserted = data(env)?;
                warn_unknown_zone("client", c.timezone.as_deref());
                if !store::upsert_client(conn, firm_id, &c).await? {
                    ignored_older("client", c.version);
                    return Ok(());
                }
                touch_clients(conn, &[c.client_id], m, touched).await?;
            }
            billing::CONTACT_UPSERTED => {
                let c: ContactUpserted = data(env)?;
                warn_unknown_zone("contact", c.timezone.as_deref());
                let Some(previous_client) = store::upsert_contact(conn, firm_id, &c).await? else {
                    ignored_older("contact", c.version);
                    return Ok(());
                };
                let mut clients = vec![c.client_id];
                // A contact that moved to another client leaves the old one's decisions too.
                if let Some(old) = previous_client.filter(|old| *old != c.client_id) {
                    clients.push(old);
                }
                touch_clients(conn, &clients, m, touched).await?;
            }
            billing::INVOICE_UPSERTED => {
                // Written set-based with the rest of the batch's snapshots.
                let i: InvoiceUpserted = data(env)?;
                touched.invoice_snapshot(i, env);
            }
            kind @ (billing::INVOICE_PAID | billing::INVOICE_VOIDED | billing::INVOICE_UNCOLLECTIBLE) => {
                let h: InvoiceHalted = data(env)?;
                let status = match kind {
                    billing::INVOICE_PAID => InvoiceStatus::Paid,
                    billing::INVOICE_VOIDED => InvoiceStatus::Void,
                    _ => InvoiceStatus::Uncollectible,
                };
                if !store::halt_invoice(conn, firm_id, &h, status).await? {
                    ignored_older("invoice halt", h.version);
                    return Ok(());
                }
                tracing::info!(invoice_id = %h.invoice_id, reason = ?h.reason, "invoice halted");
                touched.invoice(h.invoice_id, Some(env));
            }
            billing::INVOICE_PAUSED => {
                let p: InvoicePaused = data(env)?;
                if !store::pause_invoice(conn, firm_id, &p).await? {
                    ignored_older("invoice pause", p.version);
                    return Ok(());
                }
                touched.invoice(p.invoice_id, Some(env));
            }
            billing::INVOICE_PAYMENT_FAILED => {
                // Decoded so a malformed one is dead-lettered; a failed payment changes nothing here.
                let f: InvoicePaymentFailed = data(env)?;
                tracing::debug!(invoice_id = %f.invoice_id, "payment failed; eligibility unchanged");
            }
            other => tracing::debug!(kind = other, "not a billing event eligibility acts on; skipped"),
        }
        Ok(())
    }
}
