//! Texts: the reminder template (minijinja, compiled in; bump the version when the wording
//! changes), the STOP/HELP keywords and their answers.
use arflow_contracts::events::{StepDue, Tone};
use arflow_core::Money;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

pub const TEMPLATE_NAME: &str = "sms-reminder";
pub const TEMPLATE_VERSION: i32 = 1;
const TEMPLATE: &str = include_str!("../templates/sms-reminder.txt");

#[derive(Debug, Serialize)]
struct Context {
    firm: String,
    number: String,
    amount: String,
    due_phrase: String,
    link: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("sms template {TEMPLATE_NAME}@{TEMPLATE_VERSION} failed to render: {0:#}")]
pub struct RenderError(#[from] minijinja::Error);

/// The reminder text of a step. The hosted invoice link is included when the step asks for it
/// (and always on firm and final steps, like the email), and only when there is one.
pub fn render(step: &StepDue) -> Result<String, RenderError> {
    let days = step.days_overdue;
    let due_phrase = match days {
        d if d > 1 => format!("{d} days overdue"),
        1 => "1 day overdue".into(),
        0 => "due today".into(),
        -1 => "due tomorrow".into(),
        d => format!("due in {} days", d.unsigned_abs()),
    };
    let include_link = step.pay_link || matches!(step.tone, Tone::Firm | Tone::Final);
    let ctx = Context {
        firm: step.firm.name.clone(),
        number: step.invoice.number.clone().unwrap_or_else(|| step.invoice.stripe_invoice_id.clone()),
        amount: Money::new(step.invoice.amount_remaining, step.invoice.currency).to_string(),
        due_phrase,
        link: if include_link {
            step.invoice.hosted_invoice_url.clone().filter(|u| !u.trim().is_empty())
        } else {
            None
        },
    };
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("sms.txt", TEMPLATE)?;
    let body = env.get_template("sms.txt")?.render(&ctx)?;
    // One line of text: names with newlines must not break it.
    Ok(body.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What an inbound text's keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Stop,
    Help,
}

/// The carrier keywords, on the whole trimmed body, case-insensitive.
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().trim_end_matches(['.', '!']).to_ascii_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Keyword::Stop),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// The answer to STOP (or an opt-out in words).
pub fn stop_reply(firm: &str) -> String {
    format!(
        "{firm}: you are unsubscribed and will receive no more calls, texts or emails about this. Reply HELP for help."
    )
}

/// The answer to HELP.
pub fn help_reply(firm: &str, contact_email: &str) -> String {
    let reach = if contact_email.trim().is_empty() { String::new() } else { format!(" Questions: {contact_email}.") };
    format!(
        "{firm}: these texts are payment reminders about your invoices with {firm}.{reach} Reply STOP to opt out. \
         Msg&data rates may apply."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_whole_body_and_case_insensitive() {
        for s in ["STOP", " stop ", "Unsubscribe", "cancel", "END", "quit", "StopAll", "stop."] {
            assert_eq!(keyword(s), Some(Keyword::Stop), "{s}");
        }
        for s in ["help", "INFO", " Help "] {
            assert_eq!(keyword(s), Some(Keyword::Help), "{s}");
        }
        for s in ["please stop", "I will pay friday", "", "helpful"] {
            assert_eq!(keyword(s), None, "{s}");
        }
    }

    #[test]
    fn replies_name_the_firm_and_how_to_stop() {
        assert!(help_reply("Acme", "billing@acme.example").contains("Reply STOP"));
        assert!(stop_reply("Acme").starts_with("Acme:"));
    }
}
