//! `command.stripe.mark_uncollectible.<firm>` from the escalation service: only the gateway holds
//! the firm's Stripe key, so it calls Stripe's mark-uncollectible and ingests the invoice Stripe
//! returns like a webhook (hold first, then `billing.invoice_uncollectible`). When Stripe refuses
//! (4xx), or the firm gave no key, it publishes `billing.stripe_command_failed.<firm>` so the case
//! gets a note and stays open. A redelivery is harmless: the synthetic event id is stored once,
//! and Stripe refuses to mark an invoice that is no longer open.
use crate::routes::webhooks::ingest_event;
use crate::startup::AppState;
use crate::store;
use crate::stripe_api::{StripeApi, StripeApiError};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{MarkUncollectible, StripeCommandFailed};
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_store::OutboxMessage;
use serde_json::json;
use tracing::Instrument;

/// The durable consumer's name.
pub const CONSUMER: &str = "gateway-stripe-commands";

pub struct StripeCommandHandler {
    pub state: AppState,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("Stripe unavailable: {0}")]
    Unavailable(String),
    #[error("applying Stripe's answer: {0}")]
    Apply(String),
}

/// What happened to one command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stripe marked it; the invoice was ingested (and halted).
    Marked,
    /// Stripe (or the missing key) refused: `billing.stripe_command_failed` was published.
    Refused,
}

async fn refuse(
    state: &AppState,
    cause: &RawEnvelope,
    c: &MarkUncollectible,
    status: Option<u16>,
    message: String,
) -> Result<Outcome, CommandError> {
    let kind = subjects::billing::STRIPE_COMMAND_FAILED;
    let data = StripeCommandFailed {
        command: "mark_uncollectible".into(),
        request_id: c.request_id,
        case_id: Some(c.case_id),
        invoice_id: c.invoice_id,
        stripe_invoice_id: c.stripe_invoice_id.clone(),
        status,
        message,
    };
    let now = state.base.clock.now();
    let env = Envelope::new(kind, crate::SERVICE, now, cause.firm_id, c.invoice_id, Some(cause), data);
    let message = OutboxMessage::new(
        subjects::subject(kind, cause.firm_id),
        format!("{}:failed", msg_id::command(c.request_id)),
        env,
    )
    .map_err(|e| CommandError::Apply(e.to_string()))?;
    let mut tx = state.base.pool.begin().await?;
    arflow_store::outbox::enqueue(&mut tx, &[message]).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    Ok(Outcome::Refused)
}

/// Runs one mark-uncollectible for the firm that sent it.
pub async fn mark_uncollectible(
    state: &AppState,
    cause: &RawEnvelope,
    c: &MarkUncollectible,
) -> Result<Outcome, CommandError> {
    let firm_id = cause.firm_id;
    let key = store::firm(&state.base.pool, firm_id).await?.and_then(|f| f.stripe_api_key);
    let Some(key) = key else {
        return refuse(state, cause, c, None, "the firm gave arflow no Stripe API key".into()).await;
    };
    // The invoice must be the firm's own: the command names it by our id and Stripe's.
    let mut conn = state.base.pool.acquire().await?;
    let invoice = store::invoice(&mut conn, firm_id, c.invoice_id).await?;
    drop(conn);
    match invoice {
        Some(i) if i.stripe_invoice_id == c.stripe_invoice_id => {}
        _ => return refuse(state, cause, c, None, format!("invoice {} is not this firm's", c.invoice_id)).await,
    }
    let api =
        StripeApi::new(&state.config.stripe_api_base, &key).map_err(|e| CommandError::Unavailable(e.to_string()))?;
    let object = match api.mark_uncollectible(&c.stripe_invoice_id).await {
        Ok(object) => object,
        Err(StripeApiError::Status { status, message, .. }) if (400..500).contains(&status) && status != 429 => {
            return refuse(state, cause, c, Some(status), message).await;
        }
        Err(e) => return Err(CommandError::Unavailable(e.to_string())),
    };
    // What Stripe says now, as the event Stripe would have sent (real time: Stripe's clock).
    let event = json!({
        "id": format!("evt_arflow_uncollectible_{}", c.request_id),
        "object": "event",
        "type": "invoice.marked_uncollectible",
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": object },
    });
    ingest_event(state, firm_id, event).await.map_err(|e| CommandError::Apply(e.to_string()))?;
    Ok(Outcome::Marked)
}

impl Handler for StripeCommandHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut rejections = Vec::new();
        for (index, m) in batch.iter().enumerate() {
            if m.envelope.kind != subjects::command::STRIPE_MARK_UNCOLLECTIBLE {
                continue;
            }
            let c: MarkUncollectible = match m.envelope.data_as() {
                Ok(c) => c,
                Err(e) => {
                    rejections.push(Rejection { index, reason: e.to_string() });
                    continue;
                }
            };
            let span = m.span();
            span.record("invoice_id", tracing::field::display(c.invoice_id));
            match mark_uncollectible(&self.state, &m.envelope, &c).instrument(span.clone()).await {
                Ok(outcome) => span.in_scope(
                    || tracing::info!(case_id = %c.case_id, actor = %c.actor, ?outcome, "mark-uncollectible done"),
                ),
                // Stripe or the database is unavailable: try again with back-off.
                Err(e) => return Err(HandlerError::Retry(e.to_string())),
            }
        }
        Ok(rejections)
    }
}
