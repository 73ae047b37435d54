//! `billing.invoice_upserted.<firm>`: which firm each invoice belongs to, so that the read API
//! can tell the firm's own invoice without calls yet (200, empty) from another firm's or an
//! unknown one (404). The voice service keeps nothing else of the invoice: what a call says comes
//! with its step.
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::InvoiceUpserted;
use arflow_store::{handler_error, inbox};
use sqlx::PgPool;

/// The durable consumer's name (also its inbox key).
pub const DURABLE: &str = "voice-invoices";

pub struct InvoicesHandler {
    pub pool: PgPool,
}

impl Handler for InvoicesHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(handler_error)?;
        let ids: Vec<uuid::Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let fresh = inbox::record_new(&mut tx, DURABLE, &ids).await.map_err(handler_error)?;
        let mut rejections = Vec::new();
        for (index, m) in batch.iter().enumerate() {
            if !fresh.contains(&m.envelope.id) {
                continue;
            }
            let invoice: InvoiceUpserted = match m.envelope.data_as() {
                Ok(i) => i,
                Err(e) => {
                    let reason = e.to_string();
                    m.span().in_scope(
                        || tracing::error!(%reason, subject = %m.subject, "undecodable invoice; dead-lettering"),
                    );
                    rejections.push(Rejection { index, reason });
                    continue;
                }
            };
            store::record_invoice(&mut tx, invoice.invoice_id, m.envelope.firm_id).await.map_err(handler_error)?;
        }
        tx.commit().await.map_err(handler_error)?;
        Ok(rejections)
    }
}
