//! Cadences: which steps an invoice gets, when, and in what tone.
use arflow_contracts::events::{ContactSnapshot, EligibilityChanged, PromiseBroken, Tier, Tone};
use arflow_core::{Channel, SendWindow, calls, window::parse_tz};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use uuid::Uuid;

/// Name of the cadence seeded for every firm on first use. The name predates the voice and
/// SMS steps; it stays because it is the stable key of stored policies and of every audit
/// entry's rule (`default-email/<step>`).
pub const DEFAULT_POLICY: &str = "default-email";

/// One step of a cadence, stored as data in `policies.steps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolicyStep {
    pub name: String,
    /// Days relative to the due date (negative = before).
    pub offset_days: i32,
    pub tone: Tone,
    pub pay_link: bool,
    /// The channel the step uses; policies stored before voice and SMS are all email.
    #[serde(default = "email")]
    pub channel: Channel,
    /// Attempts including the first: a voice step is retried after no answer until it has
    /// made this many (then it falls back to email). 1 for email and SMS steps.
    #[serde(default = "one")]
    pub max_attempts: u32,
}

fn email() -> Channel {
    Channel::Email
}

fn one() -> u32 {
    1
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
    PolicyStep { name: name.to_string(), offset_days, tone, pay_link, channel: Channel::Email, max_attempts: 1 }
}

/// Attempts a cadence call makes (the first and two retries after no answer) before email.
pub const CALL_ATTEMPTS: u32 = 3;

/// The default cadence: the email steps, a text with the payment link at +10 and a call at +21.
pub fn default_steps() -> Vec<PolicyStep> {
    vec![
        step("pre_due", -7, Tone::Friendly, false),
        step("due_today", 0, Tone::Friendly, false),
        step("overdue_3", 3, Tone::Friendly, true),
        step("overdue_7", 7, Tone::Friendly, true),
        PolicyStep { channel: Channel::Sms, ..step("text_overdue_10", 10, Tone::Friendly, true) },
        step("overdue_14", 14, Tone::Firm, true),
        PolicyStep {
            channel: Channel::Voice,
            max_attempts: CALL_ATTEMPTS,
            ..step("call_overdue_21", 21, Tone::Firm, true)
        },
        step("overdue_30", 30, Tone::Final, true),
    ]
}

/// The email-only cadence seeded as version 1 before voice and SMS: a firm still on it is
/// moved to the current default (a new version) the next time its policy is read.
pub fn legacy_email_steps() -> Vec<PolicyStep> {
    default_steps().into_iter().filter(|s| s.channel == Channel::Email).collect()
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

/// Which contacts opted out of which channel (an opt-out of every channel is in all three).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptOuts {
    pub email: HashSet<Uuid>,
    pub voice: HashSet<Uuid>,
    pub sms: HashSet<Uuid>,
}

impl OptOuts {
    pub fn of(&self, channel: Channel) -> &HashSet<Uuid> {
        match channel {
            Channel::Email => &self.email,
            Channel::Voice => &self.voice,
            Channel::Sms => &self.sms,
        }
    }

    pub fn of_mut(&mut self, channel: Channel) -> &mut HashSet<Uuid> {
        match channel {
            Channel::Email => &mut self.email,
            Channel::Voice => &mut self.voice,
            Channel::Sms => &mut self.sms,
        }
    }

    /// The same contacts opted out of every channel.
    pub fn everywhere(contacts: HashSet<Uuid>) -> Self {
        OptOuts { email: contacts.clone(), voice: contacts.clone(), sms: contacts }
    }
}

/// The contact an email step goes to: the first with email consent and an address who has
/// not opted out (eligibility lists the primary billing contact first).
pub fn email_recipient<'a>(decision: &'a EligibilityChanged, opted_out: &HashSet<Uuid>) -> Option<&'a ContactSnapshot> {
    decision
        .contacts
        .iter()
        .find(|c| c.channels.contains(&Channel::Email) && c.email.is_some() && !opted_out.contains(&c.contact_id))
}

