//! Reply understanding for collections: turns what a client wrote (email, text) or said (call
//! transcript) into an [`Intent`], a promised payment date, the evidence phrase, a calibrated
//! `confidence` and `needs_review`: whether a person must label the reply before automation acts.
//!
//! One decision for every channel ([`classify`]):
//! 1. the client's own text (quotes and signatures stripped from email);
//! 2. precise rules keep the last word where they are precise: a reply that is only a STOP keyword
//!    ([`precise`]); DSN/ARF structure and auto-reply headers are recognised before this, by
//!    `arflow-inbound`;
//! 3. the pattern rules ([`classify_rules`]) read the text; what they find is a feature;
//! 4. the learned model ([`model`], a linear softmax over hashed word and character n-grams,
//!    trained by `just train-replies`, compiled in) gives calibrated probabilities for the reply
//!    and for each of its segments;
//! 5. [`choose`] applies the thresholds chosen on held-out folds: an opt-out anywhere is acted on at
//!    once; an unsure reply, or any sign of opt-out the intent would not bring to a person, sets
//!    `needs_review`;
//! 6. dates stay rule-based ([`dates`], jiff).
//!
//! Labels and precedence are those of the reply corpus README:
//! `opt_out > dispute > already_paid > payment_plan > promise_to_pay > wrong_contact > question >
//! acknowledged > auto_reply`. Slash dates are month/day in English (US style) unless the first
//! number is above 12, and day/month in every other language.
//!
//! The optional `llm` feature adds [`assist`], an LLM that names an intent for replies held for
//! review (it never clears `needs_review`).

use std::fmt;
use std::str::FromStr;

pub use jiff::civil::Date;

#[cfg(feature = "llm")]
pub mod assist;
pub mod dates;
pub mod eval;
mod evidence;
pub mod features;
mod lang;
pub mod model;
mod normalize;
pub mod precise;
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
    /// Calibrated probability (0-1) that `intent` is right.
    pub confidence: f32,
    /// A person must label this reply before automation acts on it: the invoice pauses and a
    /// `needs_review` case opens. Any sign of opt-out that is not a sure opt-out sets it.
    pub needs_review: bool,
    /// The likeliest intents, best first (at most [`TOP_SCORES`]), for the reviewer.
    pub scores: Vec<IntentScore>,
}

/// True intents that must never get a cadence-continuing answer without review: a person must act
/// on them (or, for an opt-out, the outreach must stop).
pub const MUST_STOP: [Intent; 6] =
    [Intent::OptOut, Intent::Dispute, Intent::WrongContact, Intent::AlreadyPaid, Intent::PaymentPlan, Intent::Question];

/// Intents after which the cadence goes on (a promise only pauses it).
pub const CONTINUES: [Intent; 3] = [Intent::PromiseToPay, Intent::Acknowledged, Intent::AutoReply];

/// Intents that open an escalation case for a person and pause the invoice on their own.
pub const PERSON_HANDLES: [Intent; 4] = [Intent::Dispute, Intent::PaymentPlan, Intent::WrongContact, Intent::Question];

/// How many intents [`Classification::scores`] keeps.
pub const TOP_SCORES: usize = 3;

impl Classification {
    /// The decision may be acted on without a person (`!needs_review`).
    pub fn sure(&self) -> bool {
        !self.needs_review
    }

    /// A decision by a precise rule (a STOP keyword, DSN/ARF structure, auto-reply headers):
    /// acted on without review.
    pub fn certain(intent: Intent, promised_date: Option<Date>, evidence: String) -> Self {
        Classification {
            intent,
            promised_date,
            evidence,
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
            confidence: 0.0,
            needs_review: true,
            scores: Vec::new(),
        }
    }
}

