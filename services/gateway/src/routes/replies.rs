//! `GET /v1/replies`: the firm's reply inbox. Every client reply, bounce and complaint as arflow
//! understood it, with the phrase that decided it and what was done, including the ones that
//! could not be tied to an invoice (a person should look at those).
use super::{ApiQuery, List, Page};
use crate::auth::FirmAuth;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{self, ReplyRow};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reply {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    /// `email` (voice transcripts later).
    pub channel: String,
    /// `reply`, `auto_reply`, `bounce` or `complaint`.
    pub kind: String,
    /// `opt_out`, `dispute`, `already_paid`, `payment_plan`, `promise_to_pay`, `wrong_contact`,
    /// `question`, `acknowledged`, `auto_reply`; none for bounces and complaints.
    pub intent: Option<String>,
    pub promised_date: Option<NaiveDate>,
    /// The client's phrase that decided the intent (`llm:<model>` when the assist decided).
    pub evidence: String,
    /// The client's own words, quotes and signature removed.
    pub client_text: String,
    /// `None`: not tied to any email arflow sent.
    pub invoice_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// `reply_token`, `in_reply_to` or `sender_address`.
    pub matched_by: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// What arflow did about it.
    pub action: String,
    /// Not understood with confidence: arflow does nothing on it until a firm user labels it
    /// (the `needs_review` escalation case); `intent` is then only the classifier's guess.
    pub needs_review: bool,
    /// The firm user whose label decided `intent`.
    pub labelled_by: Option<String>,
}

impl From<ReplyRow> for Reply {
    fn from(r: ReplyRow) -> Self {
        Reply {
            id: r.reply_id,
            received_at: r.received_at,
            channel: r.channel,
            kind: r.kind,
            intent: r.intent,
            promised_date: r.promised_date,
            evidence: r.evidence,
            client_text: r.client_text,
            invoice_id: r.invoice_id,
            contact_id: r.contact_id,
            matched_by: r.matched_by,
            from: r.from_address,
            subject: r.subject,
            action: r.action,
            needs_review: r.needs_review,
            labelled_by: r.labelled_by,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplyFilter {
    /// An intent (`opt_out`...), a kind (`bounce`, `complaint`, `auto_reply`), or `needs_review`
    /// (the replies waiting for a firm user's label).
    pub intent: Option<String>,
    /// `false`: only the replies no invoice could be found for.
    pub matched: Option<bool>,
}

/// The firm's replies, newest first.
#[utoipa::path(get, path = "/v1/replies", tag = "activity", params(Page, ReplyFilter),
    responses((status = 200, body = List<Reply>), (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn list_replies(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiQuery(page): ApiQuery<Page>,
    ApiQuery(filter): ApiQuery<ReplyFilter>,
) -> Result<Json<List<Reply>>, ApiError> {
    let limit = page.limit()?;
    let rows = store::list_replies(
        &state.base.pool,
        auth.firm_id,
        filter.intent.as_deref(),
        filter.matched,
        page.cursor,
        limit + 1,
    )
    .await?;
    let page = List::page(rows, limit, |r| r.reply_id);
    Ok(Json(page.map(Reply::from)))
}
