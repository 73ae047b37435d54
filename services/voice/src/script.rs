//! What the agent says: the call script per tone (`call-<tone>@<version>`), the voicemail (no
//! amounts or invoice details: someone else may hear it), and the closing lines per intent, in
//! English or, when the client speaks Spanish, in Spanish.
use arflow_contracts::events::{StepDue, Tone};
use arflow_core::{Channel, Money};
use arflow_replies::Intent;
use chrono::{Datelike, NaiveDate, Weekday};

/// Bump when any wording below changes: the version is recorded with every call (fence 6).
pub const SCRIPT_VERSION: u32 = 1;

/// `call-friendly@1`, `call-firm@1`, `call-final@1`.
pub fn script_name(tone: Tone) -> String {
    let t = match tone {
        Tone::Friendly => "friendly",
        Tone::Firm => "firm",
        Tone::Final => "final",
    };
    format!("call-{t}@{SCRIPT_VERSION}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    pub fn parse(s: &str) -> Lang {
        if s == "es" { Lang::Es } else { Lang::En }
    }

    /// The `<Say>`/`<Gather>` language.
    pub fn locale(self) -> &'static str {
        match self {
            Lang::En => "en-US",
            Lang::Es => "es-US",
        }
    }
}

/// The facts a script may say.
#[derive(Debug, Clone)]
pub struct CallFacts {
    pub contact_name: String,
    pub firm_name: String,
    pub invoice_number: String,
    /// `3,200.00 USD`
    pub amount: String,
    pub days_overdue: i64,
    pub tone: Tone,
    /// How the client gets the payment link, which is all the agent may promise about it.
    pub link: LinkRoute,
}

/// Where the payment link reaches the client from a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRoute {
    /// SMS consent, a number and a hosted invoice link: the voice service texts it when the
    /// client promises to pay.
    Text,
    /// No texts, but email consent: the link is in the reminders already emailed (every overdue
    /// reminder carries it).
    Emails,
    /// Neither (or no hosted link): the agent does not mention one.
    None,
}

impl CallFacts {
    pub fn from_step(step: &StepDue) -> Self {
        let name = step.contact.name.trim();
        CallFacts {
            contact_name: if name.is_empty() { step.client.name.trim().to_string() } else { name.to_string() },
            firm_name: step.firm.name.clone(),
            invoice_number: step.invoice.number.clone().unwrap_or_else(|| step.invoice.stripe_invoice_id.clone()),
            amount: Money::new(step.invoice.amount_remaining, step.invoice.currency).to_string(),
            days_overdue: step.days_overdue,
            tone: step.tone,
            link: LinkRoute::of(step),
        }
    }

    fn due_phrase(&self) -> String {
        match self.days_overdue {
            d if d > 1 => format!("{d} days overdue"),
            1 => "1 day overdue".into(),
            0 => "due today".into(),
            -1 => "due tomorrow".into(),
            d => format!("due in {} days", d.unsigned_abs()),
        }
    }

    fn link_offer(&self) -> &'static str {
        match self.link {
            LinkRoute::Text => "I can text you a secure payment link.",
            LinkRoute::Emails => "The secure payment link is in the emails we sent you.",
            LinkRoute::None => "",
        }
    }
}

impl LinkRoute {
    pub fn of(step: &StepDue) -> Self {
        let has_link = step.invoice.hosted_invoice_url.as_deref().is_some_and(|u| !u.trim().is_empty());
        let channels = &step.contact.channels;
        if !has_link {
            LinkRoute::None
        } else if channels.contains(&Channel::Sms) && step.contact.phone.is_some() {
            LinkRoute::Text
        } else if channels.contains(&Channel::Email) && step.contact.email.is_some() {
            LinkRoute::Emails
        } else {
            LinkRoute::None
        }
    }
}

/// The opening of the call (turn 1): who is calling, that it may be recorded, the purpose, the
/// invoice, amount and days overdue, the link offer, and the question.
pub fn opening(f: &CallFacts) -> String {
    let greeting = if f.contact_name.is_empty() { "Hello.".to_string() } else { format!("Hello {}.", f.contact_name) };
    let who =
        format!("This is an automated assistant calling on behalf of {}. This call may be recorded.", f.firm_name);
    let purpose = match f.tone {
        Tone::Friendly => format!(
            "I'm calling with a friendly reminder about invoice {}, for {}, which is {}.",
            f.invoice_number,
            f.amount,
            f.due_phrase()
        ),
        Tone::Firm => format!(
            "I'm calling about invoice {}, for {}, which is now {} and needs your attention.",
            f.invoice_number,
            f.amount,
            f.due_phrase()
        ),
        Tone::Final => format!(
            "This is a final reminder about invoice {}, for {}, which is {}. Please arrange payment now.",
            f.invoice_number,
            f.amount,
            f.due_phrase()
        ),
    };
    let offer = f.link_offer();
    let offer = if offer.is_empty() { String::new() } else { format!("{offer} ") };
    format!("{greeting} {who} {purpose} {offer}When will you be able to pay?")
}