/// The contact a step on `channel` goes to, in eligibility's order (primary first): for email
/// see [`email_recipient`]; for a call or a text the first with consent on that channel and a
/// phone number who has not opted out of it.
pub fn recipient<'a>(
    decision: &'a EligibilityChanged,
    channel: Channel,
    opted_out: &OptOuts,
) -> Option<&'a ContactSnapshot> {
    if channel == Channel::Email {
        return email_recipient(decision, opted_out.of(Channel::Email));
    }
    let out = opted_out.of(channel);
    decision.contacts.iter().find(|c| {
        c.channels.contains(&channel)
            && c.phone.as_deref().is_some_and(|p| !p.trim().is_empty())
            && !out.contains(&c.contact_id)
    })
}

/// Why a step on `channel` has nobody to go to, and the channels the cadence goes on with:
/// `no contact with email consent, an email address and no opt-out of email; channels left: voice`.
pub fn no_recipient(decision: &EligibilityChanged, channel: Channel, opted_out: &OptOuts) -> String {
    let info = match channel {
        Channel::Email => "an email address",
        Channel::Voice | Channel::Sms => "a phone number",
    };
    let left: Vec<&str> = [Channel::Email, Channel::Voice, Channel::Sms]
        .into_iter()
        .filter(|ch| recipient(decision, *ch, opted_out).is_some())
        .map(Channel::as_str)
        .collect();
    let left = if left.is_empty() { "none".to_string() } else { left.join(", ") };
    format!("no contact with {channel} consent, {info} and no opt-out of {channel}; channels left: {left}")
}

/// The firm's email window and the zone to read it in: the recipient's (the person who
/// experiences the send), else the firm's; falls back to business hours / UTC with a warning.
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

/// The window calls and texts are placed in: the firm's call window clipped to 08:00-21:00
/// (fence 4), read in the contact's `call_timezone`.
pub fn call_window(decision: &EligibilityChanged) -> SendWindow {
    calls::window(decision.firm.call_window.as_ref())
}

/// The zone a call or text to `contact` is read in: its `call_timezone`, never `timezone`
/// (that one falls back to the firm's zone, which the client does not live in).
pub fn call_zone(contact: &ContactSnapshot) -> Result<Tz, calls::CallRefusal> {
    calls::zone(contact.call_timezone.as_deref())
}

/// The window's opening on the first business day (Monday to Friday) after `now`'s local date
/// in `tz` that the window allows; a window with no business day opens on its next day.
pub fn next_business_day_opening(window: &SendWindow, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    let business =
        |d: NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && window.days.contains(&d.weekday());
    let mut day = today + Duration::days(1);
    for _ in 0..14 {
        if business(day) {
            return window.opening_on_or_after(day, tz);
        }
        day += Duration::days(1);
    }
    window.opening_on_or_after(today + Duration::days(1), tz)
}

/// A step as planned for one invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub name: String,
    pub offset_days: i32,
    pub tone: Tone,
    pub pay_link: bool,
    pub scheduled_for: DateTime<Utc>,
    pub channel: Channel,
    /// 1 for a step's first try; a retried call counts up.
    pub attempt: u32,
    pub max_attempts: u32,
    /// The step a retry or an email fallback follows up (its base step).
    pub retry_of: Option<Uuid>,
}

