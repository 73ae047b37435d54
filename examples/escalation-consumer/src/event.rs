//! Our own copy of the contract (`docs/events/escalation.v1.schema.json`), not arflow's code.
//! Enumerations are kept as strings: a value added later must not break this consumer.
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// The envelope every arflow event travels in; `data` is decoded once `version` is known.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub id: Uuid,
    /// `escalation.opened`, `escalation.updated` or `escalation.resolved`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version of `data`; this consumer understands 1.
    pub version: u32,
    pub source: String,
    pub time: DateTime<Utc>,
    pub firm_id: Uuid,
    pub subject_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub data: serde_json::Value,
}

/// `data` of version 1: the whole case after the change.
#[derive(Debug, Clone, Deserialize)]
pub struct EscalationCase {
    pub case_id: Uuid,
    /// Increases with every change of the case.
    pub version: i64,
    /// `open`, `paused`, `referred`, `resolved`.
    pub status: String,
    /// `dispute`, `payment_plan`, `question`, `days_past_due`, `manual`...
    pub reason: String,
    pub evidence: String,
    pub firm: Firm,
    pub client: Client,
    pub contact: Option<Contact>,
    pub invoice: Option<Invoice>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub action: Action,
    pub latest_activity: Option<Activity>,
    pub links: Links,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Firm {
    pub firm_id: Uuid,
    pub name: String,
    pub timezone: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Client {
    pub client_id: Uuid,
    pub name: String,
    pub tier: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Contact {
    pub contact_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub invoice_id: Uuid,
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    /// ISO 4217, upper case.
    pub currency: String,
    /// Decimal strings (`"1250.00"`): parse with a decimal type, never a float.
    pub amount_due: String,
    pub amount_remaining: String,
    pub due_date: Option<NaiveDate>,
    pub days_past_due: i64,
    pub hosted_invoice_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    /// `opened`, `pause`, `refer_to_agency`, `resolve`, `mark_uncollectible`...
    pub action: String,
    pub actor: String,
    pub note: String,
    pub at: DateTime<Utc>,
    pub paused_until: Option<DateTime<Utc>>,
    pub agency: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Links {
    pub case: String,
    pub invoice_activity: Option<String>,
    pub hosted_invoice: Option<String>,
}
