//! `GET /v1/notifications/deliveries`, `GET .../{id}`, `POST .../{id}/replay`.
use super::subscriptions::List;
use super::{Page, path_id};
use crate::handlers::Context;
use crate::store::{self, AttemptRow, DeliveryRow, Replay};
use arflow_service::api::{ApiError, Caller, ProblemBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

const STATUSES: [&str; 5] = ["pending", "delivered", "failed", "endpoint_disabled", "cancelled"];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// `pending`, `delivered`, `failed`, `endpoint_disabled` or `cancelled`.
    pub status: Option<String>,
    /// One of the firm's subscriptions (another firm's or an unknown one: 404).
    pub subscription_id: Option<Uuid>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Also the `webhook-id` header: the same on every retry and replay.
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub kind: String,
    pub event_id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub message: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<Attempt>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

impl From<AttemptRow> for Attempt {
    fn from(a: AttemptRow) -> Self {
        Attempt {
            attempt: a.attempt,
            at: a.at,
            succeeded: a.succeeded,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

fn summary(row: DeliveryRow) -> Delivery {
    Delivery {
        id: row.id,
        subscription_id: row.subscription_id,
        kind: row.kind,
        event_id: row.event_id,
        next_attempt_at: (row.status == "pending").then_some(row.next_attempt_at),
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        delivered_at: row.delivered_at,
        created_at: row.created_at,
        message: None,
        attempt_log: None,
    }
}

/// `GET /v1/notifications/deliveries`: the firm's deliveries, oldest first.
#[utoipa::path(get, path = "/v1/notifications/deliveries", tag = "notifications",
    operation_id = "list_deliveries", params(Filter),
    responses((status = 200, body = List<Delivery>), (status = 404, body = ProblemBody),
        (status = 422, body = ProblemBody)), security(("api_key" = [])))]
pub async fn list(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Query(filter): Query<Filter>,
) -> Result<Json<List<Delivery>>, ApiError> {
    let status = filter.status.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(ApiError::Validation(format!("status must be one of {}", STATUSES.join(", "))));
    }
    // Not `#[serde(flatten)]`: serde_urlencoded cannot read numbers through it.
    let page = Page { limit: filter.limit, cursor: filter.cursor };
    let limit = page.limit()?;
    // Another firm's (or an unknown) subscription is not found, as everywhere else.
    if let Some(id) = filter.subscription_id
        && !store::firm_has_subscription(&ctx.pool, caller.firm_id, id).await?
    {
        return Err(ApiError::NotFound(format!("no subscription {id}")));
    }
    let rows =
        store::list_deliveries(&ctx.pool, caller.firm_id, status, filter.subscription_id, page.after()?, limit + 1)
            .await?;
    Ok(Json(List::from_rows(rows.into_iter().map(summary).collect(), limit, |d: &Delivery| d.id.to_string())))
}

/// `GET /v1/notifications/deliveries/{id}`: with the message and every attempt.
#[utoipa::path(get, path = "/v1/notifications/deliveries/{id}", tag = "notifications",
    operation_id = "get_delivery", params(("id" = Uuid, Path)),
    responses((status = 200, body = Delivery), (status = 404, body = ProblemBody)), security(("api_key" = [])))]
pub async fn get(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, ApiError> {
    let id = path_id(&id, "delivery")?;
    let row = store::get_delivery(&ctx.pool, caller.firm_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery {id}")))?;
    let message = row.message.clone();
    let attempts = store::attempts(&ctx.pool, id).await?;
    let mut d = summary(row);
    d.message = Some(message);
    d.attempt_log = Some(attempts.into_iter().map(Attempt::from).collect());
    Ok(Json(d))
}

/// Sends the delivery again with the same `webhook-id`: a failed one, one parked while its
/// endpoint was disabled, or a delivered one the receiver lost.
#[utoipa::path(post, path = "/v1/notifications/deliveries/{id}/replay", tag = "notifications",
    operation_id = "replay_delivery", params(("id" = Uuid, Path)),
    responses((status = 202, body = Delivery), (status = 404, body = ProblemBody),
        (status = 409, description = "the subscription is disabled or deleted", body = ProblemBody)), security(("api_key" = [])))]
pub async fn replay(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let id = path_id(&id, "delivery")?;
    match store::replay(&ctx.pool, caller.firm_id, id, ctx.clock.now()).await? {
        Replay::Queued(row) => {
            tracing::info!(firm_id = %caller.firm_id, actor = %caller.actor, delivery_id = %id, "delivery replayed");
            ctx.wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(summary(*row))))
        }
        Replay::NotFound => Err(ApiError::NotFound(format!("no delivery {id}"))),
        Replay::EndpointUnavailable(status) => Err(ApiError::Conflict(format!(
            "the subscription is {status}; enable it (POST /v1/notifications/subscriptions/{{id}}/enable) before replaying"
        ))),
    }
}
