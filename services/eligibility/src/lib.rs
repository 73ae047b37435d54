//! arflow eligibility service (skeleton).
