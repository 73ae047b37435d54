//! The SQL of the voice service: calls (one per step), their turns and statuses, texts (one
//! per step) and inbound texts.
use arflow_contracts::events::StepDue;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub mod call_state {
    pub const QUEUED: &str = "queued";
    pub const DIALING: &str = "dialing";
    pub const PLACED: &str = "placed";
    pub const ENDED: &str = "ended";
    pub const SKIPPED: &str = "skipped";
}

pub mod text_state {
    pub const QUEUED: &str = "queued";
    pub const SENDING: &str = "sending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const SKIPPED: &str = "skipped";
}

/// A call or text as the step consumer records it.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub id: Uuid,
    pub step_id: Uuid,
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub step: String,
    pub attempt: i32,
    pub step_due: StepDue,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    pub to_number: Option<String>,
    pub not_before: DateTime<Utc>,
    /// Calls only.
    pub script: String,
}

impl NewItem {
    /// The row for `step`, due now: the number as E.164 (the raw text when it is not a valid
    /// number, for the consent fence to refuse), the script its tone calls for.
    pub fn of(step: StepDue, firm_id: Uuid, cause_event_id: Uuid, correlation_id: Uuid, now: DateTime<Utc>) -> Self {
        let to_number =
            step.contact.phone.as_deref().map(|p| crate::phone::e164(p).unwrap_or_else(|| p.trim().to_string()));
        NewItem {
            id: arflow_core::new_id(),
            step_id: step.step_id,
            firm_id,
            invoice_id: step.invoice_id,
            contact_id: step.contact.contact_id,
            client_id: step.client.client_id,
            step: step.step.clone(),
            attempt: i32::try_from(step.attempt).unwrap_or(i32::MAX),
            cause_event_id,
            correlation_id,
            to_number,
            not_before: now,
            script: crate::script::script_name(step.tone),
            step_due: step,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRow {
    pub id: Uuid,
    pub step_id: Uuid,
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub step: String,
    pub attempt: i32,
    pub step_due: Json<StepDue>,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    pub to_number: Option<String>,
    pub state: String,
    pub not_before: DateTime<Utc>,
    pub fence_log: Json<serde_json::Value>,
    pub skip_reason: Option<String>,
    pub placed_at: Option<DateTime<Utc>>,
    pub provider_sid: Option<String>,
    pub provider_status: Option<String>,
    pub answered_by: Option<String>,
    pub duration_secs: Option<i32>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub script: String,
    pub language: String,
    pub promised_date: Option<NaiveDate>,
    pub recording_url: Option<String>,
    pub recording_sid: Option<String>,
    pub transcription: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
}

const CALL_COLUMNS: &str = "id, step_id, firm_id, invoice_id, contact_id, client_id, step, attempt, step_due, \
    cause_event_id, correlation_id, to_number, state, not_before, fence_log, skip_reason, placed_at, provider_sid, \
    provider_status, answered_by, duration_secs, outcome, detail, script, language, promised_date, recording_url, \
    recording_sid, transcription, ended_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TextRow {
    pub id: Uuid,
    pub step_id: Uuid,
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub step: String,
    pub attempt: i32,
    pub step_due: Json<StepDue>,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    pub to_number: Option<String>,
    pub state: String,
    pub not_before: DateTime<Utc>,
    pub fence_log: Json<serde_json::Value>,
    pub skip_reason: Option<String>,
    pub body: Option<String>,
    pub template: Option<String>,
    pub template_version: Option<i32>,
    pub message_sid: Option<String>,
    pub provider_status: Option<String>,
    pub error_code: Option<String>,
    pub detail: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

const TEXT_COLUMNS: &str = "id, step_id, firm_id, invoice_id, contact_id, client_id, step, attempt, step_due, \
    cause_event_id, correlation_id, to_number, state, not_before, fence_log, skip_reason, body, template, \
    template_version, message_sid, provider_status, error_code, detail, sent_at";

/// Which table: calls or texts (their queue columns are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Call,
    Text,
}

impl Kind {
    /// `calls` / `texts`: the table, and the plural in metric names and logs.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Call => "calls",
            Kind::Text => "texts",
        }
    }
}

