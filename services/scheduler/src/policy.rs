//! Cadences: which steps an invoice gets, when, and in what tone.
use arflow_contracts::events::{ContactSnapshot, EligibilityChanged, Tier, Tone};
use arflow_core::{Channel, SendWindow, window::parse_tz};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use uuid::Uuid;

/// Name of the cadence seeded for every firm on first use.
pub const DEFAULT_POLICY: &str = "default-email";

/// One step of a cadence, stored as data in `policies.steps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolicyStep {
    pub name: String,
    /// Days relative to the due date (negative = before).
    pub offset_days: i32,
    pub tone: Tone,
    pub pay_link: bool,
}

/// A firm's policy as loaded from `policies`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub policy_id: uuid::Uuid,
    pub name: String,
    pub version: i32,
    pub steps: Vec<PolicyStep>,
}

fn step(name: &str, offset_days: i32, tone: Tone, pay_link: bool) -> PolicyStep {
    PolicyStep { name: name.to_string(), offset_days, tone, pay_link }
}

/// The default email cadence (version 1).
pub fn default_steps() -> Vec<PolicyStep> {
    vec![
        step("pre_due", -7, Tone::Friendly, false),
        step("due_today", 0, Tone::Friendly, false),
        step("overdue_3", 3, Tone::Friendly, true),
        step("overdue_7", 7, Tone::Friendly, true),
        step("overdue_14", 14, Tone::Firm, true),
        step("overdue_30", 30, Tone::Final, true),
    ]
}

/// The tone a client of `tier` gets for `step`.
///
/// A new client has no payment history to give them the benefit of the doubt, so the
/// tone firms up a week earlier (+7); standing and valued clients keep the friendly
/// tone until +14 so a late payment does not cost the relationship.
pub fn tone_for(step: &PolicyStep, tier: Tier) -> Tone {
    match (tier, step.tone) {
        (Tier::New, Tone::Friendly) if step.offset_days >= 7 => Tone::Firm,
        (_, tone) => tone,
    }
}

/// The window and time zone a step is sent in: the firm's email window, in the first
/// contact's zone, else the firm's; falls back to business hours / UTC with a warning.
/// The contact an email step goes to: the first with email consent and an address who has
/// not opted out (eligibility lists the primary billing contact first).
pub fn email_recipient<'a>(decision: &'a EligibilityChanged, opted_out: &HashSet<Uuid>) -> Option<&'a ContactSnapshot> {
    decision
        .contacts
        .iter()
        .find(|c| c.channels.contains(&Channel::Email) && c.email.is_some() && !opted_out.contains(&c.contact_id))
}

/// The firm's email window and the zone to read it in: the recipient's (the person who
/// experiences the send), else the firm's.
pub fn window_and_zone(decision: &EligibilityChanged, opted_out: &HashSet<Uuid>) -> (SendWindow, Tz) {
    let window = match decision.firm.email_window.validate() {
        Ok(()) => decision.firm.email_window.clone(),
        Err(e) => {
            tracing::warn!(invoice_id = %decision.invoice_id, error = %e, "firm email window is invalid; using business hours");
            SendWindow::business_hours()
        }
    };
    let zone =
        email_recipient(decision, opted_out).and_then(|c| c.timezone.as_deref()).unwrap_or(&decision.firm.timezone);
    let tz = match parse_tz(zone) {
        Ok(tz) => tz,
        Err(e) => {
            tracing::warn!(invoice_id = %decision.invoice_id, error = %e, "contact time zone is unknown; using the firm's");
            parse_tz(&decision.firm.timezone).unwrap_or(Tz::UTC)
        }
    };
    (window, tz)
}

/// A step as planned for one invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub name: String,
    pub offset_days: i32,
    pub tone: Tone,
    pub pay_link: bool,
    pub scheduled_for: DateTime<Utc>,
}

/// Every step of `policy` for the invoice in `decision`; none without a due date.
pub fn plan(policy: &Policy, decision: &EligibilityChanged) -> Vec<PlannedStep> {
    let Some(due) = decision.invoice.due_date else { return Vec::new() };
    let (window, tz) = window_and_zone(decision, &HashSet::new());
    policy
        .steps
        .iter()
        .filter_map(|s| {
            let day = due.checked_add_signed(Duration::days(i64::from(s.offset_days)))?;
            Some(PlannedStep {
                name: s.name.clone(),
                offset_days: s.offset_days,
                tone: tone_for(s, decision.client.tier),
                pay_link: s.pay_link,
                scheduled_for: window.opening_on_or_after(day, tz),
            })
        })
        .collect()
}

/// Whole days between the due date and `at`'s date in `tz` (negative before the due date).
pub fn days_overdue(at: DateTime<Utc>, tz: Tz, due: NaiveDate) -> i64 {
    (at.with_timezone(&tz).date_naive() - due).num_days()
}

pub fn tone_str(t: Tone) -> &'static str {
    match t {
        Tone::Friendly => "friendly",
        Tone::Firm => "firm",
        Tone::Final => "final",
    }
}

pub fn parse_tone(s: &str) -> Option<Tone> {
    match s {
        "friendly" => Some(Tone::Friendly),
        "firm" => Some(Tone::Firm),
        "final" => Some(Tone::Final),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_adjusts_tone() {
        let steps = default_steps();
        let tones = |tier| steps.iter().map(|s| tone_for(s, tier)).collect::<Vec<_>>();
        use Tone::*;
        assert_eq!(tones(Tier::Standard), vec![Friendly, Friendly, Friendly, Friendly, Firm, Final]);
        assert_eq!(tones(Tier::LongStanding), vec![Friendly, Friendly, Friendly, Friendly, Firm, Final]);
        assert_eq!(tones(Tier::Key), vec![Friendly, Friendly, Friendly, Friendly, Firm, Final]);
        assert_eq!(tones(Tier::New), vec![Friendly, Friendly, Friendly, Firm, Firm, Final]);
    }

    #[test]
    fn tones_round_trip() {
        for t in [Tone::Friendly, Tone::Firm, Tone::Final] {
            assert_eq!(parse_tone(tone_str(t)), Some(t));
        }
    }
}
