//! The SQL: read models (newer versions only), the case queue and its append-only actions.
//! Every query names the firm: another firm's case is simply not found (tenant isolation).
use arflow_contracts::events::{
    CaseActivity, ClientUpserted, ContactUpserted, FirmUpdated, InvoiceSnapshot, InvoiceStatus, InvoiceUpserted,
    ReplyClassified, ReviewLabel,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use arflow_store::outbox::enqueue;

// ---------- read models ----------

pub async fn upsert_firm(conn: &mut PgConnection, f: &FirmUpdated) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO firms (firm_id, version, name, timezone) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (firm_id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, \
           timezone = EXCLUDED.timezone, updated_at = now() \
         WHERE firms.version < EXCLUDED.version",
    )
    .bind(f.firm_id)
    .bind(f.version)
    .bind(&f.name)
    .bind(&f.timezone)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A firm seen only through an eligibility snapshot (version 0: any record replaces it).
pub async fn fill_firm(conn: &mut PgConnection, firm_id: Uuid, name: &str, timezone: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO firms (firm_id, version, name, timezone) VALUES ($1, 0, $2, $3) ON CONFLICT (firm_id) DO NOTHING",
    )
    .bind(firm_id)
    .bind(name)
    .bind(timezone)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_client(conn: &mut PgConnection, firm_id: Uuid, c: &ClientUpserted) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO clients (client_id, firm_id, version, name, tier) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (client_id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, \
           tier = EXCLUDED.tier, updated_at = now() \
         WHERE clients.version < EXCLUDED.version AND clients.firm_id = EXCLUDED.firm_id",
    )
    .bind(c.client_id)
    .bind(firm_id)
    .bind(c.version)
    .bind(&c.name)
    .bind(c.tier.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn fill_client(
    conn: &mut PgConnection,
    firm_id: Uuid,
    client: &arflow_contracts::events::ClientSnapshot,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clients (client_id, firm_id, version, name, tier) VALUES ($1, $2, 0, $3, $4) \
         ON CONFLICT (client_id) DO NOTHING",
    )
    .bind(client.client_id)
    .bind(firm_id)
    .bind(&client.name)
    .bind(client.tier.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_contact(conn: &mut PgConnection, firm_id: Uuid, c: &ContactUpserted) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO contacts (contact_id, firm_id, client_id, version, name, email, phone, is_primary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (contact_id) DO UPDATE SET client_id = EXCLUDED.client_id, version = EXCLUDED.version, \
           name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone, is_primary = EXCLUDED.is_primary, \
           updated_at = now() \
         WHERE contacts.version < EXCLUDED.version AND contacts.firm_id = EXCLUDED.firm_id",
    )
    .bind(c.contact_id)
    .bind(firm_id)
    .bind(c.client_id)
    .bind(c.version)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(c.primary)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn fill_contact(
    conn: &mut PgConnection,
    firm_id: Uuid,
    client_id: Uuid,
    c: &arflow_contracts::events::ContactSnapshot,
    primary: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contacts (contact_id, firm_id, client_id, version, name, email, phone, is_primary) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7) ON CONFLICT (contact_id) DO NOTHING",
    )
    .bind(c.contact_id)
    .bind(firm_id)
    .bind(client_id)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(primary)
    .execute(conn)
    .await?;
    Ok(())
}

pub fn status_str(s: InvoiceStatus) -> &'static str {
    match s {
        InvoiceStatus::Draft => "draft",
        InvoiceStatus::Open => "open",
        InvoiceStatus::Paid => "paid",
        InvoiceStatus::Void => "void",
        InvoiceStatus::Uncollectible => "uncollectible",
    }
}