/// Records the call or text unless its step already has one; true when it was new.
pub async fn insert(conn: &mut PgConnection, kind: Kind, n: &NewItem) -> Result<bool, sqlx::Error> {
    let sql = match kind {
        Kind::Call => {
            "INSERT INTO calls (id, step_id, firm_id, invoice_id, contact_id, client_id, step, attempt, step_due, \
             cause_event_id, correlation_id, to_number, state, not_before, script) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'queued', $13, $14) \
             ON CONFLICT (step_id) DO NOTHING RETURNING id"
        }
        Kind::Text => {
            "INSERT INTO texts (id, step_id, firm_id, invoice_id, contact_id, client_id, step, attempt, step_due, \
             cause_event_id, correlation_id, to_number, state, not_before) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'queued', $13) \
             ON CONFLICT (step_id) DO NOTHING RETURNING id"
        }
    };
    let mut q = sqlx::query_as::<_, (Uuid,)>(sql)
        .bind(n.id)
        .bind(n.step_id)
        .bind(n.firm_id)
        .bind(n.invoice_id)
        .bind(n.contact_id)
        .bind(n.client_id)
        .bind(&n.step)
        .bind(n.attempt)
        .bind(Json(&n.step_due))
        .bind(n.cause_event_id)
        .bind(n.correlation_id)
        .bind(&n.to_number)
        .bind(n.not_before);
    if kind == Kind::Call {
        q = q.bind(&n.script);
    }
    Ok(q.fetch_optional(conn).await?.is_some())
}

/// Ids of queued items due at `now` (the business clock), oldest first.
pub async fn due_ids(pool: &PgPool, kind: Kind, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = format!(
        "SELECT id FROM {} WHERE state = 'queued' AND not_before <= $1 ORDER BY not_before, id LIMIT $2",
        kind.table()
    );
    let rows: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Locks one queued, due call (skipping it when another worker has it).
pub async fn lock_queued_call(
    conn: &mut PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<CallRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 AND state = 'queued' AND not_before <= $2 \
         FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(now).fetch_optional(conn).await
}

pub async fn lock_queued_text(
    conn: &mut PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<TextRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TEXT_COLUMNS} FROM texts WHERE id = $1 AND state = 'queued' AND not_before <= $2 \
         FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(now).fetch_optional(conn).await
}

/// Serialises the attempt count of one invoice across replicas until the transaction ends.
pub async fn lock_invoice(conn: &mut PgConnection, firm_id: Uuid, invoice_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("voice-attempts:{firm_id}:{invoice_id}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// When this invoice's calls were placed since `since` (every outcome counts as an attempt).
pub async fn placed_since(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>,)> = sqlx::query_as(
        "SELECT placed_at FROM calls WHERE firm_id = $1 AND invoice_id = $2 AND placed_at IS NOT NULL \
         AND placed_at > $3",
    )
    .bind(firm_id)
    .bind(invoice_id)
    .bind(since)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// One fence's verdict, kept on the row (shown by the API).
#[derive(Debug, Clone, Serialize)]
pub struct FenceNote<'a> {
    pub at: DateTime<Utc>,
    pub fence: &'a str,
    pub result: &'a str,
    pub detail: String,
}

pub async fn skip(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    reason: &str,
    note: &FenceNote<'_>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE {} SET state = 'skipped', skip_reason = $2, detail = $3, fence_log = fence_log || $4::jsonb, \
         updated_at = now() WHERE id = $1",
        kind.table()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(reason)
        .bind(&note.detail)
        .bind(Json(serde_json::json!([note])))
        .execute(conn)
        .await?;
    Ok(())
}

/// Stays queued until `until` (outside the calling window).
pub async fn defer(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    until: DateTime<Utc>,
    note: &FenceNote<'_>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE {} SET not_before = $2, fence_log = fence_log || $3::jsonb, updated_at = now() WHERE id = $1",
        kind.table()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(until)
        .bind(Json(serde_json::json!([note])))
        .execute(conn)
        .await?;
    Ok(())
}

/// Who marks a row `dialing`/`sending`, and for how long it owns it (`Lease::renew` extends it).
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub secs: f64,
}

