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
    /// The firm's quieter calling/texting window (`None` = the default call window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_window: Option<SendWindow>,
    /// Monotonic per firm; older versions are ignored.
    pub version: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
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

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::New, Tier::Standard, Tier::LongStanding, Tier::Key];

    /// The wire and storage name (`long_standing`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::New => "new",
            Tier::Standard => "standard",
            Tier::LongStanding => "long_standing",
            Tier::Key => "key",
        }
    }

    /// The tier a stored name stands for.
    pub fn parse(name: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == name)
    }
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

/// `billing.stripe_command_failed`: Stripe refused a command the gateway ran on behalf of
/// another service (e.g. `mark_uncollectible` for an escalation case).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StripeCommandFailed {
    /// `mark_uncollectible`.
    pub command: String,
    /// The `Nats-Msg-Id` request id of the command.
    pub request_id: Uuid,
    pub case_id: Option<Uuid>,
    pub invoice_id: Uuid,
    pub stripe_invoice_id: String,
    /// Stripe's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Stripe's message (or why the command could not be sent).
    pub message: String,
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
    /// The zone the contact experiences a call or text in: the contact's, else the client's;
    /// never the firm's. `None` when unknown: no call or text is placed (fence 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timezone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FirmSnapshot {
    pub name: String,
    pub sender_email: String,
    pub timezone: String,
    pub email_window: SendWindow,
    /// The firm's own, quieter calling and texting window (read in the contact's zone), on
    /// top of the 08:00-21:00 fence; `None` = the default call window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_window: Option<SendWindow>,
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
    /// Why it is paused: `promise_to_pay`, `already_paid` (awaiting Stripe), `payment_plan`...
    #[serde(default)]
    pub pause_reason: Option<String>,
    /// The latest payment promise that passed its date (plus grace) unpaid, if any: the
    /// scheduler resumes with a firmer step.
    #[serde(default)]
    pub broken_promise: Option<PromiseBroken>,
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

/// `eligibility.promise_broken`: the promised date plus the grace period passed and Stripe has
/// not reported payment. Recorded once per promise.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PromiseBroken {
    pub invoice_id: Uuid,
    pub client_id: Uuid,
    /// `None` for a promise without a date (the default pause applied).
    pub promised_date: Option<NaiveDate>,
    /// When the pause ended.
    pub paused_until: DateTime<Utc>,
    /// The client's words that made the promise.
    pub evidence: String,
    pub reply_id: Option<Uuid>,
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
    /// Set on the step that follows a broken payment promise: the date the client promised
    /// (`None` on every other step, and when the promise named no date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_date: Option<NaiveDate>,
    /// True on that follow-up step (its template recalls the promise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_broken_promise: bool,
    /// 1 for a step's first try; a call retried after no answer counts up.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
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

/// `outreach.cadence_exhausted`: every step of the invoice's cadence is done (the last one
/// fired, or was skipped because nobody can be reached on its channel) and nothing is pending,
/// while the invoice is still open: a person should look.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CadenceExhausted {
    pub invoice_id: Uuid,
    /// The step the cadence ended with, e.g. `overdue_30`: the last to fire, or a last step
    /// skipped because no contact can be reached on its channel (email suppressed everywhere).
    pub last_step: String,
    pub last_step_id: Uuid,
    pub fired_at: DateTime<Utc>,
    /// Steps of the plan that fired (were handed to a channel).
    pub steps_fired: i64,
    pub policy_id: Uuid,
    pub policy_version: i32,
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

/// How a call ended; each has its own subject (`outreach.voice.<outcome>`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// A person answered and the conversation ran.
    Completed,
    /// Nobody picked up, or the line was busy.
    NoAnswer,
    /// An answering machine took a short message (no amounts said).
    Voicemail,
    /// The provider could not place the call.
    Failed,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 4] =
        [CallOutcome::Completed, CallOutcome::NoAnswer, CallOutcome::Voicemail, CallOutcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Completed => "completed",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Voicemail => "voicemail",
            CallOutcome::Failed => "failed",
        }
    }

    /// `outreach.voice.<outcome>` (without the firm).
    pub fn subject(self) -> &'static str {
        use crate::subjects::outreach;
        match self {
            CallOutcome::Completed => outreach::VOICE_COMPLETED,
            CallOutcome::NoAnswer => outreach::VOICE_NO_ANSWER,
            CallOutcome::Voicemail => outreach::VOICE_VOICEMAIL,
            CallOutcome::Failed => outreach::VOICE_FAILED,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// arflow's voice agent.
    Agent,
    /// The person who answered.
    Client,
}

