//! Subject names. The firm id is always last so a consumer can be granted
//! `escalation.*.<firm_id>` and nothing else.
use uuid::Uuid;

/// `<prefix>.<firm_id>`, e.g. `subject(billing::INVOICE_PAID, firm)` -> `billing.invoice_paid.<firm>`.
pub fn subject(kind: &str, firm_id: Uuid) -> String {
    format!("{kind}.{firm_id}")
}

/// Every firm's events of one type: `billing.invoice_paid.*`.
pub fn all_firms(kind: &str) -> String {
    format!("{kind}.*")
}

/// Dead letters of one service: `dlq.<service>`.
pub fn dlq(service: &str) -> String {
    format!("dlq.{service}")
}

pub mod billing {
    pub const FIRM_UPDATED: &str = "billing.firm_updated";
    pub const CLIENT_UPSERTED: &str = "billing.client_upserted";
    pub const CONTACT_UPSERTED: &str = "billing.contact_upserted";
    pub const INVOICE_UPSERTED: &str = "billing.invoice_upserted";
    pub const INVOICE_PAYMENT_FAILED: &str = "billing.invoice_payment_failed";
    /// Paid, payment succeeded, or marked paid out of band: outreach halts.
    pub const INVOICE_PAID: &str = "billing.invoice_paid";
    pub const INVOICE_VOIDED: &str = "billing.invoice_voided";
    pub const INVOICE_UNCOLLECTIBLE: &str = "billing.invoice_uncollectible";
    /// A payment promise or plan pauses outreach until a date (`InvoicePaused`).
    pub const INVOICE_PAUSED: &str = "billing.invoice_paused";
    /// Stripe refused a command the gateway ran for another service (`StripeCommandFailed`).
    pub const STRIPE_COMMAND_FAILED: &str = "billing.stripe_command_failed";
}

pub mod eligibility {
    pub const CHANGED: &str = "eligibility.changed";
    /// Every contact of a client opted out: automation for the client stopped.
    pub const ALL_CONTACTS_OPTED_OUT: &str = "eligibility.all_contacts_opted_out";
    /// A payment promise's date (plus grace) passed with the invoice still open.
    pub const PROMISE_BROKEN: &str = "eligibility.promise_broken";
}

pub mod outreach {
    pub const STEP_DUE_EMAIL: &str = "outreach.step_due.email";
    /// One call to place (`StepDue` with channel `voice`), exactly once.
    pub const STEP_DUE_VOICE: &str = "outreach.step_due.voice";
    /// One text message to send (`StepDue` with channel `sms`), exactly once.
    pub const STEP_DUE_SMS: &str = "outreach.step_due.sms";
    pub const STEP_SKIPPED: &str = "outreach.step_skipped";
    pub const PLAN_UPDATED: &str = "outreach.plan_updated";
    pub const EMAIL_SENT: &str = "outreach.email.sent";
    pub const EMAIL_FAILED: &str = "outreach.email.failed";
    pub const EMAIL_SUPPRESSED: &str = "outreach.email.suppressed";
    /// A delivery status notification (DSN) for an email we sent: hard or soft.
    pub const EMAIL_BOUNCED: &str = "outreach.email.bounced";
    /// How a call ended (`CallEnded`): `outreach.voice.<outcome>` (see `CallOutcome::subject`).
    pub const VOICE_COMPLETED: &str = "outreach.voice.completed";
    pub const VOICE_NO_ANSWER: &str = "outreach.voice.no_answer";
    pub const VOICE_VOICEMAIL: &str = "outreach.voice.voicemail";
    pub const VOICE_FAILED: &str = "outreach.voice.failed";
    /// The voice service's last check refused a call step (`ChannelStepSkipped`).
    pub const VOICE_SKIPPED: &str = "outreach.voice.skipped";
    pub const SMS_SENT: &str = "outreach.sms.sent";
    pub const SMS_FAILED: &str = "outreach.sms.failed";
    /// The last check before the provider refused a text step (`ChannelStepSkipped`).
    pub const SMS_SKIPPED: &str = "outreach.sms.skipped";
    /// The last step of the cadence fired and nothing is pending while the invoice is open.
    pub const CADENCE_EXHAUSTED: &str = "outreach.cadence_exhausted";
}

pub mod reply {
    /// A raw inbound message reached the gateway (stored in the `inbound` object store).
    pub const RECEIVED: &str = "reply.received";
    /// What a client answered, understood: intent, promised date, evidence.
    pub const CLASSIFIED: &str = "reply.classified";
}

pub mod consent {
    pub const OPTED_OUT: &str = "consent.opted_out";
    pub const OPTED_IN: &str = "consent.opted_in";
}

pub mod escalation {
    /// Public contract (`docs/events/`, `docs/asyncapi.yaml`).
    pub const OPENED: &str = "escalation.opened";
    pub const UPDATED: &str = "escalation.updated";
    pub const RESOLVED: &str = "escalation.resolved";
}

pub mod notification {
    pub const DELIVERED: &str = "notification.delivered";
    pub const FAILED: &str = "notification.failed";
}

/// Requests from the gateway's public API to the service that owns the record.
pub mod command {
    pub const CONSENT_OPT_OUT: &str = "command.consent.opt_out";
    pub const CONSENT_OPT_IN: &str = "command.consent.opt_in";
    /// Mark an invoice uncollectible in Stripe (`MarkUncollectible`): only the gateway holds
    /// the firm's Stripe key, so the escalation service asks it to.
    pub const STRIPE_MARK_UNCOLLECTIBLE: &str = "command.stripe.mark_uncollectible";
}
