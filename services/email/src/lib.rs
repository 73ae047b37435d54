//! The email service: turns `outreach.step_due.email.<firm>` into exactly one email per
//! step, checks the payment and opt-out holds right before the SMTP hand-off, and reports
//! what it did, with the full explanation, on `outreach.email.{sent,failed,suppressed}.<firm>`
//! through the transactional outbox.
pub mod config;
pub mod dkim;
pub mod events;
pub mod handlers;
pub mod mail;
pub mod render;
pub mod routes;
pub mod sender;
pub mod smtp_pool;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::Application;

/// The service name: `source` of its events, its DLQ subject and its schema.
pub const SERVICE: &str = "email";
