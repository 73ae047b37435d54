//! Consumers, one module per subject family. Each batch is handled in ONE
//! transaction: inbox, read-model upserts, re-evaluation, outbox, commit.
pub mod billing;
pub mod consent;
pub mod escalation;
pub mod replies;

use crate::config::EligibilitySettings;
use crate::evaluate::{self, Touched};
use crate::store;
use arflow_bus::{HandlerError, Incoming, Rejection};
use arflow_contracts::envelope::RawEnvelope;
use arflow_core::Clock;
use arflow_runtime::Metrics;
use arflow_store::{Outbox, handler_error, inbox};
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use tracing::Instrument;
use uuid::Uuid;

/// What handlers and the time sweep share.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    /// Pause lengths for replies (`[eligibility]`).
    pub settings: EligibilitySettings,
}

/// Why one event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// It can never be processed (bad payload, wrong firm): dead-lettered with the reason.
    #[error("{0}")]
    Invalid(String),
    /// Transient: the whole batch is retried.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Decodes `data`, or says why the event can never be processed.
pub(crate) fn data<T: DeserializeOwned>(env: &RawEnvelope) -> Result<T, ApplyError> {
    env.data_as::<T>().map_err(|e| ApplyError::Invalid(e.to_string()))
}

/// Applies one event of a subject family to the read models, noting what to re-evaluate.
pub(crate) trait Apply: Send + Sync {
    fn apply<'b>(
        &self,
        conn: &mut PgConnection,
        m: &'b Incoming,
        touched: &mut Touched<'b>,
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
    // The three consumers run side by side: without this, a consent change and a new invoice
    // of the same client committed at the same time each miss the other (the invoice evaluated
    // before the opt-out committed, the opt-out finding no invoice to re-evaluate). One lock per
    // firm, taken in order, makes their transactions for a firm follow each other.
    let mut firms: Vec<Uuid> = batch.iter().map(|m| m.envelope.firm_id).collect();
    firms.sort_unstable();
    firms.dedup();
    for firm in &firms {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(firm.to_string())
            .execute(&mut *tx)
            .await
            .map_err(handler_error)?;
    }
    let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
    let mut fresh = inbox::record_new(&mut tx, consumer, &ids).await.map_err(handler_error)?;
    let mut touched = Touched::default();
    let mut rejections = Vec::new();
    let mut duplicates = 0u64;
    for (index, m) in batch.iter().enumerate() {
        let span = m.span();
        // `remove`: an id twice in one batch is applied once.
        if !fresh.remove(&m.envelope.id) {
            span.in_scope(|| tracing::debug!("already handled (inbox); skipped"));
            duplicates += 1;
            continue;
        }
        match applier.apply(&mut tx, m, &mut touched).instrument(span.clone()).await {
            Ok(()) => {}
            Err(ApplyError::Invalid(reason)) => {
                span.in_scope(
                    || tracing::warn!(%reason, subject = %m.subject, "event cannot be processed; dead-lettering"),
                );
                rejections.push(Rejection { index, reason });
            }
            Err(ApplyError::Db(e)) => {
                span.in_scope(|| tracing::warn!(error = %e, "database error; the batch will be retried"));
                return Err(handler_error(e));
            }
        }
    }
    touched.flush(&mut tx).await.map_err(handler_error)?;
    let now = ctx.clock.now();
    let (messages, outcome) = evaluate::run(&mut tx, &touched, now).await.map_err(handler_error)?;
    store::enqueue(&mut tx, &messages).await.map_err(handler_error)?;
    tx.commit().await.map_err(handler_error)?;
    if !messages.is_empty() {
        ctx.outbox.notify();
    }
    ctx.metrics.count("eligibility_evaluations", outcome.evaluated as u64);
    ctx.metrics.count("eligibility_changes_published", outcome.published as u64);
    ctx.metrics.count("eligibility_promises_broken", outcome.broken as u64);
    ctx.metrics.count("all_contacts_opted_out_warnings", outcome.warnings as u64);
    if duplicates > 0 {
        ctx.metrics.consumed(consumer, "duplicate", duplicates);
    }
    tracing::debug!(
        consumer,
        size = batch.len(),
        evaluated = outcome.evaluated,
        published = outcome.published,
        "batch committed"
    );
    Ok(rejections)
}
