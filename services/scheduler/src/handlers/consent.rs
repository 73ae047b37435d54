//! `consent.opted_out.*` (and `consent.opted_in.*`): the contact is dropped from pending steps.
//!
//! The opt-out is recorded here and consulted when a step fires, so it covers every pending
//! step of every invoice of the contact at once, including steps planned later.
use super::{Apply, ApplyError, Context, Effects};
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::ConsentChanged;
use arflow_contracts::subjects::consent;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub struct ConsentHandler {
    pub ctx: Context,
}

impl Handler for ConsentHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        super::handle_batch(&self.ctx, self, batch).await
    }
}

impl Apply for ConsentHandler {
    const CONSUMER: &'static str = "scheduler-consent";

    async fn apply(
        &self,
        conn: &mut PgConnection,
        m: &Incoming,
        now: DateTime<Utc>,
        _fx: &mut Effects,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let c: ConsentChanged = env.data_as().map_err(|e| ApplyError::Reject(e.to_string()))?;
        let channel = c.channel.map(|ch| ch.as_str()).unwrap_or("all");
        if env.kind == consent::OPTED_OUT || m.subject.starts_with(consent::OPTED_OUT) {
            store::record_opt_out(conn, env.firm_id, c.contact_id, channel, now).await?;
            tracing::info!(contact_id = %c.contact_id, channel, "contact opted out; dropped from pending steps");
        } else if env.kind == consent::OPTED_IN || m.subject.starts_with(consent::OPTED_IN) {
            store::remove_opt_out(conn, env.firm_id, c.contact_id, channel).await?;
            tracing::info!(contact_id = %c.contact_id, channel, "contact opted in again");
        } else {
            return Err(ApplyError::Reject(format!("unexpected event type {} on {}", env.kind, m.subject)));
        }
        Ok(())
    }
}
