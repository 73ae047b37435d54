//! What a classified client reply does to an invoice's eligibility, as a pure function of
//! the reply, the client's time zone and the settings (the handler writes it down).
use crate::config::EligibilitySettings;
use arflow_contracts::events::ReplyIntent;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// `pause_reason` of a pause set by a reply.
pub const PROMISE_TO_PAY: &str = "promise_to_pay";
pub const ALREADY_PAID: &str = "already_paid";

/// Evidence is quoted in check details; a runaway phrase is cut so details stay readable.
const EVIDENCE_MAX_CHARS: usize = 200;

/// What one reply changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The client contests the invoice: `not_disputed` fails, a person takes over.
    Dispute,
    /// Outreach waits until `until` (a promise, or Stripe reconciling a claimed payment).
    Pause { until: DateTime<Utc>, reason: &'static str, promised_date: Option<NaiveDate> },
    /// A person must answer (plan, question, wrong contact): `no_open_escalation` fails.
    Handoff,
    /// Nothing for eligibility (acknowledged, auto-reply, opt-out handled by the email
    /// service, bounces and complaints).
    Nothing,
}

/// The action for a reply received at `received_at`; `zone` is the client's (else the firm's).
pub fn action(
    intent: Option<ReplyIntent>,
    promised_date: Option<NaiveDate>,
    received_at: DateTime<Utc>,
    zone: Tz,
    settings: &EligibilitySettings,
) -> Action {
    let days = |n: u32| Duration::days(i64::from(n));
    match intent {
        Some(ReplyIntent::Dispute) => Action::Dispute,
        Some(ReplyIntent::AlreadyPaid) => Action::Pause {
            until: received_at + days(settings.reconcile_days),
            reason: ALREADY_PAID,
            promised_date: None,
        },
        Some(ReplyIntent::PromiseToPay) => {
            let dated = promised_date
                .and_then(|d| promise_end(d, settings.promise_grace_days, zone).map(|until| (until, Some(d))));
            // A date that cannot be placed in the zone is treated as no date.
            let (until, promised_date) = dated.unwrap_or((received_at + days(settings.promise_default_days), None));
            Action::Pause { until, reason: PROMISE_TO_PAY, promised_date }
        }
        Some(ReplyIntent::PaymentPlan | ReplyIntent::Question | ReplyIntent::WrongContact) => Action::Handoff,
        Some(ReplyIntent::Acknowledged | ReplyIntent::AutoReply | ReplyIntent::OptOut) | None => Action::Nothing,
    }
}

/// The end of the promised day in `zone` (its local midnight), plus `grace_days` calendar days.
pub fn promise_end(promised: NaiveDate, grace_days: u32, zone: Tz) -> Option<DateTime<Utc>> {
    let day_after_grace = promised.checked_add_signed(Duration::days(1 + i64::from(grace_days)))?;
    local_midnight(day_after_grace, zone)
}

/// The start of `day` in `zone`; a midnight skipped by DST becomes the first hour that exists.
pub fn local_midnight(day: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    (0..3).find_map(|h| {
        let local = day.and_hms_opt(h, 0, 0)?;
        zone.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
    })
}

/// The client's phrase as quoted in a detail: trimmed, and cut at `EVIDENCE_MAX_CHARS`.
pub fn quote(evidence: &str) -> String {
    let t = evidence.trim();
    match t.char_indices().nth(EVIDENCE_MAX_CHARS) {
        Some((cut, _)) => format!("\"{}…\"", &t[..cut]),
        None => format!("\"{t}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_core::window::parse_tz;

    fn settings() -> EligibilitySettings {
        EligibilitySettings::default()
    }

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
    }

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn a_dated_promise_pauses_until_the_end_of_the_day_plus_grace_in_the_clients_zone() {
        let la = parse_tz("America/Los_Angeles").unwrap();
        let a = action(Some(ReplyIntent::PromiseToPay), Some(date(3, 13)), received(), la, &settings());
        // End of Friday 13 March in Los Angeles, plus 3 days: Tuesday 17 March 00:00 PDT.
        let until = Utc.with_ymd_and_hms(2026, 3, 17, 7, 0, 0).unwrap();
        assert_eq!(a, Action::Pause { until, reason: PROMISE_TO_PAY, promised_date: Some(date(3, 13)) });
        // Auckland: the same calendar day ends 20 hours earlier.
        let akl = parse_tz("Pacific/Auckland").unwrap();
        let Action::Pause { until, .. } =
            action(Some(ReplyIntent::PromiseToPay), Some(date(3, 13)), received(), akl, &settings())
        else {
            panic!()
        };
        assert_eq!(until, Utc.with_ymd_and_hms(2026, 3, 16, 11, 0, 0).unwrap());
    }

    #[test]
    fn the_grace_period_counts_calendar_days_across_a_dst_change() {
        let ny = parse_tz("America/New_York").unwrap();
        // Promised Friday 6 March; DST starts Sunday 8 March: Tuesday 10 March 00:00 EDT.
        let end = promise_end(date(3, 6), 3, ny).unwrap();
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 10, 4, 0, 0).unwrap());
        // A midnight that does not exist (Santiago skips 00:00 in September) moves to 01:00.
        let scl = parse_tz("America/Santiago").unwrap();
        let skipped = local_midnight(date(9, 6), scl).unwrap();
        assert_eq!(skipped.with_timezone(&scl).format("%H:%M").to_string(), "01:00");
    }

    #[test]
    fn an_undated_promise_and_a_claimed_payment_pause_from_the_reply() {
        let utc = Tz::UTC;
        let a = action(Some(ReplyIntent::PromiseToPay), None, received(), utc, &settings());
        assert_eq!(
            a,
            Action::Pause { until: received() + Duration::days(7), reason: PROMISE_TO_PAY, promised_date: None }
        );
        let a = action(Some(ReplyIntent::AlreadyPaid), Some(date(3, 1)), received(), utc, &settings());
        assert_eq!(
            a,
            Action::Pause { until: received() + Duration::days(5), reason: ALREADY_PAID, promised_date: None }
        );
    }

    #[test]
    fn each_intent_maps_to_one_action() {
        let utc = Tz::UTC;
        let of = |i| action(i, None, received(), utc, &settings());
        assert_eq!(of(Some(ReplyIntent::Dispute)), Action::Dispute);
        for i in [ReplyIntent::PaymentPlan, ReplyIntent::Question, ReplyIntent::WrongContact] {
            assert_eq!(of(Some(i)), Action::Handoff, "{i:?}");
        }
        for i in [Some(ReplyIntent::Acknowledged), Some(ReplyIntent::AutoReply), Some(ReplyIntent::OptOut), None] {
            assert_eq!(of(i), Action::Nothing, "{i:?}");
        }
    }

    #[test]
    fn evidence_is_quoted_and_cut() {
        assert_eq!(quote("  we never approved this  "), "\"we never approved this\"");
        let long = "é".repeat(300);
        let q = quote(&long);
        assert_eq!(q.chars().count(), EVIDENCE_MAX_CHARS + 3);
        assert!(q.ends_with("…\""));
    }
}
