//! The reminder templates (minijinja), one per tone, compiled into the binary so it is
//! self-contained. Bump a template's version whenever its wording changes: the version is
//! part of every send's explanation (fence 6).
use arflow_contracts::events::{StepDue, Tone};
use arflow_core::Money;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// One tone's templates and the version recorded with each email rendered from them.
pub struct Template {
    pub name: &'static str,
    pub version: i32,
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

pub const FRIENDLY: Template = Template {
    name: "friendly",
    version: 1,
    subject: include_str!("../templates/friendly.subject.txt"),
    text: include_str!("../templates/friendly.txt"),
    html: include_str!("../templates/friendly.html"),
};
pub const FIRM: Template = Template {
    name: "firm",
    version: 1,
    subject: include_str!("../templates/firm.subject.txt"),
    text: include_str!("../templates/firm.txt"),
    html: include_str!("../templates/firm.html"),
};
pub const FINAL: Template = Template {
    name: "final",
    version: 1,
    subject: include_str!("../templates/final.subject.txt"),
    text: include_str!("../templates/final.txt"),
    html: include_str!("../templates/final.html"),
};

/// After a broken payment promise: recalls the promise, firm in tone (final steps keep `final`).
pub const PROMISE: Template = Template {
    name: "promise",
    version: 1,
    subject: include_str!("../templates/promise.subject.txt"),
    text: include_str!("../templates/promise.txt"),
    html: include_str!("../templates/promise.html"),
};

/// The template of a step: the broken-promise follow-up has its own unless it is the final notice.
pub fn template_for_step(step: &StepDue) -> &'static Template {
    if step.after_broken_promise && step.tone != Tone::Final {
        return &PROMISE;
    }
    template_for(step.tone)
}

pub fn template_for(tone: Tone) -> &'static Template {
    match tone {
        Tone::Friendly => &FRIENDLY,
        Tone::Firm => &FIRM,
        Tone::Final => &FINAL,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {template}.{part} failed to render: {source:#}")]
    Template {
        template: &'static str,
        part: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("the rendered subject is empty")]
    EmptySubject,
}

/// What goes out: subject and both bodies, with the template that made them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub template: &'static str,
    pub template_version: i32,
}

/// The values a template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub contact_name: String,
    pub firm_name: String,
    pub invoice_number: String,
    /// `3,200.00 USD`
    pub amount: String,
    /// `March 5, 2026`, or none when the invoice has no due date.
    pub due_date: Option<String>,
    pub overdue: bool,
    pub due_today: bool,
    /// `12 days overdue`, `due today`, `due in 3 days`.
    pub due_phrase: String,
    /// `Due date` line's status, the same phrase with a capital where it starts a sentence.
    pub status_line: String,
    /// The Stripe hosted invoice page, when the step includes it (always for firm/final).
    pub pay_url: Option<String>,
    pub unsubscribe_url: String,
    /// The date a broken promise named (`March 20, 2026`).
    pub promised_date: Option<String>,
}

impl Context {
    pub fn from_step(step: &StepDue, unsubscribe_url: String) -> Self {
        let days = step.days_overdue;
        let due_phrase = match days {
            d if d > 1 => format!("{d} days overdue"),
            1 => "1 day overdue".to_string(),
            0 => "due today".to_string(),
            -1 => "due tomorrow".to_string(),
            d => format!("due in {} days", d.unsigned_abs()),
        };
        let status_line = capitalise(&due_phrase);
        let include_link = step.pay_link || matches!(step.tone, Tone::Firm | Tone::Final);
        let contact_name = first_non_empty(&[&step.contact.name, &step.client.name]).unwrap_or("there").to_string();
        Context {
            contact_name,
            firm_name: step.firm.name.clone(),
            invoice_number: step.invoice.number.clone().unwrap_or_else(|| step.invoice.stripe_invoice_id.clone()),
            amount: Money::new(step.invoice.amount_remaining, step.invoice.currency).to_string(),
            // A calendar date is the same date in every zone: shown as the client's invoice shows it.
            due_date: step.invoice.due_date.map(|d| d.format("%B %-d, %Y").to_string()),
            overdue: days > 0,
            due_today: days == 0,
            due_phrase,
            status_line,
            pay_url: if include_link { step.invoice.hosted_invoice_url.clone() } else { None },
            unsubscribe_url,
            promised_date: step.promised_date.map(|d| d.format("%B %-d, %Y").to_string()),
        }
    }
}

