//! A firm's API keys and inbound tokens: list, create (with a scope and an expiry), revoke,
//! rotate with an overlap, and the audit log. Every change needs an admin key and is logged.
use super::{ApiPath, ApiQuery, List, Page, check_name};
use crate::auth::{FirmAuth, new_api_key, new_inbound_token};
use crate::error::ApiError;
use crate::idempotency::{self, Claim, Idempotency};
use crate::keys::{self, Access, KIND_API, KIND_INBOUND, KeyEvent, KeyView, NewKey};
use crate::startup::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Overlap given to the old credential when none is asked for.
const DEFAULT_OVERLAP_HOURS: i64 = 24;
/// Longest overlap a rotation may keep the old credential alive.
const MAX_OVERLAP_HOURS: i64 = 24 * 30;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for, e.g. `accounting sync`.
    #[serde(default)]
    pub name: Option<String>,
    /// `read`, `write` (default) or `admin`.
    #[serde(default)]
    pub scope: Option<Access>,
    /// When the key stops working; absent: never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Hours the old credential keeps working (0 to 720, default 24).
    #[serde(default)]
    pub overlap_hours: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreated {
    pub id: Uuid,
    /// Shown once; only its hash is stored. A replay of the request answers `null` here.
    pub api_key: Option<String>,
    pub key: KeyView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundTokenCreated {
    pub id: Uuid,
    /// Shown once. Authenticates `POST /webhooks/email/inbound/{firm_id}` and nothing else. A
    /// replay of the request answers `null` here.
    pub inbound_token: Option<String>,
    pub token: KeyView,
    /// The tokens this one replaces, and when they stop working.
    pub replaces: Vec<Replaced>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Replaced {
    pub id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// An optional JSON body (`{}` or nothing at all).
fn optional_body<T: Default + serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Validation(format!("body: {e}")))
}

fn overlap(hours: Option<i64>) -> Result<chrono::Duration, ApiError> {
    let hours = hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if !(0..=MAX_OVERLAP_HOURS).contains(&hours) {
        return Err(ApiError::Validation(format!("overlap_hours must be between 0 and {MAX_OVERLAP_HOURS}")));
    }
    Ok(chrono::Duration::hours(hours))
}

fn not_found(kind: &str, id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no {kind} {id}"))
}

/// The firm's API keys, newest first (never the keys themselves).
#[utoipa::path(get, path = "/v1/firm/api-keys", tag = "keys", params(Page),
    responses((status = 200, body = List<KeyView>)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<KeyView>>, ApiError> {
    list(&state, auth.firm_id, KIND_API, &page).await
}

/// The firm's inbound tokens, newest first (never the tokens themselves).
#[utoipa::path(get, path = "/v1/firm/inbound-tokens", tag = "keys", params(Page),
    responses((status = 200, body = List<KeyView>)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn list_inbound_tokens(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<KeyView>>, ApiError> {
    list(&state, auth.firm_id, KIND_INBOUND, &page).await
}

async fn list(state: &AppState, firm_id: Uuid, kind: &str, page: &Page) -> Result<Json<List<KeyView>>, ApiError> {
    let limit = page.limit()?;
    let data = keys::list(&state.base.pool, firm_id, kind, page.cursor, limit + 1).await?;
    Ok(Json(List::page(data, limit, |k| k.id)))
}

/// A new API key (shown once): `read`, `write` or `admin`, with an optional expiry.
#[utoipa::path(post, path = "/v1/firm/api-keys", request_body(content = CreateKey, description = "optional"),
    tag = "keys",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response, without the key")),
    responses((status = 201, body = ApiKeyCreated), (status = 403, body = crate::error::ProblemBody),
        (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn create_api_key(
    State(state): State<AppState>,
    auth: FirmAuth,
    idem: Idempotency,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_admin("creating an API key")?;
    let body: CreateKey = optional_body(&body)?;
    let state = &state;
    idempotency::run(state, auth.firm_id, &idem, &Method::POST, "/v1/firm/api-keys", |claim| async move {
        let name = body.name.as_deref().map(|n| check_name("name", n)).transpose()?.unwrap_or_default();
        let now = state.base.clock.now();
        if body.expires_at.is_some_and(|t| t <= now) {
            return Err(ApiError::Validation("expires_at must be in the future".into()));
        }
        let access = body.scope.unwrap_or(Access::Write);
        let (api_key, hash) = new_api_key();
        let new = NewKey {
            firm_id: auth.firm_id,
            kind: KIND_API,
            hash: &hash,
            prefix: &api_key[..8],
            name: &name,
            access,
            expires_at: body.expires_at,
        };
        let mut tx = state.base.pool.begin().await?;
        let id = keys::insert(&mut tx, &new, now).await?;
        let detail =
            serde_json::json!({"kind": KIND_API, "scope": access, "name": name, "expires_at": body.expires_at});
        keys::record_event(&mut tx, auth.firm_id, id, "created", Some(auth.key_id), detail, now).await?;
        let key =
            keys::get_for_update(&mut tx, auth.firm_id, KIND_API, id).await?.ok_or_else(|| not_found("key", id))?;
        let created = serde_json::to_value(ApiKeyCreated { id, api_key: Some(api_key), key })?;
        claim.complete(&mut tx, StatusCode::CREATED, &created).await?;
        tx.commit().await?;
        tracing::info!(key_id = %id, scope = access.as_str(), "API key created");
        Ok((StatusCode::CREATED, created))
    })
    .await
}

/// Revokes an API key at once. The firm's last live admin key cannot be revoked.
#[utoipa::path(delete, path = "/v1/firm/api-keys/{id}", tag = "keys", params(("id" = Uuid, Path)),
    responses((status = 200, body = KeyView), (status = 404, body = crate::error::ProblemBody),
        (status = 409, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, key_id = %id))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<KeyView>, ApiError> {
    auth.require_admin("revoking an API key")?;
    revoke(&state, auth, KIND_API, id).await
}

/// Revokes an inbound token at once.
#[utoipa::path(delete, path = "/v1/firm/inbound-tokens/{id}", tag = "keys", params(("id" = Uuid, Path)),
    responses((status = 200, body = KeyView), (status = 404, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, key_id = %id))]
pub async fn revoke_inbound_token(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<KeyView>, ApiError> {
    auth.require_admin("revoking an inbound token")?;
    revoke(&state, auth, KIND_INBOUND, id).await
}

async fn revoke(state: &AppState, auth: FirmAuth, kind: &str, id: Uuid) -> Result<Json<KeyView>, ApiError> {
    let now = state.base.clock.now();
    let mut tx = state.base.pool.begin().await?;
    let key = keys::get_for_update(&mut tx, auth.firm_id, kind, id).await?.ok_or_else(|| not_found(kind, id))?;
    if key.revoked_at.is_some() {
        return Ok(Json(key));
    }
    if key.scope == Access::Admin && kind == KIND_API && keys::other_admins(&mut tx, auth.firm_id, id, now).await? == 0
    {
        return Err(ApiError::Conflict(
            "this is the firm's last live admin key: create another admin key before revoking it".into(),
        ));
    }
    keys::revoke(&mut tx, id, now).await?;
    keys::record_event(&mut tx, auth.firm_id, id, "revoked", Some(auth.key_id), serde_json::json!({"kind": kind}), now)
        .await?;
    let key = keys::get_for_update(&mut tx, auth.firm_id, kind, id).await?.ok_or_else(|| not_found(kind, id))?;
    tx.commit().await?;
    tracing::info!(kind, "credential revoked");
    Ok(Json(key))
}

/// Rotates an API key: a new key with the same name and scope (shown once); the old one keeps
/// working for `overlap_hours` (default 24), then stops.
#[utoipa::path(post, path = "/v1/firm/api-keys/{id}/rotate", request_body(content = Rotate, description = "optional"),
    tag = "keys",
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response, without the key")),
    responses((status = 201, body = ApiKeyCreated), (status = 404, body = crate::error::ProblemBody),
        (status = 409, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, key_id = %id))]
pub async fn rotate_api_key(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
    idem: Idempotency,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_admin("rotating an API key")?;
    let body: Rotate = optional_body(&body)?;
    let overlap = overlap(body.overlap_hours)?;
    let state = &state;
    let path = format!("/v1/firm/api-keys/{id}/rotate");
    idempotency::run(state, auth.firm_id, &idem, &Method::POST, &path, |claim: Claim| async move {
        let now = state.base.clock.now();
        let mut tx = state.base.pool.begin().await?;
        let old =
            keys::get_for_update(&mut tx, auth.firm_id, KIND_API, id).await?.ok_or_else(|| not_found("key", id))?;
        if old.revoked_at.is_some() || old.expires_at.is_some_and(|t| t <= now) {
            return Err(ApiError::Conflict("this key is revoked or expired: create a new key instead".into()));
        }
        let (api_key, hash) = new_api_key();
        let new = NewKey {
            firm_id: auth.firm_id,
            kind: KIND_API,
            hash: &hash,
            prefix: &api_key[..8],
            name: &old.name,
            access: old.scope,
            expires_at: None,
        };
        let new_id = keys::insert(&mut tx, &new, now).await?;
        let until = now + overlap;
        keys::expire_by(&mut tx, id, until, Some(new_id)).await?;
        let detail = serde_json::json!({"kind": KIND_API, "replaced_by": new_id, "old_expires_at": until});
        keys::record_event(&mut tx, auth.firm_id, id, "rotated", Some(auth.key_id), detail, now).await?;
        let detail = serde_json::json!({"kind": KIND_API, "scope": old.scope, "replaces": id});
        keys::record_event(&mut tx, auth.firm_id, new_id, "created", Some(auth.key_id), detail, now).await?;
        let key = keys::get_for_update(&mut tx, auth.firm_id, KIND_API, new_id)
            .await?
            .ok_or_else(|| not_found("key", new_id))?;
        let created = serde_json::to_value(ApiKeyCreated { id: new_id, api_key: Some(api_key), key })?;
        claim.complete(&mut tx, StatusCode::CREATED, &created).await?;
        tx.commit().await?;
        tracing::info!(new_key_id = %new_id, "API key rotated");
        Ok((StatusCode::CREATED, created))
    })
    .await
}

/// A new inbound token (shown once). Every other live inbound token of the firm keeps working
/// for `overlap_hours` (default 24: time to change the mail provider's webhook), then stops.
#[utoipa::path(post, path = "/v1/firm/inbound-tokens", request_body(content = Rotate, description = "optional"),
    tag = "keys",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response, without the token")),
    responses((status = 201, body = InboundTokenCreated)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn create_inbound_token(
    State(state): State<AppState>,
    auth: FirmAuth,
    idem: Idempotency,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_admin("creating an inbound token")?;
    let body: Rotate = optional_body(&body)?;
    let overlap = overlap(body.overlap_hours)?;
    let state = &state;
    idempotency::run(state, auth.firm_id, &idem, &Method::POST, "/v1/firm/inbound-tokens", |claim| async move {
        let now = state.base.clock.now();
        let (inbound_token, hash) = new_inbound_token();
        let new = NewKey {
            firm_id: auth.firm_id,
            kind: KIND_INBOUND,
            hash: &hash,
            prefix: &inbound_token[..8],
            name: "",
            access: Access::Write,
            expires_at: None,
        };
        let mut tx = state.base.pool.begin().await?;
        let id = keys::insert(&mut tx, &new, now).await?;
        let until = now + overlap;
        let mut replaces = Vec::new();
        for old in keys::live_ids(&mut tx, auth.firm_id, KIND_INBOUND, id, now).await? {
            keys::expire_by(&mut tx, old, until, Some(id)).await?;
            let detail = serde_json::json!({"kind": KIND_INBOUND, "replaced_by": id, "old_expires_at": until});
            keys::record_event(&mut tx, auth.firm_id, old, "rotated", Some(auth.key_id), detail, now).await?;
            replaces.push(Replaced { id: old, expires_at: until });
        }
        keys::record_event(
            &mut tx,
            auth.firm_id,
            id,
            "created",
            Some(auth.key_id),
            serde_json::json!({"kind": KIND_INBOUND}),
            now,
        )
        .await?;
        let token = keys::get_for_update(&mut tx, auth.firm_id, KIND_INBOUND, id)
            .await?
            .ok_or_else(|| not_found("token", id))?;
        let created =
            serde_json::to_value(InboundTokenCreated { id, inbound_token: Some(inbound_token), token, replaces })?;
        claim.complete(&mut tx, StatusCode::CREATED, &created).await?;
        tx.commit().await?;
        tracing::info!(token_id = %id, "inbound token created; older ones expire after the overlap");
        Ok((StatusCode::CREATED, created))
    })
    .await
}

/// What happened to the firm's keys and tokens, newest first.
#[utoipa::path(get, path = "/v1/firm/audit-log", tag = "keys", params(Page),
    responses((status = 200, body = List<KeyEvent>)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn audit_log(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<KeyEvent>>, ApiError> {
    let limit = page.limit()?;
    let data = keys::events(&state.base.pool, auth.firm_id, page.cursor, limit + 1).await?;
    Ok(Json(List::page(data, limit, |e| e.id)))
}
