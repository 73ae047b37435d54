//! HTTP endpoints, served behind the gateway (`/v1/emails/...`; the firm and the firm user come
//! from the gateway's headers, checked by `Caller`): the emails whose hand-off is uncertain, and
//! a person's decision on each (resend it, or drop it). Plus `/healthz`, `/readyz` and
//! `/metrics` through `arflow_service::Base::run`.
use crate::events;
use crate::store::{self, EmailRow};
use arflow_core::Clock;
use arflow_service::api::{ApiError, Caller, GatewaySecurity, InternalAuth, List, Page, ProblemBody};
use arflow_store::Outbox;
use axum::extract::{Path, Query, State};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub struct RoutesState {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    /// Wakes the sender when an email is resent.
    pub wake: Arc<Notify>,
}

/// The service's public routes (through the gateway) and their OpenAPI document, from the same
/// `#[utoipa::path]` attributes: a route cannot be served undocumented or documented unserved.
pub fn api() -> OpenApiRouter<Arc<RoutesState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_uncertain))
        .routes(routes!(resend))
        .routes(routes!(drop_email))
}

/// The OpenAPI document of the emails API (`openapi.json` beside the README; the gateway merges it
/// into its own).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

pub fn router(state: Arc<RoutesState>, internal_token: SecretString) -> Router {
    let (router, _) = api().split_for_parts();
    router.with_state(state).layer(axum::Extension(InternalAuth(internal_token)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "arflow emails", description = "Emails whose hand-off to the SMTP server was cut after the body, and a person's decision on each, served by the email service behind the gateway."),
    components(schemas(arflow_service::api::ProblemBody)),
    modifiers(&GatewaySecurity),
    tags((name = "emails", description = "Emails a person decides on (email service)"))
)]
struct ApiDoc;

#[derive(Serialize, utoipa::ToSchema)]
struct UncertainEmail {
    id: Uuid,
    step_id: Uuid,
    invoice_id: Uuid,
    contact_id: Uuid,
    step: String,
    subject: String,
    message_id: Option<String>,
    /// Why it is uncertain.
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
#[utoipa::path(get, path = "/v1/emails/uncertain", tag = "emails", operation_id = "list_uncertain_emails",
    params(Page), responses((status = 200, body = List<UncertainEmail>), (status = 422, body = ProblemBody)), security(("api_key" = [])))]
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

#[derive(Serialize, utoipa::ToSchema)]
struct Decision {
    id: Uuid,
    /// `pending` (resent) or `failed` (dropped).
    state: &'static str,
    decided_by: String,
}

/// Sends it again: the person checked that the client did not get it (or accepts a duplicate).
/// The fences run again right before the hand-off, so a payment or opt-out since still stops it.
#[utoipa::path(post, path = "/v1/emails/{id}/resend", tag = "emails", operation_id = "resend_email",
    params(("id" = Uuid, Path), ("X-Arflow-Actor" = Option<String>, Header, description = "the firm user deciding")),
    responses((status = 200, body = Decision), (status = 404, description = "no uncertain email with this id in this firm", body = ProblemBody)), security(("api_key" = [])))]
async fn resend(
    State(s): State<Arc<RoutesState>>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Decision>, ApiError> {
    decide(&s, &caller, id, true).await
}

/// Gives it up: recorded as failed, never sent again.
#[utoipa::path(post, path = "/v1/emails/{id}/drop", tag = "emails", operation_id = "drop_email",
    params(("id" = Uuid, Path), ("X-Arflow-Actor" = Option<String>, Header, description = "the firm user deciding")),
    responses((status = 200, body = Decision), (status = 404, description = "no uncertain email with this id in this firm", body = ProblemBody)), security(("api_key" = [])))]
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
