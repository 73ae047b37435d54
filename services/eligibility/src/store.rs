//! The SQL: read-model upserts (newer versions only), the rows evaluation reads,
//! and the decision writes. Runtime queries with binds; set-based where it matters.
use arflow_contracts::events::{
    ClientUpserted, ContactUpserted, FirmUpdated, InvoiceHalted, InvoicePaused, InvoiceStatus, InvoiceUpserted,
    PromiseBroken,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FirmRow {
    pub firm_id: Uuid,
    pub version: i64,
    pub name: String,
    pub sender_email: String,
    pub stripe_connected: bool,
    pub timezone: String,
    pub min_amounts: Json<std::collections::BTreeMap<arflow_core::Currency, Decimal>>,
    pub email_window: Json<arflow_core::SendWindow>,
    /// The firm's calling/texting window; `None` = the default call window.
    pub call_window: Option<Json<arflow_core::SendWindow>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: Uuid,
    pub firm_id: Uuid,
    pub version: i64,
    pub name: String,
    pub tier: String,
    pub timezone: Option<String>,
    pub excluded: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub contact_id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    /// `None`: a placeholder (consent arrived before the contact record).
    pub version: Option<i64>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub timezone: Option<String>,
    pub is_primary: bool,
    pub consent_email: bool,
    pub consent_voice: bool,
    pub consent_sms: bool,
    pub opted_out_email: bool,
    pub opted_out_voice: bool,
    pub opted_out_sms: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub invoice_id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    /// `None`: a placeholder (a halt or pause arrived before the invoice record).
    pub version: Option<i64>,
    pub stripe_invoice_id: Option<String>,
    pub number: Option<String>,
    pub currency: Option<String>,
    pub amount_due: Option<Decimal>,
    pub amount_remaining: Option<Decimal>,
    pub due_date: Option<NaiveDate>,
    pub hosted_invoice_url: Option<String>,
    pub excluded: bool,
    pub disputed: bool,
    pub status: Option<String>,
    pub cases_open: i32,
    /// The reasons of the open or referred escalation cases.
    pub case_reasons: Option<String>,
    /// A person paused automation through an escalation case (until `case_paused_until`, or
    /// indefinitely when that is `None`).
    pub case_paused: bool,
    pub case_paused_until: Option<DateTime<Utc>>,
    pub paused_until: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    pub pause_version: Option<i64>,
    /// The reply behind the pause (`None` for a `billing.invoice_paused` pause).
    pub pause_evidence: Option<String>,
    pub pause_reply_id: Option<Uuid>,
    pub promised_date: Option<NaiveDate>,
    /// The client disputes the invoice in a reply (apart from the Stripe/firm `disputed`).
    pub client_dispute_evidence: Option<String>,
    /// Waiting for a person: the intent and the client's words.
    pub handoff_intent: Option<String>,
    pub handoff_evidence: Option<String>,
    /// Replies not understood with confidence, waiting for a person's label, and the latest
    /// one's words.
    pub reviews_pending: i32,
    pub review_evidence: Option<String>,
    /// The latest broken promise and the `pause_version` it was recorded for.
    pub broken_promise: Option<Json<PromiseBroken>>,
    pub broken_pause_version: Option<i64>,
    pub decision_version: i64,
    pub decision_hash: Option<String>,
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

pub use arflow_store::chunk::{json_size, size_chunks};

/// Enqueues events (the shared outbox splits them into statements that do not stall).
pub async fn enqueue(conn: &mut PgConnection, messages: &[arflow_store::OutboxMessage]) -> Result<(), sqlx::Error> {
    arflow_store::outbox::enqueue(conn, messages).await
}

/// Returns whether the record was newer than what was stored.
pub async fn upsert_firm(conn: &mut PgConnection, f: &FirmUpdated) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO firms (firm_id, version, name, sender_email, stripe_connected, timezone, min_amounts, \
           email_window, call_window) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (firm_id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, \
           sender_email = EXCLUDED.sender_email, stripe_connected = EXCLUDED.stripe_connected, \
           timezone = EXCLUDED.timezone, min_amounts = EXCLUDED.min_amounts, email_window = EXCLUDED.email_window, \
           call_window = EXCLUDED.call_window, updated_at = now() \
         WHERE firms.version < EXCLUDED.version",
    )
    .bind(f.firm_id)
    .bind(f.version)
    .bind(&f.name)
    .bind(&f.sender_email)
    .bind(f.stripe_connected)
    .bind(&f.timezone)
    .bind(Json(&f.min_amounts))
    .bind(Json(&f.email_window))
    .bind(f.call_window.as_ref().map(Json))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn upsert_client(conn: &mut PgConnection, firm_id: Uuid, c: &ClientUpserted) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO clients (client_id, firm_id, version, name, tier, timezone, excluded) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (client_id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, \
           tier = EXCLUDED.tier, timezone = EXCLUDED.timezone, excluded = EXCLUDED.excluded, updated_at = now() \
         WHERE clients.version < EXCLUDED.version AND clients.firm_id = EXCLUDED.firm_id",
    )
    .bind(c.client_id)
    .bind(firm_id)
    .bind(c.version)
    .bind(&c.name)
    .bind(c.tier.as_str())
    .bind(&c.timezone)
    .bind(c.excluded)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// `Some(previous client id)` when applied (the previous one is the same unless the contact moved).
pub async fn upsert_contact(
    conn: &mut PgConnection,
    firm_id: Uuid,
    c: &ContactUpserted,
) -> Result<Option<Option<Uuid>>, sqlx::Error> {
    let row: Option<(Option<Uuid>,)> = sqlx::query_as(
        "WITH old AS (SELECT client_id FROM contacts WHERE contact_id = $1) \
         INSERT INTO contacts (contact_id, firm_id, client_id, version, name, email, phone, timezone, is_primary, \
           consent_email, consent_voice, consent_sms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (contact_id) DO UPDATE SET client_id = EXCLUDED.client_id, version = EXCLUDED.version, \
           name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone, timezone = EXCLUDED.timezone, \
           is_primary = EXCLUDED.is_primary, consent_email = EXCLUDED.consent_email, \
           consent_voice = EXCLUDED.consent_voice, consent_sms = EXCLUDED.consent_sms, updated_at = now() \
         WHERE (contacts.version IS NULL OR contacts.version < EXCLUDED.version) \
           AND contacts.firm_id = EXCLUDED.firm_id \
         RETURNING (SELECT client_id FROM old)",
    )
    .bind(c.contact_id)
    .bind(firm_id)
    .bind(c.client_id)
    .bind(c.version)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.timezone)
    .bind(c.primary)
    .bind(c.consent.email)
    .bind(c.consent.voice)
    .bind(c.consent.sms)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(old,)| old))
}

