//! Domain types every arflow service shares. No I/O lives here.
pub mod calls;
pub mod clock;
pub mod duration;
pub mod mask;
pub mod money;
pub mod window;

pub use clock::Clock;
pub use money::{Currency, Money, MoneyError};
pub use window::SendWindow;

/// A new time-ordered id (UUIDv7), used for every row and event arflow creates.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The outreach channels a contact can consent to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Voice,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Voice => "voice",
            Channel::Sms => "sms",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
