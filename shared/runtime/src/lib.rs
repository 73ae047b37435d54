//! What every arflow service process needs, in one place.
pub mod config;
pub mod http;
pub mod metrics;
pub mod shutdown;
pub mod signature;
pub mod telemetry;

pub use config::{
    ClockMode, ClockSettings, ConfigError, DatabaseSettings, HttpSettings, LogSettings, NatsSettings, ServiceConfig,
    SmtpSettings, SmtpTls, TelephonySettings, UnsubscribeSettings,
};
pub use metrics::Metrics;
pub use shutdown::{AbortOnDrop, Shutdown};
