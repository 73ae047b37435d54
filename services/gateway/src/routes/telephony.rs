//! `POST /webhooks/telephony/...`: the telephony provider's callbacks (Twilio's contract).
//!
//! The gateway is the public edge, the voice service does the work. Each callback's
//! `X-Twilio-Signature` is checked (HMAC-SHA1 with `telephony.auth_token` over
//! `gateway.public_base_url` + path + query as received, then the form parameters sorted by
//! name). A missing or wrong signature is answered 403 and logged; nothing is forwarded or stored.
//! A good one is forwarded, the same form body, to the voice service at
//! `/internal/telephony/<rest of the path>?<query>` with the internal token, and its answer
//! (TwiML or 204) is returned unchanged; the voice service down is 503 (after waiting up to
//! [`UPSTREAM_PATIENCE`] for one that refuses connections, since the provider does not retry).
use crate::error::ApiError;
use crate::routes::forward::Relayed;
use crate::startup::AppState;
use arflow_runtime::signature::verify_twilio_signature;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use secrecy::ExposeSecret;
use tracing::Instrument;

/// Largest callback body accepted (Twilio's are a few hundred bytes; a transcription a few KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const PREFIX: &str = "/webhooks/telephony/";
/// How long a callback waits for a voice service that refuses connections (Twilio gives a
/// webhook 15 seconds).
pub const UPSTREAM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(6);
const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// Twilio's retry marker, passed on so the voice service can recognise a repeated callback.
const IDEMPOTENCY_HEADER: &str = "i-twilio-idempotency-token";
const VOICE_EVENTS: [&str; 5] = ["answer", "gather", "status", "recording", "transcription"];

/// What a callback path names: `voice/{call_id}/{event}`, `sms/inbound` or `sms/{text_id}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback<'a> {
    /// `voice` or `sms`.
    pub kind: &'static str,
    /// The call or text id (empty for an inbound text).
    pub id: &'a str,
    pub event: &'a str,
}

fn id_like(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The callback a path (after `/webhooks/telephony/`) names, or `None` if the contract has no such URL.
pub fn parse(rest: &str) -> Option<Callback<'_>> {
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["voice", id, event] if id_like(id) && VOICE_EVENTS.contains(event) => {
            Some(Callback { kind: "voice", id, event })
        }
        ["sms", "inbound"] => Some(Callback { kind: "sms", id: "", event: "inbound" }),
        ["sms", id, "status"] if id_like(id) => Some(Callback { kind: "sms", id, event: "status" }),
        _ => None,
    }
}

/// The voice callbacks: `answer` and `gather` (TwiML), `status`, `recording`, `transcription`.
#[utoipa::path(post, path = "/webhooks/telephony/voice/{call_id}/{event}", tag = "webhooks",
    operation_id = "telephony_voice_callback",
    params(("call_id" = String, Path, description = "the voice service's call id (in the URLs it gave the provider)"),
        ("event" = String, Path, description = "`answer` and `gather` (TwiML), `status`, `recording`, `transcription` (204)"),
        ("turn" = Option<u32>, Query, description = "`gather` only: the conversation turn"),
        ("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 (auth token) of the full URL and the sorted form parameters")),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters: CallSid, AccountSid, From, To, CallStatus, AnsweredBy, SpeechResult, Confidence, CallDuration, RecordingUrl, TranscriptionText..."),
    responses((status = 200, description = "TwiML from the voice service", content_type = "text/xml"),
        (status = 204, description = "status, recording and transcription callbacks"),
        (status = 403, description = "invalid-signature: missing or wrong X-Twilio-Signature; nothing forwarded", body = crate::error::ProblemBody),
        (status = 404, description = "not a callback URL of the contract", body = crate::error::ProblemBody),
        (status = 413, description = "body larger than 64 KiB"),
        (status = 503, description = "the voice service is down, or telephony.auth_token / internal.token unset", body = crate::error::ProblemBody)))]
pub async fn voice_callback(
    state: State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Relayed, ApiError> {
    callback(state, uri, headers, body).await
}

/// A text a client sent to the firm's number: STOP, HELP, or a reply.
#[utoipa::path(post, path = "/webhooks/telephony/sms/inbound", tag = "webhooks",
    operation_id = "telephony_sms_inbound",
    params(("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 (auth token) of the full URL and the sorted form parameters")),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters: MessageSid, AccountSid, From, To, Body..."),
    responses((status = 200, description = "TwiML from the voice service (`<Response/>` or a `<Message>`)", content_type = "text/xml"),
        (status = 403, description = "invalid-signature: nothing forwarded", body = crate::error::ProblemBody),
        (status = 413, description = "body larger than 64 KiB"),
        (status = 503, description = "the voice service is down, or telephony.auth_token / internal.token unset", body = crate::error::ProblemBody)))]
