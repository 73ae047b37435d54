//! Events to deliveries. Every consumer runs this handler; the inbox key is its durable name.
use super::Context;
use crate::notices::{self, Links, Notice};
use crate::store;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    AllContactsOptedOut, ConsentChanged, DeadLetter, EmailSent, EscalationCase, FirmUpdated, InvoiceHalted,
    PromiseBroken, ReplyClassified,
};
use arflow_contracts::subjects::{billing, consent, eligibility, escalation, outreach, reply};
use arflow_store::{handler_error, inbox};
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

pub struct EventHandler {
    ctx: Arc<Context>,
    consumer: &'static str,
}

impl EventHandler {
    pub fn new(ctx: Arc<Context>, consumer: &'static str) -> Self {
        EventHandler { ctx, consumer }
    }
}

/// Why one event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// It can never be processed (its data does not match the contract): dead-lettered.
    #[error("{0}")]
    Invalid(String),
    /// Transient: the whole batch is retried.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

fn data<T: DeserializeOwned>(env: &RawEnvelope) -> Result<T, ApplyError> {
    env.data_as::<T>().map_err(|e| ApplyError::Invalid(e.to_string()))
}

impl Handler for EventHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let ctx = &self.ctx;
        let mut tx = ctx.pool.begin().await.map_err(handler_error)?;
        let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let mut fresh = inbox::record_new(&mut tx, self.consumer, &ids).await.map_err(handler_error)?;
        let mut rejections = Vec::new();
        let mut created = 0u64;
        for (index, m) in batch.iter().enumerate() {
            let span = m.span();
            if !fresh.remove(&m.envelope.id) {
                span.in_scope(|| tracing::debug!("already handled (inbox); skipped"));
                continue;
            }
            match apply(ctx, &mut tx, m).instrument(span.clone()).await {
                Ok(n) => created += n,
                // Our own dead letters are never dead-lettered again: that could loop.
                Err(ApplyError::Invalid(reason)) if m.subject == arflow_contracts::subjects::dlq(crate::SERVICE) => {
                    span.in_scope(|| tracing::warn!(%reason, "own dead letter cannot be read; dropped"));
                }
                Err(ApplyError::Invalid(reason)) => {
                    span.in_scope(|| tracing::warn!(%reason, subject = %m.subject, "event cannot be processed"));
                    rejections.push(Rejection { index, reason });
                }
                Err(ApplyError::Db(e)) => {
                    span.in_scope(|| tracing::warn!(error = %e, "database error; the batch will be retried"));
                    return Err(handler_error(e));
                }
            }
        }
        tx.commit().await.map_err(handler_error)?;
        if created > 0 {
            ctx.wake.notify_one();
            ctx.metrics.count("notification_deliveries_created", created);
        }
        Ok(rejections)
    }
}

/// Applies one event; returns how many deliveries it created.
async fn apply(ctx: &Context, conn: &mut PgConnection, m: &Incoming) -> Result<u64, ApplyError> {
    let env = &m.envelope;
    let links = Links { base: &ctx.settings.api_base_url };
    let notices: Vec<Notice> = match env.kind.as_str() {
        billing::FIRM_UPDATED => {
            let f: FirmUpdated = data(env)?;
            if f.firm_id != env.firm_id {
                return Err(ApplyError::Invalid(format!(
                    "firm {} updated on firm {}'s subject",
                    f.firm_id, env.firm_id
                )));
            }
            store::upsert_firm(conn, &f).await?;
            vec![]
        }
        // A payment and the reminders before it travel on different streams: whichever comes
        // last produces the notice (once per invoice, by its event key).
        outreach::EMAIL_SENT => {
            let s: EmailSent = data(env)?;
            store::record_outreach(conn, env.firm_id, s.invoice_id, env.time).await?;
            match store::payment(conn, env.firm_id, s.invoice_id).await? {
                Some(paid) => {
                    let h: InvoiceHalted = data(&paid)?;
                    let n = store::emails_sent(conn, env.firm_id, s.invoice_id).await?.unwrap_or(1);
                    return notify(ctx, conn, &paid, &[notices::payment_after_outreach(&paid, &h, n, &links)]).await;
                }
                None => vec![],
            }
        }
        billing::INVOICE_PAID => {
            let h: InvoiceHalted = data(env)?;
            store::record_payment(conn, env, h.invoice_id).await?;
            match store::emails_sent(conn, env.firm_id, h.invoice_id).await? {
                Some(n) => vec![notices::payment_after_outreach(env, &h, n, &links)],
                None => vec![],
            }
        }
        consent::OPTED_OUT => vec![notices::opt_out(env, &data::<ConsentChanged>(env)?, &links)],
        escalation::OPENED => notices::escalation_opened(env, &data::<EscalationCase>(env)?),
        reply::CLASSIFIED => notices::reply(env, &data::<ReplyClassified>(env)?, &links).into_iter().collect(),
        eligibility::PROMISE_BROKEN => vec![notices::promise_broken(env, &data::<PromiseBroken>(env)?, &links)],
        eligibility::ALL_CONTACTS_OPTED_OUT => {
            vec![notices::all_contacts_opted_out(env, &data::<AllContactsOptedOut>(env)?, &links)]
        }
        _ if m.subject.starts_with("dlq.") => {
            let d: DeadLetter = data(env)?;
            if env.firm_id.is_nil() {
                tracing::warn!(service = %d.service, subject = %d.subject, reason = %d.reason,
                    "dead letter without a firm: nobody to notify");
                vec![]
            } else {
                vec![notices::dead_letter(env, &d)]
            }
        }
        _ => vec![],
    };
    notify(ctx, conn, env, &notices).await
}

/// Records and queues `notices` about `env` for every subscription that wants them.
async fn notify(
    ctx: &Context,
    conn: &mut PgConnection,
    env: &RawEnvelope,
    notices: &[Notice],
) -> Result<u64, ApplyError> {
    let mut created = 0;
    let now = ctx.clock.now();
    for notice in notices {
        store::record_firm_event(conn, env.firm_id, notice.kind, &notice.event_key, env.time).await?;
        let n = store::create_deliveries(conn, env, notice, now).await?;
        if n > 0 {
            tracing::info!(kind = notice.kind.as_str(), deliveries = n, "notification queued");
        }
        created += n;
    }
    Ok(created)
}