/// Every step of `policy` for the invoice in `decision`; none without a due date.
///
/// Email steps open the firm's email window on their day in the recipient's zone. Calls and
/// texts open the call window on their day in the zone of the contact they would reach
/// (`call_timezone`); without one, the email planning zone just gives them a time: the timer
/// (and the voice service after it) is what keeps them inside the window, or skips them.
pub fn plan(policy: &Policy, decision: &EligibilityChanged) -> Vec<PlannedStep> {
    let Some(due) = decision.invoice.due_date else { return Vec::new() };
    let none = OptOuts::default();
    let (window, tz) = window_and_zone(decision, &none.email);
    let calls = call_window(decision);
    policy
        .steps
        .iter()
        .filter_map(|s| {
            let day = due.checked_add_signed(Duration::days(i64::from(s.offset_days)))?;
            let scheduled_for = match s.channel {
                Channel::Email => window.opening_on_or_after(day, tz),
                channel => {
                    let zone = recipient(decision, channel, &none).and_then(|c| call_zone(c).ok()).unwrap_or(tz);
                    calls.opening_on_or_after(day, zone)
                }
            };
            Some(PlannedStep {
                name: s.name.clone(),
                offset_days: s.offset_days,
                tone: tone_for(s, decision.client.tier),
                pay_link: s.pay_link,
                scheduled_for,
                channel: s.channel,
                attempt: 1,
                max_attempts: s.max_attempts.max(1),
                retry_of: None,
            })
        })
        .collect()
}

/// The step a retry or an email fallback follows up.
#[derive(Debug, Clone, Copy)]
pub struct Followed<'a> {
    /// The base step (the first attempt), whose name the follow-ups carry.
    pub base_name: &'a str,
    pub base_id: Uuid,
    pub tone: Tone,
    pub pay_link: bool,
    /// The attempt that just ended (1 for the base step).
    pub attempt: u32,
    pub max_attempts: u32,
}

/// Whole days overdue at `at` (0 without a due date), as a step offset.
fn offset_at(decision: &EligibilityChanged, at: DateTime<Utc>, tz: Tz) -> i32 {
    decision.invoice.due_date.and_then(|due| i32::try_from(days_overdue(at, tz, due)).ok()).unwrap_or(0)
}

/// The next try of a call nobody answered (or the provider could not place): `<base>_retry<n>`
/// after attempt `n`, attempt `n + 1`, same tone and link, at the call window's opening on the
/// next business day in the contact's call zone `tz`. Its offset is the days overdue then, so
/// it sorts after what it retries.
pub fn call_retry(followed: Followed<'_>, decision: &EligibilityChanged, tz: Tz, now: DateTime<Utc>) -> PlannedStep {
    let at = next_business_day_opening(&call_window(decision), now, tz);
    PlannedStep {
        name: format!("{}_retry{}", followed.base_name, followed.attempt),
        offset_days: offset_at(decision, at, tz),
        tone: followed.tone,
        pay_link: followed.pay_link,
        scheduled_for: at,
        channel: Channel::Voice,
        attempt: followed.attempt + 1,
        max_attempts: followed.max_attempts,
        retry_of: Some(followed.base_id),
    }
}