pub async fn sms_inbound(
    state: State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Relayed, ApiError> {
    callback(state, uri, headers, body).await
}

/// The delivery status of a text arflow sent.
#[utoipa::path(post, path = "/webhooks/telephony/sms/{text_id}/status", tag = "webhooks",
    operation_id = "telephony_sms_status",
    params(("text_id" = String, Path, description = "the voice service's text id (in the URL it gave the provider)"),
        ("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 (auth token) of the full URL and the sorted form parameters")),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters: MessageSid, MessageStatus, ErrorCode..."),
    responses((status = 204, description = "recorded"),
        (status = 403, description = "invalid-signature: nothing forwarded", body = crate::error::ProblemBody),
        (status = 404, description = "not a callback URL of the contract", body = crate::error::ProblemBody),
        (status = 413, description = "body larger than 64 KiB"),
        (status = 503, description = "the voice service is down, or telephony.auth_token / internal.token unset", body = crate::error::ProblemBody)))]
pub async fn sms_status(
    state: State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Relayed, ApiError> {
    callback(state, uri, headers, body).await
}

/// Every telephony callback (the documented routes above, and the catch-all under
/// `/webhooks/telephony/` that answers any other path 404 as a problem).
pub async fn callback(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Relayed, ApiError> {
    let path = uri.path().to_string();
    // Dot segments (`..`, `%2e%2e`) would be resolved on the way to the voice service: refused.
    let resolved = reqwest::Url::parse(&format!("http://gateway{path}")).ok();
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    let Some(cb) = parse(rest).filter(|_| resolved.as_ref().map(|u| u.path()) == Some(path.as_str())) else {
        return Err(ApiError::NotFound(format!("no such telephony callback: {path}")));
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str()).to_string();
    let span = tracing::info_span!("telephony_callback", kind = cb.kind, id = cb.id, event = cb.event,
        call_sid = %param("CallSid"), message_sid = %param("MessageSid"));
    handle(state, cb.kind, uri, headers, params, body).instrument(span).await
}

async fn handle(
    state: AppState,
    kind: &'static str,
    uri: axum::http::Uri,
    headers: HeaderMap,
    params: Vec<(String, String)>,
    body: Bytes,
) -> Result<Relayed, ApiError> {
    let token = state.telephony.auth_token.expose_secret();
    if token.is_empty() {
        state.base.metrics.count("telephony_callbacks_rejected", 1);
        tracing::warn!("telephony callback refused: telephony.auth_token is not set on this gateway");
        return Err(ApiError::Unavailable(
            "telephony callbacks are not configured on this gateway (set telephony.auth_token)".into(),
        ));
    }
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    // Exactly the URL the provider called: the public base (what it was given) and the path and
    // query as received, not re-encoded.
    let url = format!("{}{path_and_query}", state.config.public_base_url.trim_end_matches('/'));
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if signature.is_empty() || !verify_twilio_signature(token, &url, &params, signature) {
        state.base.metrics.count("telephony_callbacks_rejected", 1);
        let why = if signature.is_empty() { "missing" } else { "does not match" };
        tracing::warn!(%url, why, "telephony callback refused: X-Twilio-Signature {why}; nothing forwarded");
        return Err(ApiError::Forbidden(format!(
            "the X-Twilio-Signature {why} (it must sign {url} and the form parameters with the account's auth token)"
        )));
    }
    if !state.forward.configured() {
        tracing::warn!("telephony callback not forwarded: internal.token is not set");
        return Err(ApiError::Unavailable(
            "the voice service is not configured on this gateway (set internal.token)".into(),
        ));
    }
    let internal = path_and_query.strip_prefix("/webhooks").unwrap_or(path_and_query);
    let target = format!("{}/internal{internal}", state.forward.voice().trim_end_matches('/'));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/x-www-form-urlencoded"));
    let mut passed = vec![(header::CONTENT_TYPE, content_type)];
    if let Some(v) = headers.get(IDEMPOTENCY_HEADER) {
        passed.push((header::HeaderName::from_static(IDEMPOTENCY_HEADER), v.clone()));
    }
    // The provider does not retry a failed callback (an inbound STOP would be lost, a call would
    // hear "an application error has occurred"), so a voice service that is restarting is
    // waited for, well inside the provider's 15-second webhook timeout.
    let answer =
        state.forward.relay_patiently("voice", Method::POST, &target, &passed, body, UPSTREAM_PATIENCE).await?;
    state.base.metrics.count("telephony_callbacks_accepted", 1);
    tracing::info!(status = answer.status.as_u16(), kind, "telephony callback forwarded to the voice service");
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contracts_callback_urls_are_recognised() {
        let voice = |e| Some(Callback { kind: "voice", id: "0190-ab", event: e });
        for e in VOICE_EVENTS {
            assert_eq!(parse(&format!("voice/0190-ab/{e}")), voice(e));
        }
        assert_eq!(parse("sms/inbound"), Some(Callback { kind: "sms", id: "", event: "inbound" }));
        assert_eq!(parse("sms/t1/status"), Some(Callback { kind: "sms", id: "t1", event: "status" }));
        for bad in [
            "",
            "voice",
            "voice/x",
            "voice/x/hangup",
            "voice//answer",
            "voice/x/answer/more",
            "sms/x/inbound",
            "voice/%2e%2e/answer",
            "sms/inbound/",
            "other/x/status",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
