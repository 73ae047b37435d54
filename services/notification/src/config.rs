//! Typed configuration: `config/default.toml`, then `$ARFLOW_CONFIG`, then `ARFLOW__SECTION__KEY`.
use arflow_bus::ConsumerSettings;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings};
use arflow_service::api::InternalSettings;
use serde::Deserialize;
use std::time::Duration;

/// Shared with the other service that sends mail.
pub use arflow_runtime::{SmtpSettings, SmtpTls as TlsMode};

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
    pub smtp: SmtpSettings,
    pub notification: NotificationSettings,
}

/// `[notification]`: delivery policy and what notifications link to.
#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    pub from_address: String,
    pub from_name: String,
    pub api_base_url: String,
    /// Delay before retry n (the last repeats), before jitter.
    pub retry_backoff_ms: Vec<u64>,
    pub max_attempts: i32,
    pub disable_after_failures: i32,
    pub disable_after_hours: i64,
    pub timeout_secs: u64,
    pub poll_ms: u64,
    pub batch_size: i64,
    pub concurrency: usize,
    pub digest_hour: u32,
    /// Let webhooks and Slack URLs reach loopback and private addresses (local development
    /// only; production leaves it false so a firm's URL cannot reach internal services).
    #[serde(default)]
    pub allow_private_targets: bool,
}

impl NotificationSettings {
    /// The delay after failed attempt `attempt` (1-based), without jitter.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let i = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        let ms = self.retry_backoff_ms.get(i).or(self.retry_backoff_ms.last()).copied().unwrap_or(5_000);
        Duration::from_millis(ms)
    }
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.internal.validate("internal.token").map_err(|e| ConfigError::invalid("internal.token", e))?;
        let n = &self.notification;
        if self.smtp.host.trim().is_empty() {
            return Err(ConfigError::invalid("smtp.host", "must not be empty"));
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            return Err(ConfigError::invalid("smtp.password", "smtp.username and smtp.password go together"));
        }
        if n.from_address.parse::<lettre::Address>().is_err() {
            return Err(ConfigError::invalid("notification.from_address", "must be an email address"));
        }
        if n.retry_backoff_ms.is_empty() {
            return Err(ConfigError::invalid("notification.retry_backoff_ms", "must name at least one delay"));
        }
        for (key, value) in [
            ("notification.max_attempts", i64::from(n.max_attempts)),
            ("notification.disable_after_failures", i64::from(n.disable_after_failures)),
            ("notification.disable_after_hours", n.disable_after_hours),
            ("notification.batch_size", n.batch_size),
            ("notification.timeout_secs", i64::try_from(n.timeout_secs).unwrap_or(i64::MAX)),
            ("notification.poll_ms", i64::try_from(n.poll_ms).unwrap_or(i64::MAX)),
            ("notification.concurrency", i64::try_from(n.concurrency).unwrap_or(i64::MAX)),
        ] {
            if value < 1 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if n.digest_hour > 23 {
            return Err(ConfigError::invalid("notification.digest_hour", "must be between 0 and 23"));
        }
        if !(n.api_base_url.starts_with("http://") || n.api_base_url.starts_with("https://")) {
            return Err(ConfigError::invalid("notification.api_base_url", "must be an http(s) URL"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_runtime::config::load_defaults;

    fn defaults() -> Config {
        let mut c: Config = load_defaults(DEFAULTS).unwrap();
        c.internal.token = secrecy::SecretString::from("a-token-of-16-chars-or-more".to_string());
        c
    }

    #[test]
    fn defaults_load_and_validate_once_the_token_is_set() {
        let c = defaults();
        c.validate().unwrap();
        assert_eq!(c.http.port, 8086);
        assert_eq!(c.database.schema, "notification");
        assert_eq!(c.notification.backoff(1), Duration::from_secs(5));
        assert_eq!(c.notification.backoff(100), Duration::from_secs(8 * 3600));
    }

    #[test]
    fn without_the_internal_token_start_up_names_the_key() {
        let c: Config = load_defaults(DEFAULTS).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("internal.token"));
    }
}
