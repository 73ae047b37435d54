//! The scheduler's SQL. Every statement runs on the pool's `search_path` (the `scheduler` schema).
use crate::policy::{self, DEFAULT_POLICY, OptOuts, PlannedStep, Policy, PolicyStep};
use arflow_contracts::events::AutomationStatus;
use arflow_core::Channel;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use std::collections::HashMap;
use uuid::Uuid;

/// Statements assembled from the column constants above (never from input).
macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

/// Plan status: steps may fire.
pub const ACTIVE: &str = "active";
/// Plan status: paid, voided or uncollectible; nothing fires again.
pub const HALTED: &str = "halted";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub invoice_id: Uuid,
    pub firm_id: Uuid,
    pub policy_id: Option<Uuid>,
    pub policy_version: Option<i32>,
    pub status: String,
    pub halt_reason: Option<String>,
    pub automation_status: String,
    pub decision_version: i64,
    pub decision: Option<serde_json::Value>,
    pub decision_event_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub due_date: Option<NaiveDate>,
    pub plan_version: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StepRow {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub firm_id: Uuid,
    pub name: String,
    pub offset_days: i32,
    pub tone: String,
    pub pay_link: bool,
    pub scheduled_for: DateTime<Utc>,
    pub state: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub fired_at: Option<DateTime<Utc>>,
    /// `email`, `voice` or `sms`.
    pub channel: String,
    pub attempt: i32,
    pub max_attempts: i32,
    /// The base step a retry or an email fallback follows up.
    pub retry_of: Option<Uuid>,
}

impl StepRow {
    /// The step's channel (a stored value this build does not know reads as email).
    pub fn channel(&self) -> Channel {
        policy::parse_channel(&self.channel).unwrap_or(Channel::Email)
    }
}

const PLAN_COLUMNS: &str = "invoice_id, firm_id, policy_id, policy_version, status, halt_reason, automation_status, \
     decision_version, decision, decision_event_id, correlation_id, due_date, plan_version";
const STEP_COLUMNS: &str = "step_id, invoice_id, firm_id, name, offset_days, tone, pay_link, scheduled_for, state, \
     reason, detail, fired_at, channel, attempt, max_attempts, retry_of";

/// `enabled`, `halted_paid`... as stored.
pub fn status_str(s: AutomationStatus) -> &'static str {
    match s {
        AutomationStatus::Enabled => "enabled",
        AutomationStatus::Paused => "paused",
        AutomationStatus::Escalated => "escalated",
        AutomationStatus::HaltedPaid => "halted_paid",
        AutomationStatus::Uncollectible => "uncollectible",
    }
}

pub fn parse_status(s: &str) -> AutomationStatus {
    match s {
        "paused" => AutomationStatus::Paused,
        "escalated" => AutomationStatus::Escalated,
        "halted_paid" => AutomationStatus::HaltedPaid,
        "uncollectible" => AutomationStatus::Uncollectible,
        _ => AutomationStatus::Enabled,
    }
}

