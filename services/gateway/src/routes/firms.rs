//! Firms and their API keys.
use super::{ApiJson, check_email, check_name, check_tz};
use crate::auth::{FirmAuth, Operator, new_api_key, new_inbound_token};
use crate::error::ApiError;
use crate::idempotency::{self, Idempotency};
use crate::keys::{self, Access, KIND_API, KIND_INBOUND, NewKey};
use crate::publish::message;
use crate::startup::AppState;
use crate::store::{self, FirmRow};
use arflow_contracts::events::FirmUpdated;
use arflow_contracts::{msg_id, subjects::billing};
use arflow_core::{Currency, SendWindow};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
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
    /// An `admin` key. Shown once; only its hash is stored (a replay of the request answers `null`).
    pub api_key: Option<String>,
    /// For `POST /webhooks/email/inbound/{firm_id}` only (Bearer, or Basic password). Shown once.
    pub inbound_token: Option<String>,
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
    idem: Idempotency,
    ApiJson(body): ApiJson<CreateFirm>,
) -> Result<Response, ApiError> {
    let state = &state;
    // Firm creation's idempotency keys live under the nil firm.
    idempotency::run(state, Uuid::nil(), &idem, &Method::POST, "/v1/firms", |claim| async move {
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
        let first_key = NewKey {
            firm_id: firm.id,
            kind: KIND_API,
            hash: &hash,
            prefix: &api_key[..8],
            name: "first key",
            access: Access::Admin,
            expires_at: None,
        };
        let key_id = keys::insert(&mut tx, &first_key, now).await?;
        let first_token = NewKey {
            kind: KIND_INBOUND,
            hash: &inbound_hash,
            prefix: &inbound_token[..8],
            name: "",
            access: Access::Write,
            ..first_key
        };
        let token_id = keys::insert(&mut tx, &first_token, now).await?;
        for (id, kind) in [(key_id, KIND_API), (token_id, KIND_INBOUND)] {
            keys::record_event(&mut tx, firm.id, id, "created", None, serde_json::json!({"kind": kind}), now).await?;
        }
        arflow_store::outbox::enqueue(&mut tx, &[firm_message(&firm, now)?]).await?;
        let created =
            FirmCreated { firm: Firm::from(&firm), api_key: Some(api_key), inbound_token: Some(inbound_token) };
        let body = serde_json::to_value(created)?;
        claim.complete(&mut tx, StatusCode::CREATED, &body).await?;
        tx.commit().await?;
        state.base.outbox.notify();
        tracing::info!(firm_id = %firm.id, "firm created");
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

/// Changes the firm's settings (the Stripe connection and secrets need an admin key); publishes `billing.firm_updated` with the next version.
#[utoipa::path(patch, path = "/v1/firm", request_body = PatchFirm, tag = "firms",
    responses((status = 200, body = Firm), (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn patch_firm(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiJson(body): ApiJson<PatchFirm>,
) -> Result<Json<Firm>, ApiError> {
    if body.stripe_connected.is_some() || body.stripe_webhook_secrets.is_some() || body.stripe_api_key.is_some() {
        auth.require_admin("changing the firm's Stripe connection or secrets")?;
    }
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
