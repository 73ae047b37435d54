//! arflow escalation: opens a case when automation should stop and a person take over (a
//! dispute, a question, a cadence run out, a promise broken twice, every contact opted out,
//! too many days past due, or a firm user's call), keeps the firm's queue, records every action
//! with who and why, and publishes the whole case on `escalation.{opened,updated,resolved}.<firm>`
//! (a public contract) through the outbox.
pub mod cases;
pub mod config;
pub mod handlers;
pub mod routes;
pub mod startup;
pub mod store;
pub mod sweep;

pub use config::Config;
pub use startup::Application;

/// The service name: event `source`, `dlq.escalation`, logs.
pub const SERVICE: &str = "escalation";
