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
    /// The token the gateway proves itself with (`x-arflow-internal-token`).
    #[serde(default)]
    pub internal: InternalSettings,
    #[serde(default)]
    pub optout: OptOutSettings,
}

/// The service's own settings (`[optout]`).
#[derive(Debug, Clone, Deserialize)]
pub struct OptOutSettings {
    /// Holds written at once by a CSV import.
    #[serde(default = "import_concurrency")]
    pub import_concurrency: usize,
    /// The largest CSV import accepted, in rows.
    #[serde(default = "import_max_rows")]
    pub import_max_rows: usize,
}

fn import_concurrency() -> usize {
    32
}
fn import_max_rows() -> usize {
    50_000
}

impl Default for OptOutSettings {
    fn default() -> Self {
        OptOutSettings { import_concurrency: import_concurrency(), import_max_rows: import_max_rows() }
    }
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.internal.validate("internal.token").map_err(|e| ConfigError::invalid("internal.token", e))?;
        if self.optout.import_concurrency == 0 {
            return Err(ConfigError::invalid("optout.import_concurrency", "must be at least 1"));
        }
        if self.optout.import_max_rows == 0 {
            return Err(ConfigError::invalid("optout.import_max_rows", "must be at least 1"));
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

    fn parsed() -> Config {
        arflow_runtime::config::load_defaults(DEFAULTS).unwrap()
    }

    #[test]
    fn defaults_parse_and_an_empty_token_names_the_key() {
        let c = parsed();
        assert_eq!(c.http.port, 8084);
        assert_eq!(c.database.schema, "optout");
        assert!(c.validate().unwrap_err().to_string().contains("internal.token"));
        let mut c = c;
        c.internal.token = "a-token-of-sixteen-chars".to_string().into();
        c.validate().unwrap();
    }
}
