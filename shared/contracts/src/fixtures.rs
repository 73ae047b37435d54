//! Test fixtures (feature `fixtures`, dev-dependencies only): one eligible decision that tests
//! adjust field by field, so each test states only what it is about.
use crate::events::{
    AutomationStatus, ClientSnapshot, ContactSnapshot, EligibilityChanged, FirmSnapshot, InvoiceSnapshot, Tier,
};
use arflow_core::{Channel, Currency, SendWindow};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// An eligible, enabled decision (v1) for a new 3,200.00 USD invoice due `due`, one client of
/// `tier`, one contact with email consent in `zone`, a firm with business hours in UTC.
pub fn decision(due: Option<NaiveDate>, zone: &str, tier: Tier) -> EligibilityChanged {
    let invoice_id = Uuid::now_v7();
    EligibilityChanged {
        invoice_id,
        version: 1,
        eligible: true,
        past_due: false,
        automation_status: AutomationStatus::Enabled,
        checks: vec![],
        paused_until: None,
        pause_reason: None,
        broken_promise: None,
        invoice: InvoiceSnapshot {
            invoice_id,
            stripe_invoice_id: "in_1".into(),
            number: Some("INV-0001".into()),
            currency: Currency::USD,
            amount_due: Decimal::new(320_000, 2),
            amount_remaining: Decimal::new(320_000, 2),
            due_date: due,
            hosted_invoice_url: Some("https://invoice.stripe.com/i/test".into()),
        },
        client: ClientSnapshot { client_id: Uuid::now_v7(), name: "Acme Ltd".into(), tier },
        contacts: vec![ContactSnapshot {
            contact_id: Uuid::now_v7(),
            name: "Jane Doe".into(),
            email: Some("jane@example.com".into()),
            phone: None,
            timezone: Some(zone.into()),
            channels: vec![Channel::Email],
            call_timezone: None,
        }],
        firm: FirmSnapshot {
            name: "Firm".into(),
            sender_email: "ar@firm.example".into(),
            timezone: "UTC".into(),
            email_window: SendWindow::business_hours(),
            call_window: None,
        },
        evaluated_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}