/// One turn of a call's conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TranscriptTurn {
    pub speaker: Speaker,
    pub text: String,
    /// What the client's words meant (client turns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<ReplyIntent>,
    pub at: DateTime<Utc>,
}

/// `outreach.voice.{completed,no_answer,voicemail,failed}`: one call attempt, explained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallEnded {
    pub call_id: Uuid,
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub step: String,
    pub attempt: u32,
    pub outcome: CallOutcome,
    /// The provider's final call status (`completed`, `busy`, `no-answer`, `failed`, `canceled`).
    pub provider_status: String,
    /// Answering-machine detection's verdict (`human`, `machine_end_beep`, ...).
    pub answered_by: Option<String>,
    pub provider_call_sid: Option<String>,
    /// E.164 number called.
    pub to: String,
    pub duration_secs: Option<u32>,
    pub placed_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub transcript: Vec<TranscriptTurn>,
    /// What the client expressed, in order (client turns' intents).
    pub intents: Vec<ReplyIntent>,
    /// For a promise made on the call, the date.
    pub promised_date: Option<NaiveDate>,
    pub recording_url: Option<String>,
    /// The call script and its version, e.g. `call-firm@1`.
    pub script: String,
    /// In words, e.g. `busy`, `promise to pay on 2026-03-20 confirmed`.
    pub detail: String,
    pub explanation: Explanation,
}

/// `outreach.voice.skipped` / `outreach.sms.skipped`: the channel service's last check refused
/// a step; nothing was dialled or sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelStepSkipped {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub channel: Channel,
    pub attempt: u32,
    /// Stable: `timezone_unknown`, `no_consent`, `no_phone`, `attempt_cap`, `invoice_held`,
    /// `contact_held`.
    pub reason: String,
    pub detail: String,
}

impl ChannelStepSkipped {
    /// Reasons after which the scheduler falls back to email (the client can still be
    /// reached in writing); a hold stops every channel instead.
    pub fn email_may_follow(&self) -> bool {
        matches!(self.reason.as_str(), "timezone_unknown" | "no_consent" | "no_phone" | "attempt_cap")
    }
}

/// `outreach.sms.sent`: a text handed to the provider, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SmsSent {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub to: String,
    pub message_sid: String,
    pub template: String,
    pub template_version: i32,
    pub body: String,
    pub explanation: Explanation,
}

/// `outreach.sms.failed`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SmsFailed {
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub reason: String,
    pub permanent: bool,
}

/// `outreach.email.bounced`: a delivery status notification for one of our emails.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailBounced {
    pub reply_id: Uuid,
    pub step_id: Option<Uuid>,
    pub invoice_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub bounce: BounceInfo,
}

// ---------- reply.* ----------

/// `reply.received`: a raw inbound message reached the gateway. The bytes are in the
/// `inbound` object store under `object`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplyReceived {
    pub reply_id: Uuid,
    pub channel: Channel,
    pub object: String,
    pub sha256: String,
    pub size: u64,
    pub received_at: DateTime<Utc>,
}

/// What a client's reply means (labels and precedence: `../shared/corpus/README.md`).
/// The wire form of the classifier's intent, so the contract does not move with the library.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyIntent {
    OptOut,
    Dispute,
    AlreadyPaid,
    PaymentPlan,
    PromiseToPay,
    WrongContact,
    Question,
    Acknowledged,
    AutoReply,
}

impl ReplyIntent {
    /// Every intent, in precedence order.
    pub const ALL: [ReplyIntent; 9] = [
        ReplyIntent::OptOut,
        ReplyIntent::Dispute,
        ReplyIntent::AlreadyPaid,
        ReplyIntent::PaymentPlan,
        ReplyIntent::PromiseToPay,
        ReplyIntent::WrongContact,
        ReplyIntent::Question,
        ReplyIntent::Acknowledged,
        ReplyIntent::AutoReply,
    ];

