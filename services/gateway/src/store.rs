//! The gateway's SQL (runtime queries on the `gateway` schema). Rows here, wire types in `routes`.
use arflow_contracts::events::{
    ClientUpserted, Consent, ContactUpserted, InvoiceStatus, InvoiceUpserted, NextAction, Tier,
};
use arflow_core::{Currency, SendWindow};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A query from a literal with the constant column lists spliced in (no user data: safe).
macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

/// A stored enum value that no longer parses (a bug or a manual edit): surfaced, not guessed.
#[derive(Debug, thiserror::Error)]
#[error("stored value {value:?} is not a valid {what}")]
pub struct BadValue {
    pub what: &'static str,
    pub value: String,
}

/// The snake_case text of a serde enum (`Tier::LongStanding` -> `long_standing`).
pub fn to_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub fn from_text<T: DeserializeOwned>(what: &'static str, s: &str) -> Result<T, BadValue> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| BadValue { what, value: s.to_string() })
}

// ---------- firms and keys ----------

/// `Debug` is written by hand: the webhook secrets and the Stripe key never print.
#[derive(Clone, sqlx::FromRow)]
pub struct FirmRow {
    pub id: Uuid,
    pub name: String,
    pub sender_email: String,
    pub timezone: String,
    pub stripe_connected: bool,
    pub stripe_webhook_secrets: Vec<String>,
    pub stripe_api_key: Option<String>,
    pub min_amounts: Json<BTreeMap<Currency, Decimal>>,
    pub email_window: Json<SendWindow>,
    /// The firm's calling/texting window (`None`: the default, 08:00-21:00 Mon-Sat).
    pub call_window: Option<Json<SendWindow>>,
    /// Days raw inbound mail is kept before it is purged from the object store.
    pub raw_mail_retention_days: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for FirmRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("timezone", &self.timezone)
            .field("stripe_connected", &self.stripe_connected)
            .field("stripe_webhook_secrets", &format_args!("[{} redacted]", self.stripe_webhook_secrets.len()))
            .field("stripe_api_key", &self.stripe_api_key.as_ref().map(|_| "[redacted]"))
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

const FIRM_COLUMNS: &str = "id, name, sender_email, timezone, stripe_connected, stripe_webhook_secrets, \
    stripe_api_key, min_amounts, email_window, call_window, raw_mail_retention_days, version, created_at";

pub async fn insert_firm(conn: &mut PgConnection, f: &FirmRow, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO firms (id, name, sender_email, timezone, stripe_connected, stripe_webhook_secrets, \
         stripe_api_key, min_amounts, email_window, version, created_at, updated_at, call_window, \
         raw_mail_retention_days) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)",
    )
    .bind(f.id)
    .bind(&f.name)
    .bind(&f.sender_email)
    .bind(&f.timezone)
    .bind(f.stripe_connected)
    .bind(&f.stripe_webhook_secrets)
    .bind(&f.stripe_api_key)
    .bind(&f.min_amounts)
    .bind(&f.email_window)
    .bind(f.version)
    .bind(now)
    .bind(&f.call_window)
    .bind(f.raw_mail_retention_days)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_firm(conn: &mut PgConnection, f: &FirmRow, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE firms SET name = $2, sender_email = $3, timezone = $4, stripe_connected = $5, \
         stripe_webhook_secrets = $6, stripe_api_key = $7, min_amounts = $8, email_window = $9, version = $10, \
         updated_at = $11, call_window = $12, raw_mail_retention_days = $13 WHERE id = $1",
    )
    .bind(f.id)
    .bind(&f.name)
    .bind(&f.sender_email)
    .bind(&f.timezone)
    .bind(f.stripe_connected)
    .bind(&f.stripe_webhook_secrets)
    .bind(&f.stripe_api_key)
    .bind(&f.min_amounts)
    .bind(&f.email_window)
    .bind(f.version)
    .bind(now)
    .bind(&f.call_window)
    .bind(f.raw_mail_retention_days)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn firm(pool: &PgPool, id: Uuid) -> Result<Option<FirmRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {FIRM_COLUMNS} FROM firms WHERE id = $1")).bind(id).fetch_optional(pool).await
}

pub async fn firm_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<FirmRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {FIRM_COLUMNS} FROM firms WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