/// Which opt-out columns a consent change touches.
#[derive(Debug, Clone, Copy)]
pub struct OptOutChange {
    pub email: bool,
    pub voice: bool,
    pub sms: bool,
    /// `true` opts out, `false` opts back in.
    pub opted_out: bool,
}

/// Records a consent change; creates a placeholder contact if the record has not arrived.
/// Returns the contact's client id.
pub async fn apply_consent(
    conn: &mut PgConnection,
    firm_id: Uuid,
    contact_id: Uuid,
    client_id: Uuid,
    change: OptOutChange,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO contacts (contact_id, firm_id, client_id, opted_out_email, opted_out_voice, opted_out_sms) \
         VALUES ($1, $2, $3, $4 AND $7, $5 AND $7, $6 AND $7) \
         ON CONFLICT (contact_id) DO UPDATE SET \
           opted_out_email = CASE WHEN $4 THEN $7 ELSE contacts.opted_out_email END, \
           opted_out_voice = CASE WHEN $5 THEN $7 ELSE contacts.opted_out_voice END, \
           opted_out_sms = CASE WHEN $6 THEN $7 ELSE contacts.opted_out_sms END, \
           updated_at = now() \
         WHERE contacts.firm_id = EXCLUDED.firm_id \
         RETURNING client_id",
    )
    .bind(contact_id)
    .bind(firm_id)
    .bind(client_id)
    .bind(change.email)
    .bind(change.voice)
    .bind(change.sms)
    .bind(change.opted_out)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(c,)| c))
}

