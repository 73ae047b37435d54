//! One handler per subject family consumed.
pub mod steps;
