//! `reply.classified.>` from the email service: what a client answered, matched to the
//! invoice of the email it answers. A dispute or a reply a person must answer stops
//! outreach; a payment promise or a claimed payment pauses it. Opt-outs are not handled
//! here: the email service writes the contact hold and publishes `consent.opted_out`.
use super::{Apply, ApplyError, Context, data, process};
use crate::evaluate::Touched;
use crate::replies::{self, Action};
use crate::store::{self, ReplyRecord};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::ReplyClassified;
use arflow_contracts::subjects::reply;
use arflow_core::window::parse_tz;
use chrono_tz::Tz;
use sqlx::PgConnection;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "eligibility-replies";

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

impl Apply for RepliesHandler {
    async fn apply<'b>(
        &self,
        conn: &mut PgConnection,
        m: &'b Incoming,
        touched: &mut Touched<'b>,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        if env.kind != reply::CLASSIFIED {
            tracing::debug!(kind = %env.kind, "not a reply event eligibility acts on; skipped");
            return Ok(());
        }
        let r: ReplyClassified = data(env)?;
        let intent = r.intent.map_or("none", |i| i.as_str());
        let Some(invoice_id) = r.invoice_id else {
            tracing::info!(reply_id = %r.reply_id, intent, "reply not matched to an invoice; nothing to act on");
            return Ok(());
        };
        // Most replies (acknowledgements, auto-replies) change nothing here: no lookup for them.
        let probe = replies::action(r.intent, r.promised_date, r.received_at, Tz::UTC, &self.ctx.settings);
        if probe == Action::Nothing {
            tracing::debug!(reply_id = %r.reply_id, %invoice_id, intent, "reply needs nothing from eligibility");
            return Ok(());
        }
        let Some(target) = store::reply_target(conn, env.firm_id, invoice_id, r.client_id).await? else {
            tracing::warn!(reply_id = %r.reply_id, %invoice_id, intent, "reply names an invoice not known yet and no client; ignored");
            return Ok(());
        };
        if target.firm_id != env.firm_id {
            tracing::warn!(reply_id = %r.reply_id, %invoice_id, "reply names an invoice of another firm; ignored");
            return Ok(());
        }
        // A promised day is the client's calendar day: the client's zone, else the firm's.
        let zone = [target.client_timezone.as_deref(), target.firm_timezone.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|z| parse_tz(z).ok())
            .unwrap_or(Tz::UTC);
        let record =
            ReplyRecord { invoice_id, reply_id: r.reply_id, intent, evidence: &r.evidence, received_at: r.received_at };
        let applied = match replies::action(r.intent, r.promised_date, r.received_at, zone, &self.ctx.settings) {
            Action::Dispute => store::record_dispute(conn, record).await?,
            Action::Handoff => store::record_handoff(conn, record).await?,
            Action::Pause { until, reason, promised_date } => {
                store::record_reply_pause(conn, record, until, reason, promised_date).await?
            }
            Action::Nothing => false,
        };
        if !applied {
            tracing::info!(reply_id = %r.reply_id, %invoice_id, intent, "a newer reply is already applied; this one changes nothing");
            return Ok(());
        }
        store::record_last_reply(conn, record).await?;
        tracing::info!(reply_id = %r.reply_id, %invoice_id, intent, sure = r.sure, "reply applied");
        touched.invoice(invoice_id, Some(env));
        Ok(())
    }
}
