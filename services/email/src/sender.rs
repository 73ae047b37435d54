//! The sender: takes pending emails, checks the fences right before SMTP, hands them to
//! SMTP concurrently, and records every result of a batch in one transaction with its event.
//!
//! Exactly one send per step: a row is marked `sending` (and committed) before its hand-off;
//! rows still `sending` at start-up crashed mid-hand-off and become `uncertain` for a person
//! to check, never resent blindly.
use crate::config::EmailSettings;
use crate::events;
use crate::mail::{Mailer, SendError};
use crate::store::{self, EmailRow, state};
use arflow_bus::{Bus, Refusal};
use arflow_core::{Channel, Clock, mask};
use arflow_runtime::{Metrics, Shutdown};
use arflow_store::{Outbox, OutboxMessage};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

pub const UNCERTAIN_REASON: &str = "uncertain: crashed during hand-off";

pub struct Sender {
    pub pool: PgPool,
    pub bus: Bus,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    pub mailer: Arc<Mailer>,
    pub settings: EmailSettings,
    /// Hand-offs in flight at once (the SMTP pool size).
    pub concurrency: usize,
    pub wake: Arc<Notify>,
}

/// What happened to one email.
#[derive(Debug)]
enum Outcome {
    Sent {
        message_id: String,
    },
    Suppressed {
        reason: &'static str,
        hold: serde_json::Value,
    },
    /// Never sendable (5xx, bad address, unbuildable).
    Permanent(String),
    /// Try again later (4xx, timeout, connection).
    Transient(String),
    /// The hold bucket could not be asked: nothing was sent, try again soon.
    FenceUnavailable(String),
}

