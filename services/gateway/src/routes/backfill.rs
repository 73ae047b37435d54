//! `POST /v1/firm/stripe/backfill`: customers and open invoices from Stripe, upserted
//! exactly like webhook events (same mapping, same ordering rules).
use crate::auth::FirmAuth;
use crate::error::ApiError;
use crate::ingest::{self, Applied, Ctx};
use crate::publish::Origin;
use crate::startup::AppState;
use crate::store;
use crate::stripe_api::{StripeApi, StripeApiError};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackfillResult {
    pub customers: usize,
    pub invoices: usize,
}

impl From<StripeApiError> for ApiError {
    fn from(e: StripeApiError) -> Self {
        ApiError::Upstream(e.to_string())
    }
}

#[utoipa::path(post, path = "/v1/firm/stripe/backfill", tag = "firms",
    responses((status = 200, body = BackfillResult), (status = 409, body = crate::error::ProblemBody),
        (status = 502, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn backfill(State(state): State<AppState>, auth: FirmAuth) -> Result<Json<BackfillResult>, ApiError> {
    let firm = store::firm(&state.base.pool, auth.firm_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the firm no longer exists".into()))?;
    let key = firm
        .stripe_api_key
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("the firm has no stripe_api_key; set it with PATCH /v1/firm".into()))?;
    let api = StripeApi::new(&state.config.stripe_api_base, key)?;
    let customers = api.customers().await?;
    let invoices = api.open_invoices().await?;
    // What Stripe says now is newer than any event created before now (real time: Stripe's clock).
    let created = chrono::Utc::now().timestamp();
    let now = state.base.clock.now();
    let ctx = Ctx { firm_id: firm.id, origin: Origin::Record, created, now };
    let mut tx = state.base.pool.begin().await?;
    let mut out = Applied::default();
    for c in &customers {
        ingest::apply_customer(&mut tx, &ctx, c, &mut out).await?;
    }
    for i in &invoices {
        let id = i.get("id").and_then(|v| v.as_str()).unwrap_or("unknown");
        ingest::apply_invoice(&mut tx, &ctx, i, None, &format!("backfill:{id}"), &mut out).await?;
    }
    arflow_store::outbox::enqueue(&mut tx, &out.messages).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    tracing::info!(customers = customers.len(), invoices = invoices.len(), "backfill done");
    Ok(Json(BackfillResult { customers: customers.len(), invoices: invoices.len() }))
}
