//! The SQL. Every query of firm data is scoped by firm.
use crate::kinds::Kind;
use crate::notices::Notice;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::FirmUpdated;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub async fn upsert_firm(conn: &mut PgConnection, f: &FirmUpdated) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO firms (firm_id, name, timezone, version) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (firm_id) DO UPDATE SET name = EXCLUDED.name, timezone = EXCLUDED.timezone, \
         version = EXCLUDED.version WHERE firms.version < EXCLUDED.version",
    )
    .bind(f.firm_id)
    .bind(&f.name)
    .bind(&f.timezone)
    .bind(f.version)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_outreach(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoice_outreach (invoice_id, firm_id, first_sent_at) VALUES ($1, $2, $3) \
         ON CONFLICT (invoice_id) DO UPDATE SET emails_sent = invoice_outreach.emails_sent + 1 \
         WHERE invoice_outreach.firm_id = EXCLUDED.firm_id",
    )
    .bind(invoice_id)
    .bind(firm_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers the invoice's payment (the first one seen) for a `sent` event that comes after it.
pub async fn record_payment(conn: &mut PgConnection, env: &RawEnvelope, invoice_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoice_payments (invoice_id, firm_id, envelope, paid_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (invoice_id) DO NOTHING",
    )
    .bind(invoice_id)
    .bind(env.firm_id)
    .bind(sqlx::types::Json(env))
    .bind(env.time)
    .execute(conn)
    .await?;
    Ok(())
}

/// The payment event of the invoice, if one was seen.
pub async fn payment(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
) -> Result<Option<RawEnvelope>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<RawEnvelope>,)> =
        sqlx::query_as("SELECT envelope FROM invoice_payments WHERE invoice_id = $1 AND firm_id = $2")
            .bind(invoice_id)
            .bind(firm_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(j,)| j.0))
}

/// Reminders sent for the invoice, if any.
pub async fn emails_sent(conn: &mut PgConnection, firm_id: Uuid, invoice_id: Uuid) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT emails_sent FROM invoice_outreach WHERE invoice_id = $1 AND firm_id = $2")
        .bind(invoice_id)
        .bind(firm_id)
        .fetch_optional(conn)
        .await
}

