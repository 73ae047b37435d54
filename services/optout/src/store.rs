//! The SQL: the contacts read model, the ledger (insert only) and what is read from it.
use arflow_contracts::events::ContactUpserted;
use arflow_core::Channel;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

pub const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Voice, Channel::Sms];

pub fn parse_channel(s: &str) -> Option<Channel> {
    CHANNELS.into_iter().find(|c| c.as_str() == s)
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ContactRow {
    pub contact_id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// One ledger entry, as stored and as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Entry {
    #[serde(skip)]
    pub seq: i64,
    pub id: Uuid,
    pub firm_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    /// `None`: every channel.
    pub channel: Option<String>,
    pub action: String,
    pub source: String,
    pub actor: String,
    pub evidence: String,
    pub cause_event_id: Option<Uuid>,
    /// Whether it changed the contact's state (a consent event was published).
    pub changed: bool,
    pub hold_revision: Option<i64>,
    pub recorded_at: DateTime<Utc>,
}

const ENTRY_COLUMNS: &str = "seq, id, firm_id, contact_id, client_id, channel, action, source, actor, evidence, \
     cause_event_id, changed, hold_revision, recorded_at";

/// A new entry (the id and `changed` are decided by the caller under the contact's lock).
pub struct NewEntry<'a> {
    pub id: Uuid,
    pub firm_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub channel: Option<Channel>,
    pub action: &'a str,
    pub source: &'a str,
    pub actor: &'a str,
    pub evidence: &'a str,
    pub cause_event_id: Option<Uuid>,
    pub changed: bool,
    pub hold_revision: Option<u64>,
    pub recorded_at: DateTime<Utc>,
}

/// Applies a newer contact record of the same firm; returns whether it was applied.
pub async fn upsert_contact(conn: &mut PgConnection, firm_id: Uuid, c: &ContactUpserted) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO contacts (contact_id, firm_id, client_id, version, name, email, phone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (contact_id) DO UPDATE SET client_id = EXCLUDED.client_id, version = EXCLUDED.version, \
           name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now() \
         WHERE contacts.version < EXCLUDED.version AND contacts.firm_id = EXCLUDED.firm_id",
    )
    .bind(c.contact_id)
    .bind(firm_id)
    .bind(c.client_id)
    .bind(c.version)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn contacts_by_id(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, ContactRow>, sqlx::Error> {
    let rows: Vec<ContactRow> = sqlx::query_as(
        "SELECT contact_id, firm_id, client_id, name, email, phone FROM contacts WHERE contact_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.contact_id, r)).collect())
}

/// The firm's contacts with one of `emails` (compared case-insensitively).
pub async fn contacts_by_email(
    conn: &mut PgConnection,
    firm_id: Uuid,
    emails: &[String],
) -> Result<Vec<ContactRow>, sqlx::Error> {
    let lower: Vec<String> = emails.iter().map(|e| e.trim().to_lowercase()).collect();
    sqlx::query_as(
        "SELECT contact_id, firm_id, client_id, name, email, phone FROM contacts \
         WHERE firm_id = $1 AND lower(email) = ANY($2)",
    )
    .bind(firm_id)
    .bind(&lower)
    .fetch_all(conn)
    .await
}

/// Ids of `event_ids` the consumer has already handled (checked before holds are written, so a
/// redelivery never re-holds a contact that a firm user has opted back in since).
pub async fn seen(conn: &mut PgConnection, consumer: &str, event_ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as("SELECT event_id FROM inbox WHERE consumer = $1 AND event_id = ANY($2)")
        .bind(consumer)
        .bind(event_ids)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The advisory lock key of a contact (the random low half of its UUID).
pub fn lock_key(contact_id: Uuid) -> i64 {
    let b = contact_id.as_bytes();
    i64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]])
}

/// Serialises ledger appends per contact until the transaction ends (sorted: no deadlocks).
pub async fn lock_contacts(conn: &mut PgConnection, contact_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i64> = contact_ids.iter().map(|c| lock_key(*c)).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Opted out per channel: the latest entry for that channel or for every channel decides.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The deciding entry per channel (email, voice, sms); `None`: never recorded (opted in).
    pub by_channel: HashMap<Channel, Entry>,
}

impl State {
    pub fn opted_out(&self, channel: Channel) -> bool {
        self.by_channel.get(&channel).is_some_and(|e| e.action == "opt_out")
    }
}

pub async fn state(conn: &mut PgConnection, contact_id: Uuid) -> Result<State, sqlx::Error> {
    let rows: Vec<(String, Entry)> = latest_per_channel(conn, "l.contact_id = $1", contact_id).await?;
    let by_channel = rows.into_iter().filter_map(|(ch, e)| parse_channel(&ch).map(|c| (c, e))).collect();
    Ok(State { by_channel })
}