/// The firm's current policy, seeding the default cadence (version 1) on first use. A firm
/// still on the email-only cadence seeded before calls and texts moves to the current default
/// as its next version (steps already planned keep theirs; the next decision adds the new ones).
pub async fn ensure_policy(conn: &mut PgConnection, firm_id: Uuid, now: DateTime<Utc>) -> Result<Policy, sqlx::Error> {
    let version = match current_policy(&mut *conn, firm_id).await? {
        Some(policy) if policy.steps != policy::legacy_email_steps() => return Ok(policy),
        Some(legacy) => legacy.version + 1,
        None => 1,
    };
    let steps = serde_json::to_value(policy::default_steps()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO policies (policy_id, firm_id, name, version, channel, steps, created_at) \
         VALUES ($1, $2, $3, $4, 'mixed', $5, $6) ON CONFLICT (firm_id, name, version) DO NOTHING",
    )
    .bind(arflow_core::new_id())
    .bind(firm_id)
    .bind(DEFAULT_POLICY)
    .bind(version)
    .bind(steps)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // Another transaction may have seeded it first: read what won.
    current_policy(conn, firm_id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// The firm's newest version of its email policy.
async fn current_policy(conn: &mut PgConnection, firm_id: Uuid) -> Result<Option<Policy>, sqlx::Error> {
    let row: Option<(Uuid, String, i32, Json<Vec<PolicyStep>>)> = sqlx::query_as(
        "SELECT policy_id, name, version, steps FROM policies WHERE firm_id = $1 AND name = $2 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(firm_id)
    .bind(DEFAULT_POLICY)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(policy_id, name, version, steps)| Policy { policy_id, name, version, steps: steps.0 }))
}

/// Creates an empty plan for the invoice if there is none, then locks and returns it (one
/// round trip: the no-op `DO UPDATE` takes the row lock and returns the existing row).
/// Locking the plan row serializes handlers and the timer on one invoice.
pub async fn lock_plan(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    now: DateTime<Utc>,
) -> Result<PlanRow, sqlx::Error> {
    sqlx::query_as(sql!(
        "INSERT INTO plans (invoice_id, firm_id, status, automation_status, updated_at) \
         VALUES ($1, $2, 'active', 'enabled', $3) \
         ON CONFLICT (invoice_id) DO UPDATE SET invoice_id = plans.invoice_id RETURNING {PLAN_COLUMNS}"
    ))
    .bind(invoice_id)
    .bind(firm_id)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// What a newer eligibility decision changes on the plan.
pub struct DecisionUpdate<'a> {
    pub invoice_id: Uuid,
    pub version: i64,
    pub decision: &'a serde_json::Value,
    pub event_id: Uuid,
    pub correlation_id: Uuid,
    pub due_date: Option<NaiveDate>,
    pub automation_status: AutomationStatus,
    pub policy: Option<&'a Policy>,
    pub now: DateTime<Utc>,
}

pub async fn save_decision(conn: &mut PgConnection, u: DecisionUpdate<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE plans SET decision_version = $2, decision = $3, decision_event_id = $4, correlation_id = $5, \
         due_date = $6, automation_status = CASE WHEN status = 'halted' THEN automation_status ELSE $7 END, \
         policy_id = COALESCE($8, policy_id), policy_version = COALESCE($9, policy_version), updated_at = $10 \
         WHERE invoice_id = $1",
    )
    .bind(u.invoice_id)
    .bind(u.version)
    .bind(u.decision)
    .bind(u.event_id)
    .bind(u.correlation_id)
    .bind(u.due_date)
    .bind(status_str(u.automation_status))
    .bind(u.policy.map(|p| p.policy_id))
    .bind(u.policy.map(|p| p.version))
    .bind(u.now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts the planned steps once (UNIQUE (invoice_id, name)); a pending step is re-planned
/// (new due date, zone or tier), a fired, skipped or cancelled one is left alone.
pub async fn upsert_steps(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    steps: &[PlannedStep],
) -> Result<u64, sqlx::Error> {
    insert_steps(conn, firm_id, invoice_id, steps, true).await
}

/// Inserts follow-up steps (a call's retry, an email fallback) unless a step of that name
/// exists: a redelivered outcome or a second look at the same step adds nothing.
pub async fn insert_followups(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    steps: &[PlannedStep],
) -> Result<u64, sqlx::Error> {
    insert_steps(conn, firm_id, invoice_id, steps, false).await
}

async fn insert_steps(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    steps: &[PlannedStep],
    replan: bool,
) -> Result<u64, sqlx::Error> {
    if steps.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = steps.iter().map(|_| arflow_core::new_id()).collect();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let offsets: Vec<i32> = steps.iter().map(|s| s.offset_days).collect();
    let tones: Vec<&str> = steps.iter().map(|s| policy::tone_str(s.tone)).collect();
    let links: Vec<bool> = steps.iter().map(|s| s.pay_link).collect();
    let at: Vec<DateTime<Utc>> = steps.iter().map(|s| s.scheduled_for).collect();
    let channels: Vec<&str> = steps.iter().map(|s| s.channel.as_str()).collect();
    let attempts: Vec<i32> = steps.iter().map(|s| i32::try_from(s.attempt).unwrap_or(i32::MAX)).collect();
    let max: Vec<i32> = steps.iter().map(|s| i32::try_from(s.max_attempts).unwrap_or(i32::MAX)).collect();
    let retry_of: Vec<Option<Uuid>> = steps.iter().map(|s| s.retry_of).collect();
    let on_conflict = if replan {
        "DO UPDATE SET offset_days = EXCLUDED.offset_days, tone = EXCLUDED.tone, pay_link = EXCLUDED.pay_link, \
             scheduled_for = EXCLUDED.scheduled_for, channel = EXCLUDED.channel, max_attempts = EXCLUDED.max_attempts \
         WHERE steps.state = 'pending' AND \
               (steps.scheduled_for, steps.tone, steps.pay_link, steps.offset_days, steps.channel, steps.max_attempts) \
               IS DISTINCT FROM (EXCLUDED.scheduled_for, EXCLUDED.tone, EXCLUDED.pay_link, EXCLUDED.offset_days, \
                                 EXCLUDED.channel, EXCLUDED.max_attempts)"
    } else {
        "DO NOTHING"
    };
    let done = sqlx::query(sql!(
        "INSERT INTO steps (step_id, invoice_id, firm_id, name, offset_days, tone, pay_link, scheduled_for, state, \
                            channel, attempt, max_attempts, retry_of) \
         SELECT u.id, $2, $3, u.name, u.off, u.tone, u.link, u.at, 'pending', u.channel, u.attempt, u.max, u.retry_of \
         FROM unnest($1::uuid[], $4::text[], $5::int[], $6::text[], $7::bool[], $8::timestamptz[], $9::text[], \
                     $10::int[], $11::int[], $12::uuid[]) \
              AS u(id, name, off, tone, link, at, channel, attempt, max, retry_of) \
         ON CONFLICT (invoice_id, name) {on_conflict}"
    ))
    .bind(&ids)
    .bind(invoice_id)
    .bind(firm_id)
    .bind(&names)
    .bind(&offsets)
    .bind(&tones)
    .bind(&links)
    .bind(&at)
    .bind(&channels)
    .bind(&attempts)
    .bind(&max)
    .bind(&retry_of)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks the plan halted (terminal: nothing fires again).
pub async fn halt_plan(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    reason: &str,
    status: AutomationStatus,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE plans SET status = 'halted', halt_reason = $2, automation_status = $3, updated_at = $4 \
         WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .bind(reason)
    .bind(status_str(status))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels every pending step of the invoice at once; returns them.
pub async fn cancel_pending(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    reason: &str,
    detail: &str,
) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "UPDATE steps SET state = 'cancelled', reason = $2, detail = $3 \
         WHERE invoice_id = $1 AND state = 'pending' RETURNING {STEP_COLUMNS}"
    ))
    .bind(invoice_id)
    .bind(reason)
    .bind(detail)
    .fetch_all(conn)
    .await
}

/// The earliest pending step of each invoice.
#[derive(Debug, Clone)]
pub struct NextStep {
    pub name: String,
    pub at: DateTime<Utc>,
    pub channel: Channel,
}

/// The earliest pending step of each invoice.
pub async fn next_pending(
    conn: &mut PgConnection,
    invoice_ids: &[Uuid],
) -> Result<HashMap<Uuid, NextStep>, sqlx::Error> {
    let rows: Vec<(Uuid, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (invoice_id) invoice_id, name, scheduled_for, channel FROM steps \
         WHERE invoice_id = ANY($1) AND state = 'pending' ORDER BY invoice_id, scheduled_for, offset_days",
    )
    .bind(invoice_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, at, channel)| {
            (id, NextStep { name, at, channel: policy::parse_channel(&channel).unwrap_or(Channel::Email) })
        })
        .collect())
}

