//! Reconciliation with Stripe: when a client says an invoice is already paid, the gateway asks
//! Stripe right away (`GET /v1/invoices/{id}` with the firm's API key). If Stripe says `paid`,
//! the invoice halts exactly as if the `invoice.paid` webhook had arrived (hold first, then the
//! halt event); otherwise the pause eligibility applied stands and Stripe's webhook, if the
//! payment lands later, ends it. Redelivery is harmless: the synthetic event id is stored once.
use crate::routes::webhooks::ingest_event;
use crate::startup::AppState;
use crate::store;
use crate::stripe_api::StripeApi;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{ReplyClassified, ReplyIntent};
use arflow_contracts::subjects::reply;
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

/// The durable consumer's name.
pub const CONSUMER: &str = "gateway-reconcile";

pub struct ReconcileHandler {
    pub state: AppState,
}

/// What Stripe said.
#[derive(Debug, PartialEq, Eq)]
pub enum Reconciled {
    /// Stripe has it paid: the invoice was halted now.
    Paid,
    /// Stripe has another status: the pause stands.
    NotPaid(String),
    /// The firm gave arflow no Stripe API key: only the webhook can tell.
    NoApiKey,
    /// The invoice is not (or no longer) known here.
    UnknownInvoice,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("Stripe: {0}")]
    Stripe(#[from] crate::stripe_api::StripeApiError),
    #[error("applying Stripe's answer: {0}")]
    Apply(String),
}

/// Asks Stripe about one invoice a client says is paid, and halts it if Stripe agrees.
pub async fn reconcile(
    state: &AppState,
    firm_id: Uuid,
    invoice_id: Uuid,
    reply_id: Uuid,
) -> Result<Reconciled, ReconcileError> {
    let Some(firm) = store::firm(&state.base.pool, firm_id).await? else { return Ok(Reconciled::UnknownInvoice) };
    let Some(key) = firm.stripe_api_key.as_deref() else { return Ok(Reconciled::NoApiKey) };
    let mut conn = state.base.pool.acquire().await?;
    let invoice = store::invoice(&mut conn, firm_id, invoice_id).await?;
    drop(conn);
    let Some(invoice) = invoice else { return Ok(Reconciled::UnknownInvoice) };
    let api = StripeApi::new(&state.config.stripe_api_base, key)?;
    let object = api.invoice(&invoice.stripe_invoice_id).await?;
    let status = object.get("status").and_then(|s| s.as_str()).unwrap_or("unknown").to_string();
    if status != "paid" {
        return Ok(Reconciled::NotPaid(status));
    }
    // What Stripe says now, as the event Stripe would have sent (real time: Stripe's clock).
    let event = json!({
        "id": format!("evt_arflow_reconcile_{reply_id}"),
        "object": "event",
        "type": "invoice.paid",
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": object },
    });
    ingest_event(state, firm_id, event).await.map_err(|e| ReconcileError::Apply(e.to_string()))?;
    Ok(Reconciled::Paid)
}

impl Handler for ReconcileHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut rejections = Vec::new();
        for (index, m) in batch.iter().enumerate() {
            if m.envelope.kind != reply::CLASSIFIED {
                continue;
            }
            let d: ReplyClassified = match m.envelope.data_as() {
                Ok(d) => d,
                Err(e) => {
                    rejections.push(Rejection { index, reason: e.to_string() });
                    continue;
                }
            };
            // Not on a guess awaiting a person's label; its label, when it says so, is asked.
            let (Some(ReplyIntent::AlreadyPaid), Some(invoice_id)) = (d.actionable_intent(), d.invoice_id) else {
                continue;
            };
            let span = m.span();
            span.record("invoice_id", tracing::field::display(invoice_id));
            match reconcile(&self.state, m.envelope.firm_id, invoice_id, d.reply_id).instrument(span.clone()).await {
                Ok(Reconciled::Paid) => span.in_scope(|| tracing::info!("Stripe confirms the payment; invoice halted")),
                Ok(other) => {
                    span.in_scope(|| tracing::info!(answer = ?other, "Stripe does not confirm yet; the pause stands"))
                }
                // Stripe or the database is unavailable: the message waits with back-off until it
                // answers (the pause protects the client meanwhile).
                Err(e) => return Err(HandlerError::Retry(e.to_string())),
            }
        }
        Ok(rejections)
    }
}
