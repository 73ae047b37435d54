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
    /// A client says the invoice is already paid: outreach waits this many days for Stripe
    /// to report the payment, then resumes.
    #[serde(default = "reconcile_days")]
    pub reconcile_days: u32,
    /// A payment promise with a date: days after the end of the promised day (client's zone)
    /// before the promise counts as broken.
    #[serde(default = "promise_grace_days")]
    pub promise_grace_days: u32,
    /// A payment promise without a date pauses outreach this many days from the reply.
    #[serde(default = "promise_default_days")]
    pub promise_default_days: u32,
}

fn poll_interval_secs() -> u64 {
    5
}
fn sweep_batch() -> i64 {
    500
}
fn reconcile_days() -> u32 {
    5
}
fn promise_grace_days() -> u32 {
    3
}
fn promise_default_days() -> u32 {
    7
}

impl Default for EligibilitySettings {
    fn default() -> Self {
        EligibilitySettings {
            poll_interval_secs: poll_interval_secs(),
            sweep_batch: sweep_batch(),
            reconcile_days: reconcile_days(),
            promise_grace_days: promise_grace_days(),
            promise_default_days: promise_default_days(),
        }
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
        // A pause of zero days would end before it is noticed; a year is surely a typo.
        for (key, days) in [
            ("eligibility.reconcile_days", self.eligibility.reconcile_days),
            ("eligibility.promise_default_days", self.eligibility.promise_default_days),
        ] {
            if !(1..=365).contains(&days) {
                return Err(ConfigError::invalid(key, "must be between 1 and 365"));
            }
        }
        if self.eligibility.promise_grace_days > 365 {
            return Err(ConfigError::invalid("eligibility.promise_grace_days", "must be at most 365"));
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
        assert_eq!(
            (c.eligibility.reconcile_days, c.eligibility.promise_grace_days, c.eligibility.promise_default_days),
            (5, 3, 7)
        );
    }

    #[test]
    fn a_zero_day_pause_names_the_key() {
        let mut c = Config::defaults().unwrap();
        c.eligibility.reconcile_days = 0;
        assert!(c.validate().unwrap_err().to_string().contains("eligibility.reconcile_days"));
    }
}
