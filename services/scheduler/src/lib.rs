//! arflow scheduler service (skeleton).