// ---------- inbound messages ----------

/// Records an inbound message once per firm and content; `None` when it was already received.
pub async fn record_inbound(
    conn: &mut PgConnection,
    firm_id: Uuid,
    sha256: &str,
    reply_id: Uuid,
    channel: &str,
    size: i64,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO inbound_messages (firm_id, sha256, reply_id, channel, size, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (firm_id, sha256) DO NOTHING RETURNING reply_id",
    )
    .bind(firm_id)
    .bind(sha256)
    .bind(reply_id)
    .bind(channel)
    .bind(size)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// The reply id an earlier delivery of the same message got.
pub async fn inbound_reply_id(
    conn: &mut PgConnection,
    firm_id: Uuid,
    sha256: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT reply_id FROM inbound_messages WHERE firm_id = $1 AND sha256 = $2")
            .bind(firm_id)
            .bind(sha256)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(id,)| id))
}

// ---------- clients ----------

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClientRow {
    pub id: Uuid,
    pub firm_id: Uuid,
    pub stripe_customer_id: Option<String>,
    pub name: String,
    pub tier: String,
    pub timezone: Option<String>,
    pub excluded: bool,
    pub version: i64,
    pub stripe_version: i64,
    pub created_at: DateTime<Utc>,
}

const CLIENT_COLUMNS: &str =
    "id, firm_id, stripe_customer_id, name, tier, timezone, excluded, version, stripe_version, created_at";

impl ClientRow {
    pub fn tier(&self) -> Result<Tier, BadValue> {
        from_text("tier", &self.tier)
    }

    pub fn event(&self) -> Result<ClientUpserted, BadValue> {
        Ok(ClientUpserted {
            client_id: self.id,
            stripe_customer_id: self.stripe_customer_id.clone(),
            name: self.name.clone(),
            tier: self.tier()?,
            timezone: self.timezone.clone(),
            excluded: self.excluded,
            version: self.version,
        })
    }
}

pub async fn upsert_client(conn: &mut PgConnection, c: &ClientRow, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clients (id, firm_id, stripe_customer_id, name, tier, timezone, excluded, version, \
         stripe_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id, name = EXCLUDED.name, \
         tier = EXCLUDED.tier, timezone = EXCLUDED.timezone, excluded = EXCLUDED.excluded, \
         version = EXCLUDED.version, stripe_version = EXCLUDED.stripe_version, updated_at = EXCLUDED.updated_at",
    )
    .bind(c.id)
    .bind(c.firm_id)
    .bind(&c.stripe_customer_id)
    .bind(&c.name)
    .bind(&c.tier)
    .bind(&c.timezone)
    .bind(c.excluded)
    .bind(c.version)
    .bind(c.stripe_version)
    .bind(c.created_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn client(conn: &mut PgConnection, firm_id: Uuid, id: Uuid) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {CLIENT_COLUMNS} FROM clients WHERE firm_id = $1 AND id = $2 FOR UPDATE"))
        .bind(firm_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Serializes, until the transaction ends, everything that may create the client of one Stripe
/// customer: concurrent webhooks for a customer arflow has not seen yet would otherwise both
/// insert it and one would fail on the unique (firm, customer) constraint.
pub async fn lock_stripe_customer(
    conn: &mut PgConnection,
    firm_id: Uuid,
    stripe_customer_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("stripe-customer:{firm_id}:{stripe_customer_id}"))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn client_by_stripe_id(
    conn: &mut PgConnection,
    firm_id: Uuid,
    stripe_customer_id: &str,
) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE firm_id = $1 AND stripe_customer_id = $2 FOR UPDATE"
    ))
    .bind(firm_id)
    .bind(stripe_customer_id)
    .fetch_optional(conn)
    .await
}