    /// The intent a label names (`opt_out`...), or `None` for anything else.
    pub fn parse(label: &str) -> Option<ReplyIntent> {
        ReplyIntent::ALL.into_iter().find(|i| i.as_str() == label)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyIntent::OptOut => "opt_out",
            ReplyIntent::Dispute => "dispute",
            ReplyIntent::AlreadyPaid => "already_paid",
            ReplyIntent::PaymentPlan => "payment_plan",
            ReplyIntent::PromiseToPay => "promise_to_pay",
            ReplyIntent::WrongContact => "wrong_contact",
            ReplyIntent::Question => "question",
            ReplyIntent::Acknowledged => "acknowledged",
            ReplyIntent::AutoReply => "auto_reply",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// A person answered.
    Reply,
    /// Out of office, ticket acknowledgement.
    AutoReply,
    /// A delivery status notification.
    Bounce,
    /// A spam complaint (ARF feedback report).
    Complaint,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BounceInfo {
    pub recipient: String,
    /// 5.x.x: the address will never work; 4.x.x: it may later.
    pub hard: bool,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: String,
}

/// `reply.classified`: one inbound message, understood and matched to what we sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplyClassified {
    pub reply_id: Uuid,
    pub channel: Channel,
    pub kind: ReplyKind,
    /// `None` for bounces and complaints.
    pub intent: Option<ReplyIntent>,
    /// For `promise_to_pay`, when the date could be resolved.
    pub promised_date: Option<NaiveDate>,
    /// The phrase that decided the intent (shown in the activity history).
    pub evidence: String,
    /// `!needs_review`: the decision may be acted on without a person.
    pub sure: bool,
    /// Calibrated probability (0-1) that `intent` is right (1.0 for precise rules and labels).
    #[serde(default = "certain")]
    pub confidence: f32,
    /// The reply was not understood with confidence: no service acts on `intent`; the invoice
    /// pauses (eligibility) and a `needs_review` case opens (escalation) until a firm user labels
    /// it. Never set with intent `opt_out`, which is always acted on (see [`Self::awaits_review`]).
    #[serde(default)]
    pub needs_review: bool,
    /// The likeliest intents with their scores, best first, for the reviewer.
    #[serde(default)]
    pub scores: Vec<IntentScore>,
    /// The client's own new text (quotes and signature removed), at most 4,000 characters.
    pub client_text: String,
    /// The invoice, contact and client of the message it answers; `None` when unmatched.
    pub invoice_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    /// `reply_token`, `in_reply_to`, `sender_address`, or `None` when unmatched.
    pub matched_by: Option<String>,
    /// The Message-ID of our message it answers, when known.
    pub answered_message_id: Option<String>,
    /// The cadence step of that message.
    pub step: Option<String>,
    /// The sender's address, lower case.
    pub from: Option<String>,
    pub subject: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The client's calendar day the reply was written (promised dates are relative to it).
    pub reference_date: NaiveDate,
    pub bounce: Option<BounceInfo>,
    /// What arflow does about it, in words (e.g. `contact opted out on every channel`).
    pub action: String,
    /// Set when a firm user's label decided this event (the escalation service republishes the
    /// reply with the labelled intent, `needs_review` false); `None` when the classifier did.
    #[serde(default)]
    pub labelled_by: Option<String>,
}

fn certain() -> f32 {
    1.0
}

impl ReplyClassified {
    /// The reply as a firm user labelled it: what the escalation service republishes, and what
    /// every consumer then acts on exactly as on a classified reply. The evidence stays the
    /// classifier's phrase, else the client's words (at most 200 characters).
    pub fn labelled(
        &self,
        intent: ReplyIntent,
        promised_date: Option<NaiveDate>,
        labelled_by: &str,
    ) -> ReplyClassified {
        let evidence = if self.evidence.trim().is_empty() {
            self.client_text.chars().take(200).collect()
        } else {
            self.evidence.clone()
        };
        ReplyClassified {
            intent: Some(intent),
            promised_date,
            evidence,
            sure: true,
            confidence: 1.0,
            needs_review: false,
            scores: vec![IntentScore { intent, score: 1.0 }],
            labelled_by: Some(labelled_by.to_string()),
            action: format!("labelled {} by {labelled_by}: acted on like a classified reply", intent.as_str()),
            ..self.clone()
        }
    }

