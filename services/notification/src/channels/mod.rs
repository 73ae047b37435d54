//! The destinations: signed webhooks (Standard Webhooks), Slack incoming webhooks, email.
pub mod egress;
pub mod email;
pub mod signing;
pub mod slack;
pub mod webhook;

use crate::config::Config;
use crate::store::Claimed;
use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered { status: Option<u16> },
    Failed { status: Option<u16>, error: String, failure: Failure },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Try again later (5xx, 4xx, timeouts, refused connections, SMTP 4xx).
    Retry,
    /// This message can never go (SMTP 5xx): the delivery fails now; the endpoint counts a failure.
    Permanent,
    /// 410 Gone: the receiver says the endpoint is gone; it is disabled at once.
    Gone,
}

/// The HTTP client and the SMTP transport the worker sends with.
pub struct Channels {
    http: reqwest::Client,
    mailer: email::Mailer,
    allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("SMTP: {0}")]
    Smtp(String),
}

impl Channels {
    pub fn new(config: &Config) -> Result<Self, ChannelError> {
        let timeout = Duration::from_secs(config.notification.timeout_secs);
        let mut http = reqwest::Client::builder();
        if !config.notification.allow_private_targets {
            http = http.dns_resolver(std::sync::Arc::new(egress::PublicOnly));
        }
        let http = http
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is the receiver's misconfiguration, not a place to send signed data.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("arflow-notification/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mailer = email::Mailer::new(&config.smtp, &config.notification)?;
        Ok(Channels { http, mailer, allow_private: config.notification.allow_private_targets })
    }

    pub async fn send(&self, d: &Claimed) -> Outcome {
        if d.channel != "email"
            && !self.allow_private
            && let Some(why) =
                reqwest::Url::parse(&d.target).ok().and_then(|u| u.host_str().and_then(egress::refuse_host))
        {
            return failed_permanently(&why);
        }
        match d.channel.as_str() {
            "webhook" => match &d.secret {
                Some(secret) => webhook::send(&self.http, &d.target, secret, &d.id.to_string(), &d.message).await,
                None => failed_permanently("webhook subscription without a secret"),
            },
            "slack" => slack::send(&self.http, &d.target, &d.message).await,
            "email" => self.mailer.send(&d.target, &d.message).await,
            other => failed_permanently(&format!("unknown channel {other}")),
        }
    }
}

fn failed_permanently(error: &str) -> Outcome {
    Outcome::Failed { status: None, error: error.to_string(), failure: Failure::Permanent }
}

/// 2xx delivered; 410 gone; anything else retried.
pub(crate) async fn http_outcome(result: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match result {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered { status: Some(resp.status().as_u16()) },
        Ok(mut resp) => {
            let status = resp.status();
            // Only the start of the answer is kept, and only that much is read.
            let first = resp.chunk().await.ok().flatten().unwrap_or_default();
            let body: String = String::from_utf8_lossy(&first[..first.len().min(200)]).chars().take(200).collect();
            let failure = if status == reqwest::StatusCode::GONE { Failure::Gone } else { Failure::Retry };
            Outcome::Failed { status: Some(status.as_u16()), error: format!("HTTP {status}: {body}"), failure }
        }
        // Without the URL: a Slack webhook URL is the credential itself, and this error is logged,
        // stored, shown by the API and published in `notification.failed`.
        Err(e) => Outcome::Failed { status: None, error: error_chain(&e.without_url()), failure: Failure::Retry },
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); keep the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.chars().take(500).collect()
}

/// Title, summary and links of a stored message (every channel renders from these).
pub(crate) struct Rendered {
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub links: Vec<(String, String)>,
}

pub(crate) fn render(message: &serde_json::Value) -> Rendered {
    let data = &message["data"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let links =
        data["links"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect()).unwrap_or_default();
    Rendered { kind: text(&message["type"]), title: text(&data["title"]), summary: text(&data["summary"]), links }
}
