//! The daily digest: at `digest_hour` (08:00) in the firm's zone, one digest per
//! subscription to `daily_digest`, counting the previous local day's events. Exactly once
//! per (subscription, local date), across restarts and replicas: the delivery's key is
//! `digest:<date>` under the same unique constraint as every delivery.
//!
//! After downtime (or a clock jump of several days) only the latest day's digest is made,
//! as the scheduler fires only the latest due step. A subscription created after a day's
//! digest time gets its first digest the next day. Events are counted by their own time,
//! so one that arrives after its day's digest went out is not in any digest.
use crate::handlers::Context;
use crate::kinds::Kind;
use crate::store::{self, NewDelivery};
use arflow_runtime::Shutdown;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) -> Result<(), String> {
    let mut changes = ctx.clock.changes();
    let tick = Duration::from_secs(30);
    loop {
        match sweep(&ctx).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(digests = n, "daily digests queued");
                ctx.wake.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "digest sweep failed; retrying on the next tick"),
        }
        match changes.as_mut() {
            Some(rx) => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = rx.changed() => if changed.is_err() { return Ok(()) },
                _ = tokio::time::sleep(tick) => {}
            },
            None => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(tick) => {}
            },
        }
    }
}

/// `hour:00` on `date` in `tz` (the first such instant; the next hour if it falls in a gap).
pub fn local_at(tz: Tz, date: NaiveDate, hour: u32) -> DateTime<Utc> {
    for h in [hour, hour + 1] {
        if let Some(t) = date.and_hms_opt(h.min(23), 0, 0).and_then(|naive| tz.from_local_datetime(&naive).earliest()) {
            return t.with_timezone(&Utc);
        }
    }
    Utc.from_utc_datetime(&date.and_hms_opt(hour.min(23), 0, 0).unwrap_or_default())
}

/// The latest local day whose digest is due at `now`, and when it became due.
pub fn due_day(tz: Tz, now: DateTime<Utc>, hour: u32) -> (NaiveDate, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let candidate = if now >= local_at(tz, today, hour) { today } else { today - Days::new(1) };
    let day = candidate - Days::new(1);
    (day, local_at(tz, candidate, hour))
}

/// Queues every digest that is due and not yet made; returns how many.
pub async fn sweep(ctx: &Context) -> Result<usize, sqlx::Error> {
    let now = ctx.clock.now();
    let targets = store::digest_targets(&ctx.pool).await?;
    let mut made = 0;
    let mut counts_cache: HashMap<(Uuid, NaiveDate), BTreeMap<String, i64>> = HashMap::new();
    for t in targets {
        let tz: Tz = t.timezone.as_deref().and_then(|z| z.parse().ok()).unwrap_or(Tz::UTC);
        let (day, due_at) = due_day(tz, now, ctx.settings.digest_hour);
        if t.created_at > due_at {
            continue;
        }
        let key = format!("digest:{day}");
        let mut tx = ctx.pool.begin().await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE subscription_id = $1 AND event_key = $2)",
        )
        .bind(t.subscription_id)
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        if exists {
            continue;
        }
        // Locked as the event handlers do, so a concurrent disable parks this one too.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM subscriptions WHERE id = $1 AND status <> 'deleted' FOR SHARE")
                .bind(t.subscription_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else { continue };
        let counts = match counts_cache.get(&(t.firm_id, day)) {
            Some(c) => c.clone(),
            None => {
                let from = local_at(tz, day, 0);
                let to = local_at(tz, day + Days::new(1), 0);
                let c: BTreeMap<String, i64> = store::counts(&mut tx, t.firm_id, from, to).await?.into_iter().collect();
                counts_cache.insert((t.firm_id, day), c.clone());
                c
            }
        };
        let event_id = arflow_core::new_id();
        let message = message(t.firm_name.as_deref(), tz, day, &counts, t.firm_id, event_id, due_at, ctx);
        let status = if status == "active" { "pending" } else { "endpoint_disabled" };
        made += store::insert_delivery(
            &mut tx,
            NewDelivery {
                firm_id: t.firm_id,
                subscription_id: t.subscription_id,
                kind: Kind::DailyDigest,
                event_key: &key,
                event_id,
                correlation_id: event_id,
                message: &message,
                status,
                now,
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(made as usize)
}

#[allow(clippy::too_many_arguments)]
fn message(
    firm_name: Option<&str>,
    tz: Tz,
    day: NaiveDate,
    counts: &BTreeMap<String, i64>,
    firm_id: Uuid,
    event_id: Uuid,
    at: DateTime<Utc>,
    ctx: &Context,
) -> serde_json::Value {
    let firm = firm_name.unwrap_or("your firm");
    let all: BTreeMap<&str, i64> =
        Kind::COUNTED.iter().map(|k| (k.as_str(), counts.get(k.as_str()).copied().unwrap_or(0))).collect();
    let lines: Vec<String> = Kind::COUNTED.iter().map(|k| format!("{}: {}", k.label(), all[k.as_str()])).collect();
    let total: i64 = all.values().sum();
    json!({
        "type": Kind::DailyDigest.as_str(),
        "timestamp": at,
        "data": {
            "firm_id": firm_id,
            "event_id": event_id,
            "event_type": "notification.daily_digest",
            "subject_id": firm_id,
            "title": format!("Daily digest for {firm}, {day}"),
            "summary": format!("{day} ({tz}), {total} event(s):\n{}", lines.join("\n")),
            "links": {"portfolio": format!("{}/v1/portfolio", ctx.settings.api_base_url.trim_end_matches('/'))},
            "event": {"date": day, "timezone": tz.name(), "counts": all},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_yesterday_is_due_at_eight_local() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-03-10 11:59 UTC = 07:59 EDT: the digest of the 8th is the latest due.
        let before = Utc.with_ymd_and_hms(2026, 3, 10, 11, 59, 0).unwrap();
        let (day, due) = due_day(tz, before, 8);
        assert_eq!(day, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap());
        // 12:00 UTC = 08:00 EDT: the 9th's.
        let at = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(due_day(tz, at, 8), (NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(), at));
    }

    #[test]
    fn a_local_day_spans_its_own_hours_across_dst() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(); // DST starts: 23 hours
        assert_eq!(local_at(tz, d + Days::new(1), 0) - local_at(tz, d, 0), chrono::Duration::hours(23));
    }
}
