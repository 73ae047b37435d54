//! Time-dependent inputs: an invoice becomes past due at local midnight after its due
//! date, and a pause expires. Each invoice stores when that next happens
//! (`next_check_at`, indexed); this loop re-evaluates the ones whose moment came, on
//! every change of a simulated clock or every few seconds with the system clock.
use crate::config::EligibilitySettings;
use crate::evaluate::{self, Touched};
use crate::handlers::Context;
use crate::store;
use arflow_runtime::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// Runs until `shutdown`. A failed sweep is logged and tried again on the next tick.
pub async fn run(ctx: Arc<Context>, settings: EligibilitySettings, shutdown: Shutdown) -> Result<(), String> {
    let mut changes = ctx.clock.changes();
    let poll = Duration::from_secs(settings.poll_interval_secs);
    loop {
        match sweep(&ctx, settings.sweep_batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(invoices = n, "re-evaluated invoices whose due date or pause came"),
            Err(e) => tracing::warn!(error = %e, "time sweep failed; retrying on the next tick"),
        }
        match changes.as_mut() {
            Some(rx) => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = rx.changed() => if changed.is_err() { return Ok(()) },
                // A sweep that failed is retried even if the clock stands still.
                _ = tokio::time::sleep(poll) => {}
            },
            None => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            },
        }
    }
}

/// Re-evaluates every invoice whose `next_check_at` has come, `batch` per transaction.
pub async fn sweep(ctx: &Context, batch: i64) -> Result<usize, evaluate::EvaluateError> {
    let mut total = 0;
    loop {
        let now = ctx.clock.now();
        let mut tx = ctx.pool.begin().await?;
        let ids = store::due_for_check(&mut tx, now, batch).await?;
        if ids.is_empty() {
            return Ok(total);
        }
        let mut touched = Touched::default();
        for id in &ids {
            touched.invoice(*id, None);
        }
        let (messages, outcome) = evaluate::run(&mut tx, &touched, now).await?;
        store::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        if !messages.is_empty() {
            ctx.outbox.notify();
        }
        ctx.metrics.count("eligibility_evaluations", outcome.evaluated as u64);
        ctx.metrics.count("eligibility_changes_published", outcome.published as u64);
        ctx.metrics.count("eligibility_promises_broken", outcome.broken as u64);
        total += ids.len();
        if (ids.len() as i64) < batch {
            return Ok(total);
        }
    }
}
