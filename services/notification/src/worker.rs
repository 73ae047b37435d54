//! The delivery worker: claims due deliveries (`FOR UPDATE SKIP LOCKED`, then a lease, so
//! replicas never send one delivery at the same time and a crash mid-send frees it), sends
//! them, and records each attempt, the endpoint's failure record and the outcome event in
//! one transaction.
//!
//! Time: a delivery is due when `next_attempt_at <= clock.now()` OR `retry_wall_at <= wall
//! now`. Both are set from the same backoff on every failure. With the system clock they are
//! the same instant. With the simulated clock, `next_attempt_at` follows the simulated time
//! (a clock jump makes retries due, as a day passing would) and `retry_wall_at` keeps real
//! time moving: a receiver that comes back is retried within the backoff even if nobody
//! advances the clock. The endpoint's "failing for N hours" rule uses the service clock.
use crate::channels::{Channels, Failure, Outcome};
use crate::handlers::Context;
use crate::store::{self, AttemptRecord, Claimed};
use arflow_contracts::events::NotificationOutcome;
use arflow_contracts::subjects::{self, notification};
use arflow_contracts::{Envelope, msg_id};
use arflow_runtime::Shutdown;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub async fn run(ctx: Arc<Context>, channels: Arc<Channels>, shutdown: Shutdown) -> Result<(), String> {
    let mut changes = ctx.clock.changes();
    let poll = Duration::from_millis(ctx.settings.poll_ms);
    loop {
        // A pass in hand always finishes, even when shutdown fires meanwhile.
        let sent = match pass(&ctx, &channels).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "delivery pass failed; retrying");
                0
            }
        };
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if sent as i64 >= ctx.settings.batch_size {
            continue;
        }
        match changes.as_mut() {
            Some(rx) => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ctx.wake.notified() => {}
                changed = rx.changed() => if changed.is_err() { return Ok(()) },
                _ = tokio::time::sleep(poll) => {}
            },
            None => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ctx.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            },
        }
    }
}

/// Claims and sends one batch; returns how many were attempted.
pub async fn pass(ctx: &Context, channels: &Channels) -> Result<usize, sqlx::Error> {
    let wall = Utc::now();
    let lease = Duration::from_secs(ctx.settings.timeout_secs * 2 + 30);
    let lease_until = wall + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
    let claimed = store::claim(&ctx.pool, ctx.clock.now(), wall, lease_until, ctx.settings.batch_size).await?;
    let n = claimed.len();
    let results: Vec<Result<(), sqlx::Error>> = futures::stream::iter(claimed)
        .map(|d| async move {
            let started = Instant::now();
            let outcome = channels.send(&d).await;
            let result = match &outcome {
                Outcome::Delivered { .. } => "ok",
                Outcome::Failed { failure: Failure::Retry, .. } => "transient",
                Outcome::Failed { .. } => "permanent",
            };
            // `smtp` for email, `webhook` for signed webhooks and Slack.
            let dependency = if d.channel == "email" { "smtp" } else { "webhook" };
            ctx.metrics.dependency(dependency, result, started.elapsed());
            record(ctx, &d, &outcome, started.elapsed()).await
        })
        .buffer_unordered(ctx.settings.concurrency)
        .collect()
        .await;
    for r in results {
        // The lease runs out and the delivery is tried again (same id: at-least-once).
        if let Err(e) = r {
            tracing::warn!(error = %e, "an attempt could not be recorded; it will be retried");
        }
    }
    Ok(n)
}

async fn record(ctx: &Context, d: &Claimed, outcome: &Outcome, took: Duration) -> Result<(), sqlx::Error> {
    let span = tracing::info_span!("delivery", delivery_id = %d.id, firm_id = %d.firm_id,
        correlation_id = %d.correlation_id, channel = %d.channel, kind = %d.kind, attempt = d.attempts + 1);
    record_in_span(ctx, d, outcome, took).instrument(span).await
}