pub async fn upsert_invoice(conn: &mut PgConnection, firm_id: Uuid, i: &InvoiceUpserted) -> Result<bool, sqlx::Error> {
    // The status has its own version: a halt newer than this snapshot keeps its status.
    let done = sqlx::query(
        "INSERT INTO invoices (invoice_id, firm_id, client_id, version, stripe_invoice_id, number, currency, \
           amount_due, amount_remaining, due_date, hosted_invoice_url, status, status_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $4) \
         ON CONFLICT (invoice_id) DO UPDATE SET client_id = EXCLUDED.client_id, version = EXCLUDED.version, \
           stripe_invoice_id = EXCLUDED.stripe_invoice_id, number = EXCLUDED.number, currency = EXCLUDED.currency, \
           amount_due = EXCLUDED.amount_due, amount_remaining = EXCLUDED.amount_remaining, \
           due_date = EXCLUDED.due_date, hosted_invoice_url = EXCLUDED.hosted_invoice_url, \
           status = CASE WHEN invoices.status_version IS NULL OR invoices.status_version < EXCLUDED.version \
                         THEN EXCLUDED.status ELSE invoices.status END, \
           status_version = GREATEST(invoices.status_version, EXCLUDED.version), updated_at = now() \
         WHERE (invoices.version IS NULL OR invoices.version < EXCLUDED.version) \
           AND invoices.firm_id = EXCLUDED.firm_id",
    )
    .bind(i.invoice_id)
    .bind(firm_id)
    .bind(i.client_id)
    .bind(i.version)
    .bind(&i.stripe_invoice_id)
    .bind(&i.number)
    .bind(i.currency.code())
    .bind(i.amount_due)
    .bind(i.amount_remaining)
    .bind(i.due_date)
    .bind(&i.hosted_invoice_url)
    .bind(status_str(i.status))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// An eligibility decision: its automation status (newer decisions only), and the invoice
/// snapshot when no billing record has arrived yet.
pub async fn apply_decision(
    conn: &mut PgConnection,
    firm_id: Uuid,
    client_id: Uuid,
    version: i64,
    automation_status: &str,
    invoice_open: bool,
    i: &InvoiceSnapshot,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO invoices (invoice_id, firm_id, client_id, stripe_invoice_id, number, currency, amount_due, \
           amount_remaining, due_date, hosted_invoice_url, status, automation_status, eligibility_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (invoice_id) DO UPDATE SET automation_status = EXCLUDED.automation_status, \
           eligibility_version = EXCLUDED.eligibility_version, \
           stripe_invoice_id = coalesce(invoices.stripe_invoice_id, EXCLUDED.stripe_invoice_id), \
           number = CASE WHEN invoices.version IS NULL THEN EXCLUDED.number ELSE invoices.number END, \
           currency = coalesce(invoices.currency, EXCLUDED.currency), \
           amount_due = CASE WHEN invoices.version IS NULL THEN EXCLUDED.amount_due ELSE invoices.amount_due END, \
           amount_remaining = CASE WHEN invoices.version IS NULL THEN EXCLUDED.amount_remaining \
                                   ELSE invoices.amount_remaining END, \
           due_date = CASE WHEN invoices.version IS NULL THEN EXCLUDED.due_date ELSE invoices.due_date END, \
           hosted_invoice_url = coalesce(invoices.hosted_invoice_url, EXCLUDED.hosted_invoice_url), \
           status = coalesce(invoices.status, EXCLUDED.status), updated_at = now() \
         WHERE invoices.eligibility_version < EXCLUDED.eligibility_version AND invoices.firm_id = EXCLUDED.firm_id",
    )
    .bind(i.invoice_id)
    .bind(firm_id)
    .bind(client_id)
    .bind(&i.stripe_invoice_id)
    .bind(&i.number)
    .bind(i.currency.code())
    .bind(i.amount_due)
    .bind(i.amount_remaining)
    .bind(i.due_date)
    .bind(&i.hosted_invoice_url)
    .bind(if invoice_open { Some("open") } else { None })
    .bind(automation_status)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Paid, void or uncollectible (a halt wins a tie with a snapshot of the same version).
pub async fn halt_invoice(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    client_id: Uuid,
    status: InvoiceStatus,
    version: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO invoices (invoice_id, firm_id, client_id, status, status_version) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (invoice_id) DO UPDATE SET status = EXCLUDED.status, status_version = EXCLUDED.status_version, \
           updated_at = now() \
         WHERE (invoices.status_version IS NULL OR invoices.status_version <= EXCLUDED.status_version) \
           AND invoices.firm_id = EXCLUDED.firm_id",
    )
    .bind(invoice_id)
    .bind(firm_id)
    .bind(client_id)
    .bind(status_str(status))
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records the invoice's latest activity if it is newer than the stored one. False when the
/// invoice is not known here (or belongs to another firm).
pub async fn record_activity(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    activity: &CaseActivity,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invoices SET latest_activity = $3, latest_activity_at = $4 \
         WHERE invoice_id = $1 AND firm_id = $2 AND (latest_activity_at IS NULL OR latest_activity_at <= $4)",
    )
    .bind(invoice_id)
    .bind(firm_id)
    .bind(Json(activity))
    .bind(activity.at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Counts one broken promise (once per promise); returns the invoice's count after it, or
/// `None` when this promise was already counted.
pub async fn count_broken_promise(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    promise: &str,
) -> Result<Option<i32>, sqlx::Error> {
    let fresh = sqlx::query("INSERT INTO broken_promises (invoice_id, promise) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(invoice_id)
        .bind(promise)
        .execute(&mut *conn)
        .await?;
    if fresh.rows_affected() == 0 {
        return Ok(None);
    }
    let row: Option<(i32,)> = sqlx::query_as(
        "UPDATE invoices SET broken_promises = broken_promises + 1 WHERE invoice_id = $1 AND firm_id = $2 \
         RETURNING broken_promises",
    )
    .bind(invoice_id)
    .bind(firm_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(n,)| n))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FirmRow {
    pub firm_id: Uuid,
    pub name: String,
    pub timezone: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: Uuid,
    pub firm_id: Uuid,
    pub name: String,
    pub tier: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub contact_id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub invoice_id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    pub stripe_invoice_id: Option<String>,
    pub number: Option<String>,
    pub currency: Option<String>,
    pub amount_due: Option<Decimal>,
    pub amount_remaining: Option<Decimal>,
    pub due_date: Option<NaiveDate>,
    pub hosted_invoice_url: Option<String>,
    pub status: Option<String>,
    pub automation_status: Option<String>,
    pub latest_activity: Option<Json<CaseActivity>>,
}

pub async fn firm(conn: &mut PgConnection, firm_id: Uuid) -> Result<Option<FirmRow>, sqlx::Error> {
    sqlx::query_as("SELECT firm_id, name, timezone FROM firms WHERE firm_id = $1")
        .bind(firm_id)
        .fetch_optional(conn)
        .await
}

pub async fn client(conn: &mut PgConnection, firm_id: Uuid, client_id: Uuid) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as("SELECT client_id, firm_id, name, tier FROM clients WHERE client_id = $1 AND firm_id = $2")
        .bind(client_id)
        .bind(firm_id)
        .fetch_optional(conn)
        .await
}

pub async fn contact(
    conn: &mut PgConnection,
    firm_id: Uuid,
    contact_id: Uuid,
) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT contact_id, firm_id, client_id, name, email, phone FROM contacts \
         WHERE contact_id = $1 AND firm_id = $2",
    )
    .bind(contact_id)
    .bind(firm_id)
    .fetch_optional(conn)
    .await
}

/// The client's primary contact, else the first by name.
pub async fn primary_contact(
    conn: &mut PgConnection,
    firm_id: Uuid,
    client_id: Uuid,
) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT contact_id, firm_id, client_id, name, email, phone FROM contacts \
         WHERE client_id = $1 AND firm_id = $2 ORDER BY is_primary DESC, name, contact_id LIMIT 1",
    )
    .bind(client_id)
    .bind(firm_id)
    .fetch_optional(conn)
    .await
}

