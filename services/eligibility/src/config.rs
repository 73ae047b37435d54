//! Typed configuration: `config/default.toml`, then `$ARFLOW_CONFIG`, then `ARFLOW__SECTION__KEY`.
use arflow_bus::ConsumerSettings;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings};
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
    pub eligibility: EligibilitySettings,
}

/// The service's own settings (`[eligibility]`).
#[derive(Debug, Clone, Deserialize)]
pub struct EligibilitySettings {
    /// With the system clock: seconds between sweeps for invoices whose due date
    /// passed or whose pause expired. (A simulated clock sweeps on every change.)
    #[serde(default = "poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// Invoices re-evaluated per transaction by the time sweep.
    #[serde(default = "sweep_batch")]
    pub sweep_batch: i64,
}

fn poll_interval_secs() -> u64 {
    5
}
fn sweep_batch() -> i64 {
    500
}

impl Default for EligibilitySettings {
    fn default() -> Self {
        EligibilitySettings { poll_interval_secs: poll_interval_secs(), sweep_batch: sweep_batch() }
    }
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        if self.eligibility.poll_interval_secs == 0 {
            return Err(ConfigError::invalid("eligibility.poll_interval_secs", "must be at least 1"));
        }
        if self.eligibility.sweep_batch <= 0 {
            return Err(ConfigError::invalid("eligibility.sweep_batch", "must be positive"));
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

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.http.port, 8081);
        assert_eq!(c.database.schema, "eligibility");
        assert_eq!(c.clock.mode, arflow_runtime::ClockMode::System);
    }
}
