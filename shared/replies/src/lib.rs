//! Reply understanding for collections: turns what a client wrote (email) or said (call transcript)
//! into an [`Intent`], a promised payment date and the evidence phrase that decided it.
//!
//! Pure rules (regular expressions over a normalised copy of the text), compiled once. The labels,
//! their precedence and the date rules are those of the reply corpus README:
//! `opt_out > dispute > already_paid > payment_plan > promise_to_pay > wrong_contact > question >
//! acknowledged > auto_reply`.
//!
//! Decisions worth knowing:
//! - Empty or unrecognised text is `Acknowledged` with `sure == false` and empty evidence; a reply
//!   whose only signal is a question mark is `Question` with `sure == false`.
//! - Inside an auto-reply (out of office, ticket acknowledgement, voicemail greeting) the
//!   boilerplate "thank you for your message" / "please contact ..." does not count as
//!   `Acknowledged`, `Question` or `WrongContact`.
//! - A promise naming two different dates together with a split ("half", "the rest", ...) is a
//!   `PaymentPlan`.
//! - Dates: see [`dates`]. Slash dates are month/day in English (US style) unless the first number
//!   is above 12, and day/month in every other language.
//!
//! The optional `llm` feature adds [`assist`], an LLM fallback for replies the rules are not sure of.

use std::fmt;
use std::str::FromStr;

pub use jiff::civil::Date;

#[cfg(feature = "llm")]
pub mod assist;
pub mod dates;
pub mod eval;
mod lang;
mod normalize;
mod quote;
mod rules;

pub use quote::client_text;

/// What the client means. Declaration order is precedence order: when a reply carries several
/// intents, the first one wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    OptOut,
    Dispute,
    AlreadyPaid,
    PaymentPlan,
    PromiseToPay,
    WrongContact,
    Question,
    Acknowledged,
    AutoReply,
}

impl Intent {
    /// Every intent, in precedence order.
    pub const ALL: [Intent; 9] = [
        Intent::OptOut,
        Intent::Dispute,
        Intent::AlreadyPaid,
        Intent::PaymentPlan,
        Intent::PromiseToPay,
        Intent::WrongContact,
        Intent::Question,
        Intent::Acknowledged,
        Intent::AutoReply,
    ];

    /// The corpus label (`snake_case`).
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::OptOut => "opt_out",
            Intent::Dispute => "dispute",
            Intent::AlreadyPaid => "already_paid",
            Intent::PaymentPlan => "payment_plan",
            Intent::PromiseToPay => "promise_to_pay",
            Intent::WrongContact => "wrong_contact",
            Intent::Question => "question",
            Intent::Acknowledged => "acknowledged",
            Intent::AutoReply => "auto_reply",
        }
    }

    /// Position in [`Intent::ALL`] (0 = highest precedence).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label that is not one of the nine intents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown intent {0:?} (expected one of opt_out, dispute, already_paid, payment_plan, promise_to_pay, wrong_contact, question, acknowledged, auto_reply)"
)]
pub struct UnknownIntent(pub String);

impl FromStr for Intent {
    type Err = UnknownIntent;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let label = s.trim();
        Intent::ALL
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(label))
            .ok_or_else(|| UnknownIntent(s.to_string()))
    }
}

impl From<Intent> for arflow_contracts::events::ReplyIntent {
    /// The intent as events carry it (`reply.classified`, a call's transcript).
    fn from(i: Intent) -> Self {
        use arflow_contracts::events::ReplyIntent as Wire;
        match i {
            Intent::OptOut => Wire::OptOut,
            Intent::Dispute => Wire::Dispute,
            Intent::AlreadyPaid => Wire::AlreadyPaid,
            Intent::PaymentPlan => Wire::PaymentPlan,
            Intent::PromiseToPay => Wire::PromiseToPay,
            Intent::WrongContact => Wire::WrongContact,
            Intent::Question => Wire::Question,
            Intent::Acknowledged => Wire::Acknowledged,
            Intent::AutoReply => Wire::AutoReply,
        }
    }
}

/// Where the reply came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Email body as received (quotes and signatures are stripped by [`classify`]).
    Email,
    /// Speech-recognition transcript of what the client said on a call.
    Voice,
    /// A text message as typed on a phone.
    Sms,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Email => "email",
            Source::Voice => "voice",
            Source::Sms => "sms",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel that is neither `email` nor `voice`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (expected \"email\", \"voice\" or \"sms\")")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" => Ok(Source::Email),
            "voice" => Ok(Source::Voice),
            "sms" => Ok(Source::Sms),
            _ => Err(UnknownSource(s.to_string())),
        }
    }
}

/// One intent and its calibrated probability.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntentScore {
    pub intent: Intent,
    pub score: f32,
}

/// The result of classifying one reply.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Classification {
    pub intent: Intent,
    /// Only for [`Intent::PromiseToPay`], when a date can be resolved.
    pub promised_date: Option<Date>,
    /// The phrase (a substring of the client's text) that decided it; "" when nothing did.
    pub evidence: String,
    /// `!needs_review`: the decision may be acted on without a person.
    pub sure: bool,
    /// Calibrated probability (0-1) that `intent` is right.
    pub confidence: f32,
    /// A person must label this reply before automation acts on it: the invoice pauses and a
    /// `needs_review` case opens. Any sign of opt-out that is not a sure opt-out sets it.
    pub needs_review: bool,
    /// The likeliest intents, best first (at most [`TOP_SCORES`]), for the reviewer.
    pub scores: Vec<IntentScore>,
}

/// How many intents [`Classification::scores`] keeps.
pub const TOP_SCORES: usize = 3;

impl Classification {
    /// A decision by a precise rule (a STOP keyword, DSN/ARF structure, auto-reply headers):
    /// acted on without review.
    pub fn certain(intent: Intent, promised_date: Option<Date>, evidence: String) -> Self {
        Classification {
            intent,
            promised_date,
            evidence,
            sure: true,
            confidence: 1.0,
            needs_review: false,
            scores: vec![IntentScore { intent, score: 1.0 }],
        }
    }

    fn fallback() -> Self {
        Classification {
            intent: Intent::Acknowledged,
            promised_date: None,
            evidence: String::new(),
            sure: false,
            confidence: 0.0,
            needs_review: true,
            scores: Vec::new(),
        }
    }
}

/// Classify one reply. `reference` is the day the reply arrived in the client's time zone; relative
/// dates ("Friday", "next week", "the 15th") are resolved against it. For [`Source::Email`] the
/// quoted original, signatures and disclaimers are stripped first (see [`client_text`]).
pub fn classify(source: Source, text: &str, reference: Date) -> Classification {
    match source {
        Source::Email => rules::classify_text(&client_text(text), reference),
        Source::Voice | Source::Sms => rules::classify_text(text.trim(), reference),
    }
}