/// Upserts a batch's invoice snapshots in one statement (each invoice at most once:
/// the caller keeps the newest version). Returns the invoices that were newer than stored.
pub async fn upsert_invoices(
    conn: &mut PgConnection,
    firm_ids: &[Uuid],
    invoices: &[&InvoiceUpserted],
) -> Result<Vec<Uuid>, sqlx::Error> {
    if invoices.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<Uuid> = invoices.iter().map(|i| i.invoice_id).collect();
    let clients: Vec<Uuid> = invoices.iter().map(|i| i.client_id).collect();
    let versions: Vec<i64> = invoices.iter().map(|i| i.version).collect();
    let stripe_ids: Vec<&str> = invoices.iter().map(|i| i.stripe_invoice_id.as_str()).collect();
    let numbers: Vec<Option<&str>> = invoices.iter().map(|i| i.number.as_deref()).collect();
    let currencies: Vec<&str> = invoices.iter().map(|i| i.currency.code()).collect();
    let due: Vec<Decimal> = invoices.iter().map(|i| i.amount_due).collect();
    let remaining: Vec<Decimal> = invoices.iter().map(|i| i.amount_remaining).collect();
    let due_dates: Vec<Option<NaiveDate>> = invoices.iter().map(|i| i.due_date).collect();
    let urls: Vec<Option<&str>> = invoices.iter().map(|i| i.hosted_invoice_url.as_deref()).collect();
    let excluded: Vec<bool> = invoices.iter().map(|i| i.excluded).collect();
    let disputed: Vec<bool> = invoices.iter().map(|i| i.disputed).collect();
    let statuses: Vec<&str> = invoices.iter().map(|i| status_str(i.status)).collect();
    // The status has its own version: a halt newer than this snapshot keeps its status.
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO invoices (invoice_id, firm_id, client_id, version, stripe_invoice_id, number, currency, \
           amount_due, amount_remaining, due_date, hosted_invoice_url, excluded, disputed, status, status_version) \
         SELECT u.*, u.version FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], \
           $6::text[], $7::text[], $8::numeric[], $9::numeric[], $10::date[], $11::text[], $12::bool[], \
           $13::bool[], $14::text[]) AS u(invoice_id, firm_id, client_id, version, stripe_invoice_id, number, \
           currency, amount_due, amount_remaining, due_date, hosted_invoice_url, excluded, disputed, status) \
         ON CONFLICT (invoice_id) DO UPDATE SET client_id = EXCLUDED.client_id, version = EXCLUDED.version, \
           stripe_invoice_id = EXCLUDED.stripe_invoice_id, number = EXCLUDED.number, currency = EXCLUDED.currency, \
           amount_due = EXCLUDED.amount_due, amount_remaining = EXCLUDED.amount_remaining, \
           due_date = EXCLUDED.due_date, hosted_invoice_url = EXCLUDED.hosted_invoice_url, \
           excluded = EXCLUDED.excluded, disputed = EXCLUDED.disputed, \
           status = CASE WHEN invoices.status_version IS NULL OR invoices.status_version < EXCLUDED.version \
                         THEN EXCLUDED.status ELSE invoices.status END, \
           status_version = GREATEST(invoices.status_version, EXCLUDED.version), updated_at = now() \
         WHERE (invoices.version IS NULL OR invoices.version < EXCLUDED.version) \
           AND invoices.firm_id = EXCLUDED.firm_id \
         RETURNING invoice_id",
    )
    .bind(&ids)
    .bind(firm_ids)
    .bind(&clients)
    .bind(&versions)
    .bind(&stripe_ids)
    .bind(&numbers)
    .bind(&currencies)
    .bind(&due)
    .bind(&remaining)
    .bind(&due_dates)
    .bind(&urls)
    .bind(&excluded)
    .bind(&disputed)
    .bind(&statuses)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub async fn halt_invoice(
    conn: &mut PgConnection,
    firm_id: Uuid,
    h: &InvoiceHalted,
    status: InvoiceStatus,
) -> Result<bool, sqlx::Error> {
    // A halt wins a tie with a snapshot of the same version: payment halts outreach.
    let done = sqlx::query(
        "INSERT INTO invoices (invoice_id, firm_id, client_id, stripe_invoice_id, status, status_version) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (invoice_id) DO UPDATE SET status = EXCLUDED.status, status_version = EXCLUDED.status_version, \
           updated_at = now() \
         WHERE (invoices.status_version IS NULL OR invoices.status_version <= EXCLUDED.status_version) \
           AND invoices.firm_id = EXCLUDED.firm_id",
    )
    .bind(h.invoice_id)
    .bind(firm_id)
    .bind(h.client_id)
    .bind(&h.stripe_invoice_id)
    .bind(status_str(status))
    .bind(h.version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn pause_invoice(conn: &mut PgConnection, firm_id: Uuid, p: &InvoicePaused) -> Result<bool, sqlx::Error> {
    // This pause replaces one a reply set: its evidence and date go with it.
    let done = sqlx::query(
        "INSERT INTO invoices (invoice_id, firm_id, client_id, paused_until, pause_reason, pause_version) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (invoice_id) DO UPDATE SET paused_until = EXCLUDED.paused_until, \
           pause_reason = EXCLUDED.pause_reason, pause_version = EXCLUDED.pause_version, \
           pause_evidence = NULL, pause_reply_id = NULL, pause_reply_at = NULL, promised_date = NULL, \
           updated_at = now() \
         WHERE (invoices.pause_version IS NULL OR invoices.pause_version < EXCLUDED.pause_version) \
           AND invoices.firm_id = EXCLUDED.firm_id",
    )
    .bind(p.invoice_id)
    .bind(firm_id)
    .bind(p.client_id)
    .bind(p.paused_until)
    .bind(&p.reason)
    .bind(p.version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn invoices_of_firm(conn: &mut PgConnection, firm_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT invoice_id FROM invoices WHERE firm_id = $1").bind(firm_id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub async fn invoices_of_clients(
    conn: &mut PgConnection,
    client_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as("SELECT invoice_id, client_id FROM invoices WHERE client_id = ANY($1)")
        .bind(client_ids)
        .fetch_all(conn)
        .await
}

/// Locks the invoices (in id order, so concurrent evaluations cannot deadlock) and reads them.
pub async fn lock_invoices(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT invoice_id, firm_id, client_id, version, stripe_invoice_id, number, currency, amount_due, \
           amount_remaining, due_date, hosted_invoice_url, excluded, disputed, status, cases_open, case_reasons, \
           case_paused, case_paused_until, paused_until, \
           pause_reason, pause_version, pause_evidence, pause_reply_id, promised_date, client_dispute_evidence, \
           handoff_intent, handoff_evidence, reviews_pending, review_evidence, broken_promise, broken_pause_version, \
           decision_version, decision_hash \
         FROM invoices WHERE invoice_id = ANY($1) ORDER BY invoice_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

pub async fn firms(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<FirmRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT firm_id, version, name, sender_email, stripe_connected, timezone, min_amounts, email_window, \
           call_window FROM firms WHERE firm_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

pub async fn clients(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_id, firm_id, version, name, tier, timezone, excluded FROM clients WHERE client_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

pub async fn contacts_of_clients(conn: &mut PgConnection, client_ids: &[Uuid]) -> Result<Vec<ContactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT contact_id, firm_id, client_id, version, name, email, phone, timezone, is_primary, consent_email, \
           consent_voice, consent_sms, opted_out_email, opted_out_voice, opted_out_sms \
         FROM contacts WHERE client_id = ANY($1)",
    )
    .bind(client_ids)
    .fetch_all(conn)
    .await
}

/// The evaluation state written back for every evaluated invoice.
#[derive(Debug, Clone)]
pub struct EvaluationState {
    pub invoice_id: Uuid,
    pub decision_version: i64,
    pub decision_hash: Option<String>,
    pub past_due: bool,
    pub next_check_at: Option<DateTime<Utc>>,
}

pub async fn save_states(conn: &mut PgConnection, states: &[EvaluationState]) -> Result<(), sqlx::Error> {
    for chunk in size_chunks(states, |_| 128) {
        save_state_chunk(conn, chunk).await?;
    }
    Ok(())
}

async fn save_state_chunk(conn: &mut PgConnection, states: &[EvaluationState]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = states.iter().map(|s| s.invoice_id).collect();
    let versions: Vec<i64> = states.iter().map(|s| s.decision_version).collect();
    let hashes: Vec<Option<String>> = states.iter().map(|s| s.decision_hash.clone()).collect();
    let past_due: Vec<bool> = states.iter().map(|s| s.past_due).collect();
    let next: Vec<Option<DateTime<Utc>>> = states.iter().map(|s| s.next_check_at).collect();
    sqlx::query(
        "UPDATE invoices i SET decision_version = u.v, decision_hash = u.h, past_due = u.p, next_check_at = u.n \
         FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bool[], $5::timestamptz[]) AS u(id, v, h, p, n) \
         WHERE i.invoice_id = u.id",
    )
    .bind(&ids)
    .bind(&versions)
    .bind(&hashes)
    .bind(&past_due)
    .bind(&next)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub invoice_id: Uuid,
    pub version: i64,
    pub firm_id: Uuid,
    pub eligible: bool,
    pub past_due: bool,
    pub automation_status: String,
    pub checks: serde_json::Value,
    pub payload_hash: String,
    pub evaluated_at: DateTime<Utc>,
}

pub async fn insert_decisions(conn: &mut PgConnection, rows: &[DecisionRow]) -> Result<(), sqlx::Error> {
    for chunk in size_chunks(rows, |r| json_size(&r.checks) + 200) {
        insert_decision_chunk(conn, chunk).await?;
    }
    Ok(())
}

async fn insert_decision_chunk(conn: &mut PgConnection, rows: &[DecisionRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.invoice_id).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let firms: Vec<Uuid> = rows.iter().map(|r| r.firm_id).collect();
    let eligible: Vec<bool> = rows.iter().map(|r| r.eligible).collect();
    let past_due: Vec<bool> = rows.iter().map(|r| r.past_due).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.automation_status.as_str()).collect();
    let checks: Vec<&serde_json::Value> = rows.iter().map(|r| &r.checks).collect();
    let hashes: Vec<&str> = rows.iter().map(|r| r.payload_hash.as_str()).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.evaluated_at).collect();
    sqlx::query(
        "INSERT INTO decisions (invoice_id, version, firm_id, eligible, past_due, automation_status, checks, \
           payload_hash, evaluated_at) \
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::bool[], $5::bool[], $6::text[], \
           $7::jsonb[], $8::text[], $9::timestamptz[])",
    )
    .bind(&ids)
    .bind(&versions)
    .bind(&firms)
    .bind(&eligible)
    .bind(&past_due)
    .bind(&statuses)
    .bind(&checks)
    .bind(&hashes)
    .bind(&at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Invoices whose due date or pause flips at or before `now` (uses the partial index).
pub async fn due_for_check(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT invoice_id FROM invoices WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// A client's recorded all-opted-out state, with what the warning needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OptOutState {
    pub client_id: Uuid,
    pub firm_id: Uuid,
    pub name: String,
    pub all_opted_out: bool,
    pub opted_out_warnings: i64,
}

/// The known clients among `client_ids` (whether every channel of every contact is opted out
/// is judged by `rules::client_reach` from their contacts).
pub async fn opt_out_states(conn: &mut PgConnection, client_ids: &[Uuid]) -> Result<Vec<OptOutState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_id, firm_id, name, all_opted_out, opted_out_warnings FROM clients \
         WHERE client_id = ANY($1) ORDER BY client_id",
    )
    .bind(client_ids)
    .fetch_all(conn)
    .await
}

/// Flips the client's opted-out state if it still differs (a compare-and-set, so two
/// racing transactions warn once); returns the warning count when it flipped.
pub async fn set_all_opted_out(
    conn: &mut PgConnection,
    client_id: Uuid,
    all: bool,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE clients SET all_opted_out = $2, \
           opted_out_warnings = opted_out_warnings + CASE WHEN $2 THEN 1 ELSE 0 END \
         WHERE client_id = $1 AND all_opted_out <> $2 RETURNING opted_out_warnings",
    )
    .bind(client_id)
    .bind(all)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(n,)| n))
}

