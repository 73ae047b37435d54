//! `consent.>` from the opt-out service: a contact's opted-out state per channel.
use super::{Apply, ApplyError, Context, data, process};
use crate::evaluate::Touched;
use crate::store::{self, OptOutChange};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::ConsentChanged;
use arflow_contracts::subjects::consent;
use arflow_core::Channel;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "eligibility-consent";

pub struct ConsentHandler {
    ctx: Arc<Context>,
}

impl ConsentHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        ConsentHandler { ctx }
    }
}

impl Handler for ConsentHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, self).await
    }
}

/// The opt-out columns a change touches: one channel, or every channel when `None`.
pub fn change(channel: Option<Channel>, opted_out: bool) -> OptOutChange {
    let all = channel.is_none();
    OptOutChange {
        email: all || channel == Some(Channel::Email),
        voice: all || channel == Some(Channel::Voice),
        sms: all || channel == Some(Channel::Sms),
        opted_out,
    }
}

impl Apply for ConsentHandler {
    async fn apply<'b>(
        &self,
        conn: &mut PgConnection,
        m: &'b Incoming,
        touched: &mut Touched<'b>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let opted_out = match env.kind.as_str() {
            consent::OPTED_OUT => true,
            consent::OPTED_IN => false,
            other => {
                tracing::debug!(kind = other, "not a consent event eligibility acts on; skipped");
                return Ok(());
            }
        };
        let c: ConsentChanged = data(env)?;
        let Some(client_id) =
            store::apply_consent(conn, env.firm_id, c.contact_id, c.client_id, change(c.channel, opted_out)).await?
        else {
            return Err(ApplyError::Invalid(format!(
                "contact {} belongs to another firm than {}",
                c.contact_id, env.firm_id
            )));
        };
        tracing::info!(contact_id = %c.contact_id, channel = ?c.channel, opted_out, source = %c.source, "consent changed");
        let mut clients = vec![client_id];
        if c.client_id != client_id {
            clients.push(c.client_id);
        }
        for (invoice_id, _) in store::invoices_of_clients(conn, &clients).await? {
            touched.invoice(invoice_id, Some(env));
        }
        for client in clients {
            touched.client(client, Some(env));
        }
        Ok(())
    }
}
