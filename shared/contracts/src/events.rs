//! Event payloads (`Envelope::data`) by subject family. Versioned by `Envelope::version`.
use arflow_core::{Channel, Currency, SendWindow};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

// ---------- billing.* (gateway) ----------

/// `billing.firm_updated`: the firm's settings that other services act on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FirmUpdated {
    pub firm_id: Uuid,
    pub name: String,
    /// Reply-to / From address used for reminders.
    pub sender_email: String,
    /// False when the firm's Stripe connection is disconnected or revoked.
    pub stripe_connected: bool,
    /// The firm's own IANA time zone (digests, default for clients without one).
    pub timezone: String,
    /// Minimum amount remaining, per currency, below which no outreach happens.
    pub min_amounts: BTreeMap<Currency, Decimal>,
    pub email_window: SendWindow,
    /// Monotonic per firm; older versions are ignored.
    pub version: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// First invoices with the firm.
    New,
    Standard,
    /// Long-standing client: a softer tone for longer.
    LongStanding,
    /// Key account.
    Key,
}

/// `billing.client_upserted`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientUpserted {
    pub client_id: Uuid,
    pub stripe_customer_id: Option<String>,
    pub name: String,
    pub tier: Tier,
    /// IANA zone; contacts without their own use this.
    pub timezone: Option<String>,
    /// Excluded by the firm from all automation.
    pub excluded: bool,
    pub version: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Consent {
    pub email: bool,
    pub voice: bool,
    pub sms: bool,
}

impl Consent {
    pub fn allows(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Voice => self.voice,
            Channel::Sms => self.sms,
        }
    }
}

/// `billing.contact_upserted`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContactUpserted {
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub timezone: Option<String>,
    /// The primary billing contact is tried first.
    pub primary: bool,
    pub consent: Consent,
    pub version: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

/// `billing.invoice_upserted`: the invoice as Stripe last described it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvoiceUpserted {
    pub invoice_id: Uuid,
    pub client_id: Uuid,
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    pub currency: Currency,
    pub amount_due: Decimal,
    pub amount_remaining: Decimal,
    pub due_date: Option<NaiveDate>,
    pub status: InvoiceStatus,
    pub hosted_invoice_url: Option<String>,
    /// Excluded by the firm.
    pub excluded: bool,
    /// Disputed (by the firm, a client reply, or a Stripe dispute).
    pub disputed: bool,
    /// Ordering key: Stripe's event `created` (seconds) or the record version.
    pub version: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HaltReason {
    Paid,
    PaymentSucceeded,
    PaidOutOfBand,
    Voided,
    Uncollectible,
}

/// `billing.invoice_paid` / `billing.invoice_voided` / `billing.invoice_uncollectible`:
/// the hold is already written when this is published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvoiceHalted {
    pub invoice_id: Uuid,
    pub client_id: Uuid,
    pub stripe_invoice_id: String,
    pub reason: HaltReason,
    pub stripe_event_id: String,
    /// Revision of the hold in the `holds` bucket: the order against send claims.
    pub hold_revision: u64,
    pub version: i64,
}

/// `billing.invoice_payment_failed`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvoicePaymentFailed {
    pub invoice_id: Uuid,
    pub client_id: Uuid,
    pub stripe_invoice_id: String,
    pub stripe_event_id: String,
}

/// `billing.invoice_paused`: a payment promise or payment plan pauses outreach on the
/// invoice until `paused_until`; `None` lifts the pause. (Added by the eligibility work.)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvoicePaused {
    pub invoice_id: Uuid,
    pub client_id: Uuid,
    pub paused_until: Option<DateTime<Utc>>,
    /// Why, for the activity history, e.g. `promise_to_pay` or `payment_plan`.
    pub reason: String,
    /// Monotonic per invoice pause; older versions are ignored.
    pub version: i64,
}

// ---------- eligibility.* ----------

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutomationStatus {
    Enabled,
    Paused,
    Escalated,
    HaltedPaid,
    Uncollectible,
}