    /// Whether automation must wait for a person before acting on `intent`: the classifier was
    /// not confident. An opt-out is always acted on at once (a false one is undone by a firm
    /// opt-in; a missed one is not), so it never waits, whatever `needs_review` says.
    pub fn awaits_review(&self) -> bool {
        self.needs_review && self.intent != Some(ReplyIntent::OptOut) && self.labelled_by.is_none()
    }

    /// The intent services may act on: `None` while the reply awaits review.
    pub fn actionable_intent(&self) -> Option<ReplyIntent> {
        if self.awaits_review() { None } else { self.intent }
    }
}

/// One intent and its calibrated score (0-1), as the classifier ranked it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema, schemars::JsonSchema)]
pub struct IntentScore {
    pub intent: ReplyIntent,
    pub score: f32,
}

// ---------- consent.* ----------

/// `consent.opted_out` / `consent.opted_in`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
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

// ---------- command.* (gateway -> owning service) ----------

/// `command.consent.{opt_out,opt_in}`: a consent change asked for outside a reply: the
/// one-click unsubscribe link (RFC 8058), a firm user through the API, a CSV import.
/// The opt-out service records it in the ledger, writes or releases the hold and publishes
/// `consent.opted_out` / `consent.opted_in`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsentCommand {
    pub contact_id: Uuid,
    /// `None` means every channel.
    pub channel: Option<Channel>,
    /// `unsubscribe_link`, `firm_user`, `csv_import`.
    pub source: String,
    /// Who asked: the firm user's name or email, or `client` for the link.
    pub actor: String,
    /// Why (required for an opt-in) or what proves it (the link's token hash).
    pub reason: String,
    /// When the hold was already written by the publisher (the one-click link), its revision.
    pub hold_revision: Option<u64>,
}

/// `command.stripe.mark_uncollectible.<firm>`: the escalation service asks the gateway (the
/// only holder of the firm's Stripe key) to mark an invoice uncollectible. The gateway calls
/// Stripe and ingests the returned invoice (`billing.invoice_uncollectible` follows), or
/// publishes `billing.stripe_command_failed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MarkUncollectible {
    /// Unique per request (the `Nats-Msg-Id` is `command:<request_id>`).
    pub request_id: Uuid,
    pub case_id: Uuid,
    pub invoice_id: Uuid,
    pub stripe_invoice_id: String,
    /// The firm user who asked.
    pub actor: String,
    pub note: String,
}

// ---------- escalation.* (public contract, docs/events/) ----------

/// Why a case was opened.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    Dispute,
    PaymentPlan,
    Question,
    WrongContact,
    /// The client asked for a person during a call.
    PersonRequested,
    /// Every step of the cadence was sent and the invoice is still open.
    CadenceExhausted,
    /// The client broke a payment promise a second time.
    PromiseBrokenTwice,
    AllContactsOptedOut,
    /// Days past due beyond the firm's threshold (default 60).
    DaysPastDue,
    /// Opened by a firm user.
    Manual,
    /// A client's reply arflow did not understand with confidence: a person labels it (action
    /// `label`), and arflow then acts on the label as on a classified reply.
    NeedsReview,
}

impl EscalationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::Dispute => "dispute",
            EscalationReason::PaymentPlan => "payment_plan",
            EscalationReason::Question => "question",
            EscalationReason::WrongContact => "wrong_contact",
            EscalationReason::PersonRequested => "person_requested",
            EscalationReason::CadenceExhausted => "cadence_exhausted",
            EscalationReason::PromiseBrokenTwice => "promise_broken_twice",
            EscalationReason::AllContactsOptedOut => "all_contacts_opted_out",
            EscalationReason::DaysPastDue => "days_past_due",
            EscalationReason::Manual => "manual",
            EscalationReason::NeedsReview => "needs_review",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Waiting for a person; automation is stopped for the invoice.
    Open,
    /// A person paused automation (until a date or indefinitely).
    Paused,
    /// Handed to an external collection agency.
    Referred,
    /// Closed: automation continues, the invoice was written off, or it was paid.
    Resolved,
}

