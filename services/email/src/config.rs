//! Typed configuration: `config/default.toml`, then `$ARFLOW_CONFIG`, then `ARFLOW__SECTION__KEY`.
use arflow_bus::ConsumerSettings;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings};
use secrecy::SecretString;
use serde::Deserialize;

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
    pub smtp: SmtpSettings,
    pub email: EmailSettings,
    /// `[unsubscribe] secret`: signs the one-click unsubscribe links, which the gateway verifies
    /// with the same key. Required: the email service refuses to start without it.
    #[serde(default)]
    pub unsubscribe: arflow_runtime::UnsubscribeSettings,
    /// The token the gateway proves itself with on `/v1/emails/...`; empty refuses every call.
    #[serde(default)]
    pub internal: arflow_service::api::InternalSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    /// Where the one-click unsubscribe endpoint lives (the gateway): `<base>/v1/unsubscribe/<token>`.
    pub unsubscribe_base_url: String,
    /// Optional `mailto:` target added to `List-Unsubscribe`.
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
    /// Domain of the inbound reply addresses (`Reply-To: reply+<token>@<reply_domain>`), routed
    /// by the firm's mail provider to `POST /webhooks/email/inbound/{firm_id}`. Unset: replies
    /// go to the sender address and are matched by `In-Reply-To` / sender instead.
    #[serde(default)]
    pub reply_domain: Option<String>,
    /// SMTP attempts per email before a transient failure becomes final.
    pub max_attempts: i32,
    #[serde(default = "retry_backoff_ms")]
    pub retry_backoff_ms: Vec<u64>,
    #[serde(default = "poll_ms")]
    pub poll_ms: u64,
    #[serde(default = "batch_size")]
    pub batch_size: i64,
    /// How long a sender owns the rows it took; its heartbeat renews this every third of it.
    /// Rows of a sender that stopped are judged once it expires (see `sender`).
    #[serde(default = "lease_secs")]
    pub lease_secs: u64,
    #[serde(default)]
    pub dkim: Option<DkimSettings>,
    /// Optional LLM assist for replies the rules are not sure about (off unless set).
    #[serde(default)]
    pub assist: Option<AssistSettings>,
}

/// An OpenAI-compatible chat-completions endpoint. It is asked only when no rule is sure, and its
/// answer never overrides an opt-out the rules found.
#[derive(Debug, Clone, Deserialize)]
pub struct AssistSettings {
    /// e.g. `https://api.openai.com/v1` (without `/chat/completions`).
    pub base_url: String,
    pub model: String,
    /// From `ARFLOW__EMAIL__ASSIST__API_KEY`.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    #[serde(default = "assist_timeout_ms")]
    pub timeout_ms: u64,
}

fn assist_timeout_ms() -> u64 {
    5_000
}

