//! HTTP endpoints (besides `/healthz`, `/readyz`, `/metrics` from the shared base).
pub mod decisions;

use axum::{Router, routing::get};
use sqlx::PgPool;

pub fn router(pool: PgPool) -> Router {
    Router::new().route("/v1/invoices/{invoice_id}/eligibility", get(decisions::latest)).with_state(pool)
}
