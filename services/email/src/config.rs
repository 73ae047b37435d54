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
    /// One signing key per sender domain (`[[email.dkim]]`; a single `[email.dkim]` table, the
    /// old form, is one entry). Mail is signed with the key of its From domain, else unsigned.
    #[serde(default, deserialize_with = "one_or_many")]
    pub dkim: Vec<DkimSettings>,
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

impl std::fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        })
    }
}

/// The DKIM key of one sender domain: mail whose From address is `<anyone>@<domain>` is signed
/// with `d=<domain>; s=<selector>`, the public key published at `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, Deserialize)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    /// rsa: PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM, at least 1024
    /// bits (2048 recommended). ed25519: PKCS#8 PEM, or the base64 32-byte secret key.
    pub private_key_path: String,
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

/// `[[email.dkim]]` (a list) or `[email.dkim]` / `ARFLOW__EMAIL__DKIM__*` (one key).
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<DkimSettings>, D::Error> {
    struct OneOrMany;
    impl<'de> serde::de::Visitor<'de> for OneOrMany {
        type Value = Vec<DkimSettings>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of {domain, selector, algorithm, private_key_path} tables, or one such table")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Ok(vec![Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?])
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(vec![])
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(vec![])
        }
    }
    deserializer.deserialize_any(OneOrMany)
}

/// A DNS name of ASCII letters, digits, `-`, `_` and dots (an internationalised domain in its
/// `xn--` form).
fn dns_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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
        let mut domains = std::collections::HashMap::new();
        for (i, d) in self.email.dkim.iter().enumerate() {
            let key = |field: &str| format!("email.dkim[{i}].{field}");
            if !dns_name(&d.domain) {
                return Err(ConfigError::invalid(
                    &key("domain"),
                    format!("{:?} is not a domain like example.com (ASCII; xn-- form for others)", d.domain),
                ));
            }
            if !dns_name(&d.selector) {
                return Err(ConfigError::invalid(
                    &key("selector"),
                    format!("{:?} is not a DNS label like arflow or s2027", d.selector),
                ));
            }
            if d.private_key_path.trim().is_empty() {
                return Err(ConfigError::invalid(&key("private_key_path"), "must not be empty"));
            }
            if let Some(first) = domains.insert(d.domain.to_ascii_lowercase(), i) {
                return Err(ConfigError::invalid(
                    &key("domain"),
                    format!("{} already has a key (email.dkim[{first}]): one key per domain", d.domain),
                ));
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
        assert!(c.email.dkim.is_empty());
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

    fn dkim(domain: &str, selector: &str) -> DkimSettings {
        DkimSettings {
            domain: domain.into(),
            selector: selector.into(),
            private_key_path: "/etc/arflow/dkim.pem".into(),
            algorithm: DkimAlgorithm::Ed25519,
        }
    }

    #[test]
    fn dkim_keys_are_a_list_or_the_old_single_table() {
        let list = format!(
            "{DEFAULTS}\n[[email.dkim]]\ndomain = \"acme.example\"\nselector = \"a\"\nprivate_key_path = \"/k/a.pem\"\n\
             [[email.dkim]]\ndomain = \"bright.example\"\nselector = \"b\"\nprivate_key_path = \"/k/b.pem\"\n\
             algorithm = \"ed25519\"\n"
        );
        let mut c: Config = arflow_runtime::config::load_defaults(&list).unwrap();
        c.unsubscribe.secret = Config::for_tests().unsubscribe.secret;
        c.validate().unwrap();
        assert_eq!(c.email.dkim.len(), 2);
        assert_eq!((c.email.dkim[0].domain.as_str(), c.email.dkim[0].algorithm), ("acme.example", DkimAlgorithm::Rsa));
        assert_eq!((c.email.dkim[1].selector.as_str(), c.email.dkim[1].algorithm), ("b", DkimAlgorithm::Ed25519));

        let one = format!(
            "{DEFAULTS}\n[email.dkim]\nselector = \"arflow\"\ndomain = \"acme.example\"\n\
             private_key_path = \"/k/a.pem\"\nalgorithm = \"rsa\"\n"
        );
        let c: Config = arflow_runtime::config::load_defaults(&one).unwrap();
        assert_eq!(c.email.dkim.len(), 1);
        assert_eq!(c.email.dkim[0].domain, "acme.example");

        let bad = format!("{DEFAULTS}\n[[email.dkim]]\ndomain = \"acme.example\"\n");
        let err = arflow_runtime::config::load_defaults::<Config>(&bad).unwrap_err().to_string();
        assert!(err.contains("selector"), "{err}");
    }

    #[test]
    fn bad_dkim_keys_name_the_entry() {
        let mut c = Config::for_tests();
        c.email.dkim = vec![dkim("acme.example", "a"), dkim("bright.example", "b"), dkim("ACME.example", "c")];
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("email.dkim[2].domain") && err.contains("email.dkim[0]"), "{err}");
        c.email.dkim = vec![dkim("billing@acme.example", "a")];
        assert!(c.validate().unwrap_err().to_string().contains("email.dkim[0].domain"));
        c.email.dkim = vec![dkim("acme.example", "")];
        assert!(c.validate().unwrap_err().to_string().contains("email.dkim[0].selector"));
        c.email.dkim = vec![dkim("acme.example", "a b")];
        assert!(c.validate().unwrap_err().to_string().contains("email.dkim[0].selector"));
        c.email.dkim = vec![dkim("acme.example", "a")];
        c.email.dkim[0].private_key_path = " ".into();
        assert!(c.validate().unwrap_err().to_string().contains("email.dkim[0].private_key_path"));
        c.email.dkim = vec![dkim("xn--mller-kva.example", "s2027")];
        c.validate().unwrap();
    }
}
