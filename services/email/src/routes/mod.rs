//! HTTP endpoints, served behind the gateway (`/v1/emails/...`; the firm and the firm user come
//! from the gateway's headers, checked by `Caller`): the emails whose hand-off is uncertain, and
//! a person's decision on each (resend it, or drop it). Plus `/healthz`, `/readyz` and
//! `/metrics` through `arflow_service::Base::run`.
use crate::events;
use crate::store::{self, EmailRow};
use arflow_core::Clock;
use arflow_service::api::{ApiError, Caller, InternalAuth, List, Page};
use arflow_store::Outbox;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

pub struct RoutesState {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    /// Wakes the sender when an email is resent.
    pub wake: Arc<Notify>,
}

pub fn router(state: Arc<RoutesState>, internal_token: SecretString) -> Router {
    Router::new()
        .route("/v1/emails/uncertain", get(list_uncertain))
        .route("/v1/emails/{id}/resend", post(resend))
        .route("/v1/emails/{id}/drop", post(drop_email))
        .with_state(state)
        .layer(axum::Extension(InternalAuth(internal_token)))
}

#[derive(Serialize)]
struct UncertainEmail {
    id: Uuid,
    step_id: Uuid,
    invoice_id: Uuid,
    contact_id: Uuid,
    step: String,
    subject: String,
    message_id: Option<String>,
    reason: Option<String>,
}

impl From<EmailRow> for UncertainEmail {
    fn from(r: EmailRow) -> Self {
        UncertainEmail {
            id: r.id,
            step_id: r.step_id,
            invoice_id: r.invoice_id,
            contact_id: r.contact_id,
            step: r.step,
            subject: r.subject,
            message_id: r.message_id,
            reason: r.last_error,
        }
    }
}

/// The firm's uncertain emails, newest first, one page at a time (`limit`, `cursor`).
async fn list_uncertain(
    State(s): State<Arc<RoutesState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<List<UncertainEmail>>, ApiError> {
    let limit = page.limit()?;
    let rows =
        store::uncertain(&s.pool, caller.firm_id, page.after_id()?, limit + 1).await.map_err(ApiError::internal)?;
    let emails = rows.into_iter().map(UncertainEmail::from).collect();
    Ok(Json(List::from_rows(emails, limit, |e: &UncertainEmail| e.id.to_string())))
}

#[derive(Serialize)]
struct Decision {
    id: Uuid,
    state: &'static str,
    decided_by: String,
}

/// Sends it again: the person checked that the client did not get it (or accepts a duplicate).
/// The fences run again right before the hand-off, so a payment or opt-out since still stops it.
async fn resend(
    State(s): State<Arc<RoutesState>>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Decision>, ApiError> {
    decide(&s, &caller, id, true).await
}

/// Gives it up: recorded as failed, never sent again.
async fn drop_email(
    State(s): State<Arc<RoutesState>>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Decision>, ApiError> {
    decide(&s, &caller, id, false).await
}

async fn decide(s: &RoutesState, caller: &Caller, id: Uuid, resend: bool) -> Result<Json<Decision>, ApiError> {
    let mut tx = s.pool.begin().await.map_err(ApiError::internal)?;
    let Some(row) = store::resolve_uncertain(&mut tx, caller.firm_id, id, resend, &caller.actor)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::NotFound(format!("no uncertain email {id} in this firm")));
    };
    if !resend {
        let why = format!("dropped by {} after an uncertain hand-off", caller.actor);
        let event = events::dropped(&row, &why, s.clock.now()).map_err(ApiError::internal)?;
        arflow_store::outbox::enqueue(&mut tx, &[event]).await.map_err(ApiError::internal)?;
    }
    tx.commit().await.map_err(ApiError::internal)?;
    tracing::warn!(email_id = %id, step_id = %row.step_id, invoice_id = %row.invoice_id, actor = %caller.actor, resend, "uncertain email decided by a person");
    if resend {
        s.wake.notify_one();
    } else {
        s.outbox.notify();
    }
    Ok(Json(Decision { id, state: if resend { "pending" } else { "failed" }, decided_by: caller.actor.clone() }))
}
