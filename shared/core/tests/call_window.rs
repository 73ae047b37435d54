//! Fence 4 as a property: over thousands of random contacts (every IANA zone chrono-tz knows,
//! DST transition days, unknown and malformed zones, random firm windows) and clock times, a call
//! the fence allows is always between 08:00 and 21:00 in the contact's own zone, never happens
//! without a known zone, and a dialler that asks the fence before every attempt never places an
//! eighth attempt inside any seven days.
use arflow_core::SendWindow;
use arflow_core::calls::{self, CallRefusal, MAX_ATTEMPTS};
use chrono::{DateTime, Duration, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::{TZ_VARIANTS, Tz};
use proptest::prelude::*;

/// Days on which some zone moves its clocks in 2026 (US, EU, Chile, Australia/NZ, Iran-less).
const DST_DAYS: [(u32, u32); 8] = [(3, 8), (3, 29), (4, 5), (4, 26), (9, 6), (9, 27), (10, 25), (11, 1)];

fn zone_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => (0..TZ_VARIANTS.len()).prop_map(|i| Some(TZ_VARIANTS[i].name().to_string())),
        1 => Just(None),
        1 => prop_oneof![
            Just(Some(String::new())),
            Just(Some("Mars/Olympus".to_string())),
            Just(Some("GMT+25".to_string())),
            Just(Some("america/new york".to_string())),
            "[A-Za-z/_+-]{0,20}".prop_map(Some),
        ],
    ]
}

/// Any instant of 2026, or one within 36 hours of a DST transition day (where local hours repeat or vanish).
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap().timestamp();
    prop_oneof![
        (0i64..365 * 86_400).prop_map(move |s| Utc.timestamp_opt(start + s, 0).unwrap()),
        (0..DST_DAYS.len(), -36 * 3600i64..36 * 3600).prop_map(|(i, off)| {
            let (m, d) = DST_DAYS[i];
            Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap() + Duration::seconds(off)
        }),
    ]
}

fn firm_window() -> impl Strategy<Value = Option<SendWindow>> {
    let days = proptest::sample::subsequence(
        vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun],
        0..=7,
    );
    prop_oneof![
        1 => Just(None),
        2 => (0u32..26, 0u32..26, days).prop_map(|(start_hour, end_hour, days)| Some(SendWindow { start_hour, end_hour, days })),
    ]
}

fn local_hour(at: DateTime<Utc>, tz: Tz) -> u32 {
    at.with_timezone(&tz).hour()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// Whatever the zone, firm window and clock: allowed => 08:00-21:00 local in a known zone.
    #[test]
    fn an_allowed_call_is_inside_eight_to_nine_local(zone in zone_name(), now in instant(), firm in firm_window()) {
        match calls::may_call(now, zone.as_deref(), firm.as_ref(), &[]) {
            Ok(tz) => {
                let name = zone.clone().unwrap_or_default();
                prop_assert_eq!(tz.name(), name.trim());
                let h = local_hour(now, tz);
                prop_assert!((calls::EARLIEST_HOUR..calls::LATEST_HOUR).contains(&h), "{} local hour {}", tz.name(), h);
                if let Some(w) = firm.as_ref().filter(|w| w.validate().is_ok() && w.start_hour.max(8) < w.end_hour.min(21)) {
                    prop_assert!(w.contains(now, tz), "outside the firm's own window");
                }
            }
            Err(CallRefusal::TimezoneUnknown(_)) => {
                let known = zone.as_deref().map(str::trim).is_some_and(|z| z.parse::<Tz>().is_ok());
                prop_assert!(!known, "a valid zone {:?} was called unknown", zone);
            }
            Err(CallRefusal::OutsideWindow { opens, .. }) => {
                prop_assert!(opens > now);
                let tz: Tz = zone.as_deref().map(str::trim).unwrap_or_default().parse().unwrap();
                // Where the fence says it opens, it is open.
                prop_assert!(calls::may_call(opens, zone.as_deref(), firm.as_ref(), &[]).is_ok(), "{} opens {}", tz.name(), opens);
                prop_assert!(opens - now <= Duration::days(8));
            }
            Err(e @ CallRefusal::AttemptCap { .. }) => prop_assert!(false, "no attempts yet, got {e}"),
        }
    }

    /// A dialler that retries as soon as the fence allows, for 30 days from a random start:
    /// every attempt inside the window, never more than 7 in any 7 days.
    #[test]
    fn a_greedy_dialler_keeps_the_cap_and_the_window(zone in zone_name(), start in instant(), firm in firm_window(), gap_minutes in 1i64..600) {
        let mut attempts: Vec<DateTime<Utc>> = Vec::new();
        let mut t = start;
        let end = start + Duration::days(30);
        while t < end {
            match calls::next_allowed(t, zone.as_deref(), firm.as_ref(), &attempts) {
                Ok(at) if at < end => {
                    let tz = calls::may_call(at, zone.as_deref(), firm.as_ref(), &attempts).expect("next_allowed is allowed");
                    let h = local_hour(at, tz);
                    prop_assert!((8..21).contains(&h));
                    attempts.push(at);
                    t = at + Duration::minutes(gap_minutes);
                }
                Ok(_) => break,
                Err(CallRefusal::TimezoneUnknown(_)) => {
                    prop_assert!(attempts.is_empty());
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected refusal {e}"),
            }
        }
        for (i, a) in attempts.iter().enumerate() {
            let in_period = attempts[i..].iter().filter(|b| **b - *a < calls::CAP_PERIOD).count();
            prop_assert!(in_period <= MAX_ATTEMPTS, "{} attempts within 7 days from {}", in_period, a);
        }
    }
}

/// Every zone, every hour of the year's DST transition days: allowed exactly when the local hour is 8-20.
#[test]
fn every_zone_every_hour_of_the_transition_days() {
    let mut checked = 0;
    for tz in TZ_VARIANTS {
        for (m, d) in DST_DAYS {
            let day = Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap();
            for quarter in -96..192 {
                let at = day + Duration::minutes(15 * quarter);
                let local = at.with_timezone(&tz);
                let open_day = calls::default_window().days.contains(&chrono::Datelike::weekday(&local));
                let expected = open_day && (8..21).contains(&local.hour());
                assert_eq!(
                    calls::may_call(at, Some(tz.name()), None, &[]).is_ok(),
                    expected,
                    "{} at {}",
                    tz.name(),
                    local
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 500_000, "{checked}");
}
