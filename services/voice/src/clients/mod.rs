//! The outside providers, behind traits.
pub mod twilio;

pub use twilio::TwilioClient;

use std::future::Future;
use std::pin::Pin;

/// A call to place.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    /// E.164.
    pub to: String,
    pub from: String,
    /// The answer webhook (TwiML).
    pub answer_url: String,
    pub status_url: String,
    /// `Some` when the call is recorded.
    pub recording_url: Option<String>,
    pub ring_timeout_secs: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderCall {
    /// `CA...`
    pub sid: String,
    pub status: String,
}

/// A text to send.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRequest {
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMessage {
    /// `SM...`
    pub sid: String,
    pub status: String,
}

/// Why the provider did not take a request. Never carries the credentials.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 5xx, timeout, connection: it might work later (but the request may have been taken).
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// 4xx: this request will never work (bad number, unverified caller id, ...).
    #[error("provider refused the request (HTTP {status}, code {code:?}): {message}")]
    Permanent { status: u16, code: Option<i64>, message: String },
}

impl ProviderError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, ProviderError::Permanent { .. })
    }
}

pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A call as the provider knows it now (`GET Calls/{sid}`).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedCall {
    pub status: String,
    pub answered_by: Option<String>,
    pub duration_secs: Option<i32>,
}

/// Calls and texts (Twilio's REST API, or the simulator speaking it).
pub trait Telephony: Send + Sync + 'static {
    fn create_call(&self, request: CallRequest) -> ProviderFuture<'_, ProviderCall>;
    fn send_message(&self, request: MessageRequest) -> ProviderFuture<'_, ProviderMessage>;
    /// The call's current status: for a call whose final status callback never arrived.
    fn fetch_call<'a>(&'a self, sid: &'a str) -> ProviderFuture<'a, FetchedCall>;
}