const INVOICE_COLUMNS: &str = "invoice_id, firm_id, client_id, stripe_invoice_id, number, currency, amount_due, \
     amount_remaining, due_date, hosted_invoice_url, status, automation_status, latest_activity";

pub async fn invoice(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE invoice_id = $1 AND firm_id = $2"
    )))
    .bind(invoice_id)
    .bind(firm_id)
    .fetch_optional(conn)
    .await
}

/// The firm's escalation threshold (`None`: the service default).
pub async fn threshold(conn: &mut PgConnection, firm_id: Uuid) -> Result<Option<i32>, sqlx::Error> {
    let row: Option<(i32,)> = sqlx::query_as("SELECT days_past_due_threshold FROM settings WHERE firm_id = $1")
        .bind(firm_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(n,)| n))
}

pub async fn set_threshold(
    pool: &PgPool,
    firm_id: Uuid,
    days: i32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (firm_id, days_past_due_threshold, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (firm_id) DO UPDATE SET days_past_due_threshold = EXCLUDED.days_past_due_threshold, \
           updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at",
    )
    .bind(firm_id)
    .bind(days)
    .bind(actor)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Open invoices possibly beyond their firm's threshold: due before `latest_due` (a coarse UTC
/// bound; the caller checks each in its firm's calendar), not halted, never escalated for days
/// past due before, with the firm's threshold.
pub async fn past_due_candidates(
    conn: &mut PgConnection,
    latest_due: NaiveDate,
    default_threshold: i32,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid, NaiveDate, i32, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.invoice_id, i.firm_id, i.due_date, coalesce(s.days_past_due_threshold, $2) AS threshold, \
           f.timezone \
         FROM invoices i LEFT JOIN settings s ON s.firm_id = i.firm_id LEFT JOIN firms f ON f.firm_id = i.firm_id \
         WHERE i.status = 'open' AND i.due_date IS NOT NULL \
           AND coalesce(i.automation_status, 'enabled') NOT IN ('halted_paid', 'uncollectible') \
           AND i.due_date + coalesce(s.days_past_due_threshold, $2) < $1 \
           AND i.past_due_escalated_at IS NULL \
         ORDER BY i.due_date, i.invoice_id LIMIT $3",
    )
    .bind(latest_due)
    .bind(default_threshold)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The sweep escalated the invoice for days past due: never again.
pub async fn mark_past_due_escalated(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invoices SET past_due_escalated_at = $2 WHERE invoice_id = $1")
        .bind(invoice_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

// ---------- cases ----------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub case_id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub invoice_id: Option<Uuid>,
    pub reason: String,
    pub family: String,
    pub evidence: String,
    pub status: String,
    pub version: i64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub paused_until: Option<DateTime<Utc>>,
    pub agency: Option<String>,
    pub pending_command: Option<Uuid>,
}

const CASE_COLUMNS: &str = "case_id, firm_id, client_id, contact_id, invoice_id, reason, family, evidence, status, \
     version, opened_at, updated_at, resolved_at, paused_until, agency, pending_command";

macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

/// The case not yet resolved for an invoice (or a client-wide key) and family, locked.
pub async fn lock_active_case(
    conn: &mut PgConnection,
    firm_id: Uuid,
    key: Uuid,
    family: &str,
) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE firm_id = $1 AND coalesce(invoice_id, client_id) = $2 \
         AND family = $3 AND status <> 'resolved' FOR UPDATE"
    ))
    .bind(firm_id)
    .bind(key)
    .bind(family)
    .fetch_optional(conn)
    .await
}

