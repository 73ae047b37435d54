//! The wire contract between arflow services. Services share nothing else.
pub mod envelope;
pub mod events;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod msg_id;
pub mod schema;
pub mod streams;
pub mod subjects;

pub use envelope::{Envelope, EnvelopeError};