pub async fn record_firm_event(
    conn: &mut PgConnection,
    firm_id: Uuid,
    kind: Kind,
    event_key: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO firm_events (firm_id, kind, event_key, occurred_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(firm_id)
        .bind(kind.as_str())
        .bind(event_key)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// One delivery per subscription of the firm to the notice's kind. An endpoint that is
/// disabled gets its rows as `endpoint_disabled` (replayable once re-enabled).
pub async fn create_deliveries(
    conn: &mut PgConnection,
    env: &RawEnvelope,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let subs: Vec<(Uuid, String)> = sqlx::query_as(
        // FOR SHARE: a concurrent disable (or delete) waits for this commit and then parks what
        // it added, or this waits for it and sees the new status; nothing stays `pending` behind it.
        "SELECT id, status FROM subscriptions WHERE firm_id = $1 AND status <> 'deleted' AND $2 = ANY(kinds) \
         ORDER BY id FOR SHARE",
    )
    .bind(env.firm_id)
    .bind(notice.kind.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let message = notice.message(env);
    let mut created = 0;
    for (sub, status) in subs {
        let status = if status == "active" { "pending" } else { "endpoint_disabled" };
        created += insert_delivery(
            &mut *conn,
            NewDelivery {
                firm_id: env.firm_id,
                subscription_id: sub,
                kind: notice.kind,
                event_key: &notice.event_key,
                event_id: env.id,
                correlation_id: env.correlation_id,
                message: &message,
                status,
                now,
            },
        )
        .await?;
    }
    Ok(created)
}

pub struct NewDelivery<'a> {
    pub firm_id: Uuid,
    pub subscription_id: Uuid,
    pub kind: Kind,
    pub event_key: &'a str,
    pub event_id: Uuid,
    pub correlation_id: Uuid,
    pub message: &'a serde_json::Value,
    pub status: &'a str,
    pub now: DateTime<Utc>,
}

/// 1 when inserted, 0 when that subscription already has it.
pub async fn insert_delivery(conn: &mut PgConnection, d: NewDelivery<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO deliveries (id, firm_id, subscription_id, kind, event_key, event_id, correlation_id, message, \
         status, next_attempt_at, retry_wall_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10) \
         ON CONFLICT (subscription_id, event_key) DO NOTHING",
    )
    .bind(arflow_core::new_id())
    .bind(d.firm_id)
    .bind(d.subscription_id)
    .bind(d.kind.as_str())
    .bind(d.event_key)
    .bind(d.event_id)
    .bind(d.correlation_id)
    .bind(d.message)
    .bind(d.status)
    .bind(d.now)
    .bind(Utc::now())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

// ---------- subscriptions ----------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: Uuid,
    pub firm_id: Uuid,
    pub user_name: String,
    pub kinds: Vec<String>,
    pub channel: String,
    pub target: String,
    pub secret: Option<String>,
    pub status: String,
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

const SUB_COLUMNS: &str = "id, firm_id, user_name, kinds, channel, target, secret, status, consecutive_failures, \
    failing_since, last_error, last_failure_at, last_success_at, disabled_at, disabled_reason, created_at";

pub struct NewSubscription<'a> {
    pub firm_id: Uuid,
    pub user_name: &'a str,
    pub kinds: &'a [String],
    pub channel: &'a str,
    pub target: &'a str,
    pub secret: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The new subscription, and whether it was created now (false: the idempotency key's first).
pub async fn create_subscription(
    pool: &PgPool,
    s: NewSubscription<'_>,
) -> Result<(SubscriptionRow, bool), sqlx::Error> {
    let inserted: Option<SubscriptionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO subscriptions (id, firm_id, user_name, kinds, channel, target, secret, idempotency_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (firm_id, idempotency_key) DO NOTHING \
         RETURNING {SUB_COLUMNS}"
    )))
    .bind(arflow_core::new_id())
    .bind(s.firm_id)
    .bind(s.user_name)
    .bind(s.kinds)
    .bind(s.channel)
    .bind(s.target)
    .bind(s.secret)
    .bind(s.idempotency_key)
    .bind(s.now)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = inserted {
        return Ok((row, true));
    }
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE firm_id = $1 AND idempotency_key = $2"
    )))
    .bind(s.firm_id)
    .bind(s.idempotency_key)
    .fetch_one(pool)
    .await?;
    Ok((row, false))
}

pub async fn list_subscriptions(
    pool: &PgPool,
    firm_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE firm_id = $1 AND status <> 'deleted' \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    )))
    .bind(firm_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Whether the firm has (or had: deleted ones keep their deliveries) this subscription.
pub async fn firm_has_subscription(pool: &PgPool, firm_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM subscriptions WHERE firm_id = $1 AND id = $2)")
        .bind(firm_id)
        .bind(id)
        .fetch_one(pool)
        .await
}

pub async fn get_subscription(pool: &PgPool, firm_id: Uuid, id: Uuid) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE firm_id = $1 AND id = $2 AND status <> 'deleted'"
    )))
    .bind(firm_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Deleted subscriptions keep their rows (deliveries reference them); what was still
/// waiting is cancelled. False when there was no such subscription.
pub async fn delete_subscription(pool: &PgPool, firm_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE subscriptions SET status = 'deleted' WHERE firm_id = $1 AND id = $2 AND status <> 'deleted'",
    )
    .bind(firm_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', lease_until = NULL \
         WHERE subscription_id = $1 AND status IN ('pending', 'endpoint_disabled')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Re-enables a disabled endpoint with a clean failure record. Its `endpoint_disabled`
/// deliveries stay parked unless `replay_parked` (then they are due now, same ids); returns
/// how many were queued again.
pub async fn enable_subscription(
    pool: &PgPool,
    firm_id: Uuid,
    id: Uuid,
    replay_parked: bool,
    now: DateTime<Utc>,
) -> Result<Option<(SubscriptionRow, u64)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<SubscriptionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE subscriptions SET status = 'active', consecutive_failures = 0, failing_since = NULL, \
         disabled_at = NULL, disabled_reason = NULL \
         WHERE firm_id = $1 AND id = $2 AND status <> 'deleted' RETURNING {SUB_COLUMNS}"
    )))
    .bind(firm_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut replayed = 0;
    if replay_parked {
        replayed = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, retry_wall_at = $3, lease_until = NULL \
             WHERE subscription_id = $1 AND status = 'endpoint_disabled'",
        )
        .bind(id)
        .bind(now)
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(Some((row, replayed)))
}