async fn latest_per_channel(
    conn: &mut PgConnection,
    filter: &str,
    id: Uuid,
) -> Result<Vec<(String, Entry)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        ch: String,
        #[sqlx(flatten)]
        entry: Entry,
    }
    let cols: String = ENTRY_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT DISTINCT ON (l.contact_id, ch) ch, {cols} \
         FROM consent_ledger l CROSS JOIN unnest(ARRAY['email', 'voice', 'sms']) AS ch \
         WHERE {filter} AND (l.channel IS NULL OR l.channel = ch) \
         ORDER BY l.contact_id, ch, l.seq DESC"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| (r.ch, r.entry)).collect())
}

pub async fn insert_entry(conn: &mut PgConnection, e: &NewEntry<'_>) -> Result<Entry, sqlx::Error> {
    let sql = format!(
        "INSERT INTO consent_ledger (id, firm_id, contact_id, client_id, channel, action, source, actor, evidence, \
           cause_event_id, changed, hold_revision, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {ENTRY_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(e.id)
        .bind(e.firm_id)
        .bind(e.contact_id)
        .bind(e.client_id)
        .bind(e.channel.map(|c| c.as_str()))
        .bind(e.action)
        .bind(e.source)
        .bind(e.actor)
        .bind(e.evidence)
        .bind(e.cause_event_id)
        .bind(e.changed)
        .bind(e.hold_revision.and_then(|r| i64::try_from(r).ok()))
        .bind(e.recorded_at)
        .fetch_one(conn)
        .await
}

/// The holds the ledger knows for a contact: the revisions its opt-outs recorded, and the
/// origins an opt-in gives the keys it holds again (`ledger::reheld_origin` of each opt-out).
#[derive(Debug, Default)]
pub struct RecordedHolds {
    pub revisions: std::collections::HashSet<u64>,
    pub reheld_origins: std::collections::HashSet<String>,
}

pub async fn recorded_holds(conn: &mut PgConnection, contact_id: Uuid) -> Result<RecordedHolds, sqlx::Error> {
    let rows: Vec<(Uuid, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, source, hold_revision FROM consent_ledger WHERE contact_id = $1 AND action = 'opt_out'",
    )
    .bind(contact_id)
    .fetch_all(conn)
    .await?;
    let mut out = RecordedHolds::default();
    for (id, source, revision) in rows {
        out.revisions.extend(revision.and_then(|r| u64::try_from(r).ok()));
        out.reheld_origins.insert(crate::ledger::reheld_origin(&source, id));
    }
    Ok(out)
}

/// A contact's whole history, oldest first.
pub async fn history(conn: &mut PgConnection, firm_id: Uuid, contact_id: Uuid) -> Result<Vec<Entry>, sqlx::Error> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM consent_ledger WHERE firm_id = $1 AND contact_id = $2 ORDER BY seq");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(firm_id).bind(contact_id).fetch_all(conn).await
}

/// The firm's ledger, newest first, after `before` (a `seq`).
pub async fn ledger_page(
    conn: &mut PgConnection,
    firm_id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM consent_ledger WHERE firm_id = $1 AND ($2::bigint IS NULL OR seq < $2) \
         ORDER BY seq DESC LIMIT $3"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(firm_id).bind(before).bind(limit).fetch_all(conn).await
}

/// One opted-out channel of a contact, for the suppression list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Suppression {
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub channel: String,
    pub source: String,
    pub evidence: String,
    pub opted_out_at: DateTime<Utc>,
}

/// Every channel of the firm's contacts whose latest entry is an opt-out.
pub async fn suppressions(conn: &mut PgConnection, firm_id: Uuid) -> Result<Vec<Suppression>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.contact_id, s.client_id, c.email, c.phone, s.ch AS channel, s.source, s.evidence, \
           s.recorded_at AS opted_out_at \
         FROM (SELECT DISTINCT ON (l.contact_id, ch) l.contact_id, l.client_id, ch, l.action, l.source, l.evidence, \
                 l.recorded_at \
               FROM consent_ledger l CROSS JOIN unnest(ARRAY['email', 'voice', 'sms']) AS ch \
               WHERE l.firm_id = $1 AND (l.channel IS NULL OR l.channel = ch) \
               ORDER BY l.contact_id, ch, l.seq DESC) s \
         LEFT JOIN contacts c ON c.contact_id = s.contact_id \
         WHERE s.action = 'opt_out' \
         ORDER BY s.contact_id, array_position(ARRAY['email', 'voice', 'sms'], s.ch)",
    )
    .bind(firm_id)
    .fetch_all(conn)
    .await
}