async fn record_in_span(ctx: &Context, d: &Claimed, outcome: &Outcome, took: Duration) -> Result<(), sqlx::Error> {
    let now = ctx.clock.now();
    let attempt = d.attempts + 1;
    let mut tx = ctx.pool.begin().await?;
    // The endpoint's row first: handlers hold it `FOR SHARE` while they add deliveries, so
    // locking it before the delivery row keeps one lock order (no deadlock).
    let endpoint = match outcome {
        Outcome::Delivered { .. } => {
            store::endpoint_succeeded(&mut tx, d.subscription_id, now).await?;
            None
        }
        Outcome::Failed { error, .. } => Some(store::endpoint_failed(&mut tx, d.subscription_id, error, now).await?),
    };
    let (succeeded, status_code, error) = match outcome {
        Outcome::Delivered { status } => (true, *status, None),
        Outcome::Failed { status, error, .. } => (false, *status, Some(error.as_str())),
    };
    store::record_attempt(
        &mut tx,
        AttemptRecord {
            delivery_id: d.id,
            attempt,
            at: now,
            succeeded,
            status_code: status_code.map(i32::from),
            error,
            duration_ms: i32::try_from(took.as_millis()).unwrap_or(i32::MAX),
        },
    )
    .await?;
    let mut event = None;
    match outcome {
        Outcome::Delivered { .. } => {
            store::mark_delivered(&mut tx, d.id, attempt, now).await?;
            tracing::info!("notification delivered");
            ctx.metrics.count("notification_delivered", 1);
            event = Some((notification::DELIVERED, format!("delivered:{attempt}"), "delivered".to_string()));
        }
        Outcome::Failed { error, failure, .. } => {
            let give_up = *failure == Failure::Permanent || attempt >= ctx.settings.max_attempts;
            let retry = (!give_up).then(|| next_attempt(ctx, attempt, now));
            store::mark_failed_attempt(&mut tx, d.id, attempt, error, retry).await?;
            let (failures, since) = endpoint.unwrap_or((1, now));
            let failing_for = now - since;
            let disable = match failure {
                Failure::Gone => Some("the endpoint answered 410 Gone".to_string()),
                _ if failures >= ctx.settings.disable_after_failures => {
                    Some(format!("{failures} consecutive failed attempts"))
                }
                _ if failing_for >= chrono::Duration::hours(ctx.settings.disable_after_hours) => {
                    Some(format!("failing for {} hours", failing_for.num_hours()))
                }
                _ => None,
            };
            ctx.metrics.count("notification_attempts_failed", 1);
            if give_up {
                ctx.metrics.count("notification_failed", 1);
                tracing::warn!(%error, "notification failed for good");
                event = Some((notification::FAILED, format!("failed:{attempt}"), error.clone()));
            } else {
                tracing::info!(%error, "notification attempt failed; will retry");
            }
            if let Some(reason) = disable {
                let parked = store::disable_endpoint(&mut tx, d.subscription_id, &reason, now).await?;
                ctx.metrics.count("notification_endpoints_disabled", 1);
                tracing::warn!(%reason, parked = parked.len(), subscription_id = %d.subscription_id,
                    "endpoint disabled; its deliveries wait for a replay");
                if !give_up {
                    event = Some((
                        notification::FAILED,
                        format!("disabled:{attempt}"),
                        format!("endpoint disabled ({reason}): {error}"),
                    ));
                }
            }
        }
    }
    if let Some((kind, what, detail)) = event {
        let message = outcome_event(d, kind, &what, attempt, detail, now)?;
        arflow_store::outbox::enqueue(&mut tx, &[message]).await?;
    }
    tx.commit().await?;
    ctx.outbox.notify();
    Ok(())
}

/// Backoff with up to 20 % jitter, on both clocks.
fn next_attempt(ctx: &Context, attempt: i32, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let base = ctx.settings.backoff(attempt);
    let jitter = rand::rng().random_range(0.0..0.2);
    let delay = chrono::Duration::from_std(base.mul_f64(1.0 + jitter)).unwrap_or(chrono::Duration::hours(1));
    (now + delay, Utc::now() + delay)
}

fn outcome_event(
    d: &Claimed,
    kind: &str,
    what: &str,
    attempts: i32,
    detail: String,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, sqlx::Error> {
    let data = NotificationOutcome {
        delivery_id: d.id,
        subscription_id: d.subscription_id,
        channel: d.channel.clone(),
        event_kind: d.kind.clone(),
        event_id: d.event_id,
        attempts,
        detail,
    };
    let mut env = Envelope::new(kind, crate::SERVICE, now, d.firm_id, d.id, None, data);
    // Chained from the event that caused the notification.
    env.correlation_id = d.correlation_id;
    env.causation_id = Some(d.event_id);
    OutboxMessage::new(subjects::subject(kind, d.firm_id), msg_id::notification(d.id, what), env)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}
