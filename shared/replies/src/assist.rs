//! Optional LLM assist (cargo feature `llm`): asked only about replies the rules are not sure of.
//!
//! [`classify_assisted`] runs the rules first and returns their answer when it is sure. Otherwise
//! it asks the assist; an answer is used only when it parses strictly, it never replaces a
//! rule-detected `OptOut`, any error falls back to the rules, and the evidence reads
//! `llm:<model>`. An assisted answer keeps `sure == false`: only rules are sure.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use crate::{Classification, Date, Intent, Source, classify, own_text};

/// Why the assist gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AssistError {
    #[error("assist request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("assist answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("assist answer is not the expected JSON: {0}")]
    Answer(String),
}

/// What an assist answers: an intent and promised date, `None` when it does not know.
pub type AssistAnswer = Result<Option<(Intent, Option<Date>)>, AssistError>;

/// The future [`Assist::classify`] returns.
pub type AssistFuture<'a> = Pin<Box<dyn Future<Output = AssistAnswer> + Send + 'a>>;

/// An intent (and promised date) from somewhere other than the rules.
pub trait Assist: Send + Sync {
    fn classify<'a>(&'a self, source: Source, text: &'a str, reference: Date) -> AssistFuture<'a>;

    /// Named in the evidence of assisted answers (`llm:<model>`).
    fn model(&self) -> &str {
        "assist"
    }
}

/// Any OpenAI-compatible chat-completions endpoint (`POST {base_url}/chat/completions`).
#[derive(Clone)]
pub struct OpenAiCompatible {
    /// e.g. `https://api.example.com/v1` (no trailing `/chat/completions`).
    pub base_url: String,
    pub api_key: String,
    pub model: String,
    pub timeout: Duration,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

const SYSTEM_PROMPT: &str = r#"You classify a client's reply to an accounts-receivable reminder about an overdue invoice.
Answer with one JSON object and nothing else: {"intent": "<label>", "promised_date": "YYYY-MM-DD" or null}.
Labels (when several apply, the first in this list wins):
- opt_out: asks to stop automated messages or calls (unsubscribe, stop calling, do not contact, remove me, spam)
- dispute: contests the invoice (wrong amount, work not done or not approved, quality, duplicate or unauthorised charge, billing error)
- already_paid: says it is already paid or the payment was already sent
- payment_plan: asks for instalments, a partial arrangement or more time, or says they are in financial difficulty; also a promise naming two dates
- promise_to_pay: commits to pay, with or without a date
- wrong_contact: not the right person (left the company, redirects to someone else or to accounts payable)
- question: asks for something a person must answer or send (invoice copy, W-9, PO number, what the charge is for, who is calling, bank details)
- acknowledged: acknowledges without commitment (thanks, will look into it, forwarded to AP)
- auto_reply: automatic reply (out of office, ticket acknowledgement, voicemail greeting)
promised_date only for promise_to_pay, resolved against reference_date: today/tonight = reference; tomorrow = +1; a weekday = the first such day strictly after the reference; "the 15th" = the next day 15 on or after the reference; end of month = last day of the reference month; end of next month = last day of the next month; next week = Friday of the following week (weeks start Monday); this week / end of the week / by the weekend = Friday of the reference week, or the reference if that Friday is past; in N days = +N; in two weeks = +14; an explicit date = that date in the reference year, or next year if already past. Otherwise null.
Quoted earlier messages and signatures are not the client's words. If you cannot tell, answer {"intent": null, "promised_date": null}."#;

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
}

/// The model's JSON answer. Unknown fields are refused: the answer must be exactly this.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    intent: Option<String>,
    #[serde(default)]
    promised_date: Option<String>,
}

