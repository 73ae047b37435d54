//! The voice service: turns `outreach.step_due.voice.<firm>` into exactly one call per step and
//! `outreach.step_due.sms.<firm>` into exactly one text, checks the fences right before the
//! provider (consent and phone, the calling window in the contact's zone, the 7-in-7 attempt
//! cap, the holds), runs the call's conversation from the provider's callbacks (every client
//! utterance classified by `arflow_replies`), handles inbound texts (STOP, HELP, replies), and
//! reports through the transactional outbox: `outreach.voice.<outcome>`, `outreach.sms.*`,
//! `reply.classified`.
pub mod clients;
pub mod config;
pub mod dialer;
pub mod events;
pub mod handlers;
pub mod phone;
pub mod routes;
pub mod script;
pub mod sms;
pub mod startup;
pub mod store;
pub mod twiml;

pub use config::Config;
pub use startup::Application;

/// The service name: `source` of its events, its DLQ subject and its schema.
pub const SERVICE: &str = "voice";
