//! `GET /v1/invoices/{invoice_id}/eligibility`: the latest decision with every check
//! and its reason (internal API, behind the platform network; the gateway fronts firms).
use crate::store;
use arflow_contracts::events::Check;
use arflow_runtime::http::Problem;
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct DecisionBody {
    pub invoice_id: Uuid,
    pub firm_id: Uuid,
    pub version: i64,
    pub eligible: bool,
    pub past_due: bool,
    pub automation_status: String,
    pub checks: Vec<Check>,
    pub evaluated_at: DateTime<Utc>,
}

pub async fn latest(State(pool): State<PgPool>, Path(invoice_id): Path<Uuid>) -> Result<Json<DecisionBody>, Problem> {
    let row = store::latest_decision(&pool, invoice_id).await.map_err(|e| {
        tracing::error!(%invoice_id, error = %e, "cannot read the latest decision");
        Problem::internal()
    })?;
    let Some(d) = row else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "decision-not-found",
            format!("no eligibility decision for invoice {invoice_id} yet"),
        ));
    };
    let checks: Vec<Check> = serde_json::from_value(d.checks).map_err(|e| {
        tracing::error!(%invoice_id, error = %e, "stored checks do not decode");
        Problem::internal()
    })?;
    Ok(Json(DecisionBody {
        invoice_id: d.invoice_id,
        firm_id: d.firm_id,
        version: d.version,
        eligible: d.eligible,
        past_due: d.past_due,
        automation_status: d.automation_status,
        checks,
        evaluated_at: d.evaluated_at,
    }))
}