/// Every case of an invoice not yet resolved, locked (a halt resolves them all).
pub async fn lock_active_cases_of_invoice(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE firm_id = $1 AND invoice_id = $2 AND status <> 'resolved' \
         ORDER BY case_id FOR UPDATE"
    ))
    .bind(firm_id)
    .bind(invoice_id)
    .fetch_all(conn)
    .await
}

pub async fn lock_case(conn: &mut PgConnection, firm_id: Uuid, case_id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {CASE_COLUMNS} FROM cases WHERE case_id = $1 AND firm_id = $2 FOR UPDATE"))
        .bind(case_id)
        .bind(firm_id)
        .fetch_optional(conn)
        .await
}

pub async fn case(conn: &mut PgConnection, firm_id: Uuid, case_id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {CASE_COLUMNS} FROM cases WHERE case_id = $1 AND firm_id = $2"))
        .bind(case_id)
        .bind(firm_id)
        .fetch_optional(conn)
        .await
}

/// Inserts a new case; `false` when a concurrent transaction opened one for the same key and
/// family first (the partial unique index).
pub async fn insert_case(conn: &mut PgConnection, c: &CaseRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO cases (case_id, firm_id, client_id, contact_id, invoice_id, reason, family, evidence, status, \
           version, opened_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (firm_id, (coalesce(invoice_id, client_id)), family) WHERE status <> 'resolved' DO NOTHING",
    )
    .bind(c.case_id)
    .bind(c.firm_id)
    .bind(c.client_id)
    .bind(c.contact_id)
    .bind(c.invoice_id)
    .bind(&c.reason)
    .bind(&c.family)
    .bind(&c.evidence)
    .bind(&c.status)
    .bind(c.version)
    .bind(c.opened_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Writes a case's new state (the caller holds its row lock).
pub async fn update_case(conn: &mut PgConnection, c: &CaseRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cases SET status = $2, version = $3, updated_at = $4, resolved_at = $5, paused_until = $6, \
           agency = $7, pending_command = $8, contact_id = $9 WHERE case_id = $1",
    )
    .bind(c.case_id)
    .bind(&c.status)
    .bind(c.version)
    .bind(c.updated_at)
    .bind(c.resolved_at)
    .bind(c.paused_until)
    .bind(&c.agency)
    .bind(c.pending_command)
    .bind(c.contact_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ActionRow {
    pub action_id: Uuid,
    #[serde(skip)]
    pub case_id: Uuid,
    #[serde(skip)]
    pub firm_id: Uuid,
    pub version: i64,
    pub action: String,
    pub actor: String,
    pub note: String,
    pub at: DateTime<Utc>,
    pub paused_until: Option<DateTime<Utc>>,
    pub agency: Option<String>,
    #[schema(value_type = Object)]
    pub details: Json<serde_json::Value>,
}

pub async fn insert_action(conn: &mut PgConnection, a: &ActionRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_actions (action_id, case_id, firm_id, version, action, actor, note, at, paused_until, \
           agency, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(a.action_id)
    .bind(a.case_id)
    .bind(a.firm_id)
    .bind(a.version)
    .bind(&a.action)
    .bind(&a.actor)
    .bind(&a.note)
    .bind(a.at)
    .bind(a.paused_until)
    .bind(&a.agency)
    .bind(&a.details)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn actions(conn: &mut PgConnection, case_id: Uuid) -> Result<Vec<ActionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action_id, case_id, firm_id, version, action, actor, note, at, paused_until, agency, details \
         FROM case_actions WHERE case_id = $1 ORDER BY version",
    )
    .bind(case_id)
    .fetch_all(conn)
    .await
}

pub async fn latest_action(conn: &mut PgConnection, case_id: Uuid) -> Result<Option<ActionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action_id, case_id, firm_id, version, action, actor, note, at, paused_until, agency, details \
         FROM case_actions WHERE case_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(conn)
    .await
}

/// One page of the firm's queue, oldest first, after the cursor `(opened_at, case_id)`.
pub async fn queue(
    conn: &mut PgConnection,
    firm_id: Uuid,
    statuses: &[&str],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let (at, id) = match after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    sqlx::query_as(sql!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE firm_id = $1 AND status = ANY($2) \
         AND ($3::timestamptz IS NULL OR (opened_at, case_id) > ($3, $4)) \
         ORDER BY opened_at, case_id LIMIT $5"
    ))
    .bind(firm_id)
    .bind(statuses)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Paused cases whose pause ended, locked (skipping ones another transaction holds).
pub async fn lock_expired_pauses(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE status = 'paused' AND paused_until <= $1 \
         ORDER BY paused_until, case_id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

// ---------- reviews and labelled replies ----------

/// The reply a `needs_review` case asks a person to label.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    pub case_id: Uuid,
    pub firm_id: Uuid,
    pub reply_id: Uuid,
    pub reply: Json<ReplyClassified>,
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
    pub label: Option<Json<ReviewLabel>>,
}

pub async fn insert_review(conn: &mut PgConnection, r: &ReviewRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reviews (case_id, firm_id, reply_id, reply, cause_event_id, correlation_id, label) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.case_id)
    .bind(r.firm_id)
    .bind(r.reply_id)
    .bind(&r.reply)
    .bind(r.cause_event_id)
    .bind(r.correlation_id)
    .bind(&r.label)
    .execute(conn)
    .await?;
    Ok(())
}

const REVIEW_COLUMNS: &str = "case_id, firm_id, reply_id, reply, cause_event_id, correlation_id, label";

pub async fn review(conn: &mut PgConnection, case_id: Uuid) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE case_id = $1"))
        .bind(case_id)
        .fetch_optional(conn)
        .await
}

