//! Consumers, one module per subject family. Each batch is handled in ONE transaction:
//! inbox, read models, cases and their actions, outbox, commit; acked after commit.
pub mod billing;
pub mod eligibility;
pub mod outreach;
pub mod replies;

use crate::cases::{CaseError, Links};
use crate::config::EscalationSettings;
use arflow_bus::{HandlerError, Incoming, Rejection};
use arflow_contracts::envelope::RawEnvelope;
use arflow_core::Clock;
use arflow_runtime::Metrics;
use arflow_store::{Outbox, OutboxMessage, handler_error, inbox};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use tracing::Instrument;
use uuid::Uuid;

/// What handlers, routes and the sweep share.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    pub links: Links,
    pub settings: EscalationSettings,
}

/// Why one event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// It can never be processed (bad payload, another firm's record): dead-lettered.
    #[error("{0}")]
    Invalid(String),
    /// Transient (database, a record not arrived yet): the batch is retried.
    #[error("{0}")]
    Retry(String),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Retry(format!("database error: {e}"))
    }
}

impl From<CaseError> for ApplyError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Invalid(m) | CaseError::Conflict(m) => ApplyError::Invalid(m),
            other => ApplyError::Retry(other.to_string()),
        }
    }
}

/// Decodes `data`, or says why the event can never be processed.
pub(crate) fn data<T: DeserializeOwned>(env: &RawEnvelope) -> Result<T, ApplyError> {
    env.data_as::<T>().map_err(|e| ApplyError::Invalid(e.to_string()))
}

/// Applies one event inside the batch's transaction, adding the events to publish.
pub(crate) trait Apply: Send + Sync {
    fn apply(
        &self,
        conn: &mut PgConnection,
        ctx: &Context,
        m: &Incoming,
        now: DateTime<Utc>,
        out: &mut Vec<OutboxMessage>,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// One batch, one transaction; returns after commit.
pub(crate) async fn process<A: Apply>(
    ctx: &Context,
    consumer: &str,
    batch: &[Incoming],
    applier: &A,
) -> Result<Vec<Rejection>, HandlerError> {
    let mut tx = ctx.pool.begin().await.map_err(handler_error)?;
    let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
    let mut fresh = inbox::record_new(&mut tx, consumer, &ids).await.map_err(handler_error)?;
    let now = ctx.clock.now();
    let mut out = Vec::new();
    let mut rejections = Vec::new();
    for (index, m) in batch.iter().enumerate() {
        let span = m.span();
        // `remove`: an id twice in one batch is applied once.
        if !fresh.remove(&m.envelope.id) {
            span.in_scope(|| tracing::debug!("already handled (inbox); skipped"));
            ctx.metrics.consumed(consumer, "duplicate", 1);
            continue;
        }
        match applier.apply(&mut tx, ctx, m, now, &mut out).instrument(span.clone()).await {
            Ok(()) => {}
            Err(ApplyError::Invalid(reason)) => {
                span.in_scope(
                    || tracing::warn!(%reason, subject = %m.subject, "event cannot be processed; dead-lettering"),
                );
                rejections.push(Rejection { index, reason });
            }
            Err(ApplyError::Retry(reason)) => {
                span.in_scope(|| tracing::info!(%reason, "cannot apply yet; the batch will be retried"));
                return Err(HandlerError::Retry(reason));
            }
        }
    }
    arflow_store::outbox::enqueue(&mut tx, &out).await.map_err(handler_error)?;
    tx.commit().await.map_err(handler_error)?;
    if !out.is_empty() {
        ctx.outbox.notify();
        ctx.metrics.count("escalation_events_published", out.len() as u64);
    }
    Ok(rejections)
}

/// Adds the events of a trigger outcome, counting openings.
pub(crate) fn opened(ctx: &Context, outcome: &crate::cases::Outcome) {
    if matches!(outcome, crate::cases::Outcome::Opened(_)) {
        ctx.metrics.count("escalation_cases_opened", 1);
    }
}
