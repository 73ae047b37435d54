//! `POST/GET /v1/notifications/subscriptions`, `GET/DELETE .../{id}`, `POST .../{id}/enable`.
use super::{Page, json_body, path_id};
use crate::channels::{egress, signing};
use crate::handlers::Context;
use crate::kinds::Kind;
use crate::store::{self, NewSubscription, SubscriptionRow};
use arflow_service::api::{ApiError, Caller, ProblemBody};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where notifications go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelSpec {
    Email { address: String },
    Slack { webhook_url: String },
    Webhook { url: String },
}

impl ChannelSpec {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            ChannelSpec::Email { address } => ("email", address),
            ChannelSpec::Slack { webhook_url } => ("slack", webhook_url),
            ChannelSpec::Webhook { url } => ("webhook", url),
        }
    }

    /// A Slack incoming-webhook URL is itself the credential: after creation only its start shows.
    fn from_row(channel: &str, target: &str, reveal: bool) -> ChannelSpec {
        match channel {
            "email" => ChannelSpec::Email { address: target.into() },
            "slack" if reveal => ChannelSpec::Slack { webhook_url: target.into() },
            "slack" => ChannelSpec::Slack { webhook_url: mask_url(target) },
            _ => ChannelSpec::Webhook { url: target.into() },
        }
    }

    fn validate(&self, allow_private: bool) -> Result<(), ApiError> {
        match self {
            ChannelSpec::Email { address } => address
                .trim()
                .parse::<lettre::Address>()
                .map(|_| ())
                .map_err(|_| ApiError::Validation(format!("channel.address: {address:?} is not an email address"))),
            ChannelSpec::Slack { webhook_url } => http_url("channel.webhook_url", webhook_url, allow_private),
            ChannelSpec::Webhook { url } => http_url("channel.url", url, allow_private),
        }
    }
}

/// `https://hooks.slack.com/services/T0/B0/XXXX` -> `https://hooks.slack.com/services/T0/B0/XX…`.
fn mask_url(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, last)) if !last.is_empty() => format!("{head}/{}…", last.chars().take(2).collect::<String>()),
        _ => url.to_string(),
    }
}

fn http_url(field: &str, raw: &str, allow_private: bool) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::Validation(format!("{field}: {why}"));
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https URLs are allowed"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if !allow_private && let Some(why) = url.host_str().and_then(egress::refuse_host) {
        return Err(bad(&why));
    }
    if raw.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// The firm user's name or email (1 to 200 characters).
    pub user: String,
    /// Event kinds: `opt_out`, `escalation_opened`, `dispute`, `payment_after_outreach`,
    /// `promise_made`, `promise_broken`, `all_contacts_opted_out`, `dead_letter`, `daily_digest`.
    pub kinds: Vec<String>,
    pub channel: ChannelSpec,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: uuid::Uuid,
    pub user: String,
    pub kinds: Vec<String>,
    pub channel: ChannelSpec,
    /// `active` or `disabled` (after persistent failure; `POST .../enable`).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub health: Health,
    /// Webhooks only, and only in the answer to the creation: the signing secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `POST .../enable` with `replay_parked`: how many parked deliveries were queued again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<u64>,
}

impl Subscription {
    fn from_row(row: SubscriptionRow, at_creation: bool) -> Self {
        Subscription {
            id: row.id,
            user: row.user_name,
            kinds: row.kinds,
            channel: ChannelSpec::from_row(&row.channel, &row.target, at_creation),
            status: row.status,
            created_at: row.created_at,
            health: Health {
                consecutive_failures: row.consecutive_failures,
                failing_since: row.failing_since,
                last_error: row.last_error,
                last_failure_at: row.last_failure_at,
                last_success_at: row.last_success_at,
                disabled_at: row.disabled_at,
                disabled_reason: row.disabled_reason,
            },
            secret: if at_creation { row.secret } else { None },
            replayed: None,
        }
    }
}

/// One page (`{data, next_cursor}`), the shape of every list behind the gateway.
pub use arflow_service::api::List;

fn kinds(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::Validation("kinds: name at least one event kind".into()));
    }
    let mut out: Vec<String> = Vec::new();
    for k in raw {
        let kind = Kind::parse(k.trim()).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::Validation(format!("kinds: unknown kind {k:?}; known: {}", known.join(", ")))
        })?;
        if !out.iter().any(|o| o == kind.as_str()) {
            out.push(kind.as_str().to_string());
        }
    }
    Ok(out)
}

/// `POST /v1/notifications/subscriptions`: a webhook's answer carries its signing secret, once.
#[utoipa::path(post, path = "/v1/notifications/subscriptions", tag = "notifications",
    operation_id = "create_subscription", request_body = CreateSubscription,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first answer, secret included")),
    responses((status = 201, body = Subscription), (status = 422, body = ProblemBody)), security(("api_key" = [])))]