/// The email that stands in for a call or text that could not reach the client (last
/// attempt unanswered, voicemail, zone unknown, ...): `<base>_email`, the base step's tone,
/// always with the payment link, at the next opening of the email window from `now` in the
/// recipient's zone. One per base step (by name).
pub fn email_fallback(
    followed: Followed<'_>,
    decision: &EligibilityChanged,
    email_opted_out: &HashSet<Uuid>,
    now: DateTime<Utc>,
) -> PlannedStep {
    let (window, tz) = window_and_zone(decision, email_opted_out);
    let at = window.next_open(now, tz);
    PlannedStep {
        name: format!("{}_email", followed.base_name),
        offset_days: offset_at(decision, at, tz),
        tone: followed.tone,
        pay_link: true,
        scheduled_for: at,
        channel: Channel::Email,
        attempt: 1,
        max_attempts: 1,
        retry_of: Some(followed.base_id),
    }
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
        channel: Channel::Email,
        attempt: 1,
        max_attempts: 1,
        retry_of: None,
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

/// `email`, `voice` or `sms` as stored.
pub fn parse_channel(s: &str) -> Option<Channel> {
    match s {
        "email" => Some(Channel::Email),
        "voice" => Some(Channel::Voice),
        "sms" => Some(Channel::Sms),
        _ => None,
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
        // pre_due, due_today, overdue_3, overdue_7, text_overdue_10, overdue_14, call_overdue_21, overdue_30:
        // the tier rules apply to calls and texts as to emails.
        let standard = vec![Friendly, Friendly, Friendly, Friendly, Friendly, Firm, Firm, Final];
        assert_eq!(tones(Tier::Standard), standard);
        assert_eq!(tones(Tier::LongStanding), standard);
        assert_eq!(tones(Tier::Key), standard);
        assert_eq!(tones(Tier::New), vec![Friendly, Friendly, Friendly, Firm, Firm, Firm, Firm, Final]);
    }

    #[test]
    fn the_default_cadence_texts_at_10_and_calls_at_21_days_overdue() {
        let steps = default_steps();
        let by_name = |n: &str| steps.iter().find(|s| s.name == n).unwrap().clone();
        let text = by_name("text_overdue_10");
        assert_eq!(
            (text.offset_days, text.channel, text.pay_link, text.tone, text.max_attempts),
            (10, Channel::Sms, true, Tone::Friendly, 1)
        );
        let call = by_name("call_overdue_21");
        assert_eq!((call.offset_days, call.channel, call.tone, call.max_attempts), (21, Channel::Voice, Tone::Firm, 3));
        // The email steps are the cadence seeded before calls and texts, unchanged.
        let emails: Vec<(String, i32, Tone, bool)> =
            legacy_email_steps().into_iter().map(|s| (s.name, s.offset_days, s.tone, s.pay_link)).collect();
        assert_eq!(
            emails,
            [
                ("pre_due".to_string(), -7, Tone::Friendly, false),
                ("due_today".to_string(), 0, Tone::Friendly, false),
                ("overdue_3".to_string(), 3, Tone::Friendly, true),
                ("overdue_7".to_string(), 7, Tone::Friendly, true),
                ("overdue_14".to_string(), 14, Tone::Firm, true),
                ("overdue_30".to_string(), 30, Tone::Final, true),
            ]
        );
    }

    #[test]
    fn stored_policies_without_channels_are_email_steps() {
        let stored = r#"[{"name":"pre_due","offset_days":-7,"tone":"friendly","pay_link":false},
                         {"name":"overdue_30","offset_days":30,"tone":"final","pay_link":true}]"#;
        let steps: Vec<PolicyStep> = serde_json::from_str(stored).unwrap();
        assert!(steps.iter().all(|s| s.channel == Channel::Email && s.max_attempts == 1), "{steps:?}");
        let round: Vec<PolicyStep> = serde_json::from_value(serde_json::to_value(default_steps()).unwrap()).unwrap();
        assert_eq!(round, default_steps());
    }

    #[test]
    fn calls_and_texts_are_planned_at_the_call_windows_opening_in_the_contacts_call_zone() {
        use chrono::TimeZone;
        let due = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let mut d = decision(due, Tier::Standard);
        // The email contact reads New York; the phone contact lives in Los Angeles, and its
        // `timezone` (which falls back to the firm's) must not be used for calls.
        let mut phone = d.contacts[0].clone();
        phone.contact_id = Uuid::now_v7();
        phone.email = None;
        phone.phone = Some("+13105550100".into());
        phone.channels = vec![Channel::Voice, Channel::Sms];
        phone.timezone = Some("Europe/London".into());
        phone.call_timezone = Some("America/Los_Angeles".into());
        d.contacts.push(phone);
        let planned = plan(&policy(), &d);
        let at = |n: &str| planned.iter().find(|s| s.name == n).unwrap().scheduled_for;
        // +10: Thursday 12 March 08:00 PDT; +21: Monday 23 March 08:00 PDT.
        assert_eq!(at("text_overdue_10"), Utc.with_ymd_and_hms(2026, 3, 12, 15, 0, 0).unwrap());
        assert_eq!(at("call_overdue_21"), Utc.with_ymd_and_hms(2026, 3, 23, 15, 0, 0).unwrap());
        // Emails keep the email window in the email recipient's zone: +14, Monday 16 March 09:00 EDT.
        assert_eq!(at("overdue_14"), Utc.with_ymd_and_hms(2026, 3, 16, 13, 0, 0).unwrap());
        // A firm's quieter call window narrows it: 10:00.
        d.firm.call_window = Some(SendWindow { start_hour: 10, end_hour: 16, days: calls::default_window().days });
        let planned = plan(&policy(), &d);
        let call = planned.iter().find(|s| s.name == "call_overdue_21").unwrap();
        assert_eq!(call.scheduled_for, Utc.with_ymd_and_hms(2026, 3, 23, 17, 0, 0).unwrap());
        assert_eq!((call.channel, call.attempt, call.max_attempts, call.retry_of), (Channel::Voice, 1, 3, None));
        // No zone for calls: the email planning zone gives a time (08:00 EDT); the timer skips it.
        d.contacts[1].call_timezone = None;
        let planned = plan(&policy(), &d);
        let call = planned.iter().find(|s| s.name == "call_overdue_21").unwrap();
        assert_eq!(call.scheduled_for, Utc.with_ymd_and_hms(2026, 3, 23, 14, 0, 0).unwrap());
    }

    #[test]
    fn a_retry_waits_for_the_next_business_day_and_a_fallback_for_the_email_window() {
        use chrono::TimeZone;
        let due = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let d = decision(due, Tier::Standard);
        let chicago: Tz = "America/Chicago".parse().unwrap();
        let base = Uuid::now_v7();
        let followed = Followed {
            base_name: "call_overdue_21",
            base_id: base,
            tone: Tone::Firm,
            pay_link: true,
            attempt: 1,
            max_attempts: 3,
        };
        // Friday 20 March 15:00 CDT: the next business day is Monday 23 March (not Saturday,
        // although the call window allows Saturdays), 08:00 CDT.
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 20, 0, 0).unwrap();
        let r = call_retry(followed, &d, chicago, now);
        assert_eq!(r.name, "call_overdue_21_retry1");
        assert_eq!(
            (r.attempt, r.max_attempts, r.channel, r.tone, r.pay_link),
            (2, 3, Channel::Voice, Tone::Firm, true)
        );
        assert_eq!(r.scheduled_for, Utc.with_ymd_and_hms(2026, 3, 23, 13, 0, 0).unwrap());
        assert_eq!((r.retry_of, r.offset_days), (Some(base), 21));
        // Tuesday 23:30 CDT is already Wednesday in UTC: still Wednesday 08:00 CDT locally.
        let late = Utc.with_ymd_and_hms(2026, 3, 25, 4, 30, 0).unwrap();
        let r = call_retry(Followed { attempt: 2, ..followed }, &d, chicago, late);
        assert_eq!(r.name, "call_overdue_21_retry2");
        assert_eq!(r.attempt, 3);
        assert_eq!(r.scheduled_for, Utc.with_ymd_and_hms(2026, 3, 25, 13, 0, 0).unwrap());
        // The email fallback: next opening of the email window in the recipient's zone (New York),
        // always with the payment link, in the base step's tone.
        let evening = Utc.with_ymd_and_hms(2026, 3, 20, 22, 0, 0).unwrap();
        let f = email_fallback(Followed { attempt: 3, pay_link: false, ..followed }, &d, &HashSet::new(), evening);
        assert_eq!(f.name, "call_overdue_21_email");
        assert_eq!(
            (f.channel, f.tone, f.pay_link, f.attempt, f.retry_of),
            (Channel::Email, Tone::Firm, true, 1, Some(base))
        );
        assert_eq!(f.scheduled_for, Utc.with_ymd_and_hms(2026, 3, 23, 13, 0, 0).unwrap());
        // Inside the window it goes at once.
        let open = Utc.with_ymd_and_hms(2026, 3, 23, 15, 0, 0).unwrap();
        assert_eq!(email_fallback(followed, &d, &HashSet::new(), open).scheduled_for, open);
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