// ---------- deliveries ----------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub kind: String,
    pub event_id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub message: serde_json::Value,
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, kind, event_id, status, attempts, next_attempt_at, last_error, \
    delivered_at, created_at, message";

pub async fn list_deliveries(
    pool: &PgPool,
    firm_id: Uuid,
    status: Option<&str>,
    subscription: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE firm_id = $1 AND ($2::text IS NULL OR status = $2) \
         AND ($3::uuid IS NULL OR subscription_id = $3) AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5"
    )))
    .bind(firm_id)
    .bind(status)
    .bind(subscription)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn get_delivery(pool: &PgPool, firm_id: Uuid, id: Uuid) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE firm_id = $1 AND id = $2"
    )))
    .bind(firm_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

pub async fn attempts(pool: &PgPool, delivery_id: Uuid) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT attempt, at, succeeded, status_code, error, duration_ms FROM delivery_attempts \
         WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await
}

/// Replay outcome.
pub enum Replay {
    Queued(Box<DeliveryRow>),
    NotFound,
    /// The endpoint is disabled (enable it first) or deleted.
    EndpointUnavailable(String),
}

/// Queues the delivery again, due now; it keeps its id (the `webhook-id`).
pub async fn replay(pool: &PgPool, firm_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Replay, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let sub: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT s.id, s.status FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
         WHERE d.firm_id = $1 AND d.id = $2 FOR UPDATE OF d",
    )
    .bind(firm_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((_, status)) = sub else { return Ok(Replay::NotFound) };
    if status != "active" {
        return Ok(Replay::EndpointUnavailable(status));
    }
    let row: DeliveryRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $3, retry_wall_at = $4, lease_until = NULL \
         WHERE firm_id = $1 AND id = $2 RETURNING {DELIVERY_COLUMNS}"
    )))
    .bind(firm_id)
    .bind(id)
    .bind(now)
    .bind(Utc::now())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Replay::Queued(Box::new(row)))
}

// ---------- the worker ----------

/// A delivery claimed for sending, with its endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub firm_id: Uuid,
    pub subscription_id: Uuid,
    pub kind: String,
    pub event_id: Uuid,
    pub correlation_id: Uuid,
    pub message: serde_json::Value,
    pub attempts: i32,
    pub channel: String,
    pub target: String,
    pub secret: Option<String>,
}