/// What a firm user (or arflow itself) did to a case.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseActionKind {
    Opened,
    /// Resume reminders; the case is resolved.
    ContinueAutomation,
    Pause,
    /// Stripe's mark-uncollectible was called; the case is resolved.
    MarkUncollectible,
    ReferToAgency,
    Resolve,
    /// A note, or new evidence on an open case (another reply, another trigger).
    Note,
    /// The invoice was paid while the case was open; the case is resolved.
    Paid,
    /// A firm user said what a `needs_review` reply means (`review.label`); the case is
    /// resolved and arflow acts on the label as on a classified reply.
    Label,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseFirm {
    pub firm_id: Uuid,
    pub name: String,
    pub timezone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseClient {
    pub client_id: Uuid,
    pub name: String,
    pub tier: Tier,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseContact {
    pub contact_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The invoice as a consumer needs it, without calling back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseInvoice {
    pub invoice_id: Uuid,
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    pub currency: Currency,
    pub amount_due: Decimal,
    pub amount_remaining: Decimal,
    pub due_date: Option<NaiveDate>,
    /// At the event's time, in the firm's calendar.
    pub days_past_due: i64,
    pub hosted_invoice_url: Option<String>,
}

/// The last thing that happened on the invoice before the event (a reply, a send...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseActivity {
    pub at: DateTime<Utc>,
    /// e.g. `reply.classified`, `outreach.email.sent`, `eligibility.promise_broken`.
    pub kind: String,
    pub summary: String,
}

/// One action on a case, with who and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseAction {
    pub action: CaseActionKind,
    /// A firm user's name or email, or `arflow` for automatic actions.
    pub actor: String,
    pub note: String,
    pub at: DateTime<Utc>,
    /// `pause`: until when (`None`: indefinitely).
    pub paused_until: Option<DateTime<Utc>>,
    /// `refer_to_agency`: the agency's name.
    pub agency: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseLinks {
    /// The case in the arflow API.
    pub case: String,
    /// The invoice's activity history in the arflow API.
    pub invoice_activity: Option<String>,
    /// What the client sees (Stripe's hosted invoice page).
    pub hosted_invoice: Option<String>,
}

/// `escalation.{opened,updated,resolved}.<firm_id>`: the whole case, every time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct EscalationCase {
    pub case_id: Uuid,
    /// Monotonic per case: a consumer keeps the highest it has seen.
    pub version: i64,
    pub status: CaseStatus,
    pub reason: EscalationReason,
    /// The client's own words or the rule that fired.
    pub evidence: String,
    pub firm: CaseFirm,
    pub client: CaseClient,
    pub contact: Option<CaseContact>,
    /// `None` for client-wide cases (all contacts opted out across several invoices).
    pub invoice: Option<CaseInvoice>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The action this event reports (the opening itself for `opened`).
    pub action: CaseAction,
    pub latest_activity: Option<CaseActivity>,
    pub links: CaseLinks,
    /// `needs_review` cases: the reply to label and what the classifier made of it; `null` for
    /// every other reason.
    #[serde(default)]
    pub review: Option<CaseReview>,
}

/// The reply a `needs_review` case asks a person to label.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CaseReview {
    pub reply_id: Uuid,
    /// `email`, `voice` (what a caller said) or `sms`.
    pub channel: Channel,
    /// The client's own words (quotes and signature removed).
    pub client_text: String,
    /// The phrase the classifier leaned on (may be empty).
    pub evidence: String,
    /// The classifier's confidence in its likeliest intent (0-1).
    pub confidence: f32,
    /// The likeliest intents with their scores, best first (may be empty).
    pub scores: Vec<IntentScore>,
    /// What a person labelled it, once they did.
    pub label: Option<ReviewLabel>,
}

