//! One handler per subject family consumed.
pub mod replies;
pub mod steps;
