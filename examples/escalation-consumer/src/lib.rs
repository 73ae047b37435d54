//! Reads one firm's arflow escalation events from NATS JetStream: a durable pull consumer on
//! the `ESCALATION` stream filtered to `escalation.*.<firm_id>`, acked after each event is
//! handled. Copy this crate: it shares no code with arflow, only the contract (`docs/events/`).
pub mod event;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, consumer::pull};
use event::{Envelope, EscalationCase};
use futures::StreamExt;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

pub const STREAM: &str = "ESCALATION";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{what} failed: {source}")]
    Nats {
        what: &'static str,
        #[source]
        source: async_nats::Error,
    },
}

fn nats(what: &'static str) -> impl FnOnce(async_nats::Error) -> Error {
    move |source| Error::Nats { what, source }
}

/// How to reach NATS and which firm's events to read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub firm_id: Uuid,
    /// The durable consumer's name: the one your credentials allow.
    pub consumer: String,
    pub auth: Auth,
    /// Replies to this consumer's requests arrive under it; your credentials allow only yours.
    pub inbox_prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    UserPassword {
        user: String,
        password: String,
    },
    /// A NATS credentials file (JWT + NKey seed), for operator-mode servers.
    CredentialsFile(PathBuf),
}

impl Settings {
    /// `ARFLOW_NATS_URL` (default `nats://localhost:4222`), `ARFLOW_FIRM_ID`, `ARFLOW_CONSUMER`,
    /// `NATS_INBOX_PREFIX`, and `NATS_CREDS` or `NATS_USER` + `NATS_PASSWORD`.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let firm_id = var("ARFLOW_FIRM_ID").ok_or_else(|| Error::Config("ARFLOW_FIRM_ID is not set".into()))?;
        let firm_id = Uuid::parse_str(&firm_id)
            .map_err(|e| Error::Config(format!("ARFLOW_FIRM_ID {firm_id:?} is not a UUID: {e}")))?;
        let consumer = var("ARFLOW_CONSUMER").ok_or_else(|| Error::Config("ARFLOW_CONSUMER is not set".into()))?;
        let auth = match (var("NATS_CREDS"), var("NATS_USER"), var("NATS_PASSWORD")) {
            (Some(path), None, None) => Auth::CredentialsFile(path.into()),
            (None, Some(user), Some(password)) => Auth::UserPassword { user, password },
            (None, None, None) => Auth::None,
            _ => return Err(Error::Config("set either NATS_CREDS or NATS_USER and NATS_PASSWORD".into())),
        };
        Ok(Settings {
            url: var("ARFLOW_NATS_URL").unwrap_or_else(|| "nats://localhost:4222".into()),
            firm_id,
            consumer,
            auth,
            inbox_prefix: var("NATS_INBOX_PREFIX"),
        })
    }

    /// `escalation.*.<firm_id>`: opened, updated and resolved.
    pub fn filter_subject(&self) -> String {
        format!("escalation.*.{}", self.firm_id)
    }
}

pub async fn connect(settings: &Settings) -> Result<async_nats::Client, Error> {
    let mut options = match &settings.auth {
        Auth::None => async_nats::ConnectOptions::new(),
        Auth::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Auth::CredentialsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| Error::Config(format!("credentials file {}: {e}", path.display())))?,
    };
    if let Some(prefix) = &settings.inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    options.name("escalation-consumer").connect(&settings.url).await.map_err(|e| nats("connect")(e.into()))
}

/// Creates the durable consumer, or binds to it when it exists: it remembers what was acked,
/// so a restart resumes where the last run stopped.
pub async fn bind(client: &async_nats::Client, settings: &Settings) -> Result<PullConsumer, Error> {
    let config = pull::Config {
        durable_name: Some(settings.consumer.clone()),
        filter_subject: settings.filter_subject(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        description: Some(format!("escalations of firm {}", settings.firm_id)),
        ..Default::default()
    };
    // Created on the stream by name: no stream lookup, which the credentials do not allow.
    jetstream::new(client.clone())
        .create_consumer_on_stream(config, STREAM)
        .await
        .map_err(|e| nats("create consumer")(e.into()))
}

/// What became of one message.
#[derive(Debug, Clone)]
pub enum Handled {
    /// A newer state of the case: act on it.
    Applied { kind: String, event_id: Uuid, case: Box<EscalationCase> },
    /// Older than (or the same as) what we already have: a redelivery or an out-of-order copy.
    Stale { case_id: Uuid, version: i64, latest: i64 },
    /// A contract version this consumer does not read (during a v2 deprecation window).
    OtherVersion { event_id: Uuid, version: u32 },
    /// Not an escalation event at all: terminated, never redelivered.
    Undecodable(String),
}

/// The highest version seen per case. In memory here; a real consumer stores it with what it
/// does with the case, in the same transaction.
#[derive(Debug, Default)]
pub struct Cases {
    latest: HashMap<Uuid, i64>,
}

impl Cases {
    pub fn handle(&mut self, payload: &[u8]) -> Handled {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(e) => return Handled::Undecodable(format!("not an event envelope: {e}")),
        };
        if envelope.version != 1 {
            return Handled::OtherVersion { event_id: envelope.id, version: envelope.version };
        }
        let case: EscalationCase = match serde_json::from_value(envelope.data) {
            Ok(c) => c,
            Err(e) => return Handled::Undecodable(format!("{} {}: {e}", envelope.kind, envelope.id)),
        };
        let latest = self.latest.entry(case.case_id).or_insert(0);
        if case.version <= *latest {
            return Handled::Stale { case_id: case.case_id, version: case.version, latest: *latest };
        }
        *latest = case.version;
        Handled::Applied { kind: envelope.kind, event_id: envelope.id, case: Box::new(case) }
    }

    pub fn latest(&self, case_id: Uuid) -> Option<i64> {
        self.latest.get(&case_id).copied()
    }
}