/// How many steps of each invoice have fired (been handed to a channel).
pub async fn fired_counts(conn: &mut PgConnection, invoice_ids: &[Uuid]) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT invoice_id, count(*) FROM steps WHERE invoice_id = ANY($1) AND state = 'fired' GROUP BY invoice_id",
    )
    .bind(invoice_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Bumps the plan version of each invoice; returns the plans as they now stand.
pub async fn bump_plans(conn: &mut PgConnection, invoice_ids: &[Uuid]) -> Result<Vec<PlanRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "UPDATE plans SET plan_version = plan_version + 1 WHERE invoice_id = ANY($1) RETURNING {PLAN_COLUMNS}"
    ))
    .bind(invoice_ids)
    .fetch_all(conn)
    .await
}

pub async fn record_opt_out(
    conn: &mut PgConnection,
    firm_id: Uuid,
    contact_id: Uuid,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO opt_outs (contact_id, firm_id, channel, since) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(contact_id)
    .bind(firm_id)
    .bind(channel)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// An opt-in lifts the opt-out of that channel (or every opt-out of the contact for `all`).
/// One channel back in after an opt-out of every channel: the other channels stay opted out.
pub async fn remove_opt_out(
    conn: &mut PgConnection,
    firm_id: Uuid,
    contact_id: Uuid,
    channel: &str,
) -> Result<(), sqlx::Error> {
    if channel != "all" {
        sqlx::query(
            "INSERT INTO opt_outs (contact_id, firm_id, channel, since) \
             SELECT a.contact_id, a.firm_id, ch, a.since FROM opt_outs a \
               CROSS JOIN unnest(ARRAY['email', 'voice', 'sms']) AS ch \
             WHERE a.contact_id = $1 AND a.firm_id = $2 AND a.channel = 'all' AND ch <> $3 \
             ON CONFLICT DO NOTHING",
        )
        .bind(contact_id)
        .bind(firm_id)
        .bind(channel)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "DELETE FROM opt_outs WHERE contact_id = $1 AND firm_id = $2 AND ($3 = 'all' OR channel = $3 OR channel = 'all')",
    )
    .bind(contact_id)
    .bind(firm_id)
    .bind(channel)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which of `contacts` opted out of which channel (an opt-out of `all` counts for each).
pub async fn opted_out(conn: &mut PgConnection, contacts: &[Uuid]) -> Result<OptOuts, sqlx::Error> {
    let mut out = OptOuts::default();
    if contacts.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT contact_id, channel FROM opt_outs WHERE contact_id = ANY($1)")
            .bind(contacts)
            .fetch_all(conn)
            .await?;
    for (contact, channel) in rows {
        match policy::parse_channel(&channel) {
            Some(ch) => {
                out.of_mut(ch).insert(contact);
            }
            // `all`, and anything this build does not know, stops every channel.
            None => {
                for ch in [Channel::Email, Channel::Voice, Channel::Sms] {
                    out.of_mut(ch).insert(contact);
                }
            }
        }
    }
    Ok(out)
}

/// Locks the plans of up to `limit` invoices with due steps, earliest first. Skips plans
/// another replica (or a handler) holds, so replicas never fire the same step.
pub async fn lock_due_plans(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PlanRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "WITH due AS ( \
             SELECT invoice_id, min(scheduled_for) AS first_due FROM steps \
             WHERE state = 'pending' AND scheduled_for <= $1 GROUP BY invoice_id ORDER BY first_due LIMIT $2) \
         SELECT {} FROM plans p JOIN due USING (invoice_id) ORDER BY due.first_due \
         FOR UPDATE OF p SKIP LOCKED",
        PLAN_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The due pending steps of the (locked) invoices.
pub async fn due_steps(
    conn: &mut PgConnection,
    invoice_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {STEP_COLUMNS} FROM steps WHERE invoice_id = ANY($1) AND state = 'pending' AND scheduled_for <= $2 \
         ORDER BY invoice_id, scheduled_for, offset_days"
    ))
    .bind(invoice_ids)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// The new state of one step after the timer looked at it.
#[derive(Debug, Clone)]
pub struct StepChange {
    pub step_id: Uuid,
    pub state: &'static str,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub fired_at: Option<DateTime<Utc>>,
    pub scheduled_for: DateTime<Utc>,
}

/// Applies every change of a timer batch in one statement.
pub async fn apply_changes(conn: &mut PgConnection, changes: &[StepChange]) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = changes.iter().map(|c| c.step_id).collect();
    let states: Vec<&str> = changes.iter().map(|c| c.state).collect();
    let reasons: Vec<Option<&str>> = changes.iter().map(|c| c.reason.as_deref()).collect();
    let details: Vec<Option<&str>> = changes.iter().map(|c| c.detail.as_deref()).collect();
    let fired: Vec<Option<DateTime<Utc>>> = changes.iter().map(|c| c.fired_at).collect();
    let at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.scheduled_for).collect();
    sqlx::query(
        "UPDATE steps s SET state = u.state, reason = u.reason, detail = u.detail, fired_at = u.fired_at, \
             scheduled_for = u.at \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) \
              AS u(id, state, reason, detail, fired_at, at) \
         WHERE s.step_id = u.id",
    )
    .bind(&ids)
    .bind(&states)
    .bind(&reasons)
    .bind(&details)
    .bind(&fired)
    .bind(&at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The plan and steps of one invoice, scoped by firm (for the HTTP API).
pub async fn plan_with_steps(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
) -> Result<Option<(PlanRow, Vec<StepRow>)>, sqlx::Error> {
    let plan: Option<PlanRow> =
        sqlx::query_as(sql!("SELECT {PLAN_COLUMNS} FROM plans WHERE invoice_id = $1 AND firm_id = $2"))
            .bind(invoice_id)
            .bind(firm_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(plan) = plan else { return Ok(None) };
    let steps = sqlx::query_as(sql!(
        "SELECT {STEP_COLUMNS} FROM steps WHERE invoice_id = $1 ORDER BY offset_days, scheduled_for"
    ))
    .bind(invoice_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some((plan, steps)))
}

/// Locks the invoice's plan if there is one (an outcome never creates a plan).
pub async fn lock_existing_plan(conn: &mut PgConnection, invoice_id: Uuid) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {PLAN_COLUMNS} FROM plans WHERE invoice_id = $1 FOR UPDATE"))
        .bind(invoice_id)
        .fetch_optional(conn)
        .await
}

/// One step by id.
pub async fn step(conn: &mut PgConnection, step_id: Uuid) -> Result<Option<StepRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {STEP_COLUMNS} FROM steps WHERE step_id = $1")).bind(step_id).fetch_optional(conn).await
}

/// Whether another step of the invoice fired after `at`.
pub async fn fired_since(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    except: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM steps WHERE invoice_id = $1 AND step_id <> $2 AND state = 'fired' AND fired_at >= $3",
    )
    .bind(invoice_id)
    .bind(except)
    .bind(at)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}