pub async fn create(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateSubscription = json_body(&body)?;
    let user = req.user.trim();
    if user.is_empty() || user.chars().count() > 200 {
        return Err(ApiError::Validation("user: the firm user's name or email (1 to 200 characters)".into()));
    }
    let kinds = kinds(&req.kinds)?;
    req.channel.validate(ctx.settings.allow_private_targets)?;
    let (channel, target) = req.channel.parts();
    let secret = (channel == "webhook").then(signing::new_secret);
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim);
    if idempotency_key.is_some_and(|k| k.is_empty() || k.len() > 255) {
        return Err(ApiError::Validation("Idempotency-Key: 1 to 255 characters".into()));
    }
    let (row, created) = store::create_subscription(
        &ctx.pool,
        NewSubscription {
            firm_id: caller.firm_id,
            user_name: user,
            kinds: &kinds,
            channel,
            target: target.trim(),
            secret: secret.as_deref(),
            idempotency_key,
            now: ctx.clock.now(),
        },
    )
    .await?;
    if created {
        tracing::info!(firm_id = %caller.firm_id, actor = %caller.actor, subscription_id = %row.id, channel,
            "subscription created");
    }
    // A repeated Idempotency-Key replays the first answer (secret included).
    Ok((StatusCode::CREATED, Json(Subscription::from_row(row, true))).into_response())
}

/// `GET /v1/notifications/subscriptions`: the firm's subscriptions, oldest first.
#[utoipa::path(get, path = "/v1/notifications/subscriptions", tag = "notifications",
    operation_id = "list_subscriptions", params(Page),
    responses((status = 200, body = List<Subscription>), (status = 422, body = ProblemBody)), security(("api_key" = [])))]
pub async fn list(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<List<Subscription>>, ApiError> {
    let limit = page.limit()?;
    let rows = store::list_subscriptions(&ctx.pool, caller.firm_id, page.after()?, limit + 1).await?;
    let subscriptions = rows.into_iter().map(|r| Subscription::from_row(r, false)).collect();
    Ok(Json(List::from_rows(subscriptions, limit, |s: &Subscription| s.id.to_string())))
}

#[utoipa::path(get, path = "/v1/notifications/subscriptions/{id}", tag = "notifications",
    operation_id = "get_subscription", params(("id" = Uuid, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = ProblemBody)), security(("api_key" = [])))]
pub async fn get(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    let id = path_id(&id, "subscription")?;
    let row = store::get_subscription(&ctx.pool, caller.firm_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no subscription {id}")))?;
    Ok(Json(Subscription::from_row(row, false)))
}

/// Deleted subscriptions keep their deliveries; what was still waiting is cancelled.
#[utoipa::path(delete, path = "/v1/notifications/subscriptions/{id}", tag = "notifications",
    operation_id = "delete_subscription", params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ProblemBody)), security(("api_key" = [])))]
pub async fn delete(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "subscription")?;
    if !store::delete_subscription(&ctx.pool, caller.firm_id, id).await? {
        return Err(ApiError::NotFound(format!("no subscription {id}")));
    }
    tracing::info!(firm_id = %caller.firm_id, actor = %caller.actor, subscription_id = %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../enable`, optional body `{"replay_parked": true}` to queue again everything that
/// was parked while the endpoint was disabled (same ids).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enable {
    #[serde(default)]
    pub replay_parked: bool,
}

#[utoipa::path(post, path = "/v1/notifications/subscriptions/{id}/enable", tag = "notifications",
    operation_id = "enable_subscription", params(("id" = Uuid, Path)),
    request_body(content = Option<Enable>, description = "optional: `{\"replay_parked\": true}`"),
    responses((status = 200, body = Subscription), (status = 404, body = ProblemBody)), security(("api_key" = [])))]
pub async fn enable(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Subscription>, ApiError> {
    let id = path_id(&id, "subscription")?;
    let req: Enable = if body.iter().all(u8::is_ascii_whitespace) { Enable::default() } else { json_body(&body)? };
    let (row, replayed) = store::enable_subscription(&ctx.pool, caller.firm_id, id, req.replay_parked, ctx.clock.now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no subscription {id}")))?;
    tracing::info!(firm_id = %caller.firm_id, actor = %caller.actor, subscription_id = %id, replayed, "endpoint enabled");
    if replayed > 0 {
        ctx.wake.notify_one();
    }
    let mut s = Subscription::from_row(row, false);
    s.replayed = req.replay_parked.then_some(replayed);
    Ok(Json(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_and_real_addresses_pass() {
        assert!(http_url("u", "https://hooks.example.com/x", false).is_ok());
        assert!(http_url("u", "http://127.0.0.1:9000/hook", true).is_ok());
        assert!(http_url("u", "http://127.0.0.1:9000/hook", false).is_err());
        assert!(http_url("u", "http://169.254.169.254/latest/meta-data", false).is_err());
        for bad in ["ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", "not a url", "https://"] {
            assert!(http_url("u", bad, true).is_err(), "{bad}");
        }
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/abcdef"),
            "https://hooks.slack.com/services/T0/B0/ab…"
        );
        assert!(ChannelSpec::Email { address: "ar@acme.test".into() }.validate(false).is_ok());
        assert!(ChannelSpec::Email { address: "nope".into() }.validate(false).is_err());
    }

    #[test]
    fn kinds_are_checked_and_deduplicated() {
        let k = kinds(&["opt_out".into(), "opt_out".into(), "dispute".into()]).unwrap();
        assert_eq!(k, vec!["opt_out", "dispute"]);
        assert!(kinds(&[]).is_err());
        assert!(kinds(&["payment".into()]).is_err());
    }
}
