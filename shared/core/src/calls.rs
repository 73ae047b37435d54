//! Fence 4: when a client may be called (or texted). Calls only between 08:00 and 21:00 in
//! the contact's own zone, never when that zone is unknown, at most 7 attempts per invoice in
//! any 7 days; the firm's own quieter window applies on top. The scheduler plans with these
//! rules and the voice service checks them again right before dialling.
use crate::window::{SendWindow, parse_tz};
use chrono::{DateTime, Duration, Utc, Weekday};
use chrono_tz::Tz;

/// The earliest local hour a call may start.
pub const EARLIEST_HOUR: u32 = 8;
/// The local hour by which calls stop (exclusive).
pub const LATEST_HOUR: u32 = 21;
/// Attempts allowed per invoice in any [`CAP_PERIOD`].
pub const MAX_ATTEMPTS: usize = 7;
/// The rolling period of the attempt cap.
pub const CAP_PERIOD: Duration = Duration::days(7);

/// Why a call may not be placed now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallRefusal {
    /// The contact's zone is missing or not an IANA zone: no window can be trusted.
    #[error("the contact's time zone is unknown ({0})")]
    TimezoneUnknown(String),
    /// Outside the window now; it opens again at `opens`.
    #[error("outside the calling window in {zone}; next opening {opens}")]
    OutsideWindow { zone: String, opens: DateTime<Utc> },
    /// Seven attempts already in the last seven days; the oldest leaves the period at `until`.
    #[error("{attempts} call attempts for this invoice in the last 7 days; next allowed {until}")]
    AttemptCap { attempts: usize, until: DateTime<Utc> },
}

impl CallRefusal {
    /// A stable reason for audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            CallRefusal::TimezoneUnknown(_) => "timezone_unknown",
            CallRefusal::OutsideWindow { .. } => "outside_call_window",
            CallRefusal::AttemptCap { .. } => "attempt_cap",
        }
    }
}

/// The default calling days: Monday to Saturday (no Sunday calls).
pub fn default_window() -> SendWindow {
    SendWindow {
        start_hour: EARLIEST_HOUR,
        end_hour: LATEST_HOUR,
        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat],
    }
}

/// The window calls are placed in: the firm's own (if valid) clipped to 08:00-21:00, else the
/// default. A firm window with no hour left inside the fence falls back to the default too,
/// with the fence still applied, so no firm setting can widen it.
pub fn window(firm: Option<&SendWindow>) -> SendWindow {
    let Some(w) = firm.filter(|w| w.validate().is_ok()) else { return default_window() };
    let clipped = SendWindow {
        start_hour: w.start_hour.max(EARLIEST_HOUR),
        end_hour: w.end_hour.min(LATEST_HOUR),
        days: w.days.clone(),
    };
    if clipped.validate().is_ok() { clipped } else { default_window() }
}

/// The contact's zone, or why it cannot be used.
pub fn zone(name: Option<&str>) -> Result<Tz, CallRefusal> {
    let name =
        name.map(str::trim).filter(|z| !z.is_empty()).ok_or_else(|| CallRefusal::TimezoneUnknown("none".into()))?;
    parse_tz(name).map_err(|_| CallRefusal::TimezoneUnknown(name.to_string()))
}

/// Attempts in the cap period ending at `now`, and when the oldest of them leaves it.
pub fn attempts_in_period(now: DateTime<Utc>, attempts: &[DateTime<Utc>]) -> (usize, Option<DateTime<Utc>>) {
    let since = now - CAP_PERIOD;
    let recent: Vec<&DateTime<Utc>> = attempts.iter().filter(|t| **t > since && **t <= now).collect();
    (recent.len(), recent.iter().min().map(|t| **t + CAP_PERIOD))
}

/// Whether a call may be placed at `now` to a contact in `zone`, given the firm's window and the
/// invoice's earlier attempts (placed calls, any outcome). `Ok` carries the zone used.
pub fn may_call(
    now: DateTime<Utc>,
    zone_name: Option<&str>,
    firm_window: Option<&SendWindow>,
    attempts: &[DateTime<Utc>],
) -> Result<Tz, CallRefusal> {
    let tz = zone(zone_name)?;
    let w = window(firm_window);
    if !w.contains(now, tz) {
        return Err(CallRefusal::OutsideWindow { zone: tz.name().to_string(), opens: w.next_open(now, tz) });
    }
    let (n, oldest_leaves) = attempts_in_period(now, attempts);
    if n >= MAX_ATTEMPTS {
        return Err(CallRefusal::AttemptCap { attempts: n, until: oldest_leaves.unwrap_or(now + CAP_PERIOD) });
    }
    Ok(tz)
}

/// The first instant at or after `at` when a call is allowed (window and cap), or why never.
pub fn next_allowed(
    at: DateTime<Utc>,
    zone_name: Option<&str>,
    firm_window: Option<&SendWindow>,
    attempts: &[DateTime<Utc>],
) -> Result<DateTime<Utc>, CallRefusal> {
    let mut t = at;
    // Each turn either succeeds or moves past a window closing or an attempt leaving the period.
    for _ in 0..32 {
        match may_call(t, zone_name, firm_window, attempts) {
            Ok(_) => return Ok(t),
            Err(CallRefusal::OutsideWindow { opens, .. }) => t = opens.max(t + Duration::seconds(1)),
            Err(CallRefusal::AttemptCap { until, .. }) => t = until.max(t + Duration::seconds(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn firm_windows_never_widen_the_fence() {
        let wide = SendWindow { start_hour: 6, end_hour: 23, days: default_window().days };
        let w = window(Some(&wide));
        assert_eq!((w.start_hour, w.end_hour), (8, 21));
        let narrow = SendWindow { start_hour: 10, end_hour: 16, days: vec![Weekday::Tue] };
        assert_eq!(window(Some(&narrow)), narrow);
        let night = SendWindow { start_hour: 22, end_hour: 24, days: vec![Weekday::Mon] };
        assert_eq!(window(Some(&night)), default_window());
    }

    #[test]
    fn unknown_zones_are_refused() {
        let now = at(2026, 3, 10, 15, 0);
        for z in [None, Some(""), Some("Mars/Olympus"), Some("EST5EDT-ish")] {
            assert_eq!(may_call(now, z, None, &[]).unwrap_err().reason(), "timezone_unknown", "{z:?}");
        }
    }

    #[test]
    fn window_is_read_in_the_contact_zone() {
        // 13:30 UTC on a Tuesday: 08:30 in New York (EST), 00:30 next day in Auckland.
        let now = at(2026, 3, 3, 13, 30);
        assert!(may_call(now, Some("America/New_York"), None, &[]).is_ok());
        let e = may_call(now, Some("Pacific/Auckland"), None, &[]).unwrap_err();
        let CallRefusal::OutsideWindow { opens, .. } = e else { panic!("{e:?}") };
        assert_eq!(opens.with_timezone(&chrono_tz::Pacific::Auckland).hour(), 8);
    }

    #[test]
    fn seven_attempts_in_seven_days_then_wait() {
        let now = at(2026, 3, 10, 15, 0);
        let attempts: Vec<_> = (0..7).map(|i| now - Duration::hours(20 * i)).collect();
        let e = may_call(now + Duration::minutes(1), Some("America/New_York"), None, &attempts).unwrap_err();
        assert_eq!(e.reason(), "attempt_cap");
        let next = next_allowed(now, Some("America/New_York"), None, &attempts).unwrap();
        assert!(next >= attempts[6] + CAP_PERIOD);
        assert!(may_call(next, Some("America/New_York"), None, &attempts).is_ok());
    }
}