/// Classify one reply. `reference` is the day the reply arrived in the client's time zone; relative
/// dates ("Friday", "next week", "the 15th") are resolved against it. For [`Source::Email`] the
/// quoted original, signatures and disclaimers are stripped first (see [`client_text`]).
///
/// Precise rules (a reply that is only a STOP keyword) have the last word; otherwise the learned
/// model ([`model`]) reads the text together with what the pattern rules found, and its calibrated
/// probabilities decide, through the thresholds chosen on held-out folds ([`decide`]).
pub fn classify(source: Source, text: &str, reference: Date) -> Classification {
    let a = analyse(source, text);
    if let Some(c) = a.precise.clone() {
        return c;
    }
    match model() {
        Ok(m) => decide(&a, &signals(&a, m), &m.thresholds, reference),
        // No model (a damaged build): an opt-out the rules read is acted on; every other reply
        // goes to a person.
        Err(_) => match a.rules_opt_out {
            Some(phrase) => Classification::certain(Intent::OptOut, None, phrase),
            None => Classification::fallback(),
        },
    }
}

/// The pattern rules alone (no model), as the classifier was before the model. Their opt-out
/// rules are one of the model's features and their promise rules anchor promised dates; the rest
/// is kept for tests and comparisons. Services call [`classify`].
pub fn classify_rules(source: Source, text: &str, reference: Date) -> Classification {
    rules::classify_text(&own_text(source, text), reference)
}

/// The client's own words: for an email, without the quoted original, signatures and
/// disclaimers ([`client_text`]); a transcript or a text as received.
pub fn own_text(source: Source, text: &str) -> String {
    match source {
        Source::Email => client_text(text),
        Source::Voice | Source::Sms => text.trim().to_string(),
    }
}

/// What the model is given about one reply.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub source: Source,
    /// The client's own text (quotes and signature removed for email).
    pub own: String,
    /// The phrase the opt-out rules read as a request to stop (also a model feature).
    pub rules_opt_out: Option<String>,
    /// A precise rule's final answer, when one applies.
    pub precise: Option<Classification>,
    /// Hashed features ([`features::extract`] plus the opt-out rules' reading).
    pub features: Vec<u32>,
    /// The reply's segments (sentences, windows of a long transcript) when it has more than one:
    /// an opt-out in one clause of a longer reply still wins, and the evidence is a segment.
    pub segments: Vec<features::Segment>,
}

/// Strip, run the precise and opt-out rules and extract the model's features. The full pattern
/// rules are not run here: on varied text their one-pass automaton does not stay in cache (about
/// 1,500 replies/s), while the opt-out rules alone do.
pub fn analyse(source: Source, text: &str) -> Analysis {
    let own = own_text(source, text);
    let precise = precise::opt_out_keyword(&own);
    let rules_opt_out = if precise.is_some() { None } else { rules::opt_out_evidence(&own) };
    let (mut features, segments) = features::extract_with_segments(source, &own);
    features.push(features::rule_feature(rules_opt_out.is_some()));
    Analysis { source, own, rules_opt_out, precise, features, segments }
}

/// The decision from the model's calibrated probabilities (in [`Intent::ALL`] order):
/// - an opt-out when `P(opt_out)` reaches its act threshold (a lower one when the opt-out rules read
///   one too) or is the highest: acted on at once,
///   never held for review (a missed opt-out is the worst error; a false one is undone by an opt-in);
/// - otherwise the likeliest intent, held for review (`needs_review`) when its probability is below
///   that intent's threshold, when there is a sign of opt-out (`P(opt_out)` of the reply or of one of
///   its segments at the signal threshold, or the opt-out rules' reading) and the intent would not
///   bring a person in anyway, or when it would let the cadence go on (promise, acknowledged,
///   auto-reply) while the intents that must stop it together reach the caution threshold;
/// - a reply with no words at all is held for review.
pub fn decide(a: &Analysis, signals: &Signals, th: &model::Thresholds, reference: Date) -> Classification {
    let probs = &signals.probs;
    let mut ranked: Vec<IntentScore> =
        Intent::ALL.iter().zip(probs).map(|(&intent, &score)| IntentScore { intent, score }).collect();
    ranked.sort_by(|x, y| y.score.total_cmp(&x.score));
    let scores: Vec<IntentScore> = ranked.iter().take(TOP_SCORES).copied().collect();
    let (intent, needs_review) = choose(signals, th);
    let promised_date = match intent {
        Intent::PromiseToPay => rules::promised_date(&a.own, reference),
        _ => None,
    };
    let evidence = match (&a.rules_opt_out, intent) {
        (Some(phrase), Intent::OptOut) => phrase.clone(),
        _ => evidence::best_segment(a, &signals.segment_probs, intent),
    };
    Classification { intent, promised_date, evidence, confidence: probs[intent.index()], needs_review, scores }
}

