//! HTTP endpoints: the plan and steps of an invoice (internal; the gateway fronts the public API).
use crate::store::{self, StepRow};
use arflow_runtime::http::Problem;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub fn router(pool: PgPool) -> Router {
    Router::new().route("/v1/firms/{firm_id}/invoices/{invoice_id}/plan", get(get_plan)).with_state(pool)
}

#[derive(Serialize)]
struct PlanView {
    invoice_id: Uuid,
    status: String,
    automation_status: String,
    halt_reason: Option<String>,
    policy_id: Option<Uuid>,
    policy_version: Option<i32>,
    eligibility_version: i64,
    version: i64,
    steps: Vec<StepRow>,
}

async fn get_plan(State(pool): State<PgPool>, Path((firm_id, invoice_id)): Path<(Uuid, Uuid)>) -> Response {
    let found = match pool.acquire().await {
        Ok(mut conn) => store::plan_with_steps(&mut conn, firm_id, invoice_id).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(Some((plan, steps))) => Json(PlanView {
            invoice_id: plan.invoice_id,
            status: plan.status,
            automation_status: plan.automation_status,
            halt_reason: plan.halt_reason,
            policy_id: plan.policy_id,
            policy_version: plan.policy_version,
            eligibility_version: plan.decision_version,
            version: plan.plan_version,
            steps,
        })
        .into_response(),
        Ok(None) => {
            Problem::new(StatusCode::NOT_FOUND, "plan-not-found", format!("no outreach plan for invoice {invoice_id}"))
                .into_response()
        }
        Err(e) => {
            tracing::error!(%firm_id, %invoice_id, error = %e, "cannot read plan");
            Problem::internal().into_response()
        }
    }
}