/// One eligibility rule's verdict, with the reason shown in the activity history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Check {
    /// Stable rule name, e.g. `amount_above_minimum`.
    pub rule: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvoiceSnapshot {
    pub invoice_id: Uuid,
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    pub currency: Currency,
    pub amount_due: Decimal,
    pub amount_remaining: Decimal,
    pub due_date: Option<NaiveDate>,
    pub hosted_invoice_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientSnapshot {
    pub client_id: Uuid,
    pub name: String,
    pub tier: Tier,
}

/// A contact the step may use, in the order to try them (primary first).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContactSnapshot {
    pub contact_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Resolved: the contact's zone, else the client's, else the firm's.
    pub timezone: Option<String>,
    /// Channels with consent and no opt-out.
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FirmSnapshot {
    pub name: String,
    pub sender_email: String,
    pub timezone: String,
    pub email_window: SendWindow,
}

/// `eligibility.changed`: the full decision, published whenever it changes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EligibilityChanged {
    pub invoice_id: Uuid,
    /// Monotonic per invoice.
    pub version: i64,
    /// Every check except past-due passed: pre-due courtesy steps may run.
    pub eligible: bool,
    /// The invoice is past its due date (overdue steps need this too).
    pub past_due: bool,
    pub automation_status: AutomationStatus,
    pub checks: Vec<Check>,
    /// Until when outreach is paused (a payment promise or plan), if it is.
    pub paused_until: Option<DateTime<Utc>>,
    pub invoice: InvoiceSnapshot,
    pub client: ClientSnapshot,
    pub contacts: Vec<ContactSnapshot>,
    pub firm: FirmSnapshot,
    pub evaluated_at: DateTime<Utc>,
}

impl EligibilityChanged {
    pub fn failed_rules(&self) -> Vec<&str> {
        self.checks.iter().filter(|c| !c.passed).map(|c| c.rule.as_str()).collect()
    }
}

/// `eligibility.all_contacts_opted_out`: the firm is warned, automation for the client stops.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AllContactsOptedOut {
    pub client_id: Uuid,
    pub client_name: String,
    pub invoice_ids: Vec<Uuid>,
}

// ---------- outreach.* ----------

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Friendly,
    Firm,
    Final,
}

/// Why a step is being sent, for the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explanation {
    /// The cadence rule, e.g. `default-email/overdue_14`.
    pub rule: String,
    pub policy_id: Uuid,
    pub policy_version: i32,
    /// The eligibility checks as they stood when the step fired.
    pub eligibility_version: i64,
    pub checks: Vec<Check>,
}

/// `outreach.step_due.email`: one email to send, exactly once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepDue {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    /// Cadence step name (`pre_due`, `due_today`, `overdue_3`, ...).
    pub step: String,
    pub channel: Channel,
    pub tone: Tone,
    /// Include the hosted payment link.
    pub pay_link: bool,
    pub scheduled_for: DateTime<Utc>,
    pub contact: ContactSnapshot,
    pub invoice: InvoiceSnapshot,
    pub client: ClientSnapshot,
    pub firm: FirmSnapshot,
    pub days_overdue: i64,
    pub explanation: Explanation,
}

/// `outreach.step_skipped`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepSkipped {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub step: String,
    pub scheduled_for: DateTime<Utc>,
    /// Stable reason, e.g. `superseded_after_downtime`, `invoice_halted`, `ineligible`.
    pub reason: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NextAction {
    pub step: String,
    pub channel: Channel,
    pub at: DateTime<Utc>,
}

/// `outreach.plan_updated`: automation status and next action of an invoice.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanUpdated {
    pub invoice_id: Uuid,
    pub automation_status: AutomationStatus,
    pub next: Option<NextAction>,
    pub reason: String,
    pub version: i64,
}

/// `outreach.email.sent`: what went out, and why (fence 6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailSent {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub to: String,
    pub message_id: String,
    pub template: String,
    pub template_version: i32,
    pub subject: String,
    pub body_text: String,
    pub explanation: Explanation,
}

/// `outreach.email.failed`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailFailed {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub reason: String,
    pub permanent: bool,
}

/// `outreach.email.suppressed`: the last check before SMTP stopped it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailSuppressed {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    /// `invoice_held` or `contact_held`.
    pub reason: String,
    pub hold: serde_json::Value,
}

// ---------- consent.* ----------

/// `consent.opted_out` / `consent.opted_in`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsentChanged {
    pub contact_id: Uuid,
    pub client_id: Uuid,
    /// `None` means every channel.
    pub channel: Option<Channel>,
    pub source: String,
    pub evidence: String,
}

// ---------- dlq.* ----------

/// `dlq.<service>`: a message a service could never process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub service: String,
    pub consumer: String,
    pub stream: String,
    pub stream_sequence: u64,
    pub subject: String,
    pub deliveries: i64,
    pub reason: String,
    /// The original payload, as text when it was UTF-8.
    pub payload: String,
    pub dead_lettered_at: DateTime<Utc>,
}
