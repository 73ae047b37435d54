//! Email to a firm user over SMTP (lettre's pooled transport; volumes are small).
use super::{ChannelError, Failure, Outcome, render};
use crate::config::{NotificationSettings, SmtpSettings, TlsMode};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::time::Duration;

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings, settings: &NotificationSettings) -> Result<Self, ChannelError> {
        let err = |e: lettre::transport::smtp::Error| ChannelError::Smtp(e.to_string());
        let builder = match smtp.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str()),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(err)?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(err)?,
        };
        let mut builder = builder.port(smtp.port).timeout(Some(Duration::from_secs(smtp.timeout_secs)));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_string()));
        }
        let address = settings
            .from_address
            .parse()
            .map_err(|e: lettre::address::AddressError| ChannelError::Smtp(e.to_string()))?;
        Ok(Mailer { transport: builder.build(), from: Mailbox::new(Some(settings.from_name.clone()), address) })
    }

    pub async fn send(&self, to: &str, message: &serde_json::Value) -> Outcome {
        let email = match self.build(to, message) {
            Ok(m) => m,
            Err(e) => return Outcome::Failed { status: None, error: e, failure: Failure::Permanent },
        };
        match self.transport.send(email).await {
            Ok(resp) => Outcome::Delivered { status: Some(u16::from(resp.code())) },
            Err(e) => Outcome::Failed {
                status: e.status().map(u16::from),
                error: e.to_string(),
                failure: if e.is_permanent() { Failure::Permanent } else { Failure::Retry },
            },
        }
    }

    fn build(&self, to: &str, message: &serde_json::Value) -> Result<Message, String> {
        let r = render(message);
        let to: Mailbox = to.parse().map_err(|e: lettre::address::AddressError| e.to_string())?;
        let mut body = format!("{}\n\n{}\n", r.title, r.summary);
        if !r.links.is_empty() {
            body.push('\n');
            for (name, url) in &r.links {
                body.push_str(&format!("{}: {url}\n", name.replace('_', " ")));
            }
        }
        body.push_str(&format!(
            "\n--\nYou get this because you subscribed to \"{}\" notifications in arflow.\n",
            r.kind
        ));
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("[arflow] {}", r.title))
            .body(body)
            .map_err(|e| e.to_string())
    }
}
