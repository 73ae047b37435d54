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
    pub scheduler: SchedulerSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerSettings {
    /// How often the timer loop looks for due steps (ms); a simulated clock also wakes it on every move.
    pub tick_ms: u64,
    /// Due invoices handled per timer transaction.
    pub batch_size: i64,
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        if self.scheduler.tick_ms == 0 {
            return Err(ConfigError::invalid("scheduler.tick_ms", "must be at least 1"));
        }
        if !(1..=10_000).contains(&self.scheduler.batch_size) {
            return Err(ConfigError::invalid("scheduler.batch_size", "must be between 1 and 10000"));
        }
        if self.consumer.batch_size == 0 {
            return Err(ConfigError::invalid("consumer.batch_size", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.http.port, 8082);
        assert_eq!(c.database.schema, "scheduler");
        assert_eq!(c.scheduler.tick_ms, 1000);
        assert_eq!(c.scheduler.batch_size, 500);
    }

    #[test]
    fn bad_batch_size_names_the_key() {
        let mut c = Config::defaults().unwrap();
        c.scheduler.batch_size = 0;
        assert!(c.validate().unwrap_err().to_string().contains("scheduler.batch_size"));
    }
}
