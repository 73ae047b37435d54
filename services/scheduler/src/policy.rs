//! Cadences: which steps an invoice gets, when, and in what tone.
use arflow_contracts::events::{ContactSnapshot, EligibilityChanged, PromiseBroken, Tier, Tone};
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

/// Name prefix of the extra step planned when a payment promise is broken.
pub const BROKEN_PROMISE_STEP: &str = "broken_promise_";

/// Whether a step is the extra one planned for a broken promise.
pub fn is_broken_promise_step(name: &str) -> bool {
    name.starts_with(BROKEN_PROMISE_STEP)
}

/// "Resumed with a firmer step": one extra step when a payment promise was broken, at the
/// first window opening at or after the pause's end. Its name carries the promised date (else
/// the day the pause ended), so each promise gets one step. Its offset is the days overdue at
/// that moment, so it is the latest due step there and the no-flood rule fires it instead of
/// an older friendly one; the tone is at least firm, final when the latest policy step due by
/// then is final; the payment link is always included. None without a due date (no cadence).
pub fn broken_promise_step(
    policy: &Policy,
    decision: &EligibilityChanged,
    broken: &PromiseBroken,
) -> Option<PlannedStep> {
    let due = decision.invoice.due_date?;
    let (window, tz) = window_and_zone(decision, &HashSet::new());
    let at = window.next_open(broken.paused_until, tz);
    let overdue = days_overdue(at, tz, due);
    let offset_days = i32::try_from(overdue).ok()?;
    let latest_due = policy.steps.iter().filter(|s| s.offset_days <= offset_days).max_by_key(|s| s.offset_days);
    let tone = match latest_due.map(|s| tone_for(s, decision.client.tier)) {
        Some(Tone::Final) => Tone::Final,
        _ => Tone::Firm,
    };
    let day = broken.promised_date.unwrap_or_else(|| broken.paused_until.with_timezone(&tz).date_naive());
    Some(PlannedStep {
        name: format!("{BROKEN_PROMISE_STEP}{day}"),
        offset_days,
        tone,
        pay_link: true,
        scheduled_for: at,
    })
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

    fn decision(due: NaiveDate, tier: Tier) -> EligibilityChanged {
        let mut d = arflow_contracts::fixtures::decision(Some(due), "America/New_York", tier);
        d.past_due = true;
        d
    }

    fn policy() -> Policy {
        Policy { policy_id: Uuid::now_v7(), name: DEFAULT_POLICY.into(), version: 1, steps: default_steps() }
    }

    fn broken(d: &EligibilityChanged, promised: Option<NaiveDate>, until: DateTime<Utc>) -> PromiseBroken {
        PromiseBroken {
            invoice_id: d.invoice_id,
            client_id: d.client.client_id,
            promised_date: promised,
            paused_until: until,
            evidence: "we will pay on Friday".into(),
            reply_id: None,
        }
    }

    #[test]
    fn a_broken_promise_resumes_with_a_firm_step_at_the_next_opening() {
        use chrono::TimeZone;
        let due = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let d = decision(due, Tier::Standard);
        // The pause ended Tuesday 17 March 00:00 EDT; the window opens at 09:00 EDT.
        let until = Utc.with_ymd_and_hms(2026, 3, 17, 4, 0, 0).unwrap();
        let b = broken(&d, NaiveDate::from_ymd_opt(2026, 3, 13), until);
        let s = broken_promise_step(&policy(), &d, &b).unwrap();
        assert_eq!(s.name, "broken_promise_2026-03-13");
        assert_eq!(s.scheduled_for, Utc.with_ymd_and_hms(2026, 3, 17, 13, 0, 0).unwrap());
        // 15 days overdue then: overdue_14 (firm) is the latest policy step due.
        assert_eq!((s.offset_days, s.tone, s.pay_link), (15, Tone::Firm, true));
        // Friendly steps only so far: still firm.
        let early = broken(&d, None, Utc.with_ymd_and_hms(2026, 3, 6, 5, 0, 0).unwrap());
        let s = broken_promise_step(&policy(), &d, &early).unwrap();
        assert_eq!((s.name.as_str(), s.offset_days, s.tone), ("broken_promise_2026-03-06", 4, Tone::Firm));
        assert!(is_broken_promise_step(&s.name));
        // Past +30 the final tone holds.
        let late = broken(&d, None, Utc.with_ymd_and_hms(2026, 4, 7, 4, 0, 0).unwrap());
        let s = broken_promise_step(&policy(), &d, &late).unwrap();
        assert_eq!((s.offset_days, s.tone), (36, Tone::Final));
        // No due date, no cadence.
        let mut undated = d.clone();
        undated.invoice.due_date = None;
        assert!(broken_promise_step(&policy(), &undated, &b).is_none());
    }

    #[test]
    fn tones_round_trip() {
        for t in [Tone::Friendly, Tone::Firm, Tone::Final] {
            assert_eq!(parse_tone(tone_str(t)), Some(t));
        }
    }
}