impl fmt::Display for Handled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handled::Applied { kind, case, .. } => {
                write!(
                    f,
                    "{kind} case {} v{} [{}] {}: {}",
                    case.case_id, case.version, case.status, case.reason, case.client.name
                )?;
                if let Some(i) = &case.invoice {
                    let number = i.number.as_deref().unwrap_or(&i.stripe_invoice_id);
                    write!(
                        f,
                        ", invoice {number} {} {} remaining, {} days past due",
                        i.amount_remaining, i.currency, i.days_past_due
                    )?;
                }
                write!(f, "; {} by {}", case.action.action, case.action.actor)
            }
            Handled::Stale { case_id, version, latest } => {
                write!(f, "case {case_id} v{version} skipped: already at v{latest}")
            }
            Handled::OtherVersion { event_id, version } => {
                write!(f, "event {event_id} skipped: contract version {version}")
            }
            Handled::Undecodable(why) => write!(f, "message terminated: {why}"),
        }
    }
}

/// Pulls, handles and acks until `shutdown` completes. `on_event` runs before the ack: if the
/// process dies in between, the message is delivered again (and is then `Stale`).
pub async fn run(
    consumer: &PullConsumer,
    cases: &mut Cases,
    mut on_event: impl FnMut(&Handled),
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut messages = consumer.messages().await.map_err(|e| nats("pull")(e.into()))?;
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            next = messages.next() => match next {
                Some(m) => m.map_err(|e| nats("receive")(e.into()))?,
                None => return Ok(()),
            },
        };
        let handled = cases.handle(&message.payload);
        on_event(&handled);
        let acked = match handled {
            Handled::Undecodable(_) => message.ack_with(AckKind::Term).await,
            // Wait for the server to confirm, so a restart never sees this message again.
            _ => message.double_ack().await,
        };
        acked.map_err(nats("ack"))?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn settings_come_from_the_environment() {
        let firm = "0192f7a4-1c2b-7d3e-9f40-5a6b7c8d9e0f";
        let s =
            from(&[("ARFLOW_FIRM_ID", firm), ("ARFLOW_CONSUMER", "crm"), ("NATS_USER", "u"), ("NATS_PASSWORD", "p")])
                .unwrap();
        assert_eq!(s.filter_subject(), format!("escalation.*.{firm}"));
        assert_eq!(s.url, "nats://localhost:4222");
        assert!(matches!(s.auth, Auth::UserPassword { .. }));
        let creds = from(&[("ARFLOW_FIRM_ID", firm), ("ARFLOW_CONSUMER", "crm"), ("NATS_CREDS", "/a.creds")]).unwrap();
        assert!(matches!(creds.auth, Auth::CredentialsFile(_)));
        // Both kinds of credentials, a missing password, a bad firm id: refused.
        assert!(
            from(&[("ARFLOW_FIRM_ID", firm), ("ARFLOW_CONSUMER", "c"), ("NATS_CREDS", "x"), ("NATS_USER", "u")])
                .is_err()
        );
        assert!(from(&[("ARFLOW_FIRM_ID", firm), ("ARFLOW_CONSUMER", "c"), ("NATS_USER", "u")]).is_err());
        assert!(from(&[("ARFLOW_FIRM_ID", "acme"), ("ARFLOW_CONSUMER", "c")]).is_err());
    }

    #[test]
    fn keeps_the_highest_version_and_terminates_junk() {
        let mut cases = Cases::default();
        assert!(matches!(cases.handle(b"not json"), Handled::Undecodable(_)));
        let v2 = br#"{"id":"0192f7a4-1c2b-7d3e-9f40-5a6b7c8d9e0f","type":"escalation.opened","version":2,"source":"escalation","time":"2026-04-01T09:00:00Z","firm_id":"0192f7a4-1c2b-7d3e-9f40-5a6b7c8d9e0f","subject_id":"0192f7a4-1c2b-7d3e-9f40-5a6b7c8d9e0f","correlation_id":"0192f7a4-1c2b-7d3e-9f40-5a6b7c8d9e0f","causation_id":null,"data":{"anything":"new"}}"#;
        assert!(matches!(cases.handle(v2), Handled::OtherVersion { version: 2, .. }));
    }
}
