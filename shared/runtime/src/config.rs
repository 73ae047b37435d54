//! Typed configuration: the service's defaults file (compiled in), then the file
//! named by `ARFLOW_CONFIG` if set, then `ARFLOW__SECTION__KEY` environment variables.
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key {key} is invalid: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.to_string(), reason: reason.into() }
    }
}

/// A service's typed configuration: its compiled-in defaults and its own validation.
/// `load` and `defaults` are the same for every service, so they live here.
pub trait ServiceConfig: DeserializeOwned {
    /// The service's `config/default.toml`.
    const DEFAULTS: &'static str;

    /// Checks values the types cannot; the error names the bad key.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Defaults + `$ARFLOW_CONFIG` + `ARFLOW__...` variables, validated.
    fn load() -> Result<Self, ConfigError> {
        let config: Self = load(Self::DEFAULTS)?;
        config.validate()?;
        Ok(config)
    }

    /// The compiled-in defaults only, validated (tests and the all-in-one process override
    /// fields on top).
    fn defaults() -> Result<Self, ConfigError> {
        let config: Self = load_defaults(Self::DEFAULTS)?;
        config.validate()?;
        Ok(config)
    }
}

/// Loads `T` from `defaults` (TOML) + `$ARFLOW_CONFIG` + `ARFLOW__...` variables.
pub fn load<T: DeserializeOwned>(defaults: &str) -> Result<T, ConfigError> {
    load_from(defaults, environment())
}

/// The `ARFLOW__SECTION__KEY` variables.
fn environment() -> config::Environment {
    config::Environment::with_prefix("ARFLOW")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        // Only these keys are lists (`ARFLOW__CONSUMER__BACKOFF_MS=100,500,2000`); every other
        // value stays a string even when it contains a comma.
        .list_separator(",")
        .with_list_parse_key("consumer.backoff_ms")
        .with_list_parse_key("email.retry_backoff_ms")
        .with_list_parse_key("notification.retry_backoff_ms")
}

fn load_from<T: DeserializeOwned>(defaults: &str, env: config::Environment) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Ok(path) = std::env::var("ARFLOW_CONFIG") {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    Ok(builder.add_source(env).build()?.try_deserialize()?)
}

/// Loads `T` from the compiled-in defaults only (tests and the all-in-one process
/// set their own values on top).
pub fn load_defaults<T: DeserializeOwned>(defaults: &str) -> Result<T, ConfigError> {
    let cfg =
        config::Config::builder().add_source(config::File::from_str(defaults, config::FileFormat::Toml)).build()?;
    Ok(cfg.try_deserialize()?)
}

#[derive(Debug, Clone, Deserialize)]
pub struct NatsSettings {
    pub url: String,
    /// Replicas of every stream and bucket (3 in Kubernetes, 1 locally).
    #[serde(default = "one")]
    pub replicas: usize,
    /// Path to a NATS credentials file, when the server requires one.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// JetStream duplicate window for `Nats-Msg-Id` deduplication.
    #[serde(default = "dup_window")]
    pub duplicate_window_secs: u64,
    /// Bytes each stream may hold (default: each stream's own limit, see `docs/operations.md`).
    /// A full stream refuses new messages (discard `new`): publishers retry from their outbox,
    /// nothing unconsumed is ever dropped.
    #[serde(default)]
    pub stream_max_bytes: Option<i64>,
    /// Days a message is kept in any stream (default: each stream's own age limit).
    #[serde(default)]
    pub stream_max_age_days: Option<u32>,
}

fn one() -> usize {
    1
}
fn dup_window() -> u64 {
    120
}

impl NatsSettings {
    /// One server at `url`, one replica, the default duplicate window and stream limits.
    pub fn at(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            replicas: 1,
            credentials_file: None,
            duplicate_window_secs: dup_window(),
            stream_max_bytes: None,
            stream_max_age_days: None,
        }
    }

    pub fn duplicate_window(&self) -> Duration {
        Duration::from_secs(self.duplicate_window_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A full URL wins over the typed fields when set (for example from `DATABASE_URL`).
    #[serde(default)]
    pub url: Option<SecretString>,
    #[serde(default = "localhost")]
    pub host: String,
    #[serde(default = "pg_port")]
    pub port: u16,
    #[serde(default = "postgres")]
    pub username: String,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default = "postgres")]
    pub database_name: String,
    #[serde(default)]
    pub require_tls: bool,
    /// The service's own schema; its tables, migrations and inbox live there.
    pub schema: String,
    #[serde(default = "max_conn")]
    pub max_connections: u32,
    /// Every statement is cancelled after this long (SQLSTATE 57014, retried as transient), so a
    /// stuck query cannot hold a connection or its locks forever.
    #[serde(default = "statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// A lock wait gives up after this long (SQLSTATE 55P03, retried as transient).
    #[serde(default = "lock_timeout_ms")]
    pub lock_timeout_ms: u64,
    /// How long a request waits for a free pooled connection.
    #[serde(default = "acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Days a handled event id stays in the inbox: longer than any stream keeps a message (90
    /// days for the DLQ), so every message that can still be redelivered is recognised.
    #[serde(default = "inbox_retention_days")]
    pub inbox_retention_days: u32,
}