/// What [`choose`] reads about one reply.
#[derive(Clone, Debug)]
pub struct Signals {
    /// The model's calibrated probabilities for the whole reply, in [`Intent::ALL`] order.
    pub probs: [f32; model::CLASSES],
    /// The highest `P(opt_out)` of any one segment (0 for a one-segment reply).
    pub segment_opt_out: f32,
    /// Each segment's probabilities (for the evidence), in [`Analysis::segments`] order.
    pub segment_probs: Vec<[f32; model::CLASSES]>,
    /// No letter or digit at all.
    pub wordless: bool,
    /// The pattern rules read an opt-out.
    pub rules_opt_out: bool,
}

/// The model's signals for an analysed reply.
pub fn signals(a: &Analysis, m: &model::LinearModel) -> Signals {
    let segment_probs: Vec<[f32; model::CLASSES]> = a.segments.iter().map(|s| m.probabilities(&s.features)).collect();
    let segment_opt_out = segment_probs.iter().map(|p| p[Intent::OptOut.index()]).fold(0.0f32, f32::max);
    Signals {
        probs: m.probabilities(&a.features),
        segment_opt_out,
        segment_probs,
        wordless: is_wordless(&a.own),
        rules_opt_out: a.rules_opt_out.is_some(),
    }
}

/// The intent and whether a person must review it (see [`decide`]).
pub fn choose(s: &Signals, th: &model::Thresholds) -> (Intent, bool) {
    let probs = &s.probs;
    let mut top = Intent::Acknowledged;
    let mut best = f32::NEG_INFINITY;
    for (&intent, &p) in Intent::ALL.iter().zip(probs) {
        if p > best {
            best = p;
            top = intent;
        }
    }
    let p_opt = probs[Intent::OptOut.index()];
    let act = if s.rules_opt_out { th.opt_out_act.min(th.opt_out_act_with_rules) } else { th.opt_out_act };
    if p_opt >= act || top == Intent::OptOut {
        return (Intent::OptOut, false);
    }
    let continues = CONTINUES.contains(&top);
    let must_stop: f32 = MUST_STOP.iter().map(|i| probs[i.index()]).sum();
    // Any sign of opt-out (the model's, a segment's, or the pattern rules reading one) goes to a
    // person. A dispute, plan, wrong contact or question opens a case for a person anyway (and
    // pauses the invoice); the others would not, so they are held for review.
    let opt_out_sign = p_opt.max(s.segment_opt_out) >= th.opt_out_signal || s.rules_opt_out;
    let unsure = best < th.act[top.index()]
        || (opt_out_sign && !PERSON_HANDLES.contains(&top))
        || (continues && must_stop >= th.caution)
        || s.wordless;
    (top, unsure)
}

/// A reply without a single letter or digit (an emoji, a lone "?").
pub fn is_wordless(own: &str) -> bool {
    !own.chars().any(char::is_alphanumeric)
}

/// The embedded model, parsed once. Services call this at start-up so a damaged model is found
/// before the first reply.
pub fn model() -> Result<&'static model::LinearModel, model::ModelError> {
    static MODEL: std::sync::LazyLock<Result<model::LinearModel, model::ModelError>> =
        std::sync::LazyLock::new(|| model::LinearModel::from_bytes(model::EMBEDDED));
    MODEL.as_ref().map_err(Clone::clone)
}