/// Asked again after an unclear answer.
pub fn reprompt(f: &CallFacts, lang: Lang) -> String {
    match lang {
        Lang::En => {
            format!("Sorry, I didn't quite catch that. When do you think you can pay invoice {}?", f.invoice_number)
        }
        Lang::Es => {
            format!("Disculpe, no le he entendido bien. ¿Cuándo cree que podrá pagar la factura {}?", f.invoice_number)
        }
    }
}

/// The polite close after the last turn without a clear answer.
pub fn close_unclear(f: &CallFacts, lang: Lang) -> String {
    match lang {
        Lang::En => format!("Thank you for your time. {} will follow up with you by email. Goodbye.", f.firm_name),
        Lang::Es => {
            format!("Gracias por su tiempo. {} le enviará la información por correo electrónico. Adiós.", f.firm_name)
        }
    }
}

/// The voicemail: the firm and a request to call back or check email; no amount, no invoice.
pub fn voicemail(firm_name: &str) -> String {
    format!(
        "Hello, this is an automated message on behalf of {firm_name}. Please call us back or check your email \
         for a message from us. Thank you. Goodbye."
    )
}

/// What the agent answers to a clear intent, and whether the call ends there.
pub fn closing(intent: Intent, promised: Option<NaiveDate>, f: &CallFacts, lang: Lang) -> Option<String> {
    let link = match f.link {
        LinkRoute::Text => " I am sending you the payment link by text message now.",
        LinkRoute::Emails => " You can pay with the link in the emails we sent you.",
        LinkRoute::None => "",
    };
    let link_es = match f.link {
        LinkRoute::Text => " Le envío ahora el enlace de pago por mensaje de texto.",
        LinkRoute::Emails => " Puede pagar con el enlace de los correos que le enviamos.",
        LinkRoute::None => "",
    };
    let text = match (intent, lang) {
        (Intent::OptOut, Lang::En) => {
            "Understood. I have noted that you do not want to be contacted about this any more. You will receive no \
             more calls, texts or emails from us about it. Goodbye."
                .to_string()
        }
        (Intent::OptOut, Lang::Es) => {
            "Entendido. He anotado que no desea que le contactemos más. No recibirá más llamadas, mensajes ni \
             correos nuestros sobre esto. Adiós."
                .to_string()
        }
        (Intent::PromiseToPay, Lang::En) => {
            let when = promised.map(|d| format!(" by {}", date_en(d))).unwrap_or_default();
            format!("Thank you, I have noted that you will pay{when}.{link} Goodbye.")
        }
        (Intent::PromiseToPay, Lang::Es) => {
            let when = promised.map(|d| format!(" el {}", date_es(d))).unwrap_or_default();
            format!("Gracias, he anotado que pagará{when}.{link_es} Adiós.")
        }
        (Intent::Dispute | Intent::PaymentPlan | Intent::Question | Intent::WrongContact, Lang::En) => {
            format!("Thank you. Someone from {} will follow up with you shortly. Goodbye.", f.firm_name)
        }
        (Intent::Dispute | Intent::PaymentPlan | Intent::Question | Intent::WrongContact, Lang::Es) => {
            format!("Gracias. Una persona de {} se pondrá en contacto con usted en breve. Adiós.", f.firm_name)
        }
        (Intent::AlreadyPaid, Lang::En) => {
            "Thank you for letting us know. We will check our records. Goodbye.".to_string()
        }
        (Intent::AlreadyPaid, Lang::Es) => "Gracias por avisarnos. Revisaremos nuestros registros. Adiós.".to_string(),
        (Intent::Acknowledged | Intent::AutoReply, _) => return None,
    };
    Some(text)
}

/// `Friday 20 March`
pub fn date_en(d: NaiveDate) -> String {
    d.format("%A %-d %B").to_string()
}

/// `viernes 20 de marzo`
pub fn date_es(d: NaiveDate) -> String {
    let day = match d.weekday() {
        Weekday::Mon => "lunes",
        Weekday::Tue => "martes",
        Weekday::Wed => "miércoles",
        Weekday::Thu => "jueves",
        Weekday::Fri => "viernes",
        Weekday::Sat => "sábado",
        Weekday::Sun => "domingo",
    };
    const MONTHS: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    let month = MONTHS.get(d.month0() as usize).copied().unwrap_or("");
    format!("{day} {} de {month}", d.day())
}

