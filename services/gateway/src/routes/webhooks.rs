//! `POST /webhooks/stripe/{firm_id}`: the signature authenticates; payment events write
//! the invoice hold and publish the halt BEFORE Stripe gets its 200 (fence 1).
use super::ApiPath;
use crate::error::ApiError;
use crate::ingest::{self, Action, IngestError, StripeEvent};
use crate::startup::AppState;
use crate::store;
use arflow_contracts::streams::invoice_hold_key;
use arflow_runtime::signature::{
    STRIPE_TOLERANCE_SECS, SignatureError, precheck_stripe_signature, verify_stripe_signature,
};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use tracing::Instrument;
use uuid::Uuid;

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<Uuid>,
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Malformed(m) => ApiError::MalformedPayload(m),
            other => ApiError::internal(other),
        }
    }
}

#[utoipa::path(post, path = "/webhooks/stripe/{firm_id}", tag = "webhooks", params(("firm_id" = Uuid, Path),
        ("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex hmac>")),
    request_body(content = Object, description = "A Stripe event"),
    responses((status = 200, body = WebhookAck),
        (status = 400, description = "invalid-signature, stale-timestamp or malformed-payload", body = crate::error::ProblemBody),
        (status = 404, description = "unknown-firm", body = crate::error::ProblemBody)))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    ApiPath(firm_id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<WebhookAck>, ApiError> {
    let span = tracing::info_span!("stripe_webhook", firm_id = %firm_id, event_id = tracing::field::Empty,
        invoice_id = tracing::field::Empty);
    handle(state, firm_id, headers, body).instrument(span).await
}

async fn handle(
    state: AppState,
    firm_id: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<WebhookAck>, ApiError> {
    let unknown = || ApiError::UnknownFirm(firm_id.clone());
    let firm_uuid = Uuid::parse_str(&firm_id).map_err(|_| unknown())?;
    let firm = store::firm(&state.base.pool, firm_uuid).await?.ok_or_else(unknown)?;
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let secrets: Vec<&str> = firm.stripe_webhook_secrets.iter().map(String::as_str).collect();
    // Replay protection is about the real world, so it uses the system time, not the business clock.
    let now_unix = chrono::Utc::now().timestamp();
    if header.is_empty() {
        return Err(ApiError::InvalidSignature("the Stripe-Signature header is missing".into()));
    }
    // What can be judged without the body is judged before reading it (at most
    // gateway.limits.stripe_max_bytes): the firm, the header's shape and its timestamp.
    match precheck_stripe_signature(header, now_unix, STRIPE_TOLERANCE_SECS) {
        Ok(()) => {}
        Err(SignatureError::Stale { age_secs, tolerance_secs }) => {
            return Err(ApiError::StaleTimestamp(format!(
                "the signed timestamp is {age_secs} s from now; the tolerance is {tolerance_secs} s"
            )));
        }
        Err(e) => return Err(ApiError::InvalidSignature(e.to_string())),
    }
    let body = super::read_body(&headers, body, state.limiter.settings().stripe_max_bytes).await?;
    match verify_stripe_signature(&secrets, header, &body, now_unix, STRIPE_TOLERANCE_SECS) {
        Ok(_) => {}
        Err(SignatureError::Stale { age_secs, tolerance_secs }) => {
            return Err(ApiError::StaleTimestamp(format!(
                "the signed timestamp is {age_secs} s from now; the tolerance is {tolerance_secs} s"
            )));
        }
        Err(e) => return Err(ApiError::InvalidSignature(e.to_string())),
    }
    let raw: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedPayload(format!("the body is not JSON: {e}")))?;
    ingest_event(&state, firm.id, raw).await.map(Json)
}

/// Applies one authenticated Stripe event (from a webhook, or built from what Stripe's API says
/// now): stored once by id, the hold first for a payment, then the records and events.
pub async fn ingest_event(state: &AppState, firm_id: Uuid, raw: serde_json::Value) -> Result<WebhookAck, ApiError> {
    let event = StripeEvent::parse(&raw).map_err(ApiError::MalformedPayload)?;
    tracing::Span::current().record("event_id", event.id.as_str());
    if store::webhook_event_seen(&state.base.pool, firm_id, &event.id).await? {
        tracing::info!(kind = %event.kind, "duplicate delivery; nothing re-done");
        return Ok(WebhookAck { received: true, duplicate: true, ..Default::default() });
    }
    let action = ingest::classify(&event);
    let now = state.base.clock.now();

    // Fence 1: the hold goes to the bucket before anything else, so no send can claim after it.
    let mut hold_revision = None;
    if let Action::Halt(reason) = action {
        let stripe_invoice_id = event
            .object
            .get("id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ApiError::MalformedPayload("the invoice has no `id`".into()))?;
        let mut conn = state.base.pool.acquire().await?;
        let invoice_id = store::invoice_id_for(&mut conn, firm_id, stripe_invoice_id).await?;
        drop(conn);
        tracing::Span::current().record("invoice_id", tracing::field::display(invoice_id));
        let reason_text = store::to_text(&reason);
        let source = format!("stripe:{}", event.id);
        let revision = state.base.bus.holds().hold(&invoice_hold_key(invoice_id), &reason_text, &source, now).await?;
        tracing::info!(%invoice_id, revision, reason = %reason_text, "invoice hold written");
        hold_revision = Some(revision);
    }

    let mut tx = state.base.pool.begin().await?;
    let outcome = if action == Action::Ignore { "ignored" } else { "processed" };
    if !store::record_webhook_event(&mut tx, firm_id, &event.id, &event.kind, event.created, outcome, &raw, now).await?
    {
        // A concurrent delivery of the same event won the race.
        return Ok(WebhookAck { received: true, duplicate: true, ..Default::default() });
    }
    let applied = ingest::apply_event(&mut tx, firm_id, &event, hold_revision, now).await?;
    arflow_store::outbox::enqueue(&mut tx, &applied.messages).await?;
    tx.commit().await?;
    state.base.outbox.notify();

    // The halt is on the stream before Stripe hears 200; the outbox copy has the same
    // Nats-Msg-Id and is dropped by JetStream as a duplicate.
    if let Some(halt) = &applied.halt {
        let bytes = serde_json::to_vec(&halt.payload)?;
        state.base.bus.publish(&halt.subject, &halt.msg_id, bytes.into()).await?;
        state.base.metrics.count("invoice_halts", 1);
    }
    tracing::info!(kind = %event.kind, outcome, events = applied.messages.len(), "stripe event applied");
    Ok(WebhookAck {
        received: true,
        ignored: action == Action::Ignore,
        invoice_id: applied.invoice_id,
        ..Default::default()
    })
}
