//! Opt-outs and opt-ins by firm users, a contact's consent, and the firm's ledger.
use super::json_body;
use crate::handlers::Context;
use crate::ledger::{self, Action, Change, LedgerError, Source};
use crate::store::{self, CHANNELS, ContactRow, Entry};
use arflow_core::Channel;
use arflow_service::api::{ApiError, Caller, List, ProblemBody};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConsentChange)]
pub struct ConsentBody {
    pub contact_id: Uuid,
    /// `email`, `voice` or `sms`; `null` or absent: every channel.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub reason: String,
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Invalid(reason) => ApiError::Validation(reason),
            other => ApiError::internal(other),
        }
    }
}

/// The firm's contact, or 404 (another firm's contact is not found either).
pub(crate) async fn firm_contact(ctx: &Context, firm_id: Uuid, contact_id: Uuid) -> Result<ContactRow, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    store::contacts_by_id(&mut conn, &[contact_id])
        .await?
        .remove(&contact_id)
        .filter(|c| c.firm_id == firm_id)
        .ok_or_else(|| ApiError::NotFound(format!("no contact {contact_id} in this firm")))
}

fn change(caller: &Caller, contact: &ContactRow, body: &ConsentBody, action: Action, evidence: String) -> Change {
    Change {
        firm_id: caller.firm_id,
        contact_id: contact.contact_id,
        client_id: contact.client_id,
        channel: body.channel,
        action,
        source: Source::FirmUser,
        actor: caller.actor.clone(),
        evidence,
        cause: None,
    }
}

/// `POST /v1/consent/opt-outs`: the hold is written before the answer.
#[utoipa::path(post, path = "/v1/consent/opt-outs", tag = "consent", request_body = ConsentBody,
    params(("X-Arflow-Actor" = Option<String>, Header, description = "the firm user acting")),
    responses((status = 201, body = Entry), (status = 404, body = ProblemBody), (status = 422, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn opt_out(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    let body: ConsentBody = json_body(&body)?;
    let contact = firm_contact(&ctx, caller.firm_id, body.contact_id).await?;
    let reason = body.reason.trim();
    let evidence =
        if reason.is_empty() { format!("opted out by firm user {}", caller.actor) } else { reason.to_string() };
    let change = change(&caller, &contact, &body, Action::OptOut, evidence);
    let now = ctx.clock.now();
    ledger::hold_all(&ctx.holds, &[&change], now, 1, false).await?;
    let mut tx = ctx.pool.begin().await?;
    let mut recorded = ledger::record_opt_outs(&mut tx, &ctx.holds, &[&change], now, 1).await?;
    tx.commit().await?;
    ctx.outbox.notify();
    let entry = recorded.pop().map(|r| r.entry).ok_or_else(|| ApiError::Internal("no entry recorded".into()))?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// `POST /v1/consent/opt-ins`: only with the firm user's reason.
#[utoipa::path(post, path = "/v1/consent/opt-ins", tag = "consent", request_body = ConsentBody,
    params(("X-Arflow-Actor" = Option<String>, Header, description = "the firm user acting")),
    responses((status = 201, body = Entry), (status = 404, body = ProblemBody),
        (status = 422, description = "no reason given", body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn opt_in(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    let body: ConsentBody = json_body(&body)?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::Validation(
            "reason: an opt-in needs the reason the contact may be contacted again".into(),
        ));
    }
    let contact = firm_contact(&ctx, caller.firm_id, body.contact_id).await?;
    let change = change(&caller, &contact, &body, Action::OptIn, reason);
    let recorded = ledger::opt_in(&ctx.pool, &ctx.holds, &change, ctx.clock.now(), None)
        .await?
        .ok_or_else(|| ApiError::Internal("no entry recorded".into()))?;
    ctx.outbox.notify();
    Ok((StatusCode::CREATED, Json(recorded.entry)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelState {
    pub opted_out: bool,
    /// The entry that decides it (`None`: nothing was ever recorded for the channel).
    pub since: Option<DateTime<Utc>>,
    pub source: Option<String>,
    pub evidence: Option<String>,
    pub entry_id: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactConsent {
    pub contact_id: Uuid,
    pub client_id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub channels: BTreeMap<String, ChannelState>,
    /// Every entry, oldest first.
    pub history: Vec<Entry>,
}

/// `GET /v1/consent/contacts/{contact_id}`: the state per channel and the whole history.
#[utoipa::path(get, path = "/v1/consent/contacts/{contact_id}", tag = "consent",
    params(("contact_id" = Uuid, Path)),
    responses((status = 200, body = ContactConsent), (status = 404, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn contact(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Path(contact_id): Path<Uuid>,
) -> Result<Json<ContactConsent>, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    let known = store::contacts_by_id(&mut conn, &[contact_id]).await?.remove(&contact_id);
    let history = store::history(&mut conn, caller.firm_id, contact_id).await?;
    let contact = known.filter(|c| c.firm_id == caller.firm_id);
    let client_id = match (&contact, history.last()) {
        (Some(c), _) => c.client_id,
        (None, Some(e)) => e.client_id,
        (None, None) => return Err(ApiError::NotFound(format!("no contact {contact_id} in this firm"))),
    };
    let state = store::state(&mut conn, contact_id).await?;
    let channels = CHANNELS
        .into_iter()
        .map(|c| {
            let e = state.by_channel.get(&c);
            let s = ChannelState {
                opted_out: state.opted_out(c),
                since: e.map(|e| e.recorded_at),
                source: e.map(|e| e.source.clone()),
                evidence: e.map(|e| e.evidence.clone()),
                entry_id: e.map(|e| e.id),
            };
            (c.to_string(), s)
        })
        .collect();
    Ok(Json(ContactConsent {
        contact_id,
        client_id,
        name: contact.as_ref().map(|c| c.name.clone()),
        email: contact.as_ref().and_then(|c| c.email.clone()),
        phone: contact.as_ref().and_then(|c| c.phone.clone()),
        channels,
        history,
    }))
}

/// `?limit=&cursor=` of the ledger (up to 500 entries a page).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1..=500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/consent/ledger?limit&cursor`: the firm's entries, newest first.
#[utoipa::path(get, path = "/v1/consent/ledger", tag = "consent", params(PageQuery),
    responses((status = 200, body = List<Entry>), (status = 422, body = ProblemBody)),
    security(("api_key" = [])))]
pub async fn ledger(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<List<Entry>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation("limit: between 1 and 500".into()));
    }
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(c.parse::<i64>().map_err(|_| ApiError::Validation("cursor: not a cursor from this API".into()))?)
        }
        None => None,
    };
    let mut conn = ctx.pool.acquire().await?;
    let rows = store::ledger_page(&mut conn, caller.firm_id, before, limit + 1).await?;
    Ok(Json(List::from_rows(rows, limit, |e: &Entry| e.seq.to_string())))
}
