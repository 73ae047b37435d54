//! Typed configuration of the gateway (defaults in `config/default.toml`).
use arflow_bus::ConsumerSettings;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings};
use secrecy::{ExposeSecret, SecretString};
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
    pub gateway: GatewaySettings,
    /// The token the gateway proves itself with to the services behind it.
    #[serde(default)]
    pub internal: arflow_service::api::InternalSettings,
    /// What the gateway needs of `[telephony]`: the auth token that signs the provider's
    /// callbacks (the voice service reads the same key, `ARFLOW__TELEPHONY__AUTH_TOKEN`).
    #[serde(default)]
    pub telephony: TelephonyCallbacks,
    /// `[unsubscribe] secret`: verifies the one-click unsubscribe links the email service signed
    /// with the same key. Required: the gateway refuses to start without it.
    #[serde(default)]
    pub unsubscribe: arflow_runtime::UnsubscribeSettings,
}

/// The gateway's part of `[telephony]`. The voice service's `arflow_runtime::TelephonySettings`
/// also needs the account and the number to call from, which the gateway has no use for.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TelephonyCallbacks {
    /// Checks `X-Twilio-Signature` on `/webhooks/telephony/...`; empty: those callbacks get 503.
    #[serde(default)]
    pub auth_token: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    /// Operator token for `POST /v1/firms`; empty disables firm creation.
    pub admin_token: SecretString,
    pub public_base_url: String,
    /// Stripe REST base for backfill, e.g. `https://api.stripe.com/`.
    pub stripe_api_base: String,
    /// Largest raw inbound email accepted (attachments included); larger posts get 413.
    #[serde(default = "inbound_max_bytes")]
    pub inbound_max_bytes: usize,
    /// Base URLs of the services whose APIs the gateway forwards.
    pub upstreams: crate::routes::forward::Upstreams,
    /// Rate limits, request deadline, Stripe body size.
    pub limits: crate::limits::LimitSettings,
}

fn inbound_max_bytes() -> usize {
    25 * 1024 * 1024
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        // Empty: the forwarded APIs answer 503 until it is set (the rest of the gateway works).
        if !self.internal.token.expose_secret().is_empty() {
            self.internal.validate("internal.token").map_err(|e| ConfigError::invalid("internal.token", e))?;
        }
        for (key, url) in [
            ("gateway.public_base_url", &self.gateway.public_base_url),
            ("gateway.stripe_api_base", &self.gateway.stripe_api_base),
            ("gateway.upstreams.optout", &self.gateway.upstreams.optout),
            ("gateway.upstreams.escalation", &self.gateway.upstreams.escalation),
            ("gateway.upstreams.notification", &self.gateway.upstreams.notification),
            ("gateway.upstreams.voice", &self.gateway.upstreams.voice),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(key, format!("{url:?} is not an http(s) URL")));
            }
        }
        // No unsubscribe link may reach a gateway that cannot verify it.
        self.unsubscribe.validate()?;
        let auth_token = self.telephony.auth_token.expose_secret();
        if !auth_token.is_empty() && auth_token.len() < 8 {
            return Err(ConfigError::invalid("telephony.auth_token", "use at least 8 characters"));
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.gateway.inbound_max_bytes) {
            return Err(ConfigError::invalid("gateway.inbound_max_bytes", "must be between 1 KiB and 256 MiB"));
        }
        self.gateway.limits.validate().map_err(|e| ConfigError::invalid("gateway.limits", e))?;
        if self.consumer.backoff_ms.is_empty() {
            return Err(ConfigError::invalid("consumer.backoff_ms", "needs at least one delay"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The compiled-in defaults with the one setting they cannot have (a secret).
    fn defaults() -> Config {
        let mut c: Config = arflow_runtime::config::load_defaults(DEFAULTS).unwrap();
        c.unsubscribe.secret = "unsubscribe-secret-0123456789".to_string().into();
        c
    }

    #[test]
    fn defaults_load_and_bad_values_name_the_key() {
        let mut c = defaults();
        assert!(c.validate().is_ok());
        assert_eq!(c.database.schema, "gateway");
        assert_eq!(c.http.port, 8080);
        c.gateway.stripe_api_base = "ftp://x".into();
        assert!(c.validate().unwrap_err().to_string().contains("gateway.stripe_api_base"));
        let mut c = defaults();
        assert_eq!(c.gateway.upstreams.voice, "http://127.0.0.1:8087");
        assert!(c.telephony.auth_token.expose_secret().is_empty());
        c.telephony.auth_token = "short".to_string().into();
        assert!(c.validate().unwrap_err().to_string().contains("telephony.auth_token"));
    }

    #[test]
    fn without_an_unsubscribe_secret_the_gateway_refuses_to_start() {
        // The defaults have none: a gateway must be given the secret the email service signs with.
        let err = Config::defaults().unwrap_err().to_string();
        assert!(err.contains("unsubscribe.secret") && err.contains("ARFLOW__UNSUBSCRIBE__SECRET"), "{err}");
        let mut c = defaults();
        for short in ["", "fifteen-chars-x"] {
            c.unsubscribe.secret = short.to_string().into();
            assert!(c.validate().unwrap_err().to_string().contains("unsubscribe.secret"), "{short:?}");
        }
        c.unsubscribe.secret = "sixteen-chars-xx".to_string().into();
        assert!(c.validate().is_ok());
    }
}
