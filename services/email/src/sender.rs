//! The sender: takes pending emails under a lease, checks the fences right before SMTP, hands
//! them to SMTP concurrently, and records every result of a batch in one transaction with its
//! event.
//!
//! Exactly one send per step, even across crashes and replicas:
//! - A pass takes rows for this sender (`owner`, an id per process) with a lease that a heartbeat
//!   renews. Nobody else touches them while the lease lives: a rolling deploy or a scale-up never
//!   judges a live sender's rows.
//! - Each hand-off writes two cheap progress marks (asynchronous commit): `handoff_at` right
//!   before the message body, `accepted_at` when the server accepted it.
//! - When a lease expires (its sender died), any sender judges the rows: accepted -> sent;
//!   body sent without an answer -> `uncertain` (at most one per SMTP connection that was open);
//!   never handed over -> pending again, sent exactly once later. A person resends or drops an
//!   uncertain email (`POST /v1/emails/{id}/resend|drop`).
//! - A body sent without an answer while the sender lives is `uncertain` too: never retried.
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

pub use store::UNCERTAIN_REASON;

pub struct Sender {
    pub pool: PgPool,
    /// Asynchronous-commit pool for the progress marks (`arflow_store::connect_unsynced`).
    pub progress: PgPool,
    /// This process's id on the rows it takes.
    pub owner: String,
    pub bus: Bus,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    pub mailer: Arc<Mailer>,
    pub settings: EmailSettings,
    /// Hand-offs in flight at once (the SMTP pool size).
    pub concurrency: usize,
    pub wake: Arc<Notify>,
    /// Set when recording results had to wait for the database (see `run`).
    pub waited_for_database: std::sync::atomic::AtomicBool,
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
    /// Try again later (4xx, timeout, connection; the body never went out).
    Transient(String),
    /// The body went out and no answer came: a person decides.
    Unknown(String),
    /// The hold bucket could not be asked: nothing was sent, try again soon.
    FenceUnavailable(String),
}