/// Parse the assistant's message strictly: one JSON object (a surrounding ```json fence is
/// tolerated), a known label or null, a `YYYY-MM-DD` date or null.
pub fn parse_answer(content: &str) -> AssistAnswer {
    let trimmed = content.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|b| b.strip_suffix("```"))
        .unwrap_or(trimmed)
        .trim();
    let answer: Answer = serde_json::from_str(body).map_err(|e| AssistError::Answer(format!("{e}: {body:?}")))?;
    let Some(label) = answer.intent else { return Ok(None) };
    let intent: Intent = label.parse().map_err(|e| AssistError::Answer(format!("{e}")))?;
    let date = match answer.promised_date.as_deref() {
        None | Some("") => None,
        Some(d) => Some(d.parse::<Date>().map_err(|e| AssistError::Answer(format!("promised_date {d:?}: {e}")))?),
    };
    Ok(Some((intent, if intent == Intent::PromiseToPay { date } else { None })))
}

impl OpenAiCompatible {
    async fn ask(
        &self,
        source: Source,
        text: &str,
        reference: Date,
    ) -> Result<Option<(Intent, Option<Date>)>, AssistError> {
        let client = reqwest::Client::builder().timeout(self.timeout).build()?;
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let user = format!("channel: {source}\nreference_date: {reference}\nreply:\n{text}");
        let body = serde_json::json!({
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user},
            ],
        });
        let response = client.post(url).bearer_auth(&self.api_key).json(&body).send().await?;
        let status = response.status();
        if !status.is_success() {
            let body: String = response.text().await.unwrap_or_default().chars().take(500).collect();
            return Err(AssistError::Status { status: status.as_u16(), body });
        }
        let chat: ChatResponse = response.json().await?;
        let content = chat
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| AssistError::Answer("no choices[0].message.content".to_string()))?;
        parse_answer(&content)
    }
}

impl Assist for OpenAiCompatible {
    fn classify<'a>(&'a self, source: Source, text: &'a str, reference: Date) -> AssistFuture<'a> {
        Box::pin(self.ask(source, text, reference))
    }

    fn model(&self) -> &str {
        &self.model
    }
}

/// The rules' answer, or the assist's when the rules are not sure (see the module docs).
pub async fn classify_assisted(
    assist: Option<&dyn Assist>,
    source: Source,
    text: &str,
    reference: Date,
) -> Classification {
    let rules = classify(source, text, reference);
    let Some(assist) = assist else { return rules };
    if rules.sure() || rules.intent == Intent::OptOut {
        return rules;
    }
    let own = own_text(source, text);
    // The assist names the likeliest intent for the reviewer; it never clears `needs_review`, so a
    // reply the classifier was unsure of still goes to a person.
    match assist.classify(source, &own, reference).await {
        Ok(Some((intent, promised_date))) => Classification {
            intent,
            promised_date: if intent == Intent::PromiseToPay { promised_date } else { None },
            evidence: format!("llm:{}", assist.model()),
            ..rules
        },
        Ok(None) | Err(_) => rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_answers() {
        let d = |s: &str| s.parse::<Date>().ok();
        assert_eq!(
            parse_answer(r#"{"intent":"promise_to_pay","promised_date":"2026-03-06"}"#).ok().flatten(),
            Some((Intent::PromiseToPay, d("2026-03-06")))
        );
        assert_eq!(
            parse_answer("```json\n{\"intent\":\"question\",\"promised_date\":\"2026-03-06\"}\n```").ok().flatten(),
            Some((Intent::Question, None))
        );
        assert!(matches!(parse_answer(r#"{"intent":null,"promised_date":null}"#), Ok(None)));
        assert!(parse_answer(r#"{"intent":"maybe"}"#).is_err());
        assert!(parse_answer(r#"{"intent":"question","why":"x"}"#).is_err());
        assert!(parse_answer(r#"{"intent":"promise_to_pay","promised_date":"Friday"}"#).is_err());
        assert!(parse_answer("It is a question.").is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let a = OpenAiCompatible {
            base_url: "http://x".into(),
            api_key: "sk-secret".into(),
            model: "m".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{a:?}").contains("sk-secret"));
    }
}