fn first_non_empty<'a>(candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().map(|s| s.trim()).find(|s| !s.is_empty())
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Renders `template` with `ctx`. Undefined variables are errors, not blanks.
pub fn render(template: &Template, ctx: &Context) -> Result<Rendered, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let part = |part: &'static str, source: &'static str, file: &'static str| -> Result<String, RenderError> {
        let err = |source| RenderError::Template { template: template.name, part, source };
        // The file name picks the escaping: `.html` escapes HTML, `.txt` does not.
        let mut env = env.clone();
        env.add_template(file, source).map_err(err)?;
        env.get_template(file).and_then(|t| t.render(ctx)).map_err(err)
    };
    let subject = part("subject", template.subject, "subject.txt")?;
    // A subject is one line: newlines in names must not break the header.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    if subject.is_empty() {
        return Err(RenderError::EmptySubject);
    }
    let text = part("text", template.text, "body.txt")?;
    let html = part("html", template.html, "body.html")?;
    Ok(Rendered { subject, text, html, template: template.name, template_version: template.version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_contracts::events::{ClientSnapshot, ContactSnapshot, Explanation, FirmSnapshot, InvoiceSnapshot, Tier};
    use arflow_core::{Channel, Currency};
    use rust_decimal::Decimal;
    use uuid::Uuid;

    fn step(tone: Tone, days_overdue: i64, pay_link: bool) -> StepDue {
        StepDue {
            step_id: Uuid::now_v7(),
            invoice_id: Uuid::now_v7(),
            step: "overdue_7".into(),
            channel: Channel::Email,
            tone,
            pay_link,
            scheduled_for: chrono::Utc::now(),
            contact: ContactSnapshot {
                contact_id: Uuid::now_v7(),
                name: "Jane <Doe>".into(),
                email: Some("jane@client.example".into()),
                phone: None,
                timezone: Some("Europe/Paris".into()),
                channels: vec![Channel::Email],
                call_timezone: None,
            },
            invoice: InvoiceSnapshot {
                invoice_id: Uuid::now_v7(),
                stripe_invoice_id: "in_123".into(),
                number: Some("INV-0042".into()),
                currency: Currency::parse("usd").unwrap(),
                amount_due: Decimal::new(320000, 2),
                amount_remaining: Decimal::new(320000, 2),
                due_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 5),
                hosted_invoice_url: Some("https://invoice.stripe.com/i/acct_1/test_abc".into()),
            },
            client: ClientSnapshot { client_id: Uuid::now_v7(), name: "Client Co".into(), tier: Tier::Standard },
            firm: FirmSnapshot {
                name: "Acme Accounting".into(),
                sender_email: "billing@acme.example".into(),
                timezone: "America/New_York".into(),
                email_window: arflow_core::SendWindow::business_hours(),
                call_window: None,
            },
            days_overdue,
            explanation: Explanation {
                rule: "default-email/overdue_7".into(),
                policy_id: Uuid::now_v7(),
                policy_version: 1,
                eligibility_version: 3,
                checks: vec![],
            },
            promised_date: None,
            after_broken_promise: false,
            attempt: 1,
        }
    }

    fn go(tone: Tone, days: i64, pay_link: bool) -> Rendered {
        let s = step(tone, days, pay_link);
        render(template_for(tone), &Context::from_step(&s, "http://u/v1/unsubscribe/tok".into())).unwrap()
    }

    #[test]
    fn friendly_overdue_with_link() {
        let r = go(Tone::Friendly, 7, true);
        assert_eq!(r.template, "friendly");
        assert!(r.subject.starts_with("Friendly reminder: invoice INV-0042 from Acme Accounting"), "{}", r.subject);
        assert!(r.text.contains("Hi Jane <Doe>,"), "{}", r.text);
        assert!(r.text.contains("3,200.00 USD"));
        assert!(r.text.contains("March 5, 2026"));
        assert!(r.text.contains("7 days overdue"));
        assert!(r.text.contains("https://invoice.stripe.com/i/acct_1/test_abc"));
        assert!(r.text.contains("http://u/v1/unsubscribe/tok"));
        // HTML escapes what came from outside.
        assert!(r.html.contains("Hi Jane &lt;Doe&gt;,"), "{}", r.html);
        assert!(r.html.contains("3,200.00 USD"));
    }

    #[test]
    fn friendly_pre_due_without_link() {
        let r = go(Tone::Friendly, -3, false);
        assert!(r.subject.contains("is due in 3 days"), "{}", r.subject);
        assert!(r.text.contains("Due in 3 days"));
        assert!(!r.text.contains("invoice.stripe.com"));
        let today = go(Tone::Friendly, 0, false);
        assert!(today.subject.contains("is due today"), "{}", today.subject);
    }

    #[test]
    fn firm_always_has_the_link() {
        let r = go(Tone::Firm, 14, false);
        assert_eq!(r.subject, "Payment overdue: invoice INV-0042 (3,200.00 USD)");
        assert!(r.text.contains("Dear Jane <Doe>,"));
        assert!(r.text.contains("https://invoice.stripe.com/i/acct_1/test_abc"));
        assert!(r.text.contains("14 days overdue"));
    }

    #[test]
    fn the_step_after_a_broken_promise_recalls_it() {
        let mut s = step(Tone::Firm, 19, true);
        s.after_broken_promise = true;
        s.promised_date = chrono::NaiveDate::from_ymd_opt(2026, 3, 20);
        let t = template_for_step(&s);
        assert_eq!(t.name, "promise");
        let r = render(t, &Context::from_step(&s, "https://u.example/x".into())).unwrap();
        assert_eq!(r.subject, "Payment promised for March 20, 2026 not received: invoice INV-0042 (3,200.00 USD)");
        assert!(r.text.contains("would be paid by\nMarch 20, 2026."), "{}", r.text);
        assert!(r.html.contains("<strong>March 20, 2026</strong>"), "{}", r.html);
        assert!(r.text.contains("https://invoice.stripe.com/i/acct_1/test_abc"), "the pay link: {}", r.text);
        // Without a date, and a final notice keeps its own template.
        s.promised_date = None;
        let r = render(template_for_step(&s), &Context::from_step(&s, "https://u.example/x".into())).unwrap();
        assert!(r.subject.starts_with("Payment promised not received"), "{}", r.subject);
        s.tone = Tone::Final;
        assert_eq!(template_for_step(&s).name, "final");
    }

    #[test]
    fn final_says_what_happens_next() {
        let r = go(Tone::Final, 30, false);
        assert_eq!(r.subject, "Final notice: invoice INV-0042 (3,200.00 USD) is 30 days overdue");
        assert!(r.text.contains("a person from Acme Accounting will follow up"));
        assert!(r.text.contains("https://invoice.stripe.com/i/acct_1/test_abc"));
        assert!(r.html.contains("What happens next"));
    }

    #[test]
    fn subjects_differ_by_tone() {
        let subjects: std::collections::HashSet<String> =
            [Tone::Friendly, Tone::Firm, Tone::Final].into_iter().map(|t| go(t, 10, true).subject).collect();
        assert_eq!(subjects.len(), 3);
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        let broken = Template { name: "broken", version: 1, subject: "{{ nope }}", text: "", html: "" };
        let s = step(Tone::Friendly, 1, true);
        let err = render(&broken, &Context::from_step(&s, "u".into())).unwrap_err();
        assert!(err.to_string().contains("broken.subject"), "{err}");
    }
}