/// `dialing` with its number and attempt time, owned by `lease`, committed before the provider
/// is asked.
pub async fn mark_dialing(
    conn: &mut PgConnection,
    id: Uuid,
    to: &str,
    at: DateTime<Utc>,
    lease: &Lease,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET state = 'dialing', to_number = $2, placed_at = $3, owner = $4, \
         lease_until = now() + make_interval(secs => $5), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(at)
    .bind(&lease.owner)
    .bind(lease.secs)
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews the lease on the calls and texts `ids` that this dialer is still handing to the
/// provider or recording (not on rows merely waiting for callbacks: those are judged when the
/// lease they got runs out).
pub async fn renew_leases(pool: &sqlx::PgPool, lease: &Lease, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET lease_until = now() + make_interval(secs => $2) \
         WHERE owner = $1 AND id = ANY($3) AND state = 'dialing' AND provider_sid IS NULL",
    )
    .bind(&lease.owner)
    .bind(lease.secs)
    .bind(ids)
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE texts SET lease_until = now() + make_interval(secs => $2) \
         WHERE owner = $1 AND id = ANY($3) AND state = 'sending' AND message_sid IS NULL",
    )
    .bind(&lease.owner)
    .bind(lease.secs)
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// The provider took the call.
/// The provider's call id for the call, from its REST answer or from any callback (the REST
/// answer can be lost after the provider placed the call, or arrive after a callback). A call
/// still `dialing` becomes `placed`; one that already ended keeps its state and gets the id.
pub async fn mark_placed(conn: &mut PgConnection, id: Uuid, sid: &str, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET provider_sid = coalesce(provider_sid, $2), \
           provider_status = CASE WHEN state = 'dialing' THEN $3 ELSE provider_status END, \
           state = CASE WHEN state = 'dialing' THEN 'placed' ELSE state END, updated_at = now() \
         WHERE id = $1 AND state <> 'skipped' AND (state = 'dialing' OR provider_sid IS NULL)",
    )
    .bind(id)
    .bind(sid)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

/// How a call ended, as recorded once.
#[derive(Debug, Clone)]
pub struct Ending<'a> {
    pub outcome: &'a str,
    pub provider_status: Option<&'a str>,
    pub answered_by: Option<&'a str>,
    pub duration_secs: Option<i32>,
    pub detail: &'a str,
    pub at: DateTime<Utc>,
}

/// Ends the call unless it already ended (the state guard: `CallEnded` is published once).
pub async fn end_call(conn: &mut PgConnection, id: Uuid, e: &Ending<'_>) -> Result<Option<CallRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE calls SET state = 'ended', outcome = $2, provider_status = COALESCE($3, provider_status), \
         answered_by = COALESCE($4, answered_by), duration_secs = COALESCE($5, duration_secs), detail = $6, \
         ended_at = $7, updated_at = now() WHERE id = $1 AND state IN ('dialing', 'placed') RETURNING {CALL_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(e.outcome)
        .bind(e.provider_status)
        .bind(e.answered_by)
        .bind(e.duration_secs)
        .bind(e.detail)
        .bind(e.at)
        .fetch_optional(conn)
        .await
}

/// Calls left `dialing` without a provider id whose dialer's lease expired (it died between the
/// commit and the provider's answer; rows from before leases: `older_than_secs` after their last
/// update). Locked for the caller's transaction.
pub async fn stuck_dialing(conn: &mut PgConnection, older_than_secs: i64) -> Result<Vec<CallRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE state = 'dialing' AND provider_sid IS NULL \
         AND (lease_until < now() OR (lease_until IS NULL \
              AND updated_at < now() - make_interval(secs => $1::double precision))) \
         FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(older_than_secs).fetch_all(conn).await
}