impl Sender {
    pub async fn run(self, shutdown: Shutdown) -> Result<(), String> {
        let lease = Duration::from_secs(self.settings.lease_secs);
        let beat = lease / 3;
        let _heartbeat = arflow_runtime::AbortOnDrop::spawn(heartbeat(
            self.pool.clone(),
            self.owner.clone(),
            lease,
            shutdown.clone(),
        ));
        tracing::info!(owner = %self.owner, ?lease, "email sender started");
        let poll = Duration::from_millis(self.settings.poll_ms);
        let full = usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX);
        let mut judged_at: Option<tokio::time::Instant> = None;
        // Leases run out during a database outage because nobody can renew them. So this sender
        // judges others' rows only after it has reached the database for a whole lease itself
        // (at start-up too): a live sender gets the time to renew or record first.
        let mut reachable_since = tokio::time::Instant::now();
        loop {
            // The rows of senders that stopped, once their lease expired.
            if reachable_since.elapsed() >= lease && judged_at.is_none_or(|t| t.elapsed() >= beat) {
                match self.judge_expired().await {
                    Ok(()) => judged_at = Some(tokio::time::Instant::now()),
                    Err(e) => {
                        reachable_since = tokio::time::Instant::now();
                        tracing::warn!(error = %e, "cannot judge emails of a stopped sender yet; retrying")
                    }
                }
            }
            // A pass always completes (in-flight hand-offs are recorded) before shutdown.
            let handled = match self.pass().await {
                Ok(n) => n,
                Err(e) => {
                    reachable_since = tokio::time::Instant::now();
                    tracing::warn!(error = %e, "email sender pass failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    0
                }
            };
            if self.waited_for_database.swap(false, std::sync::atomic::Ordering::Relaxed) {
                reachable_since = tokio::time::Instant::now();
            }
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

    /// Settles the rows of senders whose lease expired, from their progress marks.
    async fn judge_expired(&self) -> Result<(), String> {
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let judged = store::judge_expired(&mut tx).await.map_err(|e| e.to_string())?;
        if judged.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut messages = Vec::new();
        let (mut sent, mut uncertain, mut requeued) = (0u64, 0u64, 0u64);
        for j in &judged {
            match j {
                store::Judged::Sent(row) => {
                    // The message id is deterministic per step (`mail::message_id`).
                    let message_id = row.message_id.clone().unwrap_or_default();
                    tracing::info!(step_id = %row.step_id, invoice_id = %row.invoice_id, "email of a stopped sender was accepted by SMTP; recorded as sent");
                    messages.push(events::sent(row, &message_id, now).map_err(|e| e.to_string())?);
                    sent += 1;
                }
                store::Judged::Uncertain(row) => {
                    tracing::error!(step_id = %row.step_id, invoice_id = %row.invoice_id, "email was mid hand-off when its sender stopped; marked uncertain for a person to resend or drop");
                    messages.push(events::failed(row, UNCERTAIN_REASON, false, now).map_err(|e| e.to_string())?);
                    uncertain += 1;
                }
                store::Judged::Requeued(_) => requeued += 1,
            }
        }
        arflow_store::outbox::enqueue(&mut tx, &messages).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        tracing::warn!(sent, uncertain, requeued, "judged the emails of a sender that stopped");
        self.outbox.notify();
        self.metrics.count("emails_uncertain", uncertain);
        self.metrics.count("emails_requeued_after_crash", requeued);
        if requeued > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// One batch: claim, fence + send concurrently, record. Returns how many were handled.
    pub async fn pass(&self) -> Result<usize, String> {
        let lease = Duration::from_secs(self.settings.lease_secs);
        let rows = store::claim_pending(&self.pool, &self.owner, lease, self.settings.batch_size)
            .await
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(0);
        }
        // The service's own copy of what can never be delivered (hard bounces), read per batch.
        let bounced = match store::bounced_recipients(&self.pool, &rows).await {
            Ok(b) => b,
            Err(e) => {
                // Nothing was handed over yet: put the batch back and try again shortly.
                store::release(&self.pool, &self.owner, &rows).await.map_err(|e| e.to_string())?;
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
        // The sends already happened: keep trying to record them for as long as the database is
        // down (a PostgreSQL outage of minutes), rather than leave them to be judged. If this
        // process dies meanwhile, the progress marks tell the judge what happened.
        let mut tries: u64 = 0;
        loop {
            match self.record(&outcomes).await {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    self.waited_for_database.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, tries, "cannot record email results yet; retrying");
                    tokio::time::sleep(Duration::from_millis((250 * tries).min(5_000))).await;
                }
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
        let started = std::time::Instant::now();
        let mark = || async {
            store::mark_handoff(&self.progress, row.id, &self.owner, &message_id)
                .await
                .map_err(|e| format!("progress mark: {e}"))
        };
        let result = self.mailer.send(message, mark).await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(SendError::Permanent(_)) => "permanent",
            Err(SendError::Transient(_)) => "transient",
            Err(SendError::Unknown(_)) => "unknown",
        };
        self.metrics.dependency("smtp", outcome, started.elapsed());
        if result.is_ok()
            && let Err(e) = store::mark_accepted(&self.progress, row.id, &self.owner).await
        {
            // Only the crash judgement reads this mark; the result itself is recorded below.
            tracing::warn!(error = %e, "accepted mark not written");
        }
        match result {
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
            Err(SendError::Unknown(reason)) => {
                tracing::error!(%to, %reason, "SMTP connection lost after the message body; not retried, marked uncertain");
                Outcome::Unknown(reason)
            }
        }
    }

    async fn record(&self, outcomes: &[(EmailRow, Outcome)]) -> Result<(), String> {
        let now: DateTime<Utc> = self.clock.now();
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let ids: Vec<uuid::Uuid> = outcomes.iter().map(|(row, _)| row.id).collect();
        // A row judged by another sender after our lease expired (a long outage) is not ours to
        // record any more: its judgement stands.
        let ours = store::still_ours(&mut tx, &self.owner, &ids).await.map_err(|e| e.to_string())?;
        let mut messages: Vec<OutboxMessage> = Vec::new();
        let (mut sent, mut failed, mut suppressed, mut uncertain) = (0u64, 0u64, 0u64, 0u64);
        for (row, outcome) in outcomes.iter().filter(|(row, _)| ours.contains(&row.id)) {
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
                Outcome::Unknown(reason) => {
                    let why = format!("{UNCERTAIN_REASON} ({reason})");
                    store::mark_final(&mut tx, row.id, state::UNCERTAIN, &why, true).await.map_err(db)?;
                    messages.push(events::failed(row, &why, false, now).map_err(enc)?);
                    uncertain += 1;
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
        self.metrics.count("emails_uncertain", uncertain);
        Ok(())
    }
}

/// Renews this sender's lease on the rows it is sending, every third of the lease.
async fn heartbeat(pool: PgPool, owner: String, lease: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(lease / 3) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = store::heartbeat(&pool, &owner, lease).await {
            tracing::warn!(error = %e, "lease heartbeat failed; retrying");
        }
    }
}
