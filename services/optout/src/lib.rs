//! arflow opt-out: owns consent. An append-only ledger of every opt-out and opt-in per
//! contact and channel (with source, actor and evidence), the contact holds in the `holds`
//! bucket (fence 2, written before anything else), and `consent.{opted_out,opted_in}.<firm>`
//! through the outbox when a contact's state changes. Sources: classified replies and calls
//! (`reply.classified`), the gateway's commands (one-click link, firm users), the HTTP API
//! and CSV imports.
pub mod config;
pub mod handlers;
pub mod ledger;
pub mod routes;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::Application;

/// The service name: event `source`, `dlq.optout`, logs.
pub const SERVICE: &str = "optout";
