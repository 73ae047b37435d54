//! arflow gateway: the edge of the platform.
//!
//! - REST API for firms (per-firm API keys): firms, clients, contacts, invoices, activity, portfolio.
//! - Stripe webhooks -> `billing.*` events; payment events write the invoice hold FIRST (fence 1).
//! - One-click unsubscribe (RFC 8058) -> contact hold + `consent.opted_out`.
//! - The per-invoice activity projection from `eligibility.*` and `outreach.*`.
//! - Retention of raw inbound mail and of the webhook and idempotency records (`retention`).
pub mod auth;
pub mod config;
pub mod error;
pub mod handlers;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod limits;
pub mod publish;
pub mod retention;
pub mod routes;
pub mod startup;
pub mod store;
pub mod stripe_api;

pub use config::Config;
pub use startup::Application;

/// The service name: `source` of every event, `dlq.gateway`.
pub const SERVICE: &str = "gateway";