/// Whether a reply already has a review case (open or labelled): a reply is reviewed once.
pub async fn reviewed(conn: &mut PgConnection, firm_id: Uuid, reply_id: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT case_id FROM reviews WHERE reply_id = $1 AND firm_id = $2")
        .bind(reply_id)
        .bind(firm_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

pub async fn set_review_label(conn: &mut PgConnection, case_id: Uuid, label: &ReviewLabel) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reviews SET label = $2 WHERE case_id = $1")
        .bind(case_id)
        .bind(Json(label))
        .execute(conn)
        .await?;
    Ok(())
}

/// One labelled reply, as the training export writes it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LabelledRow {
    pub reply_id: Uuid,
    pub firm_id: Uuid,
    pub case_id: Uuid,
    pub channel: String,
    pub reference_date: NaiveDate,
    pub text: String,
    pub intent: String,
    pub promised_date: Option<NaiveDate>,
    pub labelled_by: String,
    pub labelled_at: DateTime<Utc>,
}

/// Stores a labelled reply; false when the reply was already labelled (one example per reply).
pub async fn insert_labelled(conn: &mut PgConnection, l: &LabelledRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO labelled_replies (reply_id, firm_id, case_id, channel, reference_date, text, intent, \
           promised_date, labelled_by, labelled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (reply_id) DO NOTHING",
    )
    .bind(l.reply_id)
    .bind(l.firm_id)
    .bind(l.case_id)
    .bind(&l.channel)
    .bind(l.reference_date)
    .bind(&l.text)
    .bind(&l.intent)
    .bind(l.promised_date)
    .bind(&l.labelled_by)
    .bind(l.labelled_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The firm's labelled replies, oldest label first.
pub async fn labelled(conn: &mut PgConnection, firm_id: Uuid) -> Result<Vec<LabelledRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reply_id, firm_id, case_id, channel, reference_date, text, intent, promised_date, labelled_by, \
           labelled_at FROM labelled_replies WHERE firm_id = $1 ORDER BY labelled_at, reply_id",
    )
    .bind(firm_id)
    .fetch_all(conn)
    .await
}
