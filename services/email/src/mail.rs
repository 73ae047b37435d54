//! SMTP hand-off: builds the MIME message of an email row and sends it over the pooled
//! connections of `smtp_pool`. Credentials stay inside the transport; addresses are logged masked.
use crate::config::{EmailSettings, SmtpSettings};
use crate::dkim::{DkimKeyError, DkimSigner};
use crate::store::EmailRow;
use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("smtp.host {host} cannot be used for TLS: {reason}")]
    Tls { host: String, reason: String },
    #[error(transparent)]
    DkimKey(#[from] DkimKeyError),
}

/// Why a message could not be built: permanent, the same input fails every time.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{which} address {address:?} is not a valid email address")]
    Address { which: &'static str, address: String },
    #[error("the message cannot be built: {0}")]
    Message(#[from] lettre::error::Error),
    #[error(transparent)]
    Dkim(#[from] crate::dkim::HeadersTooLong),
}

/// The outcome of one SMTP hand-off.
#[derive(Debug)]
pub enum SendError {
    /// Not handed over (4xx, a timeout or a connection problem before the body): try again later.
    Transient(String),
    /// 5xx or a message the server can never take.
    Permanent(String),
    /// The body went out and no answer came: the server may have it. Never retried blindly.
    Unknown(String),
}

pub struct Mailer {
    /// Pooled connections, every SMTP phase under a timeout (see `smtp_pool`).
    pool: crate::smtp_pool::SmtpPool,
    /// The DKIM keys by From domain (none: nothing is signed).
    dkim: DkimSigner,
    unsubscribe_mailto: Option<String>,
    reply_domain: Option<String>,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings, email: &EmailSettings) -> Result<Self, MailerError> {
        let tls_err =
            |e: lettre::transport::smtp::Error| MailerError::Tls { host: smtp.host.clone(), reason: e.to_string() };
        let dkim = DkimSigner::load(&email.dkim)?;
        let pool = crate::smtp_pool::SmtpPool::new(smtp).map_err(tls_err)?;
        Ok(Mailer {
            pool,
            dkim,
            unsubscribe_mailto: email.unsubscribe_mailto.clone(),
            reply_domain: email.reply_domain.clone().filter(|d| !d.trim().is_empty()),
        })
    }

    /// The MIME message of `row`, DKIM-signed with the key of its From domain when there is one.
    pub fn build(&self, row: &EmailRow, date: DateTime<Utc>) -> Result<(Message, String), BuildError> {
        let from = mailbox("from", &row.from_name, &row.from_address)?;
        let to = mailbox("to", &row.to_name, &row.to_address)?;
        let message_id = message_id(row.step_id, &from.email);
        // Answers come back to the reply domain with the email's token, when one is set up.
        let reply_to = match (&self.reply_domain, &row.reply_token) {
            (Some(domain), Some(token)) => mailbox("reply-to", &row.from_name, &format!("reply+{token}@{domain}"))?,
            _ => from.clone(),
        };
        let mut unsubscribe = format!("<{}>", row.unsubscribe_url);
        if let Some(mailto) = &self.unsubscribe_mailto {
            unsubscribe.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
        }
        let mut message = Message::builder()
            .from(from.clone())
            .reply_to(reply_to)
            .to(to)
            .subject(row.subject.clone())
            .date(date.into())
            .message_id(Some(message_id.clone()))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), unsubscribe))
            // RFC 8058 one-click: mail clients POST to the URL above.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            ))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Arflow-Step"), row.step_id.to_string()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Arflow-Invoice"),
                row.invoice_id.to_string(),
            ))
            .multipart(MultiPart::alternative_plain_html(row.body_text.clone(), row.body_html.clone()))?;
        self.dkim.sign(&mut message, from.email.domain())?;
        Ok((message, message_id))
    }

    /// Hands `message` to SMTP; `before_body` records the progress mark right before the body
    /// goes out (see `smtp_pool`).
    pub async fn send<F, Fut>(&self, message: Message, before_body: F) -> Result<(), SendError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        use crate::smtp_pool::SendFailure;
        match self.pool.send(message.envelope(), &message.formatted(), before_body).await {
            Ok(()) => Ok(()),
            Err(SendFailure::NotSent(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(SendFailure::NotSent(e)) => Err(SendError::Transient(e.to_string())),
            Err(SendFailure::Unknown(e)) => Err(SendError::Unknown(e.to_string())),
        }
    }
}

fn mailbox(which: &'static str, name: &str, address: &str) -> Result<Mailbox, BuildError> {
    let email: Address =
        address.trim().parse().map_err(|_| BuildError::Address { which, address: address.to_string() })?;
    let name = name.trim();
    Ok(Mailbox::new((!name.is_empty()).then(|| name.to_string()), email))
}

/// `<step-<step_id>@<sender domain>>`: deterministic, so a message can be traced to its step.
pub fn message_id(step_id: uuid::Uuid, from: &Address) -> String {
    format!("<step-{step_id}@{}>", from.domain())
}

