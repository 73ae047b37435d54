//! One handler per subject family consumed.
pub mod invoices;
pub mod steps;
