//! The SQL of the email service: its outbox of emails (one row per step) and their states.
use arflow_contracts::events::Explanation;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The states of an email row.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const SENDING: &str = "sending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const SUPPRESSED: &str = "suppressed";
    pub const UNCERTAIN: &str = "uncertain";
}

/// A rendered email as the step handler records it.
#[derive(Debug, Clone)]
pub struct NewEmail {
    pub id: Uuid,
    pub step_id: Uuid,
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub tone: String,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    pub to_name: String,
    pub to_address: String,
    pub from_name: String,
    pub from_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub unsubscribe_url: String,
    pub template: String,
    pub template_version: i32,
    pub explanation: Explanation,
    /// `pending`, or `failed` when it could not even be rendered.
    pub state: &'static str,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailRow {
    pub id: Uuid,
    pub step_id: Uuid,
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub tone: String,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    pub to_name: String,
    pub to_address: String,
    pub from_name: String,
    pub from_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub unsubscribe_url: String,
    pub template: String,
    pub template_version: i32,
    pub explanation: Json<Explanation>,
    pub state: String,
    pub attempts: i32,
    pub message_id: Option<String>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, step_id, firm_id, invoice_id, contact_id, step, tone, cause_event_id, correlation_id, \
    to_name, to_address, from_name, from_address, subject, body_text, body_html, unsubscribe_url, template, \
    template_version, explanation, state, attempts, message_id, last_error";

/// Inserts the email unless its step already has one; true when it was new.
pub async fn insert_email(conn: &mut PgConnection, e: &NewEmail) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO emails (id, step_id, firm_id, invoice_id, contact_id, step, tone, cause_event_id, \
         correlation_id, to_name, to_address, from_name, from_address, subject, body_text, body_html, \
         unsubscribe_url, template, template_version, explanation, state, last_error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
         ON CONFLICT (step_id) DO NOTHING RETURNING id",
    )
    .bind(e.id)
    .bind(e.step_id)
    .bind(e.firm_id)
    .bind(e.invoice_id)
    .bind(e.contact_id)
    .bind(&e.step)
    .bind(&e.tone)
    .bind(e.cause_event_id)
    .bind(e.correlation_id)
    .bind(&e.to_name)
    .bind(&e.to_address)
    .bind(&e.from_name)
    .bind(&e.from_address)
    .bind(&e.subject)
    .bind(&e.body_text)
    .bind(&e.body_html)
    .bind(&e.unsubscribe_url)
    .bind(&e.template)
    .bind(e.template_version)
    .bind(Json(&e.explanation))
    .bind(e.state)
    .bind(&e.last_error)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Takes up to `limit` due pending emails and marks them `sending` (committed at once, so a
/// crash from here on leaves them `sending`, which start-up turns into `uncertain`).
pub async fn claim_pending(pool: &PgPool, limit: i64) -> Result<Vec<EmailRow>, sqlx::Error> {
    // Retry delays are transport back-off in real time (like NATS NAK delays), so they use
    // the database's clock, not the simulated business clock.
    let sql = format!(
        "UPDATE emails SET state = 'sending', updated_at = now() WHERE id IN ( \
           SELECT id FROM emails WHERE state = 'pending' AND next_attempt_at <= now() \
           ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await
}

/// Every row left in `sending` by a crash, now `uncertain` (in the caller's transaction).
pub async fn mark_crashed_uncertain(conn: &mut PgConnection) -> Result<Vec<EmailRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE emails SET state = 'uncertain', last_error = 'uncertain: crashed during hand-off', \
         updated_at = now() WHERE state = 'sending' RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(conn).await
}

pub async fn mark_sent(
    conn: &mut PgConnection,
    id: Uuid,
    message_id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE emails SET state = 'sent', attempts = attempts + 1, message_id = $2, sent_at = $3, \
         last_error = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(message_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A final state other than `sent`; `attempted` counts this try as an SMTP attempt.
pub async fn mark_final(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    reason: &str,
    attempted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE emails SET state = $2, last_error = $3, attempts = attempts + $4, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .bind(i32::from(attempted))
    .execute(conn)
    .await?;
    Ok(())
}

/// Back to `pending`, to be tried again after `delay`.
pub async fn reschedule(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
    attempted: bool,
    delay: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE emails SET state = 'pending', last_error = $2, attempts = attempts + $3, \
         next_attempt_at = now() + make_interval(secs => $4::double precision / 1000), updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .bind(i32::from(attempted))
    .bind(ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The email of a step, if any (support and tests).
pub async fn by_step(pool: &PgPool, step_id: Uuid) -> Result<Option<EmailRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM emails WHERE step_id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(step_id).fetch_optional(pool).await
}
