//! Send windows: the local hours and weekdays in which a client may be contacted.
//! Evaluated in the contact's own IANA time zone (DST-aware through chrono-tz).
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WindowError {
    #[error("unknown IANA time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("send window must start before it ends (start {start}:00, end {end}:00)")]
    Empty { start: u32, end: u32 },
    #[error("send window needs at least one weekday")]
    NoDays,
}

/// `[start_hour, end_hour)` local time on the listed weekdays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendWindow {
    pub start_hour: u32,
    pub end_hour: u32,
    pub days: Vec<Weekday>,
}

impl SendWindow {
    /// Business days, 09:00-17:00 (the default email window).
    pub fn business_hours() -> Self {
        SendWindow {
            start_hour: 9,
            end_hour: 17,
            days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
        }
    }

    pub fn validate(&self) -> Result<(), WindowError> {
        if self.start_hour >= self.end_hour || self.end_hour > 24 {
            return Err(WindowError::Empty { start: self.start_hour, end: self.end_hour });
        }
        if self.days.is_empty() {
            return Err(WindowError::NoDays);
        }
        Ok(())
    }

    pub fn contains(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let local = at.with_timezone(&tz);
        self.days.contains(&local.weekday()) && local.hour() >= self.start_hour && local.hour() < self.end_hour
    }

    /// The window's opening instant on `date` in `tz`, or on the next allowed day.
    pub fn opening_on_or_after(&self, date: NaiveDate, tz: Tz) -> DateTime<Utc> {
        let mut day = date;
        for _ in 0..14 {
            if self.days.contains(&day.weekday())
                && let Some(t) = local_instant(day, self.start_hour, tz)
            {
                return t;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        // Unreachable with a validated window; fall back to the date at UTC start.
        Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
    }

    /// The earliest instant at or after `at` that lies inside the window.
    pub fn next_open(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        if self.contains(at, tz) {
            return at;
        }
        let local = at.with_timezone(&tz);
        let today = local.date_naive();
        let candidate = self.opening_on_or_after(today, tz);
        if candidate >= at { candidate } else { self.opening_on_or_after(today + Duration::days(1), tz) }
    }
}

/// `hour:00` local on `day`; a time skipped by a DST jump moves to the next hour that exists.
fn local_instant(day: NaiveDate, hour: u32, tz: Tz) -> Option<DateTime<Utc>> {
    (hour..hour + 3).find_map(|h| {
        let naive = day.and_hms_opt(h, 0, 0)?;
        tz.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
    })
}

/// Parses an IANA zone name such as `Pacific/Auckland`.
pub fn parse_tz(name: &str) -> Result<Tz, WindowError> {
    name.parse::<Tz>().map_err(|_| WindowError::UnknownTimeZone(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_open_lands_inside_the_window_in_local_time() {
        let w = SendWindow::business_hours();
        for zone in ["Pacific/Auckland", "America/Los_Angeles", "Europe/London", "Asia/Kolkata"] {
            let tz = parse_tz(zone).unwrap();
            let mut at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
            for _ in 0..500 {
                let open = w.next_open(at, tz);
                assert!(open >= at);
                assert!(w.contains(open, tz), "{zone} {at} -> {open}");
                assert!(open - at < Duration::days(4));
                at += Duration::minutes(97);
            }
        }
    }

    #[test]
    fn weekend_moves_to_monday() {
        let w = SendWindow::business_hours();
        let tz = parse_tz("America/Los_Angeles").unwrap();
        // Saturday 2026-03-07 noon in LA.
        let sat = tz.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap().with_timezone(&Utc);
        let open = w.next_open(sat, tz).with_timezone(&tz);
        assert_eq!(open.weekday(), Weekday::Mon);
        assert_eq!(open.hour(), 9);
    }

    #[test]
    fn unknown_zone_is_an_error() {
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
