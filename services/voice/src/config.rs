//! Typed configuration: `config/default.toml`, then `$ARFLOW_CONFIG`, then `ARFLOW__SECTION__KEY`.
use arflow_bus::ConsumerSettings;
use arflow_runtime::ServiceConfig;
use arflow_runtime::{
    ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings, TelephonySettings,
};
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
    pub telephony: TelephonySettings,
    pub voice: VoiceSettings,
}

/// `[voice]`: the worker and the conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct VoiceSettings {
    #[serde(default = "batch_size")]
    pub batch_size: i64,
    #[serde(default = "poll_ms")]
    pub poll_ms: u64,
    /// Questions asked before the call closes politely.
    #[serde(default = "max_turns")]
    pub max_turns: u32,
    #[serde(default = "agent_voice")]
    pub agent_voice: String,
    #[serde(default = "agent_voice_es")]
    pub agent_voice_es: String,
    #[serde(default = "recording")]
    pub recording: bool,
    #[serde(default = "uncertain_after_secs")]
    pub uncertain_after_secs: u64,
    /// Seconds without any callback after which a call the provider took is asked about
    /// (`GET Calls/{sid}`): its final status callback may have been lost.
    #[serde(default = "reconcile_after_secs")]
    pub reconcile_after_secs: u64,
}

fn batch_size() -> i64 {
    32
}
fn poll_ms() -> u64 {
    250
}
fn max_turns() -> u32 {
    3
}
fn agent_voice() -> String {
    "Polly.Joanna".into()
}
fn agent_voice_es() -> String {
    "Polly.Lupe".into()
}
fn recording() -> bool {
    true
}
fn uncertain_after_secs() -> u64 {
    60
}
fn reconcile_after_secs() -> u64 {
    300
}

impl ServiceConfig for Config {
    const DEFAULTS: &'static str = DEFAULTS;

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.internal.validate("internal.token").map_err(|e| ConfigError::invalid("internal.token", e))?;
        self.telephony.validate()?;
        if self.consumer.batch_size == 0 {
            return Err(ConfigError::invalid("consumer.batch_size", "must be at least 1"));
        }
        if !(1..=1_000).contains(&self.voice.batch_size) {
            return Err(ConfigError::invalid("voice.batch_size", "must be between 1 and 1000"));
        }
        if self.voice.poll_ms == 0 {
            return Err(ConfigError::invalid("voice.poll_ms", "must be at least 1"));
        }
        if !(1..=10).contains(&self.voice.max_turns) {
            return Err(ConfigError::invalid("voice.max_turns", "must be between 1 and 10"));
        }
        if self.voice.agent_voice.trim().is_empty() {
            return Err(ConfigError::invalid("voice.agent_voice", "must not be empty"));
        }
        if self.voice.agent_voice_es.trim().is_empty() {
            return Err(ConfigError::invalid("voice.agent_voice_es", "must not be empty"));
        }
        if self.voice.uncertain_after_secs < self.telephony.request_timeout_secs {
            return Err(ConfigError::invalid(
                "voice.uncertain_after_secs",
                "must be at least telephony.request_timeout_secs (a call still being placed is not a crash)",
            ));
        }
        if self.telephony.ring_timeout_secs == 0 || self.telephony.ring_timeout_secs > 600 {
            return Err(ConfigError::invalid("telephony.ring_timeout_secs", "must be between 1 and 600"));
        }
        if self.telephony.request_timeout_secs == 0 {
            return Err(ConfigError::invalid("telephony.request_timeout_secs", "must be at least 1"));
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
        assert_eq!(c.http.port, 8087);
        assert_eq!(c.database.schema, "voice");
        assert_eq!(c.voice.max_turns, 3);
        assert!(c.voice.recording);
        assert!(c.validate().unwrap_err().to_string().contains("internal.token"));
        let mut c = c;
        c.internal.token = "a-token-of-sixteen-chars".to_string().into();
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = parsed();
        c.internal.token = "a-token-of-sixteen-chars".to_string().into();
        let mut bad = c.clone();
        bad.voice.max_turns = 0;
        assert!(bad.validate().unwrap_err().to_string().contains("voice.max_turns"));
        let mut bad = c.clone();
        bad.telephony.from_number = "555".into();
        assert!(bad.validate().unwrap_err().to_string().contains("telephony.from_number"));
        let mut bad = c;
        bad.voice.uncertain_after_secs = 1;
        assert!(bad.validate().unwrap_err().to_string().contains("voice.uncertain_after_secs"));
    }
}