/// Spanish beyond a doubt: enough common Spanish words (accents folded), or Spanish punctuation.
pub fn is_spanish(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "que",
        "y",
        "por",
        "para",
        "con",
        "pagar",
        "pagare",
        "pago",
        "pagado",
        "pague",
        "viernes",
        "lunes",
        "martes",
        "miercoles",
        "jueves",
        "sabado",
        "domingo",
        "semana",
        "gracias",
        "llamar",
        "llamen",
        "llamadas",
        "llamada",
        "favor",
        "manana",
        "hoy",
        "proxima",
        "puedo",
        "voy",
        "vamos",
        "hablar",
        "persona",
        "factura",
        "usted",
        "senor",
        "senora",
        "quiero",
        "estoy",
        "esta",
        "hola",
        "bueno",
        "mes",
        "dinero",
        "dia",
        "nada",
        "tengo",
        "podemos",
        "claro",
        "dejen",
        "molestar",
    ];
    let folded: String = text
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'á' => 'a',
            'é' => 'e',
            'í' => 'i',
            'ó' => 'o',
            'ú' | 'ü' => 'u',
            'ñ' => 'n',
            c => c,
        })
        .collect();
    if text.contains('¿') || text.contains('¡') {
        return true;
    }
    let words: Vec<&str> = folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let hits = words.iter().filter(|w| WORDS.contains(w)).count();
    hits >= 2 || (hits == 1 && words.len() <= 2 && text.chars().any(|c| "áéíóúñ".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(tone: Tone, link: LinkRoute) -> CallFacts {
        CallFacts {
            contact_name: "Jane Doe".into(),
            firm_name: "Acme Accounting".into(),
            invoice_number: "INV-0042".into(),
            amount: "3,200.00 USD".into(),
            days_overdue: 21,
            tone,
            link,
        }
    }

    #[test]
    fn the_opening_says_who_why_how_much_and_asks() {
        for tone in [Tone::Friendly, Tone::Firm, Tone::Final] {
            let s = opening(&facts(tone, LinkRoute::Emails));
            for needle in [
                "Acme Accounting",
                "automated assistant",
                "may be recorded",
                "INV-0042",
                "3,200.00 USD",
                "21 days overdue",
                "link is in the emails we sent you",
                "When will you be able to pay?",
            ] {
                assert!(s.contains(needle), "{tone:?}: {needle} missing from {s}");
            }
        }
        assert!(opening(&facts(Tone::Final, LinkRoute::Emails)).contains("final reminder"));
        assert!(opening(&facts(Tone::Friendly, LinkRoute::Text)).contains("I can text you a secure payment link."));
        let none = opening(&facts(Tone::Friendly, LinkRoute::None));
        assert!(!none.contains("link") && none.contains("overdue. When will"), "{none}");
    }

    #[test]
    fn the_voicemail_says_no_amount_or_invoice() {
        let v = voicemail("Acme Accounting");
        assert!(v.contains("Acme Accounting") && v.contains("call us back"));
        assert!(!v.contains("INV") && !v.contains("USD") && !v.contains('$'));
    }

    #[test]
    fn closings() {
        let f = facts(Tone::Firm, LinkRoute::Emails);
        let d = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
        assert_eq!(
            closing(Intent::PromiseToPay, Some(d), &f, Lang::En).unwrap(),
            "Thank you, I have noted that you will pay by Friday 20 March. You can pay with the link in the emails we sent you. Goodbye."
        );
        assert!(closing(Intent::PromiseToPay, Some(d), &f, Lang::Es).unwrap().contains("viernes 20 de marzo"));
        let by_text = facts(Tone::Firm, LinkRoute::Text);
        assert!(closing(Intent::PromiseToPay, None, &by_text, Lang::En).unwrap().contains("by text message now"));
        let no_link = closing(Intent::PromiseToPay, None, &facts(Tone::Firm, LinkRoute::None), Lang::En).unwrap();
        assert_eq!(no_link, "Thank you, I have noted that you will pay. Goodbye.");
        assert!(closing(Intent::Dispute, None, &f, Lang::En).unwrap().contains("Someone from Acme Accounting"));
        assert!(closing(Intent::AlreadyPaid, None, &f, Lang::En).unwrap().contains("check our records"));
        assert!(closing(Intent::Acknowledged, None, &f, Lang::En).is_none());
        assert_eq!(script_name(Tone::Firm), "call-firm@1");
    }

    #[test]
    fn spanish_is_recognised() {
        assert!(is_spanish("Pagaré la factura el viernes, gracias"));
        assert!(is_spanish("¿Quién llama?"));
        assert!(is_spanish("No me llamen más por favor"));
        assert!(!is_spanish("I will pay on Friday"));
        assert!(!is_spanish("Stop calling me"));
        assert!(!is_spanish(""));
    }
}
