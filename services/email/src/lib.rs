//! arflow email service (skeleton).
