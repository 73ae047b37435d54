//! The scheduler: owns policies (cadences), outreach plans, steps and durable timers.
//!
//! It turns `eligibility.changed` decisions into steps, fires due steps as
//! `outreach.step_due.{email,voice,sms}.<firm>`, plans retries and email fallbacks from how
//! calls and texts ended, records skipped and cancelled ones as
//! `outreach.step_skipped.<firm>`, and publishes `outreach.plan_updated.<firm>` on every
//! plan change, all through the transactional outbox.
pub mod config;
pub mod handlers;
pub mod outreach;
pub mod policy;
pub mod routes;
pub mod startup;
pub mod store;
pub mod timer;

pub use config::Config;
pub use startup::Application;

/// The service name: `source` of its events, its DLQ subject and its schema.
pub const SERVICE: &str = "scheduler";
