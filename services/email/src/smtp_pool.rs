//! Pooled SMTP connections, each SMTP phase under a timeout, and a hand-off that knows how far
//! it got.
//!
//! We drive lettre's `AsyncSmtpConnection` ourselves (lettre keeps EHLO, STARTTLS, AUTH, the
//! codec and the replies) for three reasons:
//! - TCP_NODELAY on plain and STARTTLS connections: lettre's pooled transport leaves Nagle on,
//!   and its DATA phase writes the body and the final dot separately before reading the reply,
//!   which stalls ~40 ms per message against the server's delayed ACK (`just bench` measured
//!   167 emails/s over 8 connections).
//! - Every phase has a timeout: connect, greeting and EHLO, STARTTLS, AUTH, each command, the body.
//! - The hand-off tells "never handed over" (safe to try again) from "the body went out and no
//!   answer came" (the server may have it: never retried blindly). The caller's `before_body`
//!   records the progress mark between the two, so a crash leaves at most the message whose body
//!   was on the wire per open connection uncertain.
use crate::config::{SmtpSettings, TlsMode};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use secrecy::ExposeSecret;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot connect to SMTP server {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("SMTP {phase} timed out after {after:?}")]
    Timeout { phase: &'static str, after: Duration },
    #[error("SMTP {phase}: {source}")]
    Smtp {
        phase: &'static str,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("the hand-off was stopped before the message body: {0}")]
    Stopped(String),
}

impl PoolError {
    /// A 5xx answer (or a request the server can never accept): retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, PoolError::Smtp { source, .. } if source.is_permanent() || source.is_client())
    }

    /// The server answered (a 4xx or 5xx code): the connection itself is sound.
    fn is_answer(&self) -> bool {
        matches!(self, PoolError::Smtp { source, .. } if source.is_permanent() || source.is_transient())
    }
}

/// How a hand-off failed.
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// The server does not have the message: it refused it, or the connection failed before
    /// the body was sent. Safe to try again.
    #[error("{0}")]
    NotSent(PoolError),
    /// The connection failed while the body was being written or its answer awaited: the
    /// server may have accepted it. Never retried automatically.
    #[error("outcome unknown: {0}")]
    Unknown(PoolError),
}

enum Security {
    Plain,
    Starttls(TlsParameters),
    Implicit(TlsParameters),
}

pub struct SmtpPool {
    host: String,
    port: u16,
    timeout: Duration,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    max_idle: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

/// Runs one SMTP phase under the timeout.
async fn phase<T>(
    name: &'static str,
    after: Duration,
    f: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, PoolError> {
    tokio::time::timeout(after, f)
        .await
        .map_err(|_| PoolError::Timeout { phase: name, after })?
        .map_err(|source| PoolError::Smtp { phase: name, source })
}

impl SmtpPool {
    pub fn new(smtp: &SmtpSettings) -> Result<Self, lettre::transport::smtp::Error> {
        let security = match smtp.tls {
            TlsMode::Tls => Security::Implicit(TlsParameters::new(smtp.host.clone())?),
            TlsMode::Starttls => Security::Starttls(TlsParameters::new(smtp.host.clone())?),
            TlsMode::None => Security::Plain,
        };
        let credentials = match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.expose_secret().to_string())),
            _ => None,
        };
        Ok(SmtpPool {
            host: smtp.host.clone(),
            port: smtp.port,
            timeout: Duration::from_secs(smtp.timeout_secs),
            security,
            credentials,
            hello: ClientId::default(),
            max_idle: usize::try_from(smtp.pool_size).unwrap_or(8),
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, PoolError> {
        let addr = format!("{}:{}", self.host, self.port);
        let t = self.timeout;
        let mut conn = match &self.security {
            Security::Implicit(tls) => {
                let server = (self.host.as_str(), self.port);
                phase(
                    "connect",
                    t,
                    AsyncSmtpConnection::connect_tokio1(server, Some(t), &self.hello, Some(tls.clone()), None),
                )
                .await?
            }
            Security::Plain | Security::Starttls(_) => {
                let err = |reason: String| PoolError::Connect { addr: addr.clone(), reason };
                let stream = tokio::time::timeout(t, TcpStream::connect(&addr))
                    .await
                    .map_err(|_| PoolError::Timeout { phase: "connect", after: t })?
                    .map_err(|e| err(e.to_string()))?;
                stream.set_nodelay(true).map_err(|e| err(e.to_string()))?;
                phase("greeting", t, AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)).await?
            }
        };
        if let Security::Starttls(tls) = &self.security {
            phase("STARTTLS", t, conn.starttls(tls.clone(), &self.hello)).await?;
        }
        if let Some(credentials) = &self.credentials {
            phase("AUTH", t, conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)).await?;
        }
        Ok(conn)
    }

    /// MAIL FROM, RCPT TO for each recipient, DATA: after this the server waits for the body.
    async fn open_transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), PoolError> {
        let t = self.timeout;
        let mut options = Vec::new();
        let non_ascii = |a: &lettre::Address| !a.to_string().is_ascii();
        if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
            options.push(MailParameter::SmtpUtfEight);
        }
        if !raw.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        phase("MAIL FROM", t, conn.command(Mail::new(envelope.from().cloned(), options))).await?;
        for to in envelope.to() {
            phase("RCPT TO", t, conn.command(Rcpt::new(to.clone(), vec![]))).await?;
        }
        phase("DATA", t, conn.command(Data)).await?;
        Ok(())
    }

    /// Sends one message on an idle connection (or a new one). A pooled connection the server
    /// closed meanwhile fails before the body, and only then is the message tried once more on
    /// a fresh connection. `before_body` runs when the server waits for the body; if it fails
    /// the connection is dropped without the final dot, so the server discards the message.
    pub async fn send<F, Fut>(&self, envelope: &Envelope, raw: &[u8], before_body: F) -> Result<(), SendFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let reused = self.idle.lock().await.pop();
        let mut conn = match reused {
            Some(mut conn) => match self.open_transaction(&mut conn, envelope, raw).await {
                Ok(()) => conn,
                Err(e) if e.is_answer() => {
                    conn.abort().await;
                    return Err(SendFailure::NotSent(e));
                }
                Err(e) => {
                    conn.abort().await;
                    tracing::debug!(error = %e, "pooled SMTP connection failed before the body; trying a new one");
                    self.fresh_transaction(envelope, raw).await.map_err(SendFailure::NotSent)?
                }
            },
            None => self.fresh_transaction(envelope, raw).await.map_err(SendFailure::NotSent)?,
        };
        if let Err(reason) = before_body().await {
            conn.abort().await;
            return Err(SendFailure::NotSent(PoolError::Stopped(reason)));
        }
        match phase("message body", self.timeout, conn.message(raw)).await {
            Ok(_) => {
                self.release(conn).await;
                Ok(())
            }
            // The server answered the body with a refusal: it does not have the message.
            Err(e) if e.is_answer() => {
                conn.abort().await;
                Err(SendFailure::NotSent(e))
            }
            Err(e) => {
                conn.abort().await;
                Err(SendFailure::Unknown(e))
            }
        }
    }

    async fn fresh_transaction(&self, envelope: &Envelope, raw: &[u8]) -> Result<AsyncSmtpConnection, PoolError> {
        let mut conn = self.connect().await?;
        if let Err(e) = self.open_transaction(&mut conn, envelope, raw).await {
            conn.abort().await;
            return Err(e);
        }
        Ok(conn)
    }

    async fn release(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().await;
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}
