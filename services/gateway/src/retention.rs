//! Retention of what only the gateway keeps (issue 14): raw inbound mail in the `inbound` object
//! store past each firm's `raw_mail_retention_days`, and the Stripe webhook and Idempotency-Key
//! records past their dedupe window. By the business clock, so the simulated calendar (demo,
//! tests) purges too.
use crate::store;
use arflow_bus::Bus;
use arflow_core::Clock;
use arflow_runtime::Shutdown;
use sqlx::PgPool;
use std::time::Duration;

/// How long webhook and idempotency records are kept: past Stripe's 3-day retries and any
/// client's retry of a request.
pub const DEDUPE_DAYS: i64 = 30;

/// One pass: purges what is due; returns (raw messages purged, dedupe rows deleted).
pub async fn purge(pool: &PgPool, bus: &Bus, clock: &Clock) -> Result<(u64, u64), String> {
    let now = clock.now();
    let mut purged = 0;
    loop {
        let due = store::inbound_to_purge(pool, now, 500).await.map_err(|e| e.to_string())?;
        if due.is_empty() {
            break;
        }
        for (firm_id, sha256) in &due {
            // The bytes first: a row marked purged always means the object is gone.
            bus.delete_inbound(&format!("{firm_id}/{sha256}")).await.map_err(|e| e.to_string())?;
            store::mark_inbound_purged(pool, *firm_id, sha256, now).await.map_err(|e| e.to_string())?;
            purged += 1;
        }
    }
    let pruned = store::prune_dedupe(pool, now - chrono::Duration::days(DEDUPE_DAYS), now - crate::idempotency::KEEP)
        .await
        .map_err(|e| e.to_string())?;
    Ok((purged, pruned))
}

/// Purges every 10 minutes, and whenever the simulated clock moves.
pub async fn run(pool: PgPool, bus: Bus, clock: Clock, shutdown: Shutdown) -> Result<(), String> {
    let mut changes = clock.changes();
    loop {
        match purge(&pool, &bus, &clock).await {
            Ok((0, 0)) => {}
            Ok((purged, pruned)) => tracing::info!(purged, pruned, "retention: raw mail purged, dedupe records pruned"),
            Err(e) => tracing::warn!(error = %e, "retention pass failed; trying again later"),
        }
        let moved = async {
            match changes.as_mut() {
                Some(c) => c.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            open = moved => if !open { changes = None },
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}
