//! The activity of one invoice (every step, with why) and the firm's portfolio summary.
use super::ApiPath;
use crate::auth::FirmAuth;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store;
use arflow_contracts::events::{AutomationStatus, Check, IntentScore, NextAction};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceSummary {
    pub id: Uuid,
    pub number: Option<String>,
    #[schema(value_type = String)]
    pub amount_remaining: Decimal,
    pub currency: String,
    pub due_date: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `invoice_created`, `eligibility_changed`, `plan_updated`, `step_due`, `step_skipped`,
    /// `email_sent`, `email_failed`, `email_suppressed`, `call_completed`, `call_no_answer`,
    /// `call_voicemail`, `call_failed`, `call_skipped`, `sms_sent`, `sms_failed`, `sms_skipped`,
    /// `reply_received`, `reply_needs_review` (not understood with confidence: nothing is done
    /// until a firm user labels it), `reply_labelled` (that label, acted on like a reply),
    /// `halted`, `payment_failed`, `opted_out`...
    ///
    /// A call's `body` is its transcript (`Agent: ...` / `Client: ... [intent]` lines) and its
    /// `template` the script; a text's `body` is the message sent.
    pub kind: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<Check>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_revision: Option<u64>,
    /// A client reply: the intent understood (`opt_out`, `promise_to_pay`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The client's phrase that decided the intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The client's own words (quotes and signature removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promised_date: Option<chrono::NaiveDate>,
    /// `email`, `voice` or `sms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The number called or texted, masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A call attempt (`call_*` entries): outcome, attempt, transcript, recording, script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<store::CallActivity>,
    /// `reply_needs_review`: the classifier's likeliest intents with their scores (0-1), best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<IntentScore>>,
    /// `reply_labelled`: the firm user who said what the reply means (`intent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled_by: Option<String>,
    /// The arflow event id or Stripe event id behind the entry.
    pub event_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub invoice: InvoiceSummary,
    pub automation_status: Option<AutomationStatus>,
    pub next_action: Option<NextAction>,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
}

#[utoipa::path(get, path = "/v1/invoices/{id}/activity", tag = "activity", params(("id" = Uuid, Path)),
    responses((status = 200, body = Activity), (status = 404, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, invoice_id = %id))]
pub async fn invoice_activity(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Activity>, ApiError> {
    let mut conn = state.base.pool.acquire().await?;
    let inv = store::invoice(&mut conn, auth.firm_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no invoice with id {id}")))?;
    drop(conn);
    let rows = store::activity_of(&state.base.pool, auth.firm_id, id).await?;
    let history = rows
        .into_iter()
        .map(|r| {
            let d = r.detail.0;
            HistoryEntry {
                at: r.at,
                kind: r.kind,
                summary: r.summary,
                rule: d.rule,
                policy_version: d.policy_version,
                checks: d.checks,
                template: d.template,
                subject: d.subject,
                body: d.body,
                reason: d.reason,
                step: d.step,
                hold_revision: d.hold_revision,
                intent: d.intent,
                evidence: d.evidence,
                client_text: d.client_text,
                promised_date: d.promised_date,
                channel: d.channel,
                to: d.to,
                call: d.call,
                scores: d.scores,
                labelled_by: d.labelled_by,
                event_id: r.event_id,
            }
        })
        .collect();
    let amount_remaining = inv.scaled(inv.amount_remaining);
    Ok(Json(Activity {
        automation_status: inv.automation_status.as_deref().and_then(|s| store::from_text("status", s).ok()),
        next_action: inv.next_action.as_ref().map(|n| n.0.clone()),
        invoice: InvoiceSummary {
            id: inv.id,
            number: inv.number,
            amount_remaining,
            currency: inv.currency,
            due_date: inv.due_date,
            status: inv.status,
        },
        history,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Portfolio {
    /// Invoices per automation status (`unknown` before eligibility has run).
    pub invoices_by_automation_status: BTreeMap<String, i64>,
    pub invoices_by_status: BTreeMap<String, i64>,
    pub emails_sent_by_step: BTreeMap<String, i64>,
    /// Call attempts per outcome (`completed`, `no_answer`, `voicemail`, `failed`).
    pub calls_by_outcome: BTreeMap<String, i64>,
    pub texts_sent_by_step: BTreeMap<String, i64>,
    pub halts_by_reason: BTreeMap<String, i64>,
    pub skipped_steps_by_reason: BTreeMap<String, i64>,
    /// Emails, calls and texts stopped by the channel's last check (before SMTP or the telephony
    /// provider), per reason.
    pub suppressed_sends_by_reason: BTreeMap<String, i64>,
    pub suppressed_sends: i64,
}

const BY_AUTOMATION: &str = "SELECT coalesce(automation_status, 'unknown'), count(*) FROM invoices \
    WHERE firm_id = $1 GROUP BY 1";
const BY_STATUS: &str = "SELECT status, count(*) FROM invoices WHERE firm_id = $1 GROUP BY 1";
const SENT_BY_STEP: &str = "SELECT coalesce(detail->>'step', 'unknown'), count(*) FROM activity \
    WHERE firm_id = $1 AND kind = 'email_sent' GROUP BY 1";
const CALLS_BY_OUTCOME: &str = "SELECT coalesce(detail->'call'->>'outcome', 'unknown'), count(*) FROM activity \
    WHERE firm_id = $1 AND kind IN ('call_completed', 'call_no_answer', 'call_voicemail', 'call_failed') GROUP BY 1";
const TEXTS_BY_STEP: &str = "SELECT coalesce(detail->>'step', 'unknown'), count(*) FROM activity \
    WHERE firm_id = $1 AND kind = 'sms_sent' GROUP BY 1";
const HALTS: &str = "SELECT coalesce(detail->>'reason', 'unknown'), count(*) FROM activity \
    WHERE firm_id = $1 AND kind = 'halted' GROUP BY 1";
const SKIPPED: &str = "SELECT coalesce(detail->>'reason', 'unknown'), count(*) FROM activity \
    WHERE firm_id = $1 AND kind = 'step_skipped' GROUP BY 1";
const SUPPRESSED: &str = "SELECT coalesce(detail->>'reason', 'unknown'), count(*) FROM activity \
    WHERE firm_id = $1 AND kind IN ('email_suppressed', 'call_skipped', 'sms_skipped') GROUP BY 1";

#[utoipa::path(get, path = "/v1/portfolio", tag = "activity",
    responses((status = 200, body = Portfolio)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn portfolio(State(state): State<AppState>, auth: FirmAuth) -> Result<Json<Portfolio>, ApiError> {
    let pool = &state.base.pool;
    let f = auth.firm_id;
    let map = |rows: Vec<(String, i64)>| rows.into_iter().collect::<BTreeMap<_, _>>();
    let suppressed = map(store::count_by(pool, f, SUPPRESSED).await?);
    Ok(Json(Portfolio {
        invoices_by_automation_status: map(store::count_by(pool, f, BY_AUTOMATION).await?),
        invoices_by_status: map(store::count_by(pool, f, BY_STATUS).await?),
        emails_sent_by_step: map(store::count_by(pool, f, SENT_BY_STEP).await?),
        calls_by_outcome: map(store::count_by(pool, f, CALLS_BY_OUTCOME).await?),
        texts_sent_by_step: map(store::count_by(pool, f, TEXTS_BY_STEP).await?),
        halts_by_reason: map(store::count_by(pool, f, HALTS).await?),
        skipped_steps_by_reason: map(store::count_by(pool, f, SKIPPED).await?),
        suppressed_sends: suppressed.values().sum(),
        suppressed_sends_by_reason: suppressed,
    }))
}
