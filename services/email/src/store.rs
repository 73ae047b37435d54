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
    pub client_id: Uuid,
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
    /// 16 hex characters: `Reply-To: reply+<token>@<reply domain>`.
    pub reply_token: String,
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
    /// `None` on rows from before replies were matched.
    pub client_id: Option<Uuid>,
    pub reply_token: Option<String>,
}

const COLUMNS: &str = "id, step_id, firm_id, invoice_id, contact_id, step, tone, cause_event_id, correlation_id, \
    to_name, to_address, from_name, from_address, subject, body_text, body_html, unsubscribe_url, template, \
    template_version, explanation, state, attempts, message_id, last_error, client_id, reply_token";

/// Inserts the email unless its step already has one; true when it was new.
pub async fn insert_email(conn: &mut PgConnection, e: &NewEmail) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO emails (id, step_id, firm_id, invoice_id, contact_id, step, tone, cause_event_id, \
         correlation_id, to_name, to_address, from_name, from_address, subject, body_text, body_html, \
         unsubscribe_url, template, template_version, explanation, state, last_error, client_id, reply_token) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
         $23, $24) \
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
    .bind(e.client_id)
    .bind(&e.reply_token)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Takes up to `limit` due pending emails for `owner` and marks them `sending` under a lease
/// (committed at once). Only this owner touches them until the lease expires.
pub async fn claim_pending(
    pool: &PgPool,
    owner: &str,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<EmailRow>, sqlx::Error> {
    // Retry delays and leases are real time (like NATS NAK delays and ack_wait), so they use the
    // database's clock, not the simulated business clock.
    let sql = format!(
        "UPDATE emails SET state = 'sending', owner = $2, lease_until = now() + make_interval(secs => $3), \
         handoff_at = NULL, accepted_at = NULL, updated_at = now() WHERE id IN ( \
           SELECT id FROM emails WHERE state = 'pending' AND next_attempt_at <= now() \
           ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).bind(owner).bind(lease.as_secs_f64()).fetch_all(pool).await
}

/// Extends the lease of every row `owner` is sending; returns how many.
pub async fn heartbeat(pool: &PgPool, owner: &str, lease: std::time::Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE emails SET lease_until = now() + make_interval(secs => $2) WHERE owner = $1 AND state = 'sending'",
    )
    .bind(owner)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Puts claimed rows back to `pending` (nothing was handed to SMTP).
pub async fn release(pool: &PgPool, owner: &str, rows: &[EmailRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    sqlx::query(
        "UPDATE emails SET state = 'pending', owner = NULL, lease_until = NULL, updated_at = now() \
         WHERE id = ANY($1) AND state = 'sending' AND owner = $2",
    )
    .bind(&ids)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// Progress mark: the message body of `id` is about to be sent (on the progress pool, whose
/// commits are asynchronous: visible at once, no fsync waited for). Its Message-ID is stored
/// now, so a reply or a bounce that comes back faster than the batch is recorded still finds it.
pub async fn mark_handoff(progress: &PgPool, id: Uuid, owner: &str, message_id: &str) -> Result<(), sqlx::Error> {
    let done = sqlx::query(
        "UPDATE emails SET handoff_at = now(), message_id = $3 WHERE id = $1 AND owner = $2 AND state = 'sending'",
    )
    .bind(id)
    .bind(owner)
    .bind(message_id)
    .execute(progress)
    .await?;
    if done.rows_affected() == 0 {
        // Our lease was judged by someone else: this row is no longer ours to send.
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

/// Progress mark: the server accepted `id`.
pub async fn mark_accepted(progress: &PgPool, id: Uuid, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE emails SET accepted_at = now() WHERE id = $1 AND owner = $2 AND state = 'sending'")
        .bind(id)
        .bind(owner)
        .execute(progress)
        .await?;
    Ok(())
}

/// A row whose sender's lease expired, as judged from its progress marks.
#[derive(Debug)]
pub enum Judged {
    /// The server accepted it: recorded as sent.
    Sent(EmailRow),
    /// The body went out and no answer was seen: a person decides.
    Uncertain(EmailRow),
    /// Never handed over: pending again, sent once later.
    Requeued(EmailRow),
}

/// Judges up to 500 rows whose lease expired (in the caller's transaction; rows another judge
/// holds are skipped).
pub async fn judge_expired(conn: &mut PgConnection) -> Result<Vec<Judged>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, handoff_at IS NOT NULL AS handed_off, accepted_at IS NOT NULL AS accepted, \
         lease_until IS NULL AS legacy FROM emails \
         WHERE state = 'sending' AND (lease_until IS NULL OR lease_until < now()) LIMIT 500 FOR UPDATE SKIP LOCKED"
    );
    let rows: Vec<JudgedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id = r.row.id;
        if r.accepted {
            sqlx::query(
                "UPDATE emails SET state = 'sent', attempts = attempts + 1, sent_at = accepted_at, last_error = NULL, \
                 owner = NULL, lease_until = NULL, updated_at = now() WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            out.push(Judged::Sent(r.row));
        } else if r.handed_off || r.legacy {
            // A row from before leases has no marks: it may have been handed over.
            sqlx::query(
                "UPDATE emails SET state = 'uncertain', last_error = $2, owner = NULL, lease_until = NULL, \
                 updated_at = now() WHERE id = $1",
            )
            .bind(id)
            .bind(UNCERTAIN_REASON)
            .execute(&mut *conn)
            .await?;
            out.push(Judged::Uncertain(r.row));
        } else {
            sqlx::query(
                "UPDATE emails SET state = 'pending', owner = NULL, lease_until = NULL, updated_at = now() WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            out.push(Judged::Requeued(r.row));
        }
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct JudgedRow {
    #[sqlx(flatten)]
    row: EmailRow,
    handed_off: bool,
    accepted: bool,
    legacy: bool,
}

/// Why a row is `uncertain`.
pub const UNCERTAIN_REASON: &str =
    "uncertain: the message was being handed to the SMTP server when its sender stopped; it may have been delivered";

/// One page of the uncertain emails of a firm (for a person to resend or drop), newest first by
/// id (UUIDv7: creation order), after the id `before` of the previous page's last one.
pub async fn uncertain(
    pool: &PgPool,
    firm_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EmailRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM emails WHERE firm_id = $1 AND state = 'uncertain' \
         AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(firm_id).bind(before).bind(limit).fetch_all(pool).await
}

/// A person's decision on an uncertain email: resend it (pending again) or drop it (failed).
/// Returns the row as it was, or `None` when it is not uncertain (any more) in this firm.
pub async fn resolve_uncertain(
    conn: &mut PgConnection,
    firm_id: Uuid,
    id: Uuid,
    resend: bool,
    actor: &str,
) -> Result<Option<EmailRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE emails SET state = CASE WHEN $3 THEN 'pending' ELSE 'failed' END, \
         last_error = CASE WHEN $3 THEN 'resent by ' || $4 ELSE 'dropped by ' || $4 END, \
         next_attempt_at = now(), handoff_at = NULL, accepted_at = NULL, updated_at = now() \
         WHERE id = $1 AND firm_id = $2 AND state = 'uncertain' RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(firm_id).bind(resend).bind(actor).fetch_optional(conn).await
}

/// The rows still `sending` for `owner` among `ids`: the ones whose outcome this sender may
/// record (a row judged by someone else after our lease expired is not ours any more). Locks them.
pub async fn still_ours(
    conn: &mut PgConnection,
    owner: &str,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM emails WHERE id = ANY($1) AND owner = $2 AND state = 'sending' FOR UPDATE")
            .bind(ids)
            .bind(owner)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub async fn mark_sent(
    conn: &mut PgConnection,
    id: Uuid,
    message_id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE emails SET state = 'sent', attempts = attempts + 1, message_id = $2, sent_at = $3, \
         last_error = NULL, owner = NULL, lease_until = NULL, updated_at = now() WHERE id = $1",
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
        "UPDATE emails SET state = $2, last_error = $3, attempts = attempts + $4, owner = NULL, lease_until = NULL, \
         updated_at = now() WHERE id = $1",
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
        "UPDATE emails SET state = 'pending', last_error = $2, attempts = attempts + $3, owner = NULL, \
         lease_until = NULL, handoff_at = NULL, accepted_at = NULL, next_attempt_at = now() + make_interval(secs => $4::double precision / 1000), updated_at = now() \
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

// ---------- replies ----------

/// The email a reply token was issued for, in this firm.
pub async fn email_by_reply_token(
    conn: &mut PgConnection,
    firm_id: Uuid,
    token: &str,
) -> Result<Option<EmailRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM emails WHERE reply_token = $1 AND firm_id = $2");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(token.to_ascii_lowercase()).bind(firm_id).fetch_optional(conn).await
}

/// The newest of our emails among these Message-IDs (In-Reply-To, References...), in this firm.
pub async fn email_by_message_ids(
    conn: &mut PgConnection,
    firm_id: Uuid,
    ids: &[String],
) -> Result<Option<EmailRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM emails WHERE message_id = ANY($1) AND firm_id = $2 ORDER BY sent_at DESC NULLS LAST LIMIT 1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(ids).bind(firm_id).fetch_optional(conn).await
}

/// The newest email sent to `address` in this firm (a reply without any thread header).
pub async fn latest_email_to(
    conn: &mut PgConnection,
    firm_id: Uuid,
    address: &str,
) -> Result<Option<EmailRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM emails WHERE firm_id = $1 AND lower(to_address) = lower($2) AND state = 'sent' \
         ORDER BY sent_at DESC NULLS LAST LIMIT 1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(firm_id).bind(address.trim()).fetch_optional(conn).await
}

/// One inbound message as understood, and what was done.
#[derive(Debug, Clone)]
pub struct ReplyRecord<'a> {
    pub reply_id: Uuid,
    pub firm_id: Uuid,
    pub kind: &'a str,
    pub intent: Option<&'a str>,
    pub promised_date: Option<chrono::NaiveDate>,
    pub evidence: &'a str,
    pub sure: bool,
    pub matched_by: Option<&'a str>,
    pub email: Option<&'a EmailRow>,
    pub from_address: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub client_text: &'a str,
    pub bounce: Option<serde_json::Value>,
    pub action: &'a str,
    pub received_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Records a reply once (a redelivery is caught by the inbox before this).
pub async fn insert_reply(conn: &mut PgConnection, r: &ReplyRecord<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO replies (reply_id, firm_id, kind, intent, promised_date, evidence, sure, matched_by, email_id, \
         invoice_id, contact_id, from_address, subject, message_id, client_text, bounce, action, received_at, \
         processed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT (reply_id) DO NOTHING",
    )
    .bind(r.reply_id)
    .bind(r.firm_id)
    .bind(r.kind)
    .bind(r.intent)
    .bind(r.promised_date)
    .bind(r.evidence)
    .bind(r.sure)
    .bind(r.matched_by)
    .bind(r.email.map(|e| e.id))
    .bind(r.email.map(|e| e.invoice_id))
    .bind(r.email.map(|e| e.contact_id))
    .bind(r.from_address)
    .bind(r.subject)
    .bind(r.message_id)
    .bind(r.client_text)
    .bind(r.bounce.as_ref().map(Json))
    .bind(r.action)
    .bind(r.received_at)
    .bind(r.now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers a hard-bounced address: no more email to it from this firm.
pub async fn add_bounced_address(
    conn: &mut PgConnection,
    firm_id: Uuid,
    address: &str,
    status: &str,
    reply_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bounced_addresses (firm_id, address, status, reply_id, since) VALUES ($1, lower($2), $3, $4, $5) \
         ON CONFLICT (firm_id, address) DO NOTHING",
    )
    .bind(firm_id)
    .bind(address.trim())
    .bind(status)
    .bind(reply_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Of these emails, the ids whose recipient hard-bounced before, with the bounce status.
pub async fn bounced_recipients(
    pool: &PgPool,
    rows: &[EmailRow],
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let found: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT e.id, b.status FROM emails e JOIN bounced_addresses b \
         ON b.firm_id = e.firm_id AND b.address = lower(e.to_address) WHERE e.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().collect())
}
