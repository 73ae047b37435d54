//! The firm-scoped read API, behind the gateway: `GET /v1/calls`, `GET /v1/calls/{id}`
//! (transcript, recording, outcome, the fences' reasons) and `GET /v1/texts`. Lists answer
//! `{data, next_cursor}` (`limit`, `cursor`); `invoice_id` filters them, and one naming an invoice
//! this firm does not have answers 404, as every other route does for another firm's records.
use super::Context;
use crate::events::transcript;
use crate::store::{self, CallRow, TextRow};
use arflow_contracts::events::TranscriptTurn;
use arflow_service::api::{ApiError, Caller, List, Page, ProblemBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByInvoice {
    /// Only this invoice's; an invoice the firm does not have answers 404.
    pub invoice_id: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Call)]
pub struct CallView {
    pub id: Uuid,
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub attempt: i32,
    pub state: String,
    pub to: Option<String>,
    pub not_before: DateTime<Utc>,
    pub placed_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub skip_reason: Option<String>,
    /// Each fence's verdict (waits outside the window, skips) in order.
    #[schema(value_type = Vec<Object>)]
    pub fences: serde_json::Value,
    pub provider_sid: Option<String>,
    pub provider_status: Option<String>,
    pub answered_by: Option<String>,
    pub duration_secs: Option<i32>,
    pub script: String,
    pub language: String,
    pub promised_date: Option<NaiveDate>,
    pub recording_url: Option<String>,
    pub recording_sid: Option<String>,
    pub transcription: Option<String>,
    /// `GET /v1/calls/{id}` only: the conversation, turn by turn (`speaker`, `text`, `intent`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub transcript: Option<Vec<TranscriptTurn>>,
}

impl CallView {
    fn of(r: CallRow, transcript: Option<Vec<TranscriptTurn>>) -> Self {
        CallView {
            id: r.id,
            step_id: r.step_id,
            invoice_id: r.invoice_id,
            contact_id: r.contact_id,
            step: r.step,
            attempt: r.attempt,
            state: r.state,
            to: r.to_number,
            not_before: r.not_before,
            placed_at: r.placed_at,
            ended_at: r.ended_at,
            outcome: r.outcome,
            detail: r.detail,
            skip_reason: r.skip_reason,
            fences: r.fence_log.0,
            provider_sid: r.provider_sid,
            provider_status: r.provider_status,
            answered_by: r.answered_by,
            duration_secs: r.duration_secs,
            script: r.script,
            language: r.language,
            promised_date: r.promised_date,
            recording_url: r.recording_url,
            recording_sid: r.recording_sid,
            transcription: r.transcription,
            transcript,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Text)]
pub struct TextView {
    pub id: Uuid,
    pub step_id: Uuid,
    pub invoice_id: Uuid,
    pub contact_id: Uuid,
    pub step: String,
    pub state: String,
    pub to: Option<String>,
    pub not_before: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub body: Option<String>,
    pub template: Option<String>,
    pub template_version: Option<i32>,
    pub message_sid: Option<String>,
    pub provider_status: Option<String>,
    pub error_code: Option<String>,
    pub detail: Option<String>,
    pub skip_reason: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub fences: serde_json::Value,
}

impl From<TextRow> for TextView {
    fn from(r: TextRow) -> Self {
        TextView {
            id: r.id,
            step_id: r.step_id,
            invoice_id: r.invoice_id,
            contact_id: r.contact_id,
            step: r.step,
            state: r.state,
            to: r.to_number,
            not_before: r.not_before,
            sent_at: r.sent_at,
            body: r.body,
            template: r.template,
            template_version: r.template_version,
            message_sid: r.message_sid,
            provider_status: r.provider_status,
            error_code: r.error_code,
            detail: r.detail,
            skip_reason: r.skip_reason,
            fences: r.fence_log.0,
        }
    }
}

/// The invoice filter: the firm's own invoice, or 404. The voice service knows the firm's
/// invoices from `billing.invoice_upserted` (and from its own calls and texts).
async fn invoice_filter(ctx: &Context, caller: &Caller, q: &ByInvoice) -> Result<Option<Uuid>, ApiError> {
    let Some(invoice_id) = q.invoice_id else { return Ok(None) };
    if !store::firm_has_invoice(&ctx.pool, caller.firm_id, invoice_id).await? {
        return Err(ApiError::NotFound(format!("no invoice {invoice_id} in this firm")));
    }
    Ok(Some(invoice_id))
}

/// `GET /v1/calls`: the firm's calls, oldest first.
#[utoipa::path(get, path = "/v1/calls", tag = "calls", operation_id = "list_calls", params(Page, ByInvoice),
    responses((status = 200, body = List<CallView>), (status = 404, description = "an invoice_id the firm does not have", body = ProblemBody),
        (status = 422, body = ProblemBody)), security(("api_key" = [])))]
pub async fn list_calls(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    Query(page): Query<Page>,
    Query(q): Query<ByInvoice>,
) -> Result<Json<List<CallView>>, ApiError> {
    let limit = page.limit()?;
    let invoice_id = invoice_filter(&ctx, &caller, &q).await?;
    let rows = store::list_calls(&ctx.pool, caller.firm_id, invoice_id, page.after_id()?, limit + 1).await?;
    let views = rows.into_iter().map(|r| CallView::of(r, None)).collect();
    Ok(Json(List::from_rows(views, limit, |c: &CallView| c.id.to_string())))
}

/// `GET /v1/calls/{id}`: the call with its transcript.
#[utoipa::path(get, path = "/v1/calls/{call_id}", tag = "calls", operation_id = "get_call",
    params(("call_id" = Uuid, Path)),
    responses((status = 200, body = CallView), (status = 404, body = ProblemBody)), security(("api_key" = [])))]
pub async fn get_call(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    Path(call_id): Path<Uuid>,
) -> Result<Json<CallView>, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    let row = store::call(&mut conn, call_id)
        .await?
        .filter(|r| r.firm_id == caller.firm_id)
        .ok_or_else(|| ApiError::NotFound(format!("no call {call_id}")))?;
    let turns = store::turns(&mut conn, call_id).await?;
    Ok(Json(CallView::of(row, Some(transcript(&turns)))))
}

/// `GET /v1/texts`: the firm's texts, oldest first.
#[utoipa::path(get, path = "/v1/texts", tag = "calls", operation_id = "list_texts", params(Page, ByInvoice),
    responses((status = 200, body = List<TextView>), (status = 404, description = "an invoice_id the firm does not have", body = ProblemBody),
        (status = 422, body = ProblemBody)), security(("api_key" = [])))]
pub async fn list_texts(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    Query(page): Query<Page>,
    Query(q): Query<ByInvoice>,
) -> Result<Json<List<TextView>>, ApiError> {
    let limit = page.limit()?;
    let invoice_id = invoice_filter(&ctx, &caller, &q).await?;
    let rows = store::list_texts(&ctx.pool, caller.firm_id, invoice_id, page.after_id()?, limit + 1).await?;
    let views = rows.into_iter().map(TextView::from).collect();
    Ok(Json(List::from_rows(views, limit, |t: &TextView| t.id.to_string())))
}