/// A person's label of a reply: what arflow then acts on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ReviewLabel {
    pub intent: ReplyIntent,
    /// For `promise_to_pay`, when the person gave the date.
    pub promised_date: Option<NaiveDate>,
    pub labelled_by: String,
    pub labelled_at: DateTime<Utc>,
}

// ---------- notification.* ----------

/// `notification.{delivered,failed}`: one notification to one firm destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NotificationOutcome {
    pub delivery_id: Uuid,
    pub subscription_id: Uuid,
    /// `email`, `slack`, `webhook`.
    pub channel: String,
    /// The event kind notified, e.g. `escalation_opened`.
    pub event_kind: String,
    /// The event that caused it.
    pub event_id: Uuid,
    pub attempts: i32,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_names_are_the_wire_names() {
        for t in Tier::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::Value::String(t.as_str().into()));
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
        assert_eq!(Tier::parse("gold"), None);
    }

    #[test]
    fn intent_labels_are_the_wire_names() {
        for i in ReplyIntent::ALL {
            assert_eq!(serde_json::to_value(i).unwrap(), serde_json::Value::String(i.as_str().into()));
            assert_eq!(ReplyIntent::parse(i.as_str()), Some(i));
        }
        assert_eq!(ReplyIntent::parse("angry"), None);
        assert_eq!(ReplyIntent::parse("OPT_OUT"), None, "labels are exact");
    }

    /// A `reply.classified` published before confidence, review and labels existed.
    fn old_reply() -> serde_json::Value {
        serde_json::json!({
            "reply_id": "0190f1d2-0000-7000-8000-000000000001", "channel": "email", "kind": "reply",
            "intent": "promise_to_pay", "promised_date": "2026-03-13", "evidence": "pay on Friday", "sure": true,
            "client_text": "We will pay on Friday.", "invoice_id": null, "contact_id": null, "client_id": null,
            "matched_by": null, "answered_message_id": null, "step": null, "from": null, "subject": null,
            "received_at": "2026-03-10T10:00:00Z", "reference_date": "2026-03-10", "bounce": null,
            "action": "payment promised"
        })
    }

    #[test]
    fn an_old_reply_event_parses_as_certain_and_acted_on() {
        let r: ReplyClassified = serde_json::from_value(old_reply()).unwrap();
        assert_eq!((r.confidence, r.needs_review, r.scores.len(), r.labelled_by.as_deref()), (1.0, false, 0, None));
        assert!(!r.awaits_review());
        assert_eq!(r.actionable_intent(), Some(ReplyIntent::PromiseToPay));
        // And the new fields travel.
        let mut v = old_reply();
        v["needs_review"] = serde_json::json!(true);
        v["confidence"] = serde_json::json!(0.4);
        v["scores"] =
            serde_json::json!([{"intent": "promise_to_pay", "score": 0.4}, {"intent": "question", "score": 0.3}]);
        let r: ReplyClassified = serde_json::from_value(v).unwrap();
        assert_eq!(r.scores[1], IntentScore { intent: ReplyIntent::Question, score: 0.3 });
        assert_eq!(serde_json::to_value(&r).unwrap()["scores"][0]["intent"], "promise_to_pay");
    }

    #[test]
    fn only_an_unlabelled_unsure_reply_that_is_not_an_opt_out_awaits_review() {
        let mut r: ReplyClassified = serde_json::from_value(old_reply()).unwrap();
        r.needs_review = true;
        assert!(r.awaits_review());
        assert_eq!(r.actionable_intent(), None, "nothing acts on an intent a person must check");
        // Opt-out wins: acted on at once even if a classifier flagged it.
        r.intent = Some(ReplyIntent::OptOut);
        assert!(!r.awaits_review());
        assert_eq!(r.actionable_intent(), Some(ReplyIntent::OptOut));
        // A person's label is acted on.
        r.intent = Some(ReplyIntent::Dispute);
        r.labelled_by = Some("dana@firm.test".into());
        assert!(!r.awaits_review());
        assert_eq!(r.actionable_intent(), Some(ReplyIntent::Dispute));
    }
}
