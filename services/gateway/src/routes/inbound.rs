//! `POST /webhooks/email/inbound/{firm_id}`: a raw RFC 5322 message from the firm's inbound
//! mail provider. The gateway does not parse it (the email service does): it authenticates
//! the post, stores the bytes in the `inbound` object store, records them once per firm and
//! content, and publishes `reply.received` through the outbox before answering 202.
use super::ApiPath;
use crate::auth::{inbound_firm, inbound_token};
use crate::error::ApiError;
use crate::publish::message;
use crate::startup::AppState;
use crate::store;
use arflow_contracts::events::ReplyReceived;
use arflow_contracts::msg_id;
use arflow_contracts::subjects::reply;
use arflow_core::Channel;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundAccepted {
    /// Follows the message through `reply.received` and `reply.classified`.
    pub reply_id: Uuid,
    /// The same bytes were already received (a provider retry): nothing new was published.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

#[utoipa::path(post, path = "/webhooks/email/inbound/{firm_id}", tag = "webhooks",
    params(("firm_id" = Uuid, Path)),
    request_body(content = String, content_type = "message/rfc822", description = "The raw message as received"),
    responses((status = 202, body = InboundAccepted),
        (status = 401, description = "missing or wrong inbound token", body = crate::error::ProblemBody),
        (status = 413, description = "larger than gateway.inbound_max_bytes"),
        (status = 422, description = "empty body", body = crate::error::ProblemBody)),
    security(("inbound_token" = [])))]
pub async fn email_inbound(
    State(state): State<AppState>,
    ApiPath(firm_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<InboundAccepted>), ApiError> {
    let span =
        tracing::info_span!("email_inbound", %firm_id, size = tracing::field::Empty, reply_id = tracing::field::Empty);
    handle(state, firm_id, headers, body).instrument(span).await
}

async fn handle(
    state: AppState,
    firm_id: Uuid,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<InboundAccepted>), ApiError> {
    // The token before the body: a post without this firm's token never costs its 25 MiB.
    let token = inbound_token(&headers).ok_or_else(|| {
        ApiError::Unauthorized("send the firm's inbound token as `Authorization: Bearer <token>` or Basic auth".into())
    })?;
    // Another firm's valid token is as wrong as an unknown one.
    match inbound_firm(&state, &token).await? {
        Some(f) if f == firm_id => {}
        _ => return Err(ApiError::Unauthorized("the inbound token is unknown, revoked or not this firm's".into())),
    }
    let body = super::read_body(&headers, body, state.config.inbound_max_bytes).await?;
    tracing::Span::current().record("size", body.len());
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Validation("the body is empty: post the raw RFC 5322 message".into()));
    }
    let sha256 = hex::encode(Sha256::digest(&body));
    let duplicate = |reply_id: Uuid| {
        tracing::Span::current().record("reply_id", tracing::field::display(reply_id));
        tracing::info!("inbound message already received; not stored or published again");
        (StatusCode::ACCEPTED, Json(InboundAccepted { reply_id, duplicate: true }))
    };
    // A provider retry: the bytes were stored before the row was written, so nothing to redo.
    let mut conn = state.base.pool.acquire().await?;
    let seen = store::inbound_reply_id(&mut conn, firm_id, &sha256).await?;
    drop(conn);
    if let Some(reply_id) = seen {
        return Ok(duplicate(reply_id));
    }
    let object = format!("{firm_id}/{sha256}");
    // The bytes first: once `reply.received` is out, the email service must find them.
    state.base.bus.put_inbound(&object, &body).await?;
    let now = state.base.clock.now();
    let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
    let mut tx = state.base.pool.begin().await?;
    let Some(reply_id) =
        store::record_inbound(&mut tx, firm_id, &sha256, arflow_core::new_id(), Channel::Email.as_str(), size, now)
            .await?
    else {
        // A concurrent delivery of the same bytes won the race.
        let reply_id = store::inbound_reply_id(&mut tx, firm_id, &sha256).await?.unwrap_or_default();
        return Ok(duplicate(reply_id));
    };
    tracing::Span::current().record("reply_id", tracing::field::display(reply_id));
    let data = ReplyReceived {
        reply_id,
        channel: Channel::Email,
        object,
        sha256: sha256.clone(),
        size: body.len() as u64,
        received_at: now,
    };
    let msg = message(reply::RECEIVED, firm_id, reply_id, now, msg_id::inbound(firm_id, &sha256), data)?;
    arflow_store::outbox::enqueue(&mut tx, std::slice::from_ref(&msg)).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    tracing::info!("inbound email accepted");
    Ok((StatusCode::ACCEPTED, Json(InboundAccepted { reply_id, duplicate: false })))
}