pub async fn list_clients(
    pool: &PgPool,
    firm_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ClientRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE firm_id = $1 AND ($2::uuid IS NULL OR id > $2) \
         ORDER BY id LIMIT $3"
    ))
    .bind(firm_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

// ---------- contacts ----------

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ContactRow {
    pub id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub timezone: Option<String>,
    pub is_primary: bool,
    pub consent_email: bool,
    pub consent_voice: bool,
    pub consent_sms: bool,
    pub from_stripe: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

const CONTACT_COLUMNS: &str = "id, firm_id, client_id, name, email, phone, timezone, is_primary, consent_email, \
    consent_voice, consent_sms, from_stripe, version, created_at";

impl ContactRow {
    pub fn consent(&self) -> Consent {
        Consent { email: self.consent_email, voice: self.consent_voice, sms: self.consent_sms }
    }

    pub fn event(&self) -> ContactUpserted {
        ContactUpserted {
            contact_id: self.id,
            client_id: self.client_id,
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            timezone: self.timezone.clone(),
            primary: self.is_primary,
            consent: self.consent(),
            version: self.version,
        }
    }
}

pub async fn upsert_contact(conn: &mut PgConnection, c: &ContactRow, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contacts (id, firm_id, client_id, name, email, phone, timezone, is_primary, consent_email, \
         consent_voice, consent_sms, from_stripe, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone, \
         timezone = EXCLUDED.timezone, is_primary = EXCLUDED.is_primary, consent_email = EXCLUDED.consent_email, \
         consent_voice = EXCLUDED.consent_voice, consent_sms = EXCLUDED.consent_sms, version = EXCLUDED.version, \
         updated_at = EXCLUDED.updated_at",
    )
    .bind(c.id)
    .bind(c.firm_id)
    .bind(c.client_id)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.timezone)
    .bind(c.is_primary)
    .bind(c.consent_email)
    .bind(c.consent_voice)
    .bind(c.consent_sms)
    .bind(c.from_stripe)
    .bind(c.version)
    .bind(c.created_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn contact(conn: &mut PgConnection, firm_id: Uuid, id: Uuid) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE firm_id = $1 AND id = $2 FOR UPDATE"))
        .bind(firm_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn contacts_of_client(
    conn: &mut PgConnection,
    firm_id: Uuid,
    client_id: Uuid,
) -> Result<Vec<ContactRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE firm_id = $1 AND client_id = $2 ORDER BY id FOR UPDATE"
    ))
    .bind(firm_id)
    .bind(client_id)
    .fetch_all(conn)
    .await
}

// ---------- invoices ----------

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub firm_id: Uuid,
    pub client_id: Uuid,
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    pub currency: String,
    pub amount_due: Decimal,
    pub amount_remaining: Decimal,
    pub due_date: Option<NaiveDate>,
    pub status: String,
    pub hosted_invoice_url: Option<String>,
    pub excluded: bool,
    pub disputed: bool,
    pub version: i64,
    pub stripe_version: i64,
    pub automation_status: Option<String>,
    pub next_action: Option<Json<NextAction>>,
    pub created_at: DateTime<Utc>,
}

const INVOICE_COLUMNS: &str = "id, firm_id, client_id, stripe_invoice_id, number, currency, amount_due, \
    amount_remaining, due_date, status, hosted_invoice_url, excluded, disputed, version, stripe_version, \
    automation_status, next_action, created_at";

impl InvoiceRow {
    pub fn status(&self) -> Result<InvoiceStatus, BadValue> {
        from_text("invoice status", &self.status)
    }

    pub fn currency(&self) -> Result<Currency, BadValue> {
        Currency::parse(&self.currency).map_err(|_| BadValue { what: "currency", value: self.currency.clone() })
    }

    /// `d` with the currency's number of decimals (PostgreSQL drops the scale of zero).
    pub fn scaled(&self, d: Decimal) -> Decimal {
        let mut d = d;
        if let Ok(c) = self.currency() {
            d.rescale(c.minor_digits());
        }
        d
    }

    pub fn event(&self) -> Result<InvoiceUpserted, BadValue> {
        Ok(InvoiceUpserted {
            invoice_id: self.id,
            client_id: self.client_id,
            stripe_invoice_id: self.stripe_invoice_id.clone(),
            number: self.number.clone(),
            currency: self.currency()?,
            amount_due: self.scaled(self.amount_due),
            amount_remaining: self.scaled(self.amount_remaining),
            due_date: self.due_date,
            status: self.status()?,
            hosted_invoice_url: self.hosted_invoice_url.clone(),
            excluded: self.excluded,
            disputed: self.disputed,
            version: self.version,
        })
    }
}

