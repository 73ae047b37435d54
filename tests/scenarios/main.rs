//! Cross-service scenarios on the real stack (NATS JetStream, PostgreSQL, SMTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod cases;
mod channels;
mod eligibility;
mod fences;
mod optout;
mod replies;
mod review;
mod story;
mod timezones;
mod traces;
mod voice;
