//! Human durations such as `7d`, `36h`, `90m`, `1w` (CLI and config).
use chrono::Duration;

#[derive(Debug, thiserror::Error)]
#[error("invalid duration {input:?}: expected a number followed by w, d, h, m or s (for example 7d)")]
pub struct DurationError {
    input: String,
}

pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError { input: input.to_string() };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| err())?;
    let d = match unit {
        "w" => Duration::try_weeks(n),
        "d" => Duration::try_days(n),
        "h" => Duration::try_hours(n),
        "m" => Duration::try_minutes(n),
        "s" => Duration::try_seconds(n),
        _ => None,
    };
    d.filter(|d| *d > Duration::zero()).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_units() {
        assert_eq!(super::parse("7d").unwrap(), chrono::Duration::days(7));
        assert_eq!(super::parse("36h").unwrap(), chrono::Duration::hours(36));
        assert!(super::parse("7").is_err());
        assert!(super::parse("d").is_err());
        assert!(super::parse("0d").is_err());
        assert!(super::parse("3y").is_err());
    }
}
