//! Typed configuration: `config/default.toml`, then `$ARFLOW_CONFIG`, then `ARFLOW__SECTION__KEY`.
use arflow_bus::ConsumerSettings;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings};
use arflow_service::api::InternalSettings;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub clock: ClockSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub consumer: ConsumerSettings,
    #[serde(default)]
    pub internal: InternalSettings,
    #[serde(default)]
    pub escalation: EscalationSettings,
}

/// The service's own settings (`[escalation]`).
#[derive(Debug, Clone, Deserialize)]
pub struct EscalationSettings {
    /// Days past due that open a case, for a firm that set no threshold of its own.
    #[serde(default = "threshold")]
    pub default_days_past_due_threshold: i32,
    /// With the system clock: seconds between sweeps. (A simulated clock sweeps on every change.)
    #[serde(default = "poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// The gateway's public address: links in the payload are absolute.
    #[serde(default = "public_base_url")]
    pub public_base_url: String,
}

fn threshold() -> i32 {
    60
}
fn poll_interval_secs() -> u64 {
    60
}
fn public_base_url() -> String {
    "http://localhost:8080".into()
}

impl Default for EscalationSettings {
    fn default() -> Self {
        EscalationSettings {
            default_days_past_due_threshold: threshold(),
            poll_interval_secs: poll_interval_secs(),
            public_base_url: public_base_url(),
        }
    }
}

/// Thresholds a firm may set: a day to ten years.
pub const THRESHOLD_RANGE: std::ops::RangeInclusive<i32> = 1..=3650;

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.internal.validate("internal.token").map_err(|e| ConfigError::invalid("internal.token", e))?;
        if !THRESHOLD_RANGE.contains(&self.escalation.default_days_past_due_threshold) {
            return Err(ConfigError::invalid("escalation.default_days_past_due_threshold", "must be 1 to 3650"));
        }
        if self.escalation.poll_interval_secs == 0 {
            return Err(ConfigError::invalid("escalation.poll_interval_secs", "must be at least 1"));
        }
        if !self.escalation.public_base_url.starts_with("http") {
            return Err(ConfigError::invalid("escalation.public_base_url", "must be an http(s) URL"));
        }
        if self.consumer.batch_size == 0 {
            return Err(ConfigError::invalid("consumer.batch_size", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn defaults_load_and_need_an_internal_token() {
        let mut c: Config = arflow_runtime::config::load_defaults(DEFAULTS).unwrap();
        assert_eq!(c.http.port, 8085);
        assert_eq!(c.database.schema, "escalation");
        assert_eq!(c.escalation.default_days_past_due_threshold, 60);
        assert!(Config::defaults().unwrap_err().to_string().contains("internal.token"));
        c.internal.token = SecretString::from("0123456789abcdef".to_string());
        c.validate().unwrap();
    }
}
