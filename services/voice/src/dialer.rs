//! The dialer: takes queued calls and texts whose time has come (the business clock), runs the
//! fences right before the provider, in this order:
//! a. consent: the contact consented to the channel and has a valid E.164 number;
//! b. fence 4: `arflow_core::calls::may_call` in the contact's zone (outside the window the row
//!    waits for the next opening; an unknown zone or the 7-in-7 cap skips it), the attempts
//!    counted under a per-invoice advisory lock so two replicas cannot both place the 8th;
//! c. the holds: invoice, contact, contact's channel, claimed by compare-and-swap;
//! d. `dialing`/`sending` committed before the provider is asked, under this dialer's lease (its
//!    heartbeat renews it), so a crash never redials: rows found there without a provider id
//!    once the lease expired become failed "uncertain"; a live dialer's rows are never judged.
use crate::clients::{CallRequest, MessageRequest, ProviderError, Telephony};
use crate::config::VoiceSettings;
use crate::events;
use crate::phone;
use crate::sms;
use crate::store::{self, CallRow, Ending, FenceNote, Kind, TextRow};
use arflow_bus::{Bus, Refusal};
use arflow_contracts::events::StepDue;
use arflow_core::calls::{self, CallRefusal};
use arflow_core::{Channel, Clock, mask};
use arflow_runtime::{Metrics, Shutdown, TelephonySettings};
use arflow_store::{Outbox, OutboxMessage};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

pub const UNCERTAIN_REASON: &str =
    "uncertain: the service stopped between committing the attempt and the provider's answer";

/// How often rows left mid hand-off are looked for.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

pub struct Dialer {
    pub pool: PgPool,
    pub bus: Bus,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    pub provider: Arc<dyn Telephony>,
    pub telephony: TelephonySettings,
    pub settings: VoiceSettings,
    pub wake: Arc<Notify>,
    /// This process's id and lease length (`voice.uncertain_after_secs`) on the rows it marks.
    pub lease: store::Lease,
    /// The rows this dialer is handing to the provider or recording right now: the only ones
    /// its heartbeat renews.
    pub in_flight: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
}

/// Keeps a row in the dialer's in-flight set while it lives.
struct InFlight(Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>, Uuid);

impl InFlight {
    fn new(set: &Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>, id: Uuid) -> Self {
        if let Ok(mut s) = set.lock() {
            s.insert(id);
        }
        InFlight(set.clone(), id)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(&self.1);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("hold bucket unavailable: {0}")]
    Holds(String),
    #[error("a call's status could not be settled: {0}")]
    Settle(String),
}

/// What the fences decided for one row.
enum Verdict {
    Go { to: String },
    Skip { reason: &'static str, detail: String, fence: &'static str },
    Wait { until: DateTime<Utc>, detail: String },
}

