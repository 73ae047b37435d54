//! `billing.contact_upserted.>`: the contacts read model (firm, client, name, email, phone), so
//! requests can be checked against their firm and suppression lists resolved by address.
use super::Context;
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::ContactUpserted;
use arflow_store::{handler_error, inbox};
use std::sync::Arc;
use uuid::Uuid;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "optout-contacts";

pub struct ContactsHandler {
    ctx: Arc<Context>,
}

impl ContactsHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        ContactsHandler { ctx }
    }
}

impl Handler for ContactsHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut tx = self.ctx.pool.begin().await.map_err(handler_error)?;
        let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let mut fresh = inbox::record_new(&mut tx, CONSUMER, &ids).await.map_err(handler_error)?;
        let mut rejections = Vec::new();
        for (index, m) in batch.iter().enumerate() {
            if !fresh.remove(&m.envelope.id) {
                continue;
            }
            let c: ContactUpserted = match m.envelope.data_as() {
                Ok(c) => c,
                Err(e) => {
                    rejections.push(Rejection { index, reason: e.to_string() });
                    continue;
                }
            };
            let applied = store::upsert_contact(&mut tx, m.envelope.firm_id, &c).await.map_err(handler_error)?;
            tracing::debug!(contact_id = %c.contact_id, version = c.version, applied, "contact record");
        }
        tx.commit().await.map_err(handler_error)?;
        Ok(rejections)
    }
}
