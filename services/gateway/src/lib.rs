//! arflow gateway service (skeleton).