impl Sender {
    pub async fn run(self, shutdown: Shutdown) -> Result<(), String> {
        // Resolve crashed hand-offs before anything new goes out.
        loop {
            match self.recover_uncertain().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot resolve emails left in sending; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        }
        let poll = Duration::from_millis(self.settings.poll_ms);
        let full = usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX);
        loop {
            // A pass always completes (in-flight hand-offs are recorded) before shutdown.
            let handled = match self.pass().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "email sender pass failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    0
                }
            };
            if shutdown.is_cancelled() {
                tracing::info!("email sender stopped");
                return Ok(());
            }
            if handled < full {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }

    async fn recover_uncertain(&self) -> Result<(), String> {
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let rows = store::mark_crashed_uncertain(&mut tx).await.map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            tracing::error!(step_id = %row.step_id, invoice_id = %row.invoice_id, "email was mid hand-off at a crash; marked uncertain for a person to check");
            messages.push(events::failed(row, UNCERTAIN_REASON, false, now).map_err(|e| e.to_string())?);
        }
        arflow_store::outbox::enqueue(&mut tx, &messages).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        self.outbox.notify();
        self.metrics.count("emails_uncertain", rows.len() as u64);
        Ok(())
    }

    /// One batch: claim, fence + send concurrently, record. Returns how many were handled.
    pub async fn pass(&self) -> Result<usize, String> {
        let rows = store::claim_pending(&self.pool, self.settings.batch_size).await.map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(0);
        }
        // The service's own copy of what can never be delivered (hard bounces), read per batch.
        let bounced = match store::bounced_recipients(&self.pool, &rows).await {
            Ok(b) => b,
            Err(e) => {
                // Nothing was handed over yet: put the batch back and try again shortly.
                store::release(&self.pool, &rows).await.map_err(|e| e.to_string())?;
                return Err(format!("bounced addresses could not be read: {e}"));
            }
        };
        let bounced = &bounced;
        let outcomes: Vec<(EmailRow, Outcome)> = futures::stream::iter(rows)
            .map(|row| async move {
                let span = tracing::info_span!("email", firm_id = %row.firm_id, invoice_id = %row.invoice_id, step_id = %row.step_id, correlation_id = %row.correlation_id);
                let outcome = match bounced.get(&row.id) {
                    Some(status) => {
                        span.in_scope(|| tracing::info!(%status, "recipient hard-bounced before; email suppressed"));
                        Outcome::Suppressed {
                            reason: "address_bounced",
                            hold: serde_json::json!({ "bounce_status": status }),
                        }
                    }
                    None => self.deliver(&row).instrument(span).await,
                };
                (row, outcome)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let n = outcomes.len();
        // The sends already happened: keep trying to record them rather than leave them `sending`.
        let mut tries = 0;
        loop {
            match self.record(&outcomes).await {
                Ok(()) => break,
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "cannot record email results yet; retrying");
                    tokio::time::sleep(Duration::from_millis(250 * tries)).await;
                }
                Err(e) => return Err(format!("email results could not be recorded (they stay in sending): {e}")),
            }
        }
        self.outbox.notify();
        Ok(n)
    }

    /// The fence right before SMTP, then the hand-off.
    async fn deliver(&self, row: &EmailRow) -> Outcome {
        let now = self.clock.now();
        let by = format!("email:{}", row.step_id);
        // The invoice, the contact on every channel, the contact's email (a hard bounce, an
        // email-only opt-out): each claimed by compare-and-swap, so a hold written first wins.
        match self.bus.holds().claim_send(row.invoice_id, row.contact_id, Channel::Email, &by, now).await {
            Ok(None) => {}
            Ok(Some(Refusal { key, reason, value, revision })) => {
                tracing::info!(%key, revision, reason, "hold in place; email suppressed");
                let hold = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
                return Outcome::Suppressed { reason, hold };
            }
            Err(e) => {
                tracing::warn!(error = %e, "hold bucket unavailable; not sending");
                return Outcome::FenceUnavailable(e.to_string());
            }
        }
        let (message, message_id) = match self.mailer.build(row, now) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "email cannot be built");
                return Outcome::Permanent(e.to_string());
            }
        };
        let to = mask::email(&row.to_address);
        match self.mailer.send(message).await {
            Ok(()) => {
                tracing::info!(%to, %message_id, template = %row.template, "email sent");
                Outcome::Sent { message_id }
            }
            Err(SendError::Permanent(reason)) => {
                tracing::error!(%to, %reason, "SMTP refused the email permanently");
                Outcome::Permanent(reason)
            }
            Err(SendError::Transient(reason)) => {
                tracing::warn!(%to, %reason, attempt = row.attempts + 1, "SMTP hand-off failed; will retry");
                Outcome::Transient(reason)
            }
        }
    }

    async fn record(&self, outcomes: &[(EmailRow, Outcome)]) -> Result<(), String> {
        let now: DateTime<Utc> = self.clock.now();
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let mut messages: Vec<OutboxMessage> = Vec::new();
        let (mut sent, mut failed, mut suppressed) = (0u64, 0u64, 0u64);
        for (row, outcome) in outcomes {
            let db = |e: sqlx::Error| e.to_string();
            let enc = |e: serde_json::Error| e.to_string();
            match outcome {
                Outcome::Sent { message_id } => {
                    store::mark_sent(&mut tx, row.id, message_id, now).await.map_err(db)?;
                    messages.push(events::sent(row, message_id, now).map_err(enc)?);
                    sent += 1;
                }
                Outcome::Suppressed { reason, hold } => {
                    store::mark_final(&mut tx, row.id, state::SUPPRESSED, reason, false).await.map_err(db)?;
                    messages.push(events::suppressed(row, reason, hold.clone(), now).map_err(enc)?);
                    suppressed += 1;
                }
                Outcome::Permanent(reason) => {
                    store::mark_final(&mut tx, row.id, state::FAILED, reason, true).await.map_err(db)?;
                    messages.push(events::failed(row, reason, true, now).map_err(enc)?);
                    failed += 1;
                }
                Outcome::Transient(reason) => {
                    let attempts = row.attempts + 1;
                    if attempts >= self.settings.max_attempts {
                        let why = format!("gave up after {attempts} attempts: {reason}");
                        store::mark_final(&mut tx, row.id, state::FAILED, &why, true).await.map_err(db)?;
                        messages.push(events::failed(row, &why, false, now).map_err(enc)?);
                        failed += 1;
                    } else {
                        let delay = self.settings.backoff(attempts);
                        store::reschedule(&mut tx, row.id, reason, true, delay).await.map_err(db)?;
                    }
                }
                Outcome::FenceUnavailable(reason) => {
                    let why = format!("hold bucket unavailable: {reason}");
                    store::reschedule(&mut tx, row.id, &why, false, Duration::from_millis(500)).await.map_err(db)?;
                }
            }
        }
        arflow_store::outbox::enqueue(&mut tx, &messages).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        self.metrics.count("emails_sent", sent);
        self.metrics.count("emails_failed", failed);
        self.metrics.count("emails_suppressed", suppressed);
        Ok(())
    }
}
