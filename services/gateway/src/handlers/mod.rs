//! Consumers, one module per subject family.
pub mod activity;
pub mod reconcile;
pub mod stripe_commands;
