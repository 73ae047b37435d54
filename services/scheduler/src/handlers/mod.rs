//! One module per subject family consumed. Each batch is handled in one transaction that
//! records every event id in the inbox, writes the plan changes and their events to the
//! outbox, and commits before the messages are acked.
pub mod billing;
pub mod consent;
pub mod eligibility;
pub mod outcomes;

use crate::outreach::{self, Cause, OutreachError};
use crate::policy::Policy;
use arflow_bus::{HandlerError, Incoming, Rejection};
use arflow_core::Clock;
use arflow_store::{Outbox, OutboxMessage, inbox, outbox};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

/// What every handler needs.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    /// Wakes the timer loop: new or re-planned steps may already be due.
    pub timer: Arc<Notify>,
}

/// Why one message could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The message can never be processed (bad payload, wrong tenant): dead-letter it.
    #[error("{0}")]
    Reject(String),
    /// Transient: the whole batch is retried.
    #[error(transparent)]
    Transient(#[from] OutreachError),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Transient(OutreachError::Db(e))
    }
}

impl From<serde_json::Error> for ApplyError {
    fn from(e: serde_json::Error) -> Self {
        ApplyError::Transient(OutreachError::Encode(e))
    }
}

/// The events and plan changes one batch produces.
#[derive(Default)]
pub struct Effects {
    pub messages: Vec<OutboxMessage>,
    /// Invoices whose plan changed, with the reason shown in `PlanUpdated`.
    pub touched: Vec<(Uuid, String, Cause)>,
    /// Each firm's policy, read once per batch (the batch is one transaction).
    pub policies: HashMap<Uuid, Policy>,
}

/// Applies one message inside the batch's transaction.
pub trait Apply: Send + Sync {
    /// The durable consumer name (also the inbox key).
    const CONSUMER: &'static str;

    fn apply(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// The batch loop every handler shares: inbox, apply each new message in order, plan
/// updates, outbox, commit, then wake the relay and the timer.
pub async fn handle_batch<A: Apply>(
    ctx: &Context,
    handler: &A,
    batch: &[Incoming],
) -> Result<Vec<Rejection>, HandlerError> {
    let mut tx = ctx.pool.begin().await.map_err(arflow_store::handler_error)?;
    let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
    let mut fresh: HashSet<Uuid> =
        inbox::record_new(&mut tx, A::CONSUMER, &ids).await.map_err(arflow_store::handler_error)?;
    let now = ctx.clock.now();
    let mut fx = Effects::default();
    let mut rejections = Vec::new();
    for (index, message) in batch.iter().enumerate() {
        // `remove` also drops a second copy of the same event inside one batch.
        if !fresh.remove(&message.envelope.id) {
            tracing::debug!(parent: &message.span(), consumer = A::CONSUMER, "already handled; skipping");
            continue;
        }
        let span = message.span();
        match handler.apply(&mut tx, message, now, &mut fx).instrument(span.clone()).await {
            Ok(()) => {}
            Err(ApplyError::Reject(reason)) => {
                tracing::warn!(parent: &span, consumer = A::CONSUMER, subject = %message.subject, %reason, "rejecting message");
                rejections.push(Rejection { index, reason });
            }
            Err(ApplyError::Transient(e)) => {
                tracing::warn!(parent: &span, consumer = A::CONSUMER, error = %e, "cannot apply; the batch will be retried");
                return Err(e.into());
            }
        }
    }
    let updates = outreach::plan_updates(&mut tx, &fx.touched, now).await?;
    fx.messages.extend(updates);
    outbox::enqueue(&mut tx, &fx.messages).await.map_err(arflow_store::handler_error)?;
    tx.commit().await.map_err(arflow_store::handler_error)?;
    if !fx.messages.is_empty() {
        ctx.outbox.notify();
    }
    if !fx.touched.is_empty() {
        ctx.timer.notify_one();
    }
    Ok(rejections)
}

/// Checks the plan belongs to the firm the event names (tenants are isolated).
pub fn same_firm(plan_firm: Uuid, event_firm: Uuid) -> Result<(), ApplyError> {
    if plan_firm == event_firm {
        Ok(())
    } else {
        Err(ApplyError::Reject(format!("invoice belongs to firm {plan_firm}, not to the event's firm {event_firm}")))
    }
}