/// arflow's id for a Stripe invoice, allocated once per (firm, Stripe id).
pub async fn invoice_id_for(
    conn: &mut PgConnection,
    firm_id: Uuid,
    stripe_invoice_id: &str,
) -> Result<Uuid, sqlx::Error> {
    // A known invoice (the usual case for a payment) is a read: no write, no WAL flush before
    // the hold goes out.
    let known: Option<(Uuid,)> =
        sqlx::query_as("SELECT invoice_id FROM invoice_ids WHERE firm_id = $1 AND stripe_invoice_id = $2")
            .bind(firm_id)
            .bind(stripe_invoice_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((id,)) = known {
        return Ok(id);
    }
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO invoice_ids (firm_id, stripe_invoice_id, invoice_id) VALUES ($1, $2, $3) \
         ON CONFLICT (firm_id, stripe_invoice_id) DO UPDATE SET stripe_invoice_id = EXCLUDED.stripe_invoice_id \
         RETURNING invoice_id",
    )
    .bind(firm_id)
    .bind(stripe_invoice_id)
    .bind(arflow_core::new_id())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Writes the record fields (not the projection columns).
pub async fn upsert_invoice(conn: &mut PgConnection, i: &InvoiceRow, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoices (id, firm_id, client_id, stripe_invoice_id, number, currency, amount_due, \
         amount_remaining, due_date, status, hosted_invoice_url, excluded, disputed, version, stripe_version, \
         automation_status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (id) DO UPDATE SET number = EXCLUDED.number, currency = EXCLUDED.currency, \
         amount_due = EXCLUDED.amount_due, amount_remaining = EXCLUDED.amount_remaining, \
         due_date = EXCLUDED.due_date, status = EXCLUDED.status, hosted_invoice_url = EXCLUDED.hosted_invoice_url, \
         excluded = EXCLUDED.excluded, disputed = EXCLUDED.disputed, version = EXCLUDED.version, \
         stripe_version = EXCLUDED.stripe_version, automation_status = EXCLUDED.automation_status, \
         updated_at = EXCLUDED.updated_at",
    )
    .bind(i.id)
    .bind(i.firm_id)
    .bind(i.client_id)
    .bind(&i.stripe_invoice_id)
    .bind(&i.number)
    .bind(&i.currency)
    .bind(i.amount_due)
    .bind(i.amount_remaining)
    .bind(i.due_date)
    .bind(&i.status)
    .bind(&i.hosted_invoice_url)
    .bind(i.excluded)
    .bind(i.disputed)
    .bind(i.version)
    .bind(i.stripe_version)
    .bind(&i.automation_status)
    .bind(i.created_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn invoice(conn: &mut PgConnection, firm_id: Uuid, id: Uuid) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sql!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE firm_id = $1 AND id = $2 FOR UPDATE"))
        .bind(firm_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn list_invoices(
    pool: &PgPool,
    firm_id: Uuid,
    client_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sql!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE firm_id = $1 AND ($2::uuid IS NULL OR client_id = $2) \
         AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4"
    ))
    .bind(firm_id)
    .bind(client_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn open_invoices_of_client(
    conn: &mut PgConnection,
    firm_id: Uuid,
    client_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM invoices WHERE firm_id = $1 AND client_id = $2 AND status IN ('open', 'draft')")
            .bind(firm_id)
            .bind(client_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

// ---------- webhook events ----------

pub async fn webhook_event_seen(pool: &PgPool, firm_id: Uuid, event_id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM webhook_events WHERE firm_id = $1 AND event_id = $2")
        .bind(firm_id)
        .bind(event_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// Records a webhook event; false when it was already recorded (a duplicate delivery).
#[allow(clippy::too_many_arguments)]
pub async fn record_webhook_event(
    conn: &mut PgConnection,
    firm_id: Uuid,
    event_id: &str,
    kind: &str,
    created: i64,
    outcome: &str,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO webhook_events (firm_id, event_id, type, created, outcome, payload, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(firm_id)
    .bind(event_id)
    .bind(kind)
    .bind(created)
    .bind(outcome)
    .bind(payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------- activity ----------

/// The "why" of an activity entry; every field optional, shown as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActivityDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<arflow_contracts::events::Check>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_revision: Option<u64>,
    /// A client reply: the intent understood, the phrase that decided it, the client's own text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_date: Option<chrono::NaiveDate>,
    /// `email`, `voice` or `sms` (calls, texts and replies; older email entries have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The number called or texted, masked (`+1******0123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A call attempt: what happened and what was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallActivity>,
    /// A reply not understood with confidence: the classifier's likeliest intents with their
    /// scores, for the person who labels it (`needs_review` case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<arflow_contracts::events::IntentScore>>,
    /// A reply a firm user labelled: who (the intent is `intent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelled_by: Option<String>,
}

/// One call attempt in an invoice's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallActivity {
    /// `completed`, `no_answer`, `voicemail`, `failed`.
    pub outcome: String,
    /// 1 for the step's first call, then each retry.
    pub attempt: u32,
    /// The provider's final status (`completed`, `busy`, `no-answer`...).
    pub provider_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u32>,
    /// The conversation, in order: `{speaker: agent|client, text, intent?, at}`.
    #[schema(value_type = Vec<Object>)]
    pub transcript: Vec<arflow_contracts::events::TranscriptTurn>,
    /// What the client expressed, in order.
    pub intents: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    /// The call script and its version, e.g. `call-firm@1`.
    pub script: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_call_sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewActivity {
    pub firm_id: Uuid,
    pub invoice_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
    pub detail: ActivityDetail,
    pub event_id: String,
}

pub async fn add_activity(conn: &mut PgConnection, a: &NewActivity) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO activity (firm_id, invoice_id, at, kind, summary, detail, event_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(a.firm_id)
    .bind(a.invoice_id)
    .bind(a.at)
    .bind(&a.kind)
    .bind(&a.summary)
    .bind(Json(&a.detail))
    .bind(&a.event_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
    pub detail: Json<ActivityDetail>,
    pub event_id: String,
}

pub async fn activity_of(pool: &PgPool, firm_id: Uuid, invoice_id: Uuid) -> Result<Vec<ActivityRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, kind, summary, detail, event_id FROM activity WHERE firm_id = $1 AND invoice_id = $2 \
         ORDER BY at, id",
    )
    .bind(firm_id)
    .bind(invoice_id)
    .fetch_all(pool)
    .await
}

/// `(key, count)` pairs of one grouping for the portfolio.
pub async fn count_by(pool: &PgPool, firm_id: Uuid, sql: &'static str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(sql).bind(firm_id).fetch_all(pool).await
}

// ---------- projection (consumers) ----------

/// The invoice's firm, when the gateway knows the invoice.
pub async fn invoice_firm(conn: &mut PgConnection, invoice_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT firm_id FROM invoices WHERE id = $1").bind(invoice_id).fetch_optional(conn).await?;
    Ok(row.map(|(f,)| f))
}

/// Applies an eligibility decision if it is newer than the last one. `None`: it was older
/// (nothing changed); `Some(previous)`: applied, with the failed rules recorded before it.
pub async fn apply_eligibility(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    version: i64,
    failed: &[String],
    automation_status: &str,
) -> Result<Option<Option<Vec<String>>>, sqlx::Error> {
    let row: Option<(Option<Vec<String>>,)> = sqlx::query_as(
        "UPDATE invoices i SET eligibility_version = $2, failed_rules = $3, automation_status = $4 \
         FROM (SELECT id, failed_rules AS previous FROM invoices WHERE id = $1 FOR UPDATE) p \
         WHERE i.id = p.id AND i.eligibility_version < $2 RETURNING p.previous",
    )
    .bind(invoice_id)
    .bind(version)
    .bind(failed)
    .bind(automation_status)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(p,)| p))
}

/// Applies a plan update if newer; true when applied.
pub async fn apply_plan(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    version: i64,
    automation_status: &str,
    next: Option<&NextAction>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invoices SET plan_version = $2, automation_status = $3, next_action = $4 \
         WHERE id = $1 AND plan_version < $2",
    )
    .bind(invoice_id)
    .bind(version)
    .bind(automation_status)
    .bind(next.map(Json))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------- unsubscribe ----------

/// Records an unsubscribe; false when this token was already used.
pub async fn record_unsubscribe(
    conn: &mut PgConnection,
    token_hash: &str,
    firm_id: Uuid,
    contact_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO unsubscribes (token_hash, firm_id, contact_id, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(token_hash)
    .bind(firm_id)
    .bind(contact_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------- the reply inbox ----------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplyRow {
    pub reply_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub channel: String,
    pub kind: String,
    pub intent: Option<String>,
    pub promised_date: Option<chrono::NaiveDate>,
    pub evidence: String,
    pub client_text: String,
    pub invoice_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub matched_by: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub action: String,
    /// Not understood with confidence: waiting for a firm user's label.
    pub needs_review: bool,
    /// The firm user who labelled it.
    pub labelled_by: Option<String>,
}

/// Records a classified reply in the firm's inbox (once); a firm user's label of it replaces
/// what the classifier said (intent, date, action) and ends its review.
pub async fn add_reply(conn: &mut PgConnection, firm_id: Uuid, r: &ReplyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO replies (reply_id, firm_id, received_at, channel, kind, intent, promised_date, evidence, \
         client_text, invoice_id, contact_id, matched_by, from_address, subject, action, needs_review, labelled_by) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 \
         WHERE EXISTS (SELECT 1 FROM firms WHERE id = $2) \
         ON CONFLICT (reply_id) DO UPDATE SET intent = EXCLUDED.intent, promised_date = EXCLUDED.promised_date, \
           action = EXCLUDED.action, needs_review = false, labelled_by = EXCLUDED.labelled_by \
         WHERE EXCLUDED.labelled_by IS NOT NULL AND replies.labelled_by IS NULL AND replies.firm_id = EXCLUDED.firm_id",
    )
    .bind(r.reply_id)
    .bind(firm_id)
    .bind(r.received_at)
    .bind(&r.channel)
    .bind(&r.kind)
    .bind(&r.intent)
    .bind(r.promised_date)
    .bind(&r.evidence)
    .bind(&r.client_text)
    .bind(r.invoice_id)
    .bind(r.contact_id)
    .bind(&r.matched_by)
    .bind(&r.from_address)
    .bind(&r.subject)
    .bind(&r.action)
    .bind(r.needs_review)
    .bind(&r.labelled_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// The firm's replies, newest first (reply ids are UUIDv7), filtered by intent / matched.
pub async fn list_replies(
    pool: &PgPool,
    firm_id: Uuid,
    intent: Option<&str>,
    matched: Option<bool>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ReplyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reply_id, received_at, channel, kind, intent, promised_date, evidence, client_text, invoice_id, \
         contact_id, matched_by, from_address, subject, action, needs_review, labelled_by FROM replies \
         WHERE firm_id = $1 AND ($2::text IS NULL OR intent = $2 OR kind = $2 OR ($2 = 'needs_review' AND needs_review)) \
         AND ($3::bool IS NULL OR (invoice_id IS NOT NULL) = $3) AND ($4::uuid IS NULL OR reply_id < $4) \
         ORDER BY reply_id DESC LIMIT $5",
    )
    .bind(firm_id)
    .bind(intent)
    .bind(matched)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

// ---------- retention ----------

/// Raw inbound messages older than their firm's retention (by the business clock), not purged
/// yet: their object names.
pub async fn inbound_to_purge(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.firm_id, m.sha256 FROM inbound_messages m JOIN firms f ON f.id = m.firm_id \
         WHERE m.purged_at IS NULL AND m.received_at < $1 - make_interval(days => f.raw_mail_retention_days) \
         ORDER BY m.received_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn mark_inbound_purged(
    pool: &PgPool,
    firm_id: Uuid,
    sha256: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbound_messages SET purged_at = $3 WHERE firm_id = $1 AND sha256 = $2")
        .bind(firm_id)
        .bind(sha256)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes Stripe webhook records received before `webhooks_before` and Idempotency-Keys claimed
/// before `keys_before` (by the business clock): past Stripe's 3-day retry window, and past the
/// 24 hours a key is kept, they only grow the tables.
pub async fn prune_dedupe(
    pool: &PgPool,
    webhooks_before: DateTime<Utc>,
    keys_before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let a =
        sqlx::query("DELETE FROM webhook_events WHERE received_at < $1").bind(webhooks_before).execute(pool).await?;
    let b = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(keys_before).execute(pool).await?;
    Ok(a.rows_affected() + b.rows_affected())
}
