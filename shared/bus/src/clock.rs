//! The simulated clock shared through the `clock` bucket: every service sees the same now.
use crate::{Bus, BusError};
use arflow_contracts::streams::CLOCK_KEY;
use arflow_core::Clock;
use arflow_runtime::{ClockMode, ClockSettings, Shutdown};
use async_nats::jetstream::kv;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;

fn kv_err(op: &'static str, e: impl std::fmt::Display) -> BusError {
    BusError::KeyValue { op, key: CLOCK_KEY.to_string(), reason: e.to_string() }
}

/// The bucket's current simulated time, with its revision.
pub async fn read(bus: &Bus) -> Result<Option<(DateTime<Utc>, u64)>, BusError> {
    let entry = bus.clock_bucket().entry(CLOCK_KEY).await.map_err(|e| kv_err("get", e))?;
    Ok(entry.filter(|e| e.operation == kv::Operation::Put).and_then(|e| {
        let s = std::str::from_utf8(&e.value).ok()?;
        DateTime::parse_from_rfc3339(s).ok().map(|t| (t.with_timezone(&Utc), e.revision))
    }))
}

/// Sets the simulated clock to `to` if it is later (compare-and-swap, never backwards).
pub async fn set(bus: &Bus, to: DateTime<Utc>) -> Result<DateTime<Utc>, BusError> {
    let value = Bytes::from(to.to_rfc3339());
    for _ in 0..16 {
        match read(bus).await? {
            None => match bus.clock_bucket().create(CLOCK_KEY, value.clone()).await {
                Ok(_) => return Ok(to),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => return Err(kv_err("create", e)),
            },
            Some((now, _)) if now >= to => return Ok(now),
            Some((_, rev)) => match bus.clock_bucket().update(CLOCK_KEY, value.clone(), rev).await {
                Ok(_) => return Ok(to),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(kv_err("update", e)),
            },
        }
    }
    Err(kv_err("set", "too much contention on the clock"))
}

/// Moves the simulated clock forward by `by`; returns the new now.
pub async fn advance(bus: &Bus, by: Duration) -> Result<DateTime<Utc>, BusError> {
    let now = read(bus).await?.map(|(t, _)| t).unwrap_or_else(Utc::now);
    set(bus, now + by).await
}

/// The process clock for `settings`. A simulated one starts from the bucket (or
/// `settings.start`, written to the bucket if it is empty) and follows the bucket.
pub async fn start(bus: &Bus, settings: &ClockSettings, shutdown: Shutdown) -> Result<Clock, BusError> {
    if settings.mode == ClockMode::System {
        return Ok(Clock::system());
    }
    let now = match read(bus).await? {
        Some((t, _)) => t,
        None => set(bus, settings.start.unwrap_or_else(Utc::now)).await?,
    };
    let clock = Clock::simulated(now);
    let follower = clock.clone();
    let store = bus.clock_bucket().clone();
    tokio::spawn(async move {
        // Re-opens the watch after a broker restart; stops with the process. Each watch starts
        // with the key's current value: a time set while the watch was broken (the broker
        // restarting) would otherwise be missed until the next change, and timers would wait
        // on a clock that no longer moves.
        while !shutdown.is_cancelled() {
            let mut watch = match store.watch_with_history(CLOCK_KEY).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "clock watch cannot start; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = watch.next() => match next {
                        Some(Ok(entry)) if entry.operation == kv::Operation::Put => {
                            if let Some(t) = std::str::from_utf8(&entry.value).ok().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
                                follower.set(t.with_timezone(&Utc));
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "clock watch error; re-opening");
                            break;
                        }
                        None => break,
                    },
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    Ok(clock)
}
