//! arflow notification: firm users subscribe to event kinds (opt-outs, escalations,
//! disputes, payments after outreach, promises, dead letters, a daily digest); events
//! become rows in a durable `deliveries` table, and a worker delivers them by email,
//! Slack incoming webhook or Standard Webhooks-signed HTTP, with retries, per-endpoint
//! failure tracking and replay. Outcomes are published as `notification.{delivered,failed}`.
pub mod channels;
pub mod config;
pub mod digest;
pub mod handlers;
pub mod kinds;
pub mod notices;
pub mod routes;
pub mod startup;
pub mod store;
pub mod worker;

pub use config::Config;
pub use startup::Application;

/// The service name: event `source`, `dlq.notification`, logs.
pub const SERVICE: &str = "notification";