/// Calls the provider took (they have its id) that have not ended, and heard nothing for
/// `older_than_secs`: their final status callback may have been lost (the gateway was down).
pub async fn calls_to_reconcile(
    conn: &mut PgConnection,
    older_than_secs: f64,
    limit: i64,
) -> Result<Vec<CallRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE state IN ('dialing', 'placed') AND provider_sid IS NOT NULL \
         AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(older_than_secs).bind(limit).fetch_all(conn).await
}

/// Marks a call as just asked about (so it is asked again only after another interval).
pub async fn touch_call(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls SET updated_at = now() WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

pub async fn call(conn: &mut PgConnection, id: Uuid) -> Result<Option<CallRow>, sqlx::Error> {
    let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
}

/// The call, locked for a callback's transaction (callbacks of one call are serialised).
pub async fn call_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<CallRow>, sqlx::Error> {
    let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 FOR UPDATE");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
}

pub async fn set_answered(conn: &mut PgConnection, id: Uuid, answered_by: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET answered_by = COALESCE($2, answered_by), provider_status = CASE WHEN state = 'ended' \
         THEN provider_status ELSE 'in-progress' END, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(answered_by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_language(conn: &mut PgConnection, id: Uuid, language: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls SET language = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(language)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_promised_date(conn: &mut PgConnection, id: Uuid, date: NaiveDate) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls SET promised_date = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(date)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    sequence: Option<i32>,
    answered_by: Option<&str>,
    duration: Option<i32>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO call_statuses (call_id, status, sequence, answered_by, duration, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(status)
    .bind(sequence)
    .bind(answered_by)
    .bind(duration)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE calls SET provider_status = CASE WHEN state = 'ended' THEN provider_status ELSE $2 END, \
         answered_by = COALESCE($3, answered_by), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(answered_by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_recording(
    conn: &mut PgConnection,
    id: Uuid,
    url: &str,
    sid: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE calls SET recording_url = $2, recording_sid = COALESCE($3, recording_sid), updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(url)
    .bind(sid)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn set_transcription(conn: &mut PgConnection, id: Uuid, text: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE calls SET transcription = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(text)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// The TwiML already given to this gather turn of the call, if it was answered.
pub async fn gather_response(conn: &mut PgConnection, call_id: Uuid, turn: i32) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT response FROM call_gathers WHERE call_id = $1 AND turn = $2")
        .bind(call_id)
        .bind(turn)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(r,)| r))
}

/// Records the TwiML a gather turn was answered with (the call row is locked by the caller).
pub async fn record_gather(
    conn: &mut PgConnection,
    call_id: Uuid,
    turn: i32,
    response: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO call_gathers (call_id, turn, response, answered_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (call_id, turn) DO NOTHING",
    )
    .bind(call_id)
    .bind(turn)
    .bind(response)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TurnRow {
    pub seq: i32,
    pub turn: i32,
    pub speaker: String,
    pub text: String,
    pub intent: Option<String>,
    pub evidence: Option<String>,
    pub at: DateTime<Utc>,
    /// A client turn not understood with confidence (no intent recorded, nothing acted on).
    pub needs_review: bool,
}

pub async fn turns(conn: &mut PgConnection, call_id: Uuid) -> Result<Vec<TurnRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, turn, speaker, text, intent, evidence, at, needs_review FROM call_turns WHERE call_id = $1 \
         ORDER BY seq",
    )
    .bind(call_id)
    .fetch_all(conn)
    .await
}

/// Appends one turn. A client turn is recorded once per gather turn: false when it already was
/// (a provider retry of the same callback).
#[allow(clippy::too_many_arguments)]
pub async fn add_turn(
    conn: &mut PgConnection,
    call_id: Uuid,
    turn: i32,
    speaker: &str,
    text: &str,
    intent: Option<&str>,
    evidence: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO call_turns (call_id, seq, turn, speaker, text, intent, evidence, at) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM call_turns WHERE call_id = $1 \
         ON CONFLICT DO NOTHING",
    )
    .bind(call_id)
    .bind(turn)
    .bind(speaker)
    .bind(text)
    .bind(intent)
    .bind(evidence)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Marks a client turn as not understood with confidence.
pub async fn mark_turn_unclear(conn: &mut PgConnection, call_id: Uuid, turn: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE call_turns SET needs_review = true WHERE call_id = $1 AND turn = $2 AND speaker = 'client'")
        .bind(call_id)
        .bind(turn)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the reply that sends the call's unclear answer to a person; false when the call
/// already has one (it is published once).
pub async fn set_review_reply(conn: &mut PgConnection, call_id: Uuid, reply_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE calls SET review_reply_id = $2 WHERE id = $1 AND review_reply_id IS NULL")
        .bind(call_id)
        .bind(reply_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---------- texts ----------

pub async fn mark_sending(
    conn: &mut PgConnection,
    id: Uuid,
    to: &str,
    body: &str,
    lease: &Lease,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE texts SET state = 'sending', to_number = $2, body = $3, template = $4, template_version = $5, \
         owner = $6, lease_until = now() + make_interval(secs => $7), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(body)
    .bind(crate::sms::TEMPLATE_NAME)
    .bind(crate::sms::TEMPLATE_VERSION)
    .bind(&lease.owner)
    .bind(lease.secs)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_text_sent(
    conn: &mut PgConnection,
    id: Uuid,
    sid: &str,
    status: &str,
    at: DateTime<Utc>,
) -> Result<Option<TextRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE texts SET state = 'sent', message_sid = $2, provider_status = $3, sent_at = $4, updated_at = now() \
         WHERE id = $1 AND state = 'sending' RETURNING {TEXT_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(sid).bind(status).bind(at).fetch_optional(conn).await
}

/// Failed (not sent, or not delivered); `None` when it had already failed (published once).
pub async fn mark_text_failed(
    conn: &mut PgConnection,
    id: Uuid,
    detail: &str,
    status: Option<&str>,
    error_code: Option<&str>,
) -> Result<Option<TextRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE texts SET state = 'failed', detail = $2, provider_status = COALESCE($3, provider_status), \
         error_code = COALESCE($4, error_code), updated_at = now() \
         WHERE id = $1 AND state IN ('sending', 'sent') RETURNING {TEXT_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(detail)
        .bind(status)
        .bind(error_code)
        .fetch_optional(conn)
        .await
}

pub async fn set_text_status(conn: &mut PgConnection, id: Uuid, status: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE texts SET provider_status = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn stuck_sending(conn: &mut PgConnection, older_than_secs: i64) -> Result<Vec<TextRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TEXT_COLUMNS} FROM texts WHERE state = 'sending' AND message_sid IS NULL \
         AND (lease_until < now() OR (lease_until IS NULL \
              AND updated_at < now() - make_interval(secs => $1::double precision))) \
         FOR UPDATE SKIP LOCKED"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(older_than_secs).fetch_all(conn).await
}

pub async fn text(conn: &mut PgConnection, id: Uuid) -> Result<Option<TextRow>, sqlx::Error> {
    let sql = format!("SELECT {TEXT_COLUMNS} FROM texts WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
}

// ---------- inbound texts ----------

/// Who a number belongs to: the latest text sent or call placed to it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Sent {
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub step: String,
    pub step_due: Json<StepDue>,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    /// `text` or `call`.
    pub via: String,
}

/// Every contact reached at `number` (a text sent or a call placed), the latest first, once per
/// firm and contact: a number shared by two contacts (or two firms' contacts) names them all.
pub async fn reached_at(conn: &mut PgConnection, number: &str) -> Result<Vec<Sent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT firm_id, invoice_id, contact_id, client_id, step, step_due, cause_event_id, correlation_id, via FROM ( \
           SELECT DISTINCT ON (firm_id, contact_id) * FROM ( \
             SELECT firm_id, invoice_id, contact_id, client_id, step, step_due, cause_event_id, correlation_id, \
                    'text' AS via, sent_at AS at FROM texts WHERE to_number = $1 AND sent_at IS NOT NULL \
             UNION ALL \
             SELECT firm_id, invoice_id, contact_id, client_id, step, step_due, cause_event_id, correlation_id, \
                    'call' AS via, placed_at AS at FROM calls WHERE to_number = $1 AND placed_at IS NOT NULL \
           ) s ORDER BY firm_id, contact_id, at DESC \
         ) latest ORDER BY at DESC LIMIT 100",
    )
    .bind(number)
    .fetch_all(conn)
    .await
}

/// The answer already given to this MessageSid, if it was seen.
pub async fn inbound_response(conn: &mut PgConnection, message_sid: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT response FROM inbound_texts WHERE message_sid = $1")
        .bind(message_sid)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(r,)| r))
}

#[derive(Debug, Clone)]
pub struct InboundText<'a> {
    pub message_sid: &'a str,
    pub from_number: &'a str,
    pub to_number: Option<&'a str>,
    pub body: &'a str,
    pub matched: Option<&'a Sent>,
    pub kind: &'a str,
    pub intent: Option<&'a str>,
    pub reply_id: Option<Uuid>,
    pub response: &'a str,
    pub received_at: DateTime<Utc>,
}

/// Records an inbound text once; false when its MessageSid was already recorded.
pub async fn insert_inbound(conn: &mut PgConnection, t: &InboundText<'_>) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO inbound_texts (message_sid, from_number, to_number, body, firm_id, contact_id, invoice_id, \
         matched_by, kind, intent, reply_id, response, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (message_sid) DO NOTHING",
    )
    .bind(t.message_sid)
    .bind(t.from_number)
    .bind(t.to_number)
    .bind(t.body)
    .bind(t.matched.map(|m| m.firm_id))
    .bind(t.matched.map(|m| m.contact_id))
    .bind(t.matched.map(|m| m.invoice_id))
    .bind(t.matched.map(|m| format!("latest_{}", m.via)))
    .bind(t.kind)
    .bind(t.intent)
    .bind(t.reply_id)
    .bind(t.response)
    .bind(t.received_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Serialises inbound texts with the same MessageSid (a provider retry racing the first).
pub async fn lock_message_sid(conn: &mut PgConnection, sid: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("voice-inbound:{sid}"))
        .execute(conn)
        .await?;
    Ok(())
}

// ---------- read API ----------

/// Records which firm an invoice belongs to (the first firm named wins: ids are the gateway's).
pub async fn record_invoice(conn: &mut PgConnection, invoice_id: Uuid, firm_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO invoices (invoice_id, firm_id) VALUES ($1, $2) ON CONFLICT (invoice_id) DO NOTHING")
        .bind(invoice_id)
        .bind(firm_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the firm owns the invoice as far as the voice service knows: the gateway published it
/// under the firm, or the firm's own calls or texts are about it (a step can arrive before the
/// invoice's `billing.invoice_upserted`, which another consumer reads).
pub async fn firm_has_invoice(pool: &PgPool, firm_id: Uuid, invoice_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM invoices WHERE invoice_id = $2 AND firm_id = $1) \
             OR EXISTS (SELECT 1 FROM calls WHERE firm_id = $1 AND invoice_id = $2) \
             OR EXISTS (SELECT 1 FROM texts WHERE firm_id = $1 AND invoice_id = $2)",
    )
    .bind(firm_id)
    .bind(invoice_id)
    .fetch_one(pool)
    .await
}

/// One page of the firm's calls in id order (creation order), of one invoice or all.
pub async fn list_calls(
    pool: &PgPool,
    firm_id: Uuid,
    invoice_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CallRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE firm_id = $1 AND ($2::uuid IS NULL OR invoice_id = $2) \
         AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(invoice_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// One page of the firm's texts in id order (creation order), of one invoice or all.
pub async fn list_texts(
    pool: &PgPool,
    firm_id: Uuid,
    invoice_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<TextRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TEXT_COLUMNS} FROM texts WHERE firm_id = $1 AND ($2::uuid IS NULL OR invoice_id = $2) \
         AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(invoice_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}
