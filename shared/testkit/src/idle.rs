//! `process_until_idle`: wait for the pipeline to go quiet instead of sleeping.
//! Idle = every JetStream consumer has nothing pending or unacknowledged, every
//! service's outbox is empty, and no step, email, call or text is waiting to go out or in
//! flight, on two consecutive looks.
use futures::StreamExt;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Rows that mean "work still in flight" (table may not exist yet: then it counts 0).
const BUSY_QUERIES: &[&str] = &[
    "SELECT count(*) FROM gateway.outbox",
    "SELECT count(*) FROM eligibility.outbox",
    "SELECT count(*) FROM scheduler.outbox",
    "SELECT count(*) FROM email.outbox",
    "SELECT count(*) FROM optout.outbox",
    "SELECT count(*) FROM escalation.outbox",
    "SELECT count(*) FROM notification.outbox",
    "SELECT count(*) FROM voice.outbox",
    "SELECT count(*) FROM scheduler.steps WHERE state = 'pending' AND scheduled_for <= $1",
    "SELECT count(*) FROM email.emails WHERE state IN ('pending', 'sending')",
    // A call is in flight from its due time until the provider's final status arrives.
    "SELECT count(*) FROM voice.calls WHERE (state = 'queued' AND not_before <= $1) OR state IN ('dialing', 'placed')",
    "SELECT count(*) FROM voice.texts WHERE (state = 'queued' AND not_before <= $1) OR state = 'sending'",
];

pub async fn busy_work(
    js: &async_nats::jetstream::Context,
    pool: &PgPool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, String> {
    Ok(busy_parts(js, pool, now).await?.iter().map(|(_, n)| n).sum())
}

/// What is in flight, by where it is (a consumer `<stream>/<durable>` or a query), for a test
/// that must say what did not settle.
pub async fn busy_parts(
    js: &async_nats::jetstream::Context,
    pool: &PgPool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(String, u64)>, String> {
    let mut parts: Vec<(String, u64)> = Vec::new();
    let mut names = js.stream_names();
    let mut streams = vec![];
    while let Some(name) = names.next().await {
        streams.push(name.map_err(|e| e.to_string())?);
    }
    // Key-value watchers (`KV_*` streams) are ephemeral; a stopped service's watcher lingers
    // there until it expires, and is no work in flight.
    // Object stores (`OBJ_*`) have no durable consumers of their own either.
    for name in streams.into_iter().filter(|n| !n.starts_with("KV_") && !n.starts_with("OBJ_")) {
        let stream = js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| e.to_string())?;
            let n = info.num_pending + info.num_ack_pending as u64;
            if n > 0 {
                parts.push((format!("{name}/{}", info.name), n));
            }
        }
    }
    for q in BUSY_QUERIES {
        let res: Result<(i64,), sqlx::Error> = if q.contains("$1") {
            sqlx::query_as(*q).bind(now).fetch_one(pool).await
        } else {
            sqlx::query_as(*q).fetch_one(pool).await
        };
        match res {
            Ok((n,)) if n > 0 => parts.push(((*q).to_string(), n as u64)),
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {} // not created yet
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(parts)
}

/// Waits until the pipeline is idle (or `timeout` passes: then `Err` with what is left).
pub async fn wait_until_idle(
    js: &async_nats::jetstream::Context,
    pool: &PgPool,
    now: chrono::DateTime<chrono::Utc>,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    loop {
        let busy = busy_work(js, pool, now).await?;
        if busy == 0 {
            quiet += 1;
            if quiet >= 3 {
                return Ok(());
            }
        } else {
            quiet = 0;
        }
        if Instant::now() > deadline {
            return Err(format!("still busy after {timeout:?}: {busy} items in flight"));
        }
        tokio::time::sleep(Duration::from_millis(if busy == 0 { 60 } else { 25 })).await;
    }
}

/// The earliest pending step strictly after `after` and at or before `until`, if any.
async fn next_timer(
    pool: &PgPool,
    after: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let res: Result<(Option<chrono::DateTime<chrono::Utc>>,), sqlx::Error> = sqlx::query_as(
        "SELECT min(scheduled_for) FROM scheduler.steps WHERE state = 'pending' AND scheduled_for > $1 AND scheduled_for <= $2",
    )
    .bind(after)
    .bind(until)
    .fetch_one(pool)
    .await;
    match res {
        Ok((t,)) => Ok(t),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Moves the simulated clock forward by `by`, stopping at every pending timer on the way
/// (as Stripe test clocks do), and waits for the pipeline to go idle at each stop: each
/// step is processed at its own time, so sends happen inside their windows.
pub async fn advance_stepwise(
    bus: &arflow_bus::Bus,
    pool: &PgPool,
    by: chrono::Duration,
    timeout: Duration,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let now =
        arflow_bus::clock::read(bus).await.map_err(|e| e.to_string())?.map(|(t, _)| t).unwrap_or_else(chrono::Utc::now);
    let target = now + by;
    let mut at = now;
    loop {
        let stop = next_timer(pool, at, target).await?.unwrap_or(target);
        at = arflow_bus::clock::set(bus, stop).await.map_err(|e| e.to_string())?;
        // Let the services see the new time before measuring quiet.
        tokio::time::sleep(Duration::from_millis(20)).await;
        wait_until_idle(&bus.js, pool, at, timeout).await?;
        if at >= target {
            return Ok(at);
        }
    }
}