fn inbox_retention_days() -> u32 {
    100
}

fn statement_timeout_ms() -> u64 {
    30_000
}
fn lock_timeout_ms() -> u64 {
    10_000
}
fn acquire_timeout_ms() -> u64 {
    10_000
}

fn localhost() -> String {
    "127.0.0.1".into()
}
fn pg_port() -> u16 {
    5432
}
fn postgres() -> String {
    "postgres".into()
}
fn max_conn() -> u32 {
    10
}

impl DatabaseSettings {
    /// `postgres://...` from the typed fields (or the explicit URL).
    pub fn connection_url(&self) -> SecretString {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let auth = match &self.password {
            Some(p) => format!("{}:{}", self.username, p.expose_secret()),
            None => self.username.clone(),
        };
        let ssl = if self.require_tls { "require" } else { "prefer" };
        SecretString::from(format!(
            "postgres://{auth}@{}:{}/{}?sslmode={ssl}",
            self.host, self.port, self.database_name
        ))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let ok = !self.schema.is_empty()
            && self.schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(ConfigError::invalid("database.schema", "lower-case letters, digits and _ only"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    #[serde(default = "any_host")]
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
}

fn any_host() -> String {
    "127.0.0.1".into()
}

impl HttpSettings {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    System,
    /// Shared through the `clock` bucket; moved with `arflow clock advance`.
    Simulated,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClockSettings {
    pub mode: ClockMode,
    /// Where a simulated clock starts when the bucket has no value yet (RFC 3339).
    #[serde(default)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `pretty` or `json`.
    #[serde(default = "pretty")]
    pub format: String,
    /// Default filter when `RUST_LOG` is not set.
    #[serde(default = "info")]
    pub level: String,
    /// OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`; unset: no export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

fn pretty() -> String {
    "pretty".into()
}
fn info() -> String {
    "info".into()
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: pretty(), level: info(), otlp_endpoint: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Sample {
        database: DatabaseSettings,
        http: HttpSettings,
    }

    #[test]
    fn defaults_then_environment() {
        let defaults = "[database]\nschema = \"gateway\"\n[http]\nport = 8080\n";
        let s: Sample = load(defaults).unwrap();
        assert_eq!(s.http.port, 8080);
        assert!(s.database.validate().is_ok());
        assert!(s.database.connection_url().expose_secret().starts_with("postgres://postgres@127.0.0.1:5432/"));
    }

    #[test]
    fn environment_strings_are_not_lists() {
        let vars: std::collections::HashMap<String, String> =
            [("ARFLOW__DATABASE__URL", "postgres://u@h:5432/db?a=1,b=2"), ("ARFLOW__CONSUMER__BACKOFF_MS", "100,500")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        #[derive(Deserialize)]
        struct WithConsumer {
            database: DatabaseSettings,
            consumer: Backoff,
        }
        #[derive(Deserialize)]
        struct Backoff {
            backoff_ms: Vec<u64>,
        }
        let s: WithConsumer =
            load_from("[database]\nschema = \"gateway\"\n[consumer]\n", environment().source(Some(vars))).unwrap();
        assert_eq!(s.database.connection_url().expose_secret(), "postgres://u@h:5432/db?a=1,b=2");
        assert_eq!(s.consumer.backoff_ms, vec![100, 500]);
    }

    #[test]
    fn a_phone_number_from_the_environment_keeps_its_plus() {
        let vars: std::collections::HashMap<String, String> = [("ARFLOW__TELEPHONY__FROM_NUMBER", "+15005550006")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        #[derive(Deserialize)]
        struct WithTelephony {
            telephony: TelephonySettings,
        }
        let defaults = "[telephony]\napi_base = \"http://x\"\naccount_sid = \"AC1\"\nauth_token = \"token-123\"\n\
                        from_number = \"+12025550100\"\ncallback_base_url = \"http://y\"\n";
        let s: WithTelephony = load_from(defaults, environment().source(Some(vars))).unwrap();
        assert_eq!(s.telephony.from_number, "+15005550006");
        let s: WithTelephony = load_from(defaults, environment().source(Some(Default::default()))).unwrap();
        assert_eq!(s.telephony.from_number, "+12025550100");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = load::<Sample>("[database]\nschema = \"x\"\n[http]\nport = \"eighty\"\n").err().unwrap();
        assert!(err.to_string().contains("port"), "{err}");
        let bad = DatabaseSettings {
            schema: "Bad-Name".into(),
            ..load::<Sample>("[database]\nschema=\"a\"\n[http]\nport=1\n").unwrap().database
        };
        assert!(bad.validate().unwrap_err().to_string().contains("database.schema"));
    }
}

/// `[smtp]`: the outgoing mail server (reminders from the email service, firm notifications).
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Pooled SMTP connections, and emails handed over at the same time.
    #[serde(default = "smtp_pool_size")]
    pub pool_size: u32,
    pub timeout_secs: u64,
}

fn smtp_pool_size() -> u32 {
    4
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (local sinks only).
    None,
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

/// `[unsubscribe]`: the one secret of the one-click unsubscribe links, read by both services that
/// must agree on it: the email service signs the links with it, the gateway verifies them
/// (`ARFLOW__UNSUBSCRIBE__SECRET`; in Kubernetes the Secret `arflow-unsubscribe`, key `secret`,
/// referenced by both Deployments). No default: both refuse to start without it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UnsubscribeSettings {
    #[serde(default)]
    pub secret: SecretString,
}

impl UnsubscribeSettings {
    /// The shortest secret accepted.
    pub const MIN_LEN: usize = 16;

    /// At least [`Self::MIN_LEN`] characters, else an error naming `unsubscribe.secret`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.expose_secret().len() < Self::MIN_LEN {
            return Err(ConfigError::invalid(
                "unsubscribe.secret",
                format!(
                    "set the secret shared by the gateway (which verifies unsubscribe links) and the email service \
                     (which signs them), at least {} characters (ARFLOW__UNSUBSCRIBE__SECRET)",
                    Self::MIN_LEN
                ),
            ));
        }
        Ok(())
    }
}

/// `[telephony]`: the calling and texting provider (Twilio's REST API, or the local simulator
/// that speaks the same contract). The gateway needs only `auth_token` (to verify callbacks'
/// `X-Twilio-Signature`); the voice service uses all of it.
#[derive(Debug, Clone, Deserialize)]
pub struct TelephonySettings {
    /// `https://api.twilio.com`, or the simulator's base URL.
    pub api_base: String,
    pub account_sid: String,
    /// Signs every callback and authenticates REST calls; never logged.
    pub auth_token: SecretString,
    /// The E.164 number calls and texts come from.
    #[serde(deserialize_with = "e164_text")]
    pub from_number: String,
    /// The public base URL the provider calls back (the gateway's `public_base_url`); every
    /// callback's signature covers the full URL, so it must be exactly what the provider sees.
    pub callback_base_url: String,
    /// Seconds to let a call ring before the provider gives up (Twilio's `Timeout`).
    #[serde(default = "ring_timeout_secs")]
    pub ring_timeout_secs: u32,
    /// REST request timeout.
    #[serde(default = "telephony_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

/// An E.164 number as text. `ARFLOW__TELEPHONY__FROM_NUMBER=+15005550006` reaches serde as the
/// integer 15005550006 (the environment source parses numbers, which the list keys need), so a
/// number is read back as `+<digits>`.
fn e164_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Number(u64),
    }
    Ok(match Text::deserialize(d)? {
        Text::Text(s) => s,
        Text::Number(n) => format!("+{n}"),
    })
}

fn ring_timeout_secs() -> u32 {
    25
}

fn telephony_request_timeout_secs() -> u64 {
    10
}

impl TelephonySettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in
            [("telephony.api_base", &self.api_base), ("telephony.callback_base_url", &self.callback_base_url)]
        {
            if !(value.starts_with("http://") || value.starts_with("https://")) {
                return Err(ConfigError::invalid(key, format!("{value:?} is not an http(s) URL")));
            }
        }
        if self.account_sid.trim().is_empty() {
            return Err(ConfigError::invalid("telephony.account_sid", "must be set"));
        }
        if self.auth_token.expose_secret().len() < 8 {
            return Err(ConfigError::invalid("telephony.auth_token", "must be set (at least 8 characters)"));
        }
        let n = self.from_number.trim();
        if !(n.starts_with('+') && n.len() > 8 && n[1..].chars().all(|c| c.is_ascii_digit())) {
            return Err(ConfigError::invalid("telephony.from_number", format!("{n:?} is not an E.164 number")));
        }
        Ok(())
    }
}
