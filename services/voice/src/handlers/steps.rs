//! `outreach.step_due.voice.<firm>` and `outreach.step_due.sms.<firm>`: each step becomes one
//! `calls` or `texts` row (UNIQUE step_id: fence 3) with the whole StepDue, `queued`, in the
//! same transaction as the inbox id. The dialer picks it up after commit and runs the fences.
use crate::store::{self, Kind, NewItem};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::StepDue;
use arflow_core::{Channel, Clock};
use arflow_store::{handler_error, inbox};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// The durable consumer's name (also its inbox key).
pub const DURABLE: &str = "voice-steps";

pub struct StepsHandler {
    pub pool: PgPool,
    pub clock: Clock,
    /// Wakes the dialer after commit.
    pub dialer: Arc<Notify>,
}

/// Decodes one step: a call or a text, or why it can never be processed.
pub fn intake(m: &Incoming, now: chrono::DateTime<chrono::Utc>) -> Result<(Kind, NewItem), String> {
    let step: StepDue = m.envelope.data_as().map_err(|e| e.to_string())?;
    let kind = match step.channel {
        Channel::Voice => Kind::Call,
        Channel::Sms => Kind::Text,
        other => return Err(format!("step {} is for channel {other}, not voice or sms", step.step_id)),
    };
    let item = NewItem::of(step, m.envelope.firm_id, m.envelope.id, m.envelope.correlation_id, now);
    Ok((kind, item))
}

impl Handler for StepsHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(handler_error)?;
        let ids: Vec<uuid::Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let fresh = inbox::record_new(&mut tx, DURABLE, &ids).await.map_err(handler_error)?;
        let now = self.clock.now();
        let mut rejections = Vec::new();
        let mut queued = 0usize;
        for (index, m) in batch.iter().enumerate() {
            if !fresh.contains(&m.envelope.id) {
                continue; // seen before: a redelivery
            }
            let span = m.span();
            let (kind, item) = match intake(m, now) {
                Ok(x) => x,
                Err(reason) => {
                    span.in_scope(
                        || tracing::error!(%reason, subject = %m.subject, "undecodable step; dead-lettering"),
                    );
                    rejections.push(Rejection { index, reason });
                    continue;
                }
            };
            span.record("invoice_id", tracing::field::display(item.invoice_id));
            let inserted = store::insert(&mut tx, kind, &item).instrument(span.clone()).await.map_err(handler_error)?;
            span.in_scope(|| {
                if inserted {
                    tracing::info!(step_id = %item.step_id, kind = ?kind, "queued");
                } else {
                    tracing::info!(step_id = %item.step_id, kind = ?kind, "step already has its call or text; nothing to do");
                }
            });
            queued += usize::from(inserted);
        }
        tx.commit().await.map_err(handler_error)?;
        if queued > 0 {
            self.dialer.notify_one();
        }
        Ok(rejections)
    }
}