pub async fn open_invoices_of_client(conn: &mut PgConnection, client_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT invoice_id FROM invoices WHERE client_id = $1 AND status = 'open' ORDER BY invoice_id")
            .bind(client_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The invoice a reply names, locked, with the zones its promised dates are read in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplyTarget {
    pub firm_id: Uuid,
    pub client_timezone: Option<String>,
    pub firm_timezone: Option<String>,
}

/// Locks the invoice a reply names. A reply that overtook the invoice record (a replay, a
/// rebuild) creates a placeholder when it names the client, like halts and pauses do, so
/// what the client said is applied once the record arrives.
pub async fn reply_target(
    conn: &mut PgConnection,
    firm_id: Uuid,
    invoice_id: Uuid,
    client_id: Option<Uuid>,
) -> Result<Option<ReplyTarget>, sqlx::Error> {
    if let Some(client_id) = client_id {
        sqlx::query(
            "INSERT INTO invoices (invoice_id, firm_id, client_id) VALUES ($1, $2, $3) \
             ON CONFLICT (invoice_id) DO NOTHING",
        )
        .bind(invoice_id)
        .bind(firm_id)
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query_as(
        "SELECT i.firm_id, c.timezone AS client_timezone, f.timezone AS firm_timezone FROM invoices i \
         LEFT JOIN clients c ON c.client_id = i.client_id AND c.firm_id = i.firm_id \
         LEFT JOIN firms f ON f.firm_id = i.firm_id \
         WHERE i.invoice_id = $1 FOR UPDATE OF i",
    )
    .bind(invoice_id)
    .fetch_optional(conn)
    .await
}

/// One reply, as written on its invoice.
#[derive(Debug, Clone, Copy)]
pub struct ReplyRecord<'a> {
    pub invoice_id: Uuid,
    pub reply_id: Uuid,
    pub intent: &'a str,
    pub evidence: &'a str,
    pub received_at: DateTime<Utc>,
}

// Each write below only moves forward: a reply older than the one recorded (by received_at,
// then reply id) changes nothing, and the same reply twice is a no-op.

/// The client disputes the invoice. Returns whether this reply was newer than the recorded one.
pub async fn record_dispute(conn: &mut PgConnection, r: ReplyRecord<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invoices SET client_dispute_evidence = $3, client_dispute_reply_id = $2, client_dispute_at = $4, \
           updated_at = now() \
         WHERE invoice_id = $1 \
           AND (client_dispute_at IS NULL OR (client_dispute_at, client_dispute_reply_id) < ($4, $2))",
    )
    .bind(r.invoice_id)
    .bind(r.reply_id)
    .bind(r.evidence)
    .bind(r.received_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A person must answer. The escalation service (issue #5) will clear these columns when it
/// resolves the case (`escalation.resolved`).
pub async fn record_handoff(conn: &mut PgConnection, r: ReplyRecord<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invoices SET handoff_intent = $3, handoff_evidence = $4, handoff_reply_id = $2, handoff_at = $5, \
           updated_at = now() \
         WHERE invoice_id = $1 AND (handoff_at IS NULL OR (handoff_at, handoff_reply_id) < ($5, $2))",
    )
    .bind(r.invoice_id)
    .bind(r.reply_id)
    .bind(r.intent)
    .bind(r.evidence)
    .bind(r.received_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A newer reply's pause replaces the current one and bumps `pause_version` (each promise is
/// its own version, so a broken promise is recorded once per promise).
pub async fn record_reply_pause(
    conn: &mut PgConnection,
    r: ReplyRecord<'_>,
    until: DateTime<Utc>,
    reason: &str,
    promised_date: Option<NaiveDate>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invoices SET paused_until = $5, pause_reason = $6, pause_version = COALESCE(pause_version, 0) + 1, \
           pause_evidence = $3, pause_reply_id = $2, pause_reply_at = $4, promised_date = $7, updated_at = now() \
         WHERE invoice_id = $1 AND (pause_reply_at IS NULL OR (pause_reply_at, pause_reply_id) < ($4, $2))",
    )
    .bind(r.invoice_id)
    .bind(r.reply_id)
    .bind(r.evidence)
    .bind(r.received_at)
    .bind(until)
    .bind(reason)
    .bind(promised_date)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The last reply that changed something on the invoice, for the record.
pub async fn record_last_reply(conn: &mut PgConnection, r: ReplyRecord<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET last_reply_id = $2, last_reply_intent = $3, last_reply_evidence = $4, \
           last_reply_at = $5 \
         WHERE invoice_id = $1 AND (last_reply_at IS NULL OR (last_reply_at, last_reply_id) < ($5, $2))",
    )
    .bind(r.invoice_id)
    .bind(r.reply_id)
    .bind(r.intent)
    .bind(r.evidence)
    .bind(r.received_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A reply waits for a person's label. False when it was already recorded (or already labelled:
/// the label overtook it).
pub async fn record_review(conn: &mut PgConnection, firm_id: Uuid, r: ReplyRecord<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO reply_reviews (reply_id, firm_id, invoice_id, evidence, received_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (reply_id) DO NOTHING",
    )
    .bind(r.reply_id)
    .bind(firm_id)
    .bind(r.invoice_id)
    .bind(r.evidence)
    .bind(r.received_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A person decided about a reply: labelled it (`label`), or took the review case over without a
/// label (`None`). Recorded even before the unsure reply itself arrives, so it never waits then.
/// False when it was already decided.
pub async fn resolve_review(
    conn: &mut PgConnection,
    firm_id: Uuid,
    r: ReplyRecord<'_>,
    label: Option<&str>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO reply_reviews (reply_id, firm_id, invoice_id, evidence, received_at, label, resolved_by, \
           resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (reply_id) DO UPDATE SET label = EXCLUDED.label, resolved_by = EXCLUDED.resolved_by, \
           resolved_at = EXCLUDED.resolved_at \
         WHERE reply_reviews.resolved_at IS NULL AND reply_reviews.firm_id = EXCLUDED.firm_id",
    )
    .bind(r.reply_id)
    .bind(firm_id)
    .bind(r.invoice_id)
    .bind(r.evidence)
    .bind(r.received_at)
    .bind(label)
    .bind(by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Recomputes the invoice's pending reviews from `reply_reviews`.
pub async fn refresh_reviews(conn: &mut PgConnection, invoice_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices i SET reviews_pending = a.n, review_evidence = a.latest, updated_at = now() \
         FROM (SELECT count(*)::int AS n, \
                 (array_agg(evidence ORDER BY received_at DESC, reply_id DESC))[1] AS latest \
               FROM reply_reviews WHERE invoice_id = $1 AND resolved_at IS NULL) a \
         WHERE i.invoice_id = $1",
    )
    .bind(invoice_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records broken promises (rare: one row each), once per `pause_version`.
pub async fn save_broken_promises(
    conn: &mut PgConnection,
    broken: &[(Uuid, i64, &PromiseBroken)],
) -> Result<(), sqlx::Error> {
    for (invoice_id, pause_version, promise) in broken {
        sqlx::query(
            "UPDATE invoices SET broken_promise = $3, broken_pause_version = $2, updated_at = now() \
             WHERE invoice_id = $1 AND broken_pause_version IS DISTINCT FROM $2",
        )
        .bind(invoice_id)
        .bind(pause_version)
        .bind(Json(promise))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One `escalation.*` event about an invoice's case.
#[derive(Debug, Clone)]
pub struct CaseRecord<'a> {
    pub case_id: Uuid,
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub client_id: Uuid,
    pub version: i64,
    pub status: &'a str,
    pub reason: &'a str,
    pub agency: Option<&'a str>,
    pub paused_until: Option<DateTime<Utc>>,
    pub action: &'a str,
    pub actor: &'a str,
    pub note: &'a str,
    pub at: DateTime<Utc>,
}

/// Records a case at its version; false when a newer (or the same) version is already recorded,
/// or the case or its invoice belongs to another firm. An invoice not seen yet gets a placeholder.
pub async fn record_case(conn: &mut PgConnection, c: &CaseRecord<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoices (invoice_id, firm_id, client_id) VALUES ($1, $2, $3) ON CONFLICT (invoice_id) DO NOTHING",
    )
    .bind(c.invoice_id)
    .bind(c.firm_id)
    .bind(c.client_id)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(
        "INSERT INTO escalation_cases (case_id, firm_id, invoice_id, version, status, reason, agency, paused_until, \
           action, actor, note, at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         WHERE EXISTS (SELECT 1 FROM invoices WHERE invoice_id = $3 AND firm_id = $2) \
         ON CONFLICT (case_id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status, \
           agency = EXCLUDED.agency, paused_until = EXCLUDED.paused_until, action = EXCLUDED.action, \
           actor = EXCLUDED.actor, note = EXCLUDED.note, at = EXCLUDED.at \
         WHERE escalation_cases.version < EXCLUDED.version AND escalation_cases.firm_id = EXCLUDED.firm_id",
    )
    .bind(c.case_id)
    .bind(c.firm_id)
    .bind(c.invoice_id)
    .bind(c.version)
    .bind(c.status)
    .bind(c.reason)
    .bind(c.agency)
    .bind(c.paused_until)
    .bind(c.action)
    .bind(c.actor)
    .bind(c.note)
    .bind(c.at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A person took over: what the client's replies set (dispute, hand-off) no longer stops
/// automation. Only what was recorded up to `at`: a later reply stands.
pub async fn clear_reply_holds(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET \
           client_dispute_evidence = CASE WHEN client_dispute_at <= $2 THEN NULL ELSE client_dispute_evidence END, \
           client_dispute_reply_id = CASE WHEN client_dispute_at <= $2 THEN NULL ELSE client_dispute_reply_id END, \
           client_dispute_at = CASE WHEN client_dispute_at <= $2 THEN NULL ELSE client_dispute_at END, \
           handoff_intent = CASE WHEN handoff_at <= $2 THEN NULL ELSE handoff_intent END, \
           handoff_evidence = CASE WHEN handoff_at <= $2 THEN NULL ELSE handoff_evidence END, \
           handoff_reply_id = CASE WHEN handoff_at <= $2 THEN NULL ELSE handoff_reply_id END, \
           handoff_at = CASE WHEN handoff_at <= $2 THEN NULL ELSE handoff_at END, \
           updated_at = now() \
         WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Recomputes the invoice's case columns from its cases.
pub async fn refresh_cases(conn: &mut PgConnection, invoice_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices i SET cases_open = a.open, case_reasons = a.reasons, case_paused = a.paused, \
           case_paused_until = a.until, updated_at = now() \
         FROM (SELECT count(*) FILTER (WHERE status IN ('open', 'referred'))::int AS open, \
                 string_agg(CASE WHEN status = 'referred' THEN reason || ' (referred to ' || coalesce(agency, 'an agency') || ')' \
                                 ELSE reason END, ', ' ORDER BY case_id) FILTER (WHERE status IN ('open', 'referred')) AS reasons, \
                 bool_or(status = 'paused') IS TRUE AS paused, \
                 CASE WHEN bool_or(status = 'paused' AND paused_until IS NULL) THEN NULL \
                      ELSE max(paused_until) FILTER (WHERE status = 'paused') END AS until \
               FROM escalation_cases WHERE invoice_id = $1) a \
         WHERE i.invoice_id = $1",
    )
    .bind(invoice_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The latest decision of an invoice, for the HTTP API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LatestDecision {
    pub invoice_id: Uuid,
    pub version: i64,
    pub firm_id: Uuid,
    pub eligible: bool,
    pub past_due: bool,
    pub automation_status: String,
    pub checks: serde_json::Value,
    pub evaluated_at: DateTime<Utc>,
}

pub async fn latest_decision(pool: &sqlx::PgPool, invoice_id: Uuid) -> Result<Option<LatestDecision>, sqlx::Error> {
    sqlx::query_as(
        "SELECT invoice_id, version, firm_id, eligible, past_due, automation_status, checks, evaluated_at \
         FROM decisions WHERE invoice_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(invoice_id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_under_the_statement_limit() {
        let sizes = vec![4_000usize; 10];
        let chunks = size_chunks(&sizes, |n| *n);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        // One oversized item still goes, alone.
        let big = vec![100_000usize, 1];
        assert_eq!(size_chunks(&big, |n| *n).len(), 2);
        assert!(size_chunks(&Vec::<usize>::new(), |n| *n).is_empty());
        let v = serde_json::json!({"a": "xyz", "b": [1, 2]});
        assert!(json_size(&v) >= v.to_string().len());
    }
}
