//! The queue and its actions. Every query is scoped by the caller's firm: another firm's case
//! answers 404. Each action is recorded with who (`Caller.actor`) and why (`note`, required).
use crate::cases::{self, ActionInput, CaseError, Trigger};
use crate::config::THRESHOLD_RANGE;
use crate::handlers::Context;
use crate::store::{self, ActionRow, CaseRow};
use arflow_contracts::events::{CaseActionKind, EscalationCase, EscalationReason, ReplyIntent};
use arflow_service::api::{ApiError, Caller, ProblemBody};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

const MAX_NOTE: usize = 4_000;
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 100;

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Invalid(m) => ApiError::Validation(m),
            CaseError::Conflict(m) => ApiError::Conflict(m),
            CaseError::NotYetKnown(m) => ApiError::NotFound(m),
            CaseError::Raced => ApiError::Conflict("a case was opened at the same time; try again".into()),
            other => ApiError::internal(other),
        }
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(b)| b).map_err(|e| ApiError::Validation(e.body_text()))
}

fn note(n: &str) -> Result<String, ApiError> {
    let n = n.trim();
    if n.is_empty() {
        return Err(ApiError::Validation("note is required: say why".into()));
    }
    if n.chars().count() > MAX_NOTE {
        return Err(ApiError::Validation(format!("note is longer than {MAX_NOTE} characters")));
    }
    Ok(n.to_string())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `open`, `paused`, `referred`, `resolved`, `active` (all but resolved; the default) or `all`.
    pub status: Option<String>,
    /// 1..=100, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the queue (`{data, next_cursor}`, like every list).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CasePage)]
pub struct Page {
    /// The cases, each as published in `escalation.*` events (docs/events/escalation.v1.schema.json).
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<EscalationCase>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn statuses(s: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    Ok(match s.unwrap_or("active") {
        "open" => vec!["open"],
        "paused" => vec!["paused"],
        "referred" => vec!["referred"],
        "resolved" => vec!["resolved"],
        "active" => vec!["open", "paused", "referred"],
        "all" => vec!["open", "paused", "referred", "resolved"],
        other => return Err(ApiError::Validation(format!("unknown status filter {other:?}"))),
    })
}

/// `<opened_at micros>_<case id>`: the last case of the page.
fn cursor_of(c: &CaseRow) -> String {
    format!("{}_{}", c.opened_at.timestamp_micros(), c.case_id)
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::Validation("cursor is not one this API returned".into());
    let (micros, id) = s.split_once('_').ok_or_else(bad)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::<Utc>::from_timestamp_micros).ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// The case as published, with its latest action.
async fn view(ctx: &Context, conn: &mut sqlx::PgConnection, case: &CaseRow) -> Result<EscalationCase, ApiError> {
    let Some(action) = store::latest_action(conn, case.case_id).await? else {
        return Err(ApiError::internal(format!("case {} has no actions", case.case_id)));
    };
    Ok(cases::payload(conn, &ctx.links, case, &action, ctx.clock.now()).await?)
}

/// `GET /v1/escalations?status=open&limit=&cursor=`: the firm's queue, oldest first.
#[utoipa::path(get, path = "/v1/escalations", tag = "escalations", operation_id = "list_escalations",
    params(ListQuery),
    responses((status = 200, body = Page), (status = 422, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn list(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let statuses = statuses(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Validation(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let mut conn = ctx.pool.acquire().await?;
    let mut rows = store::queue(&mut conn, caller.firm_id, &statuses, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(cursor_of) } else { None };
    let mut data = Vec::with_capacity(rows.len());
    for c in &rows {
        data.push(view(&ctx, &mut conn, c).await?);
    }
    Ok(Json(Page { data, next_cursor }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaseDetail {
    /// The case as published in `escalation.*` events (docs/events/escalation.v1.schema.json).
    #[schema(value_type = Object)]
    pub case: EscalationCase,
    /// Every action, oldest first.
    pub actions: Vec<ActionRow>,
}

/// `GET /v1/escalations/{id}`: the case and every action on it.
#[utoipa::path(get, path = "/v1/escalations/{case_id}", tag = "escalations", operation_id = "get_escalation",
    params(("case_id" = Uuid, Path)),
    responses((status = 200, body = CaseDetail), (status = 404, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn get_case(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    Path(case_id): Path<Uuid>,
) -> Result<Json<CaseDetail>, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    let Some(case) = store::case(&mut conn, caller.firm_id, case_id).await? else {
        return Err(ApiError::NotFound(format!("no case {case_id}")));
    };
    let case_view = view(&ctx, &mut conn, &case).await?;
    let actions = store::actions(&mut conn, case_id).await?;
    Ok(Json(CaseDetail { case: case_view, actions }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OpenBody {
    pub invoice_id: Uuid,
    /// An escalation reason (`manual`, `dispute`, ...); defaults to `manual`.
    #[schema(value_type = Option<String>)]
    pub reason: Option<EscalationReason>,
    /// Why: required.
    #[serde(default)]
    pub note: String,
}

/// `POST /v1/escalations`: a firm user opens a case on an invoice (201), or adds the note to
/// the active case of that family (200).
#[utoipa::path(post, path = "/v1/escalations", tag = "escalations", operation_id = "open_escalation",
    request_body = OpenBody,
    params(("X-Arflow-Actor" = Option<String>, Header, description = "the firm user acting"),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first response (kept by the gateway)")),
    responses((status = 201, body = Object, description = "the case opened (the whole case, as `data` of the public `escalation.*` events: docs/events/escalation.v1.schema.json)"),
        (status = 200, body = Object, description = "the note added to the active case (the whole case, as `data` of the public `escalation.*` events: docs/events/escalation.v1.schema.json)"),
        (status = 404, body = ProblemBody), (status = 422, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn open(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    payload: Result<Json<OpenBody>, JsonRejection>,
) -> Result<(StatusCode, Json<EscalationCase>), ApiError> {
    let b = body(payload)?;
    let note = note(&b.note)?;
    let now = ctx.clock.now();
    let mut tx = ctx.pool.begin().await?;
    let Some(invoice) = store::invoice(&mut tx, caller.firm_id, b.invoice_id).await? else {
        return Err(ApiError::NotFound(format!("no invoice {}", b.invoice_id)));
    };
    let reason = b.reason.unwrap_or(EscalationReason::Manual);
    let t = Trigger {
        firm_id: caller.firm_id,
        client_id: invoice.client_id,
        invoice_id: Some(invoice.invoice_id),
        contact_id: None,
        review: None,
        reason,
        evidence: note.clone(),
        actor: caller.actor.clone(),
        note,
        details: json!({ "source": "api" }),
    };
    let (outcome, messages) = cases::open_or_note(&mut tx, &ctx.links, t, now, None).await?;
    store::enqueue(&mut tx, &messages).await?;
    tx.commit().await?;
    ctx.outbox.notify();
    let status = match outcome {
        cases::Outcome::Opened(_) => StatusCode::CREATED,
        cases::Outcome::Noted(_) => StatusCode::OK,
    };
    let mut conn = ctx.pool.acquire().await?;
    Ok((status, Json(view(&ctx, &mut conn, outcome.case()).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ActionBody {
    /// `continue_automation`, `pause`, `mark_uncollectible`, `refer_to_agency`, `resolve`, `note` or `label`.
    #[schema(value_type = String)]
    pub action: CaseActionKind,
    /// Why: required (optional for `label`).
    #[serde(default)]
    pub note: String,
    pub paused_until: Option<DateTime<Utc>>,
    pub agency: Option<String>,
    /// `label`: one of the nine intents (`opt_out`, `dispute`, ...).
    pub intent: Option<String>,
    /// `label` with `promise_to_pay`: the day the client promised, if they said.
    pub promised_date: Option<NaiveDate>,
}

/// The label a `label` action names: required, one of the nine intents.
fn label(b: &ActionBody) -> Result<(ReplyIntent, Option<NaiveDate>), ApiError> {
    let labels = || ReplyIntent::ALL.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ");
    let Some(given) = b.intent.as_deref() else {
        return Err(ApiError::Validation(format!("label needs intent: one of {}", labels())));
    };
    let Some(intent) = ReplyIntent::parse(given.trim()) else {
        return Err(ApiError::Validation(format!("unknown intent {given:?}: expected one of {}", labels())));
    };
    Ok((intent, b.promised_date))
}

/// `POST /v1/escalations/{id}/actions`: continue_automation, pause, mark_uncollectible,
/// refer_to_agency, resolve, note, or label (a `needs_review` case: what the reply means);
/// recorded with who and why, then published.
#[utoipa::path(post, path = "/v1/escalations/{case_id}/actions", tag = "escalations", operation_id = "act_on_escalation",
    request_body = ActionBody,
    params(("case_id" = Uuid, Path), ("X-Arflow-Actor" = Option<String>, Header, description = "the firm user acting"),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first response (kept by the gateway)")),
    responses((status = 200, body = Object, description = "the case after the action (the whole case, as `data` of the public `escalation.*` events: docs/events/escalation.v1.schema.json)"),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody), (status = 422, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn act(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    Path(case_id): Path<Uuid>,
    payload: Result<Json<ActionBody>, JsonRejection>,
) -> Result<Json<EscalationCase>, ApiError> {
    let b = body(payload)?;
    let label = (b.action == CaseActionKind::Label).then(|| label(&b)).transpose()?;
    // A label says what it decided; its note is optional.
    let note = match label {
        Some((intent, _)) if b.note.trim().is_empty() => format!("labelled {}", intent.as_str()),
        _ => note(&b.note)?,
    };
    if matches!(b.action, CaseActionKind::Opened | CaseActionKind::Paid) {
        return Err(ApiError::Validation(format!(
            "{} is recorded by arflow, not asked for",
            cases::action_str(b.action)
        )));
    }
    let now = ctx.clock.now();
    let mut tx = ctx.pool.begin().await?;
    let Some(mut case) = store::lock_case(&mut tx, caller.firm_id, case_id).await? else {
        return Err(ApiError::NotFound(format!("no case {case_id}")));
    };
    let mut input = ActionInput::new(b.action, &caller.actor, &note);
    input.paused_until = b.paused_until.filter(|_| b.action == CaseActionKind::Pause);
    input.agency = b.agency.map(|a| a.trim().to_string()).filter(|_| b.action == CaseActionKind::ReferToAgency);
    input.label = label;
    let messages = cases::act(&mut tx, &ctx.links, &mut case, input, now, None).await?;
    store::enqueue(&mut tx, &messages).await?;
    tx.commit().await?;
    ctx.outbox.notify();
    let mut conn = ctx.pool.acquire().await?;
    Ok(Json(view(&ctx, &mut conn, &case).await?))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettingsBody {
    /// 1..=3650, default 60.
    pub days_past_due_threshold: i32,
}

/// `GET /v1/escalations/settings`
#[utoipa::path(get, path = "/v1/escalations/settings", tag = "escalations", operation_id = "get_escalation_settings",
    responses((status = 200, body = SettingsBody)), security(("api_key" = [])))]
pub async fn get_settings(caller: Caller, State(ctx): State<Arc<Context>>) -> Result<Json<SettingsBody>, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    let days = store::threshold(&mut conn, caller.firm_id).await?;
    Ok(Json(SettingsBody { days_past_due_threshold: days.unwrap_or(ctx.settings.default_days_past_due_threshold) }))
}

/// `PUT /v1/escalations/settings`: the firm's days-past-due threshold.
#[utoipa::path(put, path = "/v1/escalations/settings", tag = "escalations", operation_id = "put_escalation_settings",
    request_body = SettingsBody,
    responses((status = 200, body = SettingsBody), (status = 422, body = ProblemBody)), security(("api_key" = [])))]
pub async fn put_settings(
    caller: Caller,
    State(ctx): State<Arc<Context>>,
    payload: Result<Json<SettingsBody>, JsonRejection>,
) -> Result<Json<SettingsBody>, ApiError> {
    let b = body(payload)?;
    if !THRESHOLD_RANGE.contains(&b.days_past_due_threshold) {
        return Err(ApiError::Validation("days_past_due_threshold must be 1 to 3650".into()));
    }
    store::set_threshold(&ctx.pool, caller.firm_id, b.days_past_due_threshold, &caller.actor, ctx.clock.now()).await?;
    tracing::info!(firm_id = %caller.firm_id, actor = %caller.actor, days = b.days_past_due_threshold, "threshold set");
    Ok(Json(b))
}

/// One labelled reply in the reply corpus's format (`shared/corpus/README.md`): what the
/// classifier is trained and measured on.
#[derive(Debug, Serialize)]
struct TrainingExample<'a> {
    id: String,
    channel: &'a str,
    reference_date: NaiveDate,
    text: &'a str,
    intent: &'a str,
    promised_date: Option<NaiveDate>,
}

/// `GET /v1/escalations/training-examples`: every reply the firm's people labelled, one JSON
/// object a line (`application/x-ndjson`), oldest label first.
#[utoipa::path(get, path = "/v1/escalations/training-examples", tag = "escalations",
    operation_id = "escalation_training_examples",
    responses((status = 200, content_type = "application/x-ndjson", body = String,
        description = "one `{id, channel, reference_date, text, intent, promised_date}` a line (shared/corpus/README.md)")),
    security(("api_key" = [])))]
pub async fn training_examples(caller: Caller, State(ctx): State<Arc<Context>>) -> Result<Response, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    let rows = store::labelled(&mut conn, caller.firm_id).await?;
    let mut body = String::new();
    for r in &rows {
        let line = TrainingExample {
            id: r.reply_id.to_string(),
            channel: &r.channel,
            reference_date: r.reference_date,
            text: &r.text,
            intent: &r.intent,
            promised_date: r.promised_date,
        };
        body.push_str(&serde_json::to_string(&line).map_err(ApiError::internal)?);
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
