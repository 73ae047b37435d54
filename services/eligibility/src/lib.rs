//! arflow eligibility: keeps read models of firms, clients, contacts and invoices
//! (from `billing.*`), consent (from `consent.*`) and what clients answered (from
//! `reply.classified.*`), decides per invoice whether
//! outreach may run, records every decision with its reasons, and publishes
//! `eligibility.changed.<firm>` through the outbox whenever the decision changes.
pub mod config;
pub mod evaluate;
pub mod handlers;
pub mod replies;
pub mod routes;
pub mod rules;
pub mod startup;
pub mod store;
pub mod sweep;

pub use config::Config;
pub use startup::Application;

/// The service name: event `source`, `dlq.eligibility`, logs.
pub const SERVICE: &str = "eligibility";