/// Parses and checks an address before it is stored (a bad one fails the step at once).
pub fn valid_address(address: &str) -> bool {
    address.trim().parse::<Address>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DkimAlgorithm, DkimSettings};
    use arflow_contracts::events::Explanation;
    use arflow_runtime::ServiceConfig;
    use uuid::Uuid;

    fn row() -> EmailRow {
        EmailRow {
            id: Uuid::now_v7(),
            step_id: Uuid::now_v7(),
            firm_id: Uuid::now_v7(),
            invoice_id: Uuid::now_v7(),
            contact_id: Uuid::now_v7(),
            step: "overdue_3".into(),
            tone: "friendly".into(),
            cause_event_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            to_name: "Jane Doe".into(),
            to_address: "jane@client.example".into(),
            from_name: "Acme Accounting".into(),
            from_address: "billing@acme.example".into(),
            subject: "Friendly reminder".into(),
            body_text: "Hello".into(),
            body_html: "<p>Hello</p>".into(),
            unsubscribe_url: "http://u.example/v1/unsubscribe/tok".into(),
            template: "friendly".into(),
            template_version: 1,
            explanation: sqlx::types::Json(Explanation {
                rule: "r".into(),
                policy_id: Uuid::now_v7(),
                policy_version: 1,
                eligibility_version: 1,
                checks: vec![],
            }),
            state: "sending".into(),
            attempts: 0,
            message_id: None,
            last_error: None,
            client_id: Some(Uuid::now_v7()),
            reply_token: Some("0123456789abcdef".into()),
        }
    }

    #[tokio::test]
    async fn builds_headers_and_signs_with_dkim() {
        let dir = std::env::temp_dir().join(format!("arflow-dkim-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("dkim.key");
        // An ed25519 secret key is 32 bytes, base64.
        std::fs::write(&key, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let mut c = Config::for_tests();
        c.email.unsubscribe_mailto = Some("unsub@acme.example".into());
        c.email.reply_domain = Some("in.acme.example".into());
        // The old single-key form of an ed25519 key (base64) still works.
        c.email.dkim = vec![DkimSettings {
            selector: "arflow".into(),
            domain: "acme.example".into(),
            private_key_path: key.to_string_lossy().into_owned(),
            algorithm: DkimAlgorithm::Ed25519,
        }];
        let mailer = Mailer::new(&c.smtp, &c.email).unwrap();
        let r = row();
        let (message, id) = mailer.build(&r, chrono::Utc::now()).unwrap();
        assert_eq!(id, format!("<step-{}@acme.example>", r.step_id));
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains(&format!("X-Arflow-Step: {}", r.step_id)), "{text}");
        assert!(text.contains(&format!("X-Arflow-Invoice: {}", r.invoice_id)), "{text}");
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{text}");
        assert!(text.contains("mailto:unsub@acme.example?subject=unsubscribe"), "{text}");
        assert!(text.contains("DKIM-Signature: v=1; a=ed25519-sha256; d=acme.example; s=arflow;"), "{text}");
        assert!(text.contains("c=relaxed/relaxed;"), "{text}");
        let signed = "h=from:to:subject:date:message-id:reply-to:list-unsubscribe:list-unsubscribe-post;";
        assert!(text.contains(signed), "{text}");
        assert!(text.contains("reply+0123456789abcdef@in.acme.example"), "answers come back with the token: {text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `d=` is the From domain of each message; a From domain without a key goes out unsigned.
    #[tokio::test]
    async fn each_message_is_signed_with_the_key_of_its_from_domain() {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let dir = std::env::temp_dir().join(format!("arflow-dkim-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Config::for_tests();
        for (i, domain) in ["acme.example", "Bright-Path.example"].into_iter().enumerate() {
            let key = ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 7; 32]);
            let path = dir.join(format!("{i}.pem"));
            std::fs::write(&path, key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().as_bytes()).unwrap();
            c.email.dkim.push(DkimSettings {
                selector: format!("s{i}"),
                domain: domain.into(),
                private_key_path: path.to_string_lossy().into_owned(),
                algorithm: DkimAlgorithm::Ed25519,
            });
        }
        c.validate().unwrap();
        let mailer = Mailer::new(&c.smtp, &c.email).unwrap();
        let signature = |from: &str| {
            let mut r = row();
            r.from_address = from.into();
            let (message, _) = mailer.build(&r, chrono::Utc::now()).unwrap();
            let text = String::from_utf8(message.formatted()).unwrap();
            text.lines().find(|l| l.starts_with("DKIM-Signature:")).map(str::to_string)
        };
        let acme = signature("billing@acme.example").unwrap();
        assert!(acme.contains("d=acme.example; s=s0;"), "{acme}");
        let bright = signature("ar@bright-path.EXAMPLE").unwrap();
        assert!(bright.contains("d=bright-path.example; s=s1;"), "{bright}");
        // Not the parent's key either: d= must equal the From domain.
        assert_eq!(signature("billing@mail.acme.example"), None);
        assert_eq!(signature("billing@other.example"), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    // The pooled transport starts its reaper task, so it needs a runtime.
    #[tokio::test]
    async fn bad_addresses_and_missing_keys_are_clear_errors() {
        let c = Config::for_tests();
        let mailer = Mailer::new(&c.smtp, &c.email).unwrap();
        let mut r = row();
        r.to_address = "not an address".into();
        let err = mailer.build(&r, chrono::Utc::now()).unwrap_err();
        assert!(err.to_string().contains("to address"), "{err}");
        let mut c = Config::for_tests();
        c.email.dkim = vec![DkimSettings {
            selector: "s".into(),
            domain: "d.example".into(),
            private_key_path: "/nonexistent/key.pem".into(),
            algorithm: DkimAlgorithm::Rsa,
        }];
        let err = Mailer::new(&c.smtp, &c.email).err().unwrap();
        assert!(
            err.to_string().contains("email.dkim[0].private_key_path /nonexistent/key.pem cannot be read"),
            "{err}"
        );
    }
}
