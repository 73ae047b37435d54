//! `reply.classified.>` from the email and voice services (and a person's label, republished by
//! the escalation service): what a client answered, matched to the invoice it is about. A dispute
//! or a reply a person must answer stops outreach; a payment promise or a claimed payment pauses
//! it; a reply not understood with confidence pauses it until a person labels it, and the label
//! is then applied like a classified reply. Opt-outs are not handled here: the channel service
//! writes the contact hold and the opt-out service publishes `consent.opted_out`.
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
        // A reply a person must label (or just labelled) always touches the invoice; most others
        // (acknowledgements, auto-replies) change nothing here: no lookup for them.
        let review = r.awaits_review() || r.labelled_by.is_some();
        let probe = replies::action(r.actionable_intent(), r.promised_date, r.received_at, Tz::UTC, &self.ctx.settings);
        if probe == Action::Nothing && !review {
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
        let words = if r.evidence.trim().is_empty() { &r.client_text } else { &r.evidence };
        let record =
            ReplyRecord { invoice_id, reply_id: r.reply_id, intent, evidence: words, received_at: r.received_at };
        if r.awaits_review() {
            // Not understood with confidence: nothing is done on the guess; the invoice waits
            // for the person who labels it (`no_reply_awaiting_review`).
            if store::record_review(conn, env.firm_id, record).await? {
                store::refresh_reviews(conn, invoice_id).await?;
                tracing::info!(reply_id = %r.reply_id, %invoice_id, guess = intent, confidence = r.confidence, "reply awaits a person's review; invoice paused");
                touched.invoice(invoice_id, Some(env));
            } else {
                tracing::info!(reply_id = %r.reply_id, %invoice_id, "reply already recorded for review (or labelled)");
            }
            return Ok(());
        }
        if let Some(by) = &r.labelled_by {
            // The person's label: the review ends, then the label is applied like any reply.
            if store::resolve_review(conn, env.firm_id, record, Some(intent), by, env.time).await? {
                store::refresh_reviews(conn, invoice_id).await?;
                tracing::info!(reply_id = %r.reply_id, %invoice_id, intent, labelled_by = %by, "reply labelled by a person; review ended");
                touched.invoice(invoice_id, Some(env));
            }
        }
        // A promised day is the client's calendar day: the client's zone, else the firm's.
        let zone = [target.client_timezone.as_deref(), target.firm_timezone.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|z| parse_tz(z).ok())
            .unwrap_or(Tz::UTC);
        let record = ReplyRecord { evidence: &r.evidence, ..record };
        let applied = match replies::action(r.intent, r.promised_date, r.received_at, zone, &self.ctx.settings) {
            Action::Dispute => store::record_dispute(conn, record).await?,
            Action::Handoff => store::record_handoff(conn, record).await?,
            Action::Pause { until, reason, promised_date } => {
                store::record_reply_pause(conn, record, until, reason, promised_date).await?
            }
            Action::Nothing => {
                tracing::debug!(reply_id = %r.reply_id, %invoice_id, intent, "labelled reply needs nothing more from eligibility");
                return Ok(());
            }
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
