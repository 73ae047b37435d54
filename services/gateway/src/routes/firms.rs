//! Firms and their API keys.
use super::{ApiJson, check_email, check_name, check_tz, idempotent};
use crate::auth::{FirmAuth, Operator, SCOPE_API, SCOPE_INBOUND, new_api_key, new_inbound_token};
use crate::error::ApiError;
use crate::publish::message;
use crate::startup::AppState;
use crate::store::{self, FirmRow};
use arflow_contracts::events::FirmUpdated;
use arflow_contracts::{msg_id, subjects::billing};
use arflow_core::{Currency, SendWindow};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::types::Json as SqlJson;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A firm as the API shows it (webhook secrets and the Stripe key are write-only).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Firm {
    pub id: Uuid,
    pub name: String,
    pub sender_email: String,
    pub timezone: String,
    pub stripe_connected: bool,
    /// Minimum amount remaining per currency, e.g. `{"USD": "25.00"}`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub min_amounts: BTreeMap<Currency, Decimal>,
    /// `{start_hour, end_hour, days: ["Mon", ...]}` in the client's local time.
    #[schema(value_type = Object)]
    pub email_window: SendWindow,
    /// The firm's calling/texting window in the client's local time, inside 08:00-21:00;
    /// `null`: the default (08:00-21:00, Monday to Saturday).
    #[schema(value_type = Option<Object>)]
    pub call_window: Option<SendWindow>,
    /// Days raw inbound mail is kept before it is purged (default 90).
    pub raw_mail_retention_days: i32,
    pub webhook_secret_count: usize,
    pub has_stripe_api_key: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl From<&FirmRow> for Firm {
    fn from(f: &FirmRow) -> Self {
        Firm {
            id: f.id,
            name: f.name.clone(),
            sender_email: f.sender_email.clone(),
            timezone: f.timezone.clone(),
            stripe_connected: f.stripe_connected,
            min_amounts: f.min_amounts.0.clone(),
            email_window: f.email_window.0.clone(),
            call_window: f.call_window.as_ref().map(|w| w.0.clone()),
            raw_mail_retention_days: f.raw_mail_retention_days,
            webhook_secret_count: f.stripe_webhook_secrets.len(),
            has_stripe_api_key: f.stripe_api_key.is_some(),
            version: f.version,
            created_at: f.created_at,
        }
    }
}

/// No `Debug`: it carries secrets.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFirm {
    pub name: String,
    pub sender_email: String,
    /// IANA zone, e.g. `America/New_York`.
    pub timezone: String,
    /// Stripe webhook signing secrets (`whsec_...`); several while rotating.
    pub stripe_webhook_secrets: Vec<String>,
    pub stripe_api_key: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub min_amounts: Option<BTreeMap<Currency, Decimal>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub email_window: Option<SendWindow>,
    /// Calls and texts only in this window (hours within 08-21); absent or `null`: the default.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub call_window: Option<SendWindow>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FirmCreated {
    pub firm: Firm,
    /// Shown once; only its hash is stored.
    pub api_key: String,
    /// For `POST /webhooks/email/inbound/{firm_id}` only (Bearer, or Basic password). Shown once.
    pub inbound_token: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchFirm {
    pub name: Option<String>,
    pub sender_email: Option<String>,
    pub timezone: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub min_amounts: Option<BTreeMap<Currency, Decimal>>,
    #[schema(value_type = Option<Object>)]
    pub email_window: Option<SendWindow>,
    /// A window (hours within 08-21) or `null` to go back to the default; absent: unchanged.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<Object>)]
    pub call_window: Option<Option<SendWindow>>,
    pub stripe_connected: Option<bool>,
    /// Write-only; replaces the list.
    pub stripe_webhook_secrets: Option<Vec<String>>,
    /// Write-only.
    pub stripe_api_key: Option<String>,
    /// Days raw inbound mail is kept (1-3650).
    pub raw_mail_retention_days: Option<i32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreated {
    pub id: Uuid,
    /// Shown once.
    pub api_key: String,
}

fn check_secrets(secrets: &[String]) -> Result<(), ApiError> {
    if secrets.iter().any(|s| s.trim().is_empty()) {
        return Err(ApiError::Validation("stripe_webhook_secrets must not contain empty secrets".into()));
    }
    if secrets.len() > 5 {
        return Err(ApiError::Validation("at most 5 stripe_webhook_secrets at once".into()));
    }
    Ok(())
}

fn check_settings(min_amounts: &BTreeMap<Currency, Decimal>, window: &SendWindow) -> Result<(), ApiError> {
    if let Some((c, _)) = min_amounts.iter().find(|(_, v)| v.is_sign_negative()) {
        return Err(ApiError::Validation(format!("min_amounts.{c} must not be negative")));
    }
    window.validate().map_err(|e| ApiError::Validation(format!("email_window: {e}")))
}

/// A call window must be a window, and may only narrow the 08:00-21:00 fence (fence 4).
fn check_call_window(window: Option<&SendWindow>) -> Result<(), ApiError> {
    let Some(w) = window else { return Ok(()) };
    w.validate().map_err(|e| ApiError::Validation(format!("call_window: {e}")))?;
    let (earliest, latest) = (arflow_core::calls::EARLIEST_HOUR, arflow_core::calls::LATEST_HOUR);
    if w.start_hour < earliest || w.end_hour > latest {
        return Err(ApiError::Validation(format!(
            "call_window: calls are only allowed between {earliest:02}:00 and {latest:02}:00 in the client's local \
             time; start_hour must be at least {earliest} and end_hour at most {latest} (got {}-{})",
            w.start_hour, w.end_hour
        )));
    }
    Ok(())
}

fn firm_event(f: &FirmRow) -> FirmUpdated {
    FirmUpdated {
        firm_id: f.id,
        name: f.name.clone(),
        sender_email: f.sender_email.clone(),
        stripe_connected: f.stripe_connected,
        timezone: f.timezone.clone(),
        min_amounts: f.min_amounts.0.clone(),
        email_window: f.email_window.0.clone(),
        call_window: f.call_window.as_ref().map(|w| w.0.clone()),
        version: f.version,
    }
}

fn firm_message(f: &FirmRow, now: DateTime<Utc>) -> Result<arflow_store::OutboxMessage, ApiError> {
    Ok(message(billing::FIRM_UPDATED, f.id, f.id, now, msg_id::record("firm", f.id, f.version), firm_event(f))?)
}

/// Creates a firm and its first API key (operator only).
#[utoipa::path(post, path = "/v1/firms", request_body = CreateFirm, tag = "firms",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 201, body = FirmCreated), (status = 401, body = crate::error::ProblemBody),
        (status = 422, body = crate::error::ProblemBody)),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create_firm(
    State(state): State<AppState>,
    _op: Operator,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateFirm>,
) -> Result<Response, ApiError> {
    // Firm creation's idempotency keys live under the nil firm.
    idempotent(&state, Uuid::nil(), &headers, "/v1/firms", || async {
        let name = check_name("name", &body.name)?;
        let sender_email = check_email("sender_email", &body.sender_email)?;
        check_tz("timezone", &body.timezone)?;
        check_secrets(&body.stripe_webhook_secrets)?;
        let min_amounts = body.min_amounts.unwrap_or_default();
        let email_window = body.email_window.unwrap_or_else(SendWindow::business_hours);
        check_settings(&min_amounts, &email_window)?;
        check_call_window(body.call_window.as_ref())?;
        let now = state.base.clock.now();
        let firm = FirmRow {
            id: arflow_core::new_id(),
            name,
            sender_email,
            timezone: body.timezone.clone(),
            stripe_connected: true,
            stripe_webhook_secrets: body.stripe_webhook_secrets.clone(),
            stripe_api_key: body.stripe_api_key.clone().filter(|k| !k.is_empty()),
            min_amounts: SqlJson(min_amounts),
            email_window: SqlJson(email_window),
            call_window: body.call_window.clone().map(SqlJson),
            raw_mail_retention_days: 90,
            version: 1,
            created_at: now,
        };
        let (api_key, hash) = new_api_key();
        let (inbound_token, inbound_hash) = new_inbound_token();
        let mut tx = state.base.pool.begin().await?;
        store::insert_firm(&mut tx, &firm, now).await?;
        store::insert_api_key(&mut tx, firm.id, &hash, &api_key[..8], SCOPE_API, now).await?;
        store::insert_api_key(&mut tx, firm.id, &inbound_hash, &inbound_token[..8], SCOPE_INBOUND, now).await?;
        arflow_store::outbox::enqueue(&mut tx, &[firm_message(&firm, now)?]).await?;
        tx.commit().await?;
        state.base.outbox.notify();
        tracing::info!(firm_id = %firm.id, "firm created");
        let body = serde_json::to_value(FirmCreated { firm: Firm::from(&firm), api_key, inbound_token })?;
        Ok((StatusCode::CREATED, body))
    })
    .await
}

/// The authenticated firm.
#[utoipa::path(get, path = "/v1/firm", tag = "firms", responses((status = 200, body = Firm)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn get_firm(State(state): State<AppState>, auth: FirmAuth) -> Result<Json<Firm>, ApiError> {
    let firm = store::firm(&state.base.pool, auth.firm_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the firm no longer exists".into()))?;
    Ok(Json(Firm::from(&firm)))
}

/// Changes the firm's settings; publishes `billing.firm_updated` with the next version.
#[utoipa::path(patch, path = "/v1/firm", request_body = PatchFirm, tag = "firms",
    responses((status = 200, body = Firm), (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn patch_firm(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiJson(body): ApiJson<PatchFirm>,
) -> Result<Json<Firm>, ApiError> {
    let now = state.base.clock.now();
    let mut tx = state.base.pool.begin().await?;
    let mut firm = store::firm_for_update(&mut tx, auth.firm_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the firm no longer exists".into()))?;
    if let Some(name) = &body.name {
        firm.name = check_name("name", name)?;
    }
    if let Some(email) = &body.sender_email {
        firm.sender_email = check_email("sender_email", email)?;
    }
    if let Some(tz) = &body.timezone {
        check_tz("timezone", tz)?;
        firm.timezone = tz.clone();
    }
    if let Some(m) = body.min_amounts {
        firm.min_amounts = SqlJson(m);
    }
    if let Some(w) = body.email_window {
        firm.email_window = SqlJson(w);
    }
    check_settings(&firm.min_amounts.0, &firm.email_window.0)?;
    if let Some(w) = body.call_window {
        check_call_window(w.as_ref())?;
        firm.call_window = w.map(SqlJson);
    }
    if let Some(c) = body.stripe_connected {
        firm.stripe_connected = c;
    }
    if let Some(secrets) = body.stripe_webhook_secrets {
        check_secrets(&secrets)?;
        firm.stripe_webhook_secrets = secrets;
    }
    if let Some(key) = body.stripe_api_key {
        firm.stripe_api_key = Some(key).filter(|k| !k.is_empty());
    }
    if let Some(days) = body.raw_mail_retention_days {
        if !(1..=3650).contains(&days) {
            return Err(ApiError::Validation("raw_mail_retention_days must be between 1 and 3650".into()));
        }
        firm.raw_mail_retention_days = days;
    }
    firm.version += 1;
    store::update_firm(&mut tx, &firm, now).await?;
    arflow_store::outbox::enqueue(&mut tx, &[firm_message(&firm, now)?]).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    tracing::info!(version = firm.version, "firm updated");
    Ok(Json(Firm::from(&firm)))
}

/// A new API key for the authenticated firm (shown once).
#[utoipa::path(post, path = "/v1/firm/api-keys", tag = "firms",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 201, body = ApiKeyCreated)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn create_api_key(
    State(state): State<AppState>,
    auth: FirmAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    idempotent(&state, auth.firm_id, &headers, "/v1/firm/api-keys", || async {
        let (api_key, hash) = new_api_key();
        let mut tx = state.base.pool.begin().await?;
        let now = state.base.clock.now();
        let id = store::insert_api_key(&mut tx, auth.firm_id, &hash, &api_key[..8], SCOPE_API, now).await?;
        tx.commit().await?;
        Ok((StatusCode::CREATED, serde_json::to_value(ApiKeyCreated { id, api_key })?))
    })
    .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundTokenCreated {
    pub id: Uuid,
    /// Shown once. Authenticates `POST /webhooks/email/inbound/{firm_id}` and nothing else.
    pub inbound_token: String,
}

/// A new inbound-webhook token for the authenticated firm (shown once), e.g. to rotate it.
#[utoipa::path(post, path = "/v1/firm/inbound-tokens", tag = "firms",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 201, body = InboundTokenCreated)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn create_inbound_token(
    State(state): State<AppState>,
    auth: FirmAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    idempotent(&state, auth.firm_id, &headers, "/v1/firm/inbound-tokens", || async {
        let (inbound_token, hash) = new_inbound_token();
        let mut tx = state.base.pool.begin().await?;
        let now = state.base.clock.now();
        let id = store::insert_api_key(&mut tx, auth.firm_id, &hash, &inbound_token[..8], SCOPE_INBOUND, now).await?;
        tx.commit().await?;
        Ok((StatusCode::CREATED, serde_json::to_value(InboundTokenCreated { id, inbound_token })?))
    })
    .await
}