/// Leases up to `limit` due deliveries of active endpoints until `lease_until`. Due means
/// `next_attempt_at <= clock now` OR `retry_wall_at <= wall now` (see README "Time").
pub async fn claim(
    pool: &PgPool,
    clock_now: DateTime<Utc>,
    wall_now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<Claimed> = sqlx::query_as(
        "WITH due AS ( \
           SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
           WHERE d.status = 'pending' AND s.status = 'active' \
             AND (d.next_attempt_at <= $1 OR d.retry_wall_at <= $2) \
             AND (d.lease_until IS NULL OR d.lease_until < $2) \
           ORDER BY d.next_attempt_at, d.id LIMIT $4 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE deliveries d SET lease_until = $3 FROM due, subscriptions s \
         WHERE d.id = due.id AND s.id = d.subscription_id \
         RETURNING d.id, d.firm_id, d.subscription_id, d.kind, d.event_id, d.correlation_id, d.message, d.attempts, \
           s.channel, s.target, s.secret",
    )
    .bind(clock_now)
    .bind(wall_now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

pub struct AttemptRecord<'a> {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
}

pub async fn record_attempt(conn: &mut PgConnection, a: AttemptRecord<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, at, succeeded, status_code, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(a.delivery_id)
    .bind(a.attempt)
    .bind(a.at)
    .bind(a.succeeded)
    .bind(a.status_code)
    .bind(a.error)
    .bind(a.duration_ms)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_delivered(
    conn: &mut PgConnection,
    id: Uuid,
    attempts: i32,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET status = 'delivered', attempts = $2, delivered_at = $3, lease_until = NULL, \
         last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(attempts)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn endpoint_succeeded(conn: &mut PgConnection, sub: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscriptions SET consecutive_failures = 0, failing_since = NULL, last_success_at = $2 WHERE id = $1",
    )
    .bind(sub)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The endpoint's failure record after one more failure: `(consecutive failures, failing since)`.
pub async fn endpoint_failed(
    conn: &mut PgConnection,
    sub: Uuid,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(i32, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(
        "UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1, \
         failing_since = COALESCE(failing_since, $3), last_error = $2, last_failure_at = $3 \
         WHERE id = $1 RETURNING consecutive_failures, failing_since",
    )
    .bind(sub)
    .bind(error)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// Disables the endpoint; everything it still had waiting becomes `endpoint_disabled`.
/// Returns those deliveries' ids.
pub async fn disable_endpoint(
    conn: &mut PgConnection,
    sub: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query("UPDATE subscriptions SET status = 'disabled', disabled_at = $2, disabled_reason = $3 WHERE id = $1 AND status = 'active'")
        .bind(sub)
        .bind(at)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "UPDATE deliveries SET status = 'endpoint_disabled', lease_until = NULL \
         WHERE subscription_id = $1 AND status = 'pending' RETURNING id",
    )
    .bind(sub)
    .fetch_all(conn)
    .await
}

/// After a failed attempt: `failed` for good, or `pending` again at the next due times.
pub async fn mark_failed_attempt(
    conn: &mut PgConnection,
    id: Uuid,
    attempts: i32,
    error: &str,
    retry: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<(), sqlx::Error> {
    match retry {
        Some((next_clock, next_wall)) => sqlx::query(
            "UPDATE deliveries SET attempts = $2, last_error = $3, next_attempt_at = $4, retry_wall_at = $5, \
             lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(error)
        .bind(next_clock)
        .bind(next_wall)
        .execute(conn)
        .await
        .map(|_| ()),
        None => sqlx::query(
            "UPDATE deliveries SET status = 'failed', attempts = $2, last_error = $3, lease_until = NULL \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(attempts)
        .bind(error)
        .execute(conn)
        .await
        .map(|_| ()),
    }
}

// ---------- the digest ----------

/// A subscription to the daily digest, with its firm's zone (UTC when unknown).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DigestTarget {
    pub subscription_id: Uuid,
    pub firm_id: Uuid,
    pub firm_name: Option<String>,
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn digest_targets(pool: &PgPool) -> Result<Vec<DigestTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id AS subscription_id, s.firm_id, f.name AS firm_name, f.timezone, s.created_at \
         FROM subscriptions s LEFT JOIN firms f ON f.firm_id = s.firm_id \
         WHERE s.status <> 'deleted' AND 'daily_digest' = ANY(s.kinds) ORDER BY s.firm_id",
    )
    .fetch_all(pool)
    .await
}

/// Events of each kind the firm had in `[from, to)`.
pub async fn counts(
    conn: &mut PgConnection,
    firm_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, count(*) FROM firm_events WHERE firm_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
         GROUP BY kind",
    )
    .bind(firm_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}