fn retry_backoff_ms() -> Vec<u64> {
    vec![1_000, 5_000, 30_000, 120_000]
}
fn poll_ms() -> u64 {
    250
}
fn lease_secs() -> u64 {
    30
}
fn batch_size() -> i64 {
    64
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DkimAlgorithm {
    #[default]
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    /// PKCS#1 PEM for rsa, the base64 secret key for ed25519.
    pub private_key_path: String,
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

impl EmailSettings {
    /// The delay before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: i32) -> std::time::Duration {
        let i = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        let ms = self.retry_backoff_ms.get(i).or(self.retry_backoff_ms.last()).copied().unwrap_or(1_000);
        std::time::Duration::from_millis(ms)
    }
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        if self.consumer.batch_size == 0 {
            return Err(ConfigError::invalid("consumer.batch_size", "must be at least 1"));
        }
        if self.smtp.host.trim().is_empty() {
            return Err(ConfigError::invalid("smtp.host", "must not be empty"));
        }
        if self.smtp.port == 0 {
            return Err(ConfigError::invalid("smtp.port", "must not be 0"));
        }
        if !(1..=256).contains(&self.smtp.pool_size) {
            return Err(ConfigError::invalid("smtp.pool_size", "must be between 1 and 256"));
        }
        if self.smtp.timeout_secs == 0 {
            return Err(ConfigError::invalid("smtp.timeout_secs", "must be at least 1"));
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            return Err(ConfigError::invalid("smtp.password", "smtp.username and smtp.password go together"));
        }
        let base = &self.email.unsubscribe_base_url;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::invalid("email.unsubscribe_base_url", "must be an http(s) URL"));
        }
        // A link the gateway could not verify would answer every client who clicks it with an error.
        self.unsubscribe.validate()?;
        if let Some(m) = &self.email.unsubscribe_mailto
            && !m.contains('@')
        {
            return Err(ConfigError::invalid("email.unsubscribe_mailto", "must be an email address"));
        }
        if let Some(d) = &self.email.reply_domain
            && (d.contains('@') || d.contains(char::is_whitespace))
        {
            return Err(ConfigError::invalid("email.reply_domain", "must be a bare domain like in.example.com"));
        }
        if !(1..=100).contains(&self.email.max_attempts) {
            return Err(ConfigError::invalid("email.max_attempts", "must be between 1 and 100"));
        }
        if self.email.retry_backoff_ms.is_empty() {
            return Err(ConfigError::invalid("email.retry_backoff_ms", "needs at least one delay"));
        }
        if self.email.lease_secs < 3 {
            return Err(ConfigError::invalid("email.lease_secs", "must be at least 3"));
        }
        if self.email.poll_ms == 0 {
            return Err(ConfigError::invalid("email.poll_ms", "must be at least 1"));
        }
        if !(1..=1_000).contains(&self.email.batch_size) {
            return Err(ConfigError::invalid("email.batch_size", "must be between 1 and 1000"));
        }
        if let Some(a) = &self.email.assist {
            if !(a.base_url.starts_with("http://") || a.base_url.starts_with("https://")) {
                return Err(ConfigError::invalid("email.assist.base_url", "must be an http(s) URL"));
            }
            if a.model.trim().is_empty() {
                return Err(ConfigError::invalid("email.assist.model", "must not be empty"));
            }
            if !(100..=60_000).contains(&a.timeout_ms) {
                return Err(ConfigError::invalid("email.assist.timeout_ms", "must be between 100 and 60000"));
            }
        }
        if let Some(d) = &self.email.dkim {
            if d.selector.is_empty() {
                return Err(ConfigError::invalid("email.dkim.selector", "must not be empty"));
            }
            if d.domain.is_empty() {
                return Err(ConfigError::invalid("email.dkim.domain", "must not be empty"));
            }
            if d.private_key_path.is_empty() {
                return Err(ConfigError::invalid("email.dkim.private_key_path", "must not be empty"));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The compiled-in defaults with the one setting they cannot have (the unsubscribe secret).
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub(crate) fn for_tests() -> Config {
        let mut c: Config = arflow_runtime::config::load_defaults(DEFAULTS).unwrap();
        c.unsubscribe.secret = "unsubscribe-secret-0123456789".to_string().into();
        c.validate().unwrap();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_unsubscribe_secret_the_service_refuses_to_start() {
        // The defaults have none (there was a shared dev default the gateway did not know).
        let err = Config::defaults().unwrap_err().to_string();
        assert!(err.contains("unsubscribe.secret") && err.contains("ARFLOW__UNSUBSCRIBE__SECRET"), "{err}");
        let mut c = Config::for_tests();
        c.unsubscribe.secret = "too-short".to_string().into();
        assert!(c.validate().unwrap_err().to_string().contains("unsubscribe.secret"));
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::for_tests();
        assert_eq!(c.http.port, 8083);
        assert_eq!(c.database.schema, "email");
        assert_eq!(c.smtp.port, 1025);
        assert_eq!(c.smtp.tls, TlsMode::None);
        assert_eq!(c.smtp.pool_size, 16);
        assert_eq!(c.email.max_attempts, 5);
        assert!(c.email.dkim.is_none());
        assert_eq!(c.email.backoff(1).as_millis(), 1_000);
        assert_eq!(c.email.backoff(99).as_millis(), 120_000);
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = Config::for_tests();
        c.email.max_attempts = 0;
        assert!(c.validate().unwrap_err().to_string().contains("email.max_attempts"));
        let mut c = Config::for_tests();
        c.smtp.username = Some("u".into());
        assert!(c.validate().unwrap_err().to_string().contains("smtp.password"));
        let mut c = Config::for_tests();
        c.email.unsubscribe_base_url = "ftp://x".into();
        assert!(c.validate().unwrap_err().to_string().contains("email.unsubscribe_base_url"));
    }
}