impl Dialer {
    pub async fn run(self, shutdown: Shutdown) -> Result<(), String> {
        let mut changes = self.clock.changes();
        let poll = Duration::from_millis(self.settings.poll_ms);
        let _heartbeat = arflow_runtime::AbortOnDrop::spawn(renew(
            self.pool.clone(),
            self.lease.clone(),
            self.in_flight.clone(),
            shutdown.clone(),
        ));
        tracing::info!(poll_ms = self.settings.poll_ms, simulated = self.clock.is_simulated(), "dialer started");
        // Rows are uncertain only after `uncertain_after_secs`: looking once a second is enough,
        // not on every poll and wake-up.
        let mut recovered_at: Option<tokio::time::Instant> = None;
        loop {
            if recovered_at.is_none_or(|t| t.elapsed() >= RECOVERY_INTERVAL) {
                match self.recover_uncertain().await {
                    Ok(()) => recovered_at = Some(tokio::time::Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "cannot resolve calls or texts left mid hand-off; retrying"),
                }
                if let Err(e) = self.reconcile_calls().await {
                    tracing::warn!(error = %e, "cannot ask the provider about calls whose callbacks stopped; retrying");
                }
            }
            let handled = match self.pass().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "dialer pass failed; retrying");
                    0
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            if handled < usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX) {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = clock_moved(&mut changes) => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        }
        tracing::info!("dialer stopped");
        Ok(())
    }

    /// Calls the provider took whose final status callback never came (it was posted while the
    /// gateway was down, and providers do not retry status callbacks): after
    /// `voice.reconcile_after_secs` of silence the provider is asked, and a final status ends the
    /// call exactly as its callback would have.
    pub async fn reconcile_calls(&self) -> Result<(), DialError> {
        let quiet = self.settings.reconcile_after_secs as f64;
        let rows = {
            let mut conn = self.pool.acquire().await?;
            store::calls_to_reconcile(&mut conn, quiet, 20).await?
        };
        for row in rows {
            let Some(sid) = row.provider_sid.clone() else { continue };
            let fetched = match self.provider.fetch_call(&sid).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(call_id = %row.id, error = %e, "the provider could not tell the call's status; asking later");
                    let mut conn = self.pool.acquire().await?;
                    store::touch_call(&mut conn, row.id).await?;
                    continue;
                }
            };
            let now = self.clock.now();
            let mut tx = self.pool.begin().await?;
            let Some(locked) = store::call_for_update(&mut tx, row.id).await? else { continue };
            if locked.state == "ended" {
                continue;
            }
            let ended = crate::routes::callbacks::settle_status(
                &mut tx,
                &locked,
                &fetched.status,
                fetched.answered_by.as_deref(),
                fetched.duration_secs,
                None,
                now,
            )
            .await
            .map_err(|e| DialError::Settle(e.to_string()))?;
            tx.commit().await?;
            if ended {
                tracing::warn!(call_id = %row.id, invoice_id = %row.invoice_id, status = %fetched.status, "the call's final callback never came; its status was asked from the provider");
                self.metrics.count("calls_reconciled", 1);
                self.outbox.notify();
            }
        }
        Ok(())
    }

    /// Rows left `dialing`/`sending` without a provider id: failed "uncertain", never retried.
    pub async fn recover_uncertain(&self) -> Result<(), DialError> {
        let older = i64::try_from(self.settings.uncertain_after_secs).unwrap_or(i64::MAX);
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let mut messages = Vec::new();
        for row in store::stuck_dialing(&mut tx, older).await? {
            tracing::error!(call_id = %row.id, invoice_id = %row.invoice_id, firm_id = %row.firm_id, "call was being placed at a crash; marked failed (uncertain), not redialled");
            let ending = Ending {
                outcome: "failed",
                provider_status: Some("unknown"),
                answered_by: None,
                duration_secs: None,
                detail: UNCERTAIN_REASON,
                at: now,
            };
            if let Some(ended) = store::end_call(&mut tx, row.id, &ending).await? {
                messages.push(events::call_ended(&ended, &[], now)?);
            }
        }
        for row in store::stuck_sending(&mut tx, older).await? {
            tracing::error!(text_id = %row.id, invoice_id = %row.invoice_id, firm_id = %row.firm_id, "text was being sent at a crash; marked failed (uncertain), not resent");
            if let Some(failed) = store::mark_text_failed(&mut tx, row.id, UNCERTAIN_REASON, None, None).await? {
                messages.push(events::sms_failed(&failed, UNCERTAIN_REASON, false, now)?);
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        arflow_store::outbox::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        self.metrics.count("voice_uncertain", messages.len() as u64);
        self.outbox.notify();
        Ok(())
    }

    /// One pass over due calls and texts; returns how many rows it looked at.
    pub async fn pass(&self) -> Result<usize, DialError> {
        let now = self.clock.now();
        let calls = store::due_ids(&self.pool, Kind::Call, now, self.settings.batch_size).await?;
        let texts = store::due_ids(&self.pool, Kind::Text, now, self.settings.batch_size).await?;
        let n = calls.len().max(texts.len());
        for id in calls {
            if let Err(e) = self.place_call(id).await {
                tracing::warn!(call_id = %id, error = %e, "call not placed this pass; it stays queued");
            }
        }
        for id in texts {
            if let Err(e) = self.send_text(id).await {
                tracing::warn!(text_id = %id, error = %e, "text not sent this pass; it stays queued");
            }
        }
        Ok(n)
    }

    fn callback(&self, path: &str) -> String {
        crate::routes::callback_url(&self.telephony.callback_base_url, path)
    }

    /// Fences a and b for a step on `channel`; `attempts` only for calls.
    fn consent_and_window(
        &self,
        step: &StepDue,
        channel: Channel,
        now: DateTime<Utc>,
        attempts: &[DateTime<Utc>],
    ) -> Verdict {
        let what = if channel == Channel::Voice { "calls" } else { "texts" };
        if !step.contact.channels.contains(&channel) {
            return Verdict::Skip {
                reason: "no_consent",
                detail: format!("the contact has not consented to {what} (or opted out of them)"),
                fence: "consent",
            };
        }
        let Some(to) = step.contact.phone.as_deref().and_then(phone::e164) else {
            let detail = match step.contact.phone.as_deref() {
                Some(p) if !p.trim().is_empty() => {
                    format!("the contact's phone {} is not a valid number", mask::phone(p))
                }
                _ => "the contact has no phone number".to_string(),
            };
            return Verdict::Skip { reason: "no_phone", detail, fence: "consent" };
        };
        match calls::may_call(now, step.contact.call_timezone.as_deref(), step.firm.call_window.as_ref(), attempts) {
            Ok(_) => Verdict::Go { to },
            Err(e @ CallRefusal::TimezoneUnknown(_)) => {
                Verdict::Skip { reason: "timezone_unknown", detail: e.to_string(), fence: "window" }
            }
            Err(e @ CallRefusal::AttemptCap { .. }) => {
                Verdict::Skip { reason: "attempt_cap", detail: e.to_string(), fence: "attempt_cap" }
            }
            Err(ref e @ CallRefusal::OutsideWindow { opens, .. }) => {
                Verdict::Wait { until: opens, detail: e.to_string() }
            }
        }
    }

    /// Fence c: the holds, claimed for this call or text (`arflow_bus::Holds::claim_send`).
    async fn claim_holds(
        &self,
        contact_id: Uuid,
        invoice_id: Uuid,
        channel: Channel,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(&'static str, String)>, DialError> {
        let refusal = self
            .bus
            .holds()
            .claim_send(invoice_id, contact_id, channel, by, now)
            .await
            .map_err(|e| DialError::Holds(e.to_string()))?;
        Ok(refusal.map(|Refusal { key, reason, value, revision }| {
            tracing::info!(%key, revision, reason, "hold in place; not contacting");
            let hold = serde_json::to_string(&value).unwrap_or_default();
            (reason, format!("hold {key} in place: {hold}"))
        }))
    }

    /// A call or text a fence refused (`note`): its verdict, its state and its `*.skipped`
    /// event, committed together.
    async fn skip(
        &self,
        mut tx: Transaction<'_, Postgres>,
        kind: Kind,
        id: Uuid,
        event: OutboxMessage,
        note: FenceNote<'_>,
    ) -> Result<(), DialError> {
        store::skip(&mut tx, kind, id, note.result, &note).await?;
        arflow_store::outbox::enqueue(&mut tx, &[event]).await?;
        tx.commit().await?;
        tracing::info!(what = kind.table(), reason = note.result, detail = %note.detail, "skipped");
        self.metrics.count(&format!("{}_skipped", kind.table()), 1);
        self.outbox.notify();
        Ok(())
    }

    /// Outside the window: the call or text waits for the opening; nothing is published.
    async fn defer(
        &self,
        mut tx: Transaction<'_, Postgres>,
        kind: Kind,
        id: Uuid,
        until: DateTime<Utc>,
        detail: String,
        now: DateTime<Utc>,
    ) -> Result<(), DialError> {
        let note = FenceNote { at: now, fence: "window", result: "waiting", detail: detail.clone() };
        store::defer(&mut tx, kind, id, until, &note).await?;
        tx.commit().await?;
        tracing::info!(what = kind.table(), %until, %detail, "outside the window; waiting for the next opening");
        Ok(())
    }

    async fn skip_call(
        &self,
        tx: Transaction<'_, Postgres>,
        row: &CallRow,
        reason: &str,
        detail: &str,
        fence: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DialError> {
        let event = events::call_skipped(row, reason, detail, now)?;
        let note = FenceNote { at: now, fence, result: reason, detail: detail.to_string() };
        self.skip(tx, Kind::Call, row.id, event, note).await
    }

    async fn place_call(&self, id: Uuid) -> Result<(), DialError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let Some(row) = store::lock_queued_call(&mut tx, id, now).await? else { return Ok(()) };
        let span = tracing::info_span!("call", call_id = %row.id, firm_id = %row.firm_id, invoice_id = %row.invoice_id, step_id = %row.step_id, correlation_id = %row.correlation_id);
        self.place_locked(tx, row, now).instrument(span).await
    }

    async fn place_locked(
        &self,
        mut tx: Transaction<'_, Postgres>,
        row: CallRow,
        now: DateTime<Utc>,
    ) -> Result<(), DialError> {
        let step = &row.step_due.0;
        // Fence 4's attempt count is serialised per invoice until this transaction ends.
        store::lock_invoice(&mut tx, row.firm_id, row.invoice_id).await?;
        let attempts = store::placed_since(&mut tx, row.firm_id, row.invoice_id, now - calls::CAP_PERIOD).await?;
        let to = match self.consent_and_window(step, Channel::Voice, now, &attempts) {
            Verdict::Go { to } => to,
            Verdict::Skip { reason, detail, fence } => {
                return self.skip_call(tx, &row, reason, &detail, fence, now).await;
            }
            Verdict::Wait { until, detail } => return self.defer(tx, Kind::Call, row.id, until, detail, now).await,
        };
        let by = format!("voice:{}", row.id);
        if let Some((reason, detail)) =
            self.claim_holds(row.contact_id, row.invoice_id, Channel::Voice, &by, now).await?
        {
            return self.skip_call(tx, &row, reason, &detail, "holds", now).await;
        }
        let _in_flight = InFlight::new(&self.in_flight, row.id);
        store::mark_dialing(&mut tx, row.id, &to, now, &self.lease).await?;
        tx.commit().await?;

        let request = CallRequest {
            to: to.clone(),
            from: self.telephony.from_number.clone(),
            answer_url: self.callback(&format!("voice/{}/answer", row.id)),
            status_url: self.callback(&format!("voice/{}/status", row.id)),
            recording_url: self.settings.recording.then(|| self.callback(&format!("voice/{}/recording", row.id))),
            ring_timeout_secs: self.telephony.ring_timeout_secs,
        };
        let started = std::time::Instant::now();
        let result = self.provider.create_call(request).await;
        self.metrics.dependency("telephony", provider_outcome(&result), started.elapsed());
        keep_recording(|| self.record_placed(&row, &result)).await?;
        match &result {
            Ok(c) => {
                tracing::info!(to = %mask::phone(&to), sid = %c.sid, "call placed");
                self.metrics.count("calls_placed", 1);
            }
            Err(e) => {
                tracing::error!(to = %mask::phone(&to), error = %e, "the provider did not take the call");
                self.metrics.count("calls_failed", 1);
            }
        }
        Ok(())
    }

    async fn record_placed(
        &self,
        row: &CallRow,
        result: &Result<crate::clients::ProviderCall, ProviderError>,
    ) -> Result<(), DialError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        match result {
            Ok(c) => store::mark_placed(&mut tx, row.id, &c.sid, &c.status).await?,
            // The request may have reached the provider (a timeout, a reset): the call may be
            // ringing. It stays `dialing`; its first callback adopts it, and without one it is
            // failed "uncertain" after `voice.uncertain_after_secs` (retried by the scheduler).
            // Ending it now would retry a call that is taking place.
            Err(e) if !e.is_permanent() => {
                tracing::warn!(error = %e, "no answer from the provider; waiting for its callbacks before deciding");
                return Ok(());
            }
            Err(e) => {
                let detail = if e.is_permanent() {
                    format!("the provider refused the call (permanent): {e}")
                } else {
                    format!("the provider could not be reached: {e}")
                };
                let ending = Ending {
                    outcome: "failed",
                    provider_status: Some("failed"),
                    answered_by: None,
                    duration_secs: None,
                    detail: &detail,
                    at: now,
                };
                if let Some(ended) = store::end_call(&mut tx, row.id, &ending).await? {
                    arflow_store::outbox::enqueue(&mut tx, &[events::call_ended(&ended, &[], now)?]).await?;
                }
            }
        }
        tx.commit().await?;
        self.outbox.notify();
        Ok(())
    }

    // ---------- texts ----------

    async fn skip_text(
        &self,
        tx: Transaction<'_, Postgres>,
        row: &TextRow,
        reason: &str,
        detail: &str,
        fence: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DialError> {
        let event = events::text_skipped(row, reason, detail, now)?;
        let note = FenceNote { at: now, fence, result: reason, detail: detail.to_string() };
        self.skip(tx, Kind::Text, row.id, event, note).await
    }

    async fn send_text(&self, id: Uuid) -> Result<(), DialError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let Some(row) = store::lock_queued_text(&mut tx, id, now).await? else { return Ok(()) };
        let span = tracing::info_span!("text", text_id = %row.id, firm_id = %row.firm_id, invoice_id = %row.invoice_id, step_id = %row.step_id, correlation_id = %row.correlation_id);
        self.send_locked(tx, row, now).instrument(span).await
    }

    async fn send_locked(
        &self,
        mut tx: Transaction<'_, Postgres>,
        row: TextRow,
        now: DateTime<Utc>,
    ) -> Result<(), DialError> {
        let step = &row.step_due.0;
        // Texts keep the window and the zone rule; the attempt cap is for calls.
        let to = match self.consent_and_window(step, Channel::Sms, now, &[]) {
            Verdict::Go { to } => to,
            Verdict::Skip { reason, detail, fence } => {
                return self.skip_text(tx, &row, reason, &detail, fence, now).await;
            }
            Verdict::Wait { until, detail } => return self.defer(tx, Kind::Text, row.id, until, detail, now).await,
        };
        let by = format!("sms:{}", row.id);
        if let Some((reason, detail)) = self.claim_holds(row.contact_id, row.invoice_id, Channel::Sms, &by, now).await?
        {
            return self.skip_text(tx, &row, reason, &detail, "holds", now).await;
        }
        let body = match sms::render(step) {
            Ok(b) => b,
            Err(e) => {
                let reason = e.to_string();
                store::mark_sending(&mut tx, row.id, &to, "", &self.lease).await?;
                if let Some(failed) = store::mark_text_failed(&mut tx, row.id, &reason, None, None).await? {
                    arflow_store::outbox::enqueue(&mut tx, &[events::sms_failed(&failed, &reason, true, now)?]).await?;
                }
                tx.commit().await?;
                self.outbox.notify();
                return Ok(());
            }
        };
        let _in_flight = InFlight::new(&self.in_flight, row.id);
        store::mark_sending(&mut tx, row.id, &to, &body, &self.lease).await?;
        tx.commit().await?;

        let request = MessageRequest {
            to: to.clone(),
            from: self.telephony.from_number.clone(),
            body,
            status_url: self.callback(&format!("sms/{}/status", row.id)),
        };
        let started = std::time::Instant::now();
        let result = self.provider.send_message(request).await;
        self.metrics.dependency("telephony", provider_outcome(&result), started.elapsed());
        keep_recording(|| self.record_sent(&row, &result)).await?;
        match &result {
            Ok(m) => {
                tracing::info!(to = %mask::phone(&to), sid = %m.sid, "text sent");
                self.metrics.count("texts_sent", 1);
            }
            Err(e) => {
                tracing::error!(to = %mask::phone(&to), error = %e, "the provider did not take the text");
                self.metrics.count("texts_failed", 1);
            }
        }
        Ok(())
    }

    async fn record_sent(
        &self,
        row: &TextRow,
        result: &Result<crate::clients::ProviderMessage, ProviderError>,
    ) -> Result<(), DialError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let message: Option<OutboxMessage> = match result {
            Ok(m) => match store::mark_text_sent(&mut tx, row.id, &m.sid, &m.status, now).await? {
                Some(sent) => Some(events::sms_sent(&sent, now)?),
                None => None,
            },
            Err(e) => {
                let reason = e.to_string();
                match store::mark_text_failed(&mut tx, row.id, &reason, Some("failed"), None).await? {
                    Some(failed) => Some(events::sms_failed(&failed, &reason, e.is_permanent(), now)?),
                    None => None,
                }
            }
        };
        if let Some(m) = message {
            arflow_store::outbox::enqueue(&mut tx, &[m]).await?;
        }
        tx.commit().await?;
        self.outbox.notify();
        Ok(())
    }
}

async fn clock_moved(changes: &mut Option<tokio::sync::watch::Receiver<DateTime<Utc>>>) {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// The provider has already acted: keep trying to record its answer (with a growing pause)
/// rather than leave the row in flight, where it would later count as uncertain.
async fn keep_recording<F, Fut>(mut record: F) -> Result<(), DialError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), DialError>>,
{
    let mut tries = 0u64;
    loop {
        match record().await {
            Ok(()) => return Ok(()),
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::warn!(error = %e, tries, "cannot record the provider's answer yet; retrying");
                tokio::time::sleep(Duration::from_millis(250 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `ok`, `permanent` or `transient`, for `arflow_dependency_seconds{dependency="telephony"}`.
fn provider_outcome<T>(result: &Result<T, ProviderError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) if e.is_permanent() => "permanent",
        Err(_) => "transient",
    }
}

/// Renews this dialer's lease on its in-flight rows every third of it.
async fn renew(
    pool: PgPool,
    lease: store::Lease,
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    shutdown: Shutdown,
) {
    let every = Duration::from_secs_f64((lease.secs / 3.0).max(0.1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        let ids: Vec<Uuid> = in_flight.lock().map(|s| s.iter().copied().collect()).unwrap_or_default();
        if ids.is_empty() {
            continue;
        }
        if let Err(e) = store::renew_leases(&pool, &lease, &ids).await {
            tracing::warn!(error = %e, "lease renewal failed; retrying");
        }
    }
}
