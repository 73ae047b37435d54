//! The public edge for the services behind the gateway: `/v1/consent/...` (opt-out),
//! `/v1/escalations/...` (escalation), `/v1/notifications/...` (notification), `/v1/calls/...`
//! and `/v1/texts/...` (voice), `/v1/emails/...` (email): [`FORWARDED`].
//!
//! The gateway authenticates the firm's API key, then forwards the request with the firm,
//! the acting firm user (`X-Arflow-Actor`, else the key's prefix) and the internal token
//! (`arflow_service::api`). POSTs keep the gateway's Idempotency-Key semantics; an upstream
//! error is relayed as it is (and not stored, so the POST can be retried).
use crate::auth::FirmAuth;
use crate::error::ApiError;
use crate::idempotency::{self, Idempotency};
use crate::startup::AppState;
use arflow_service::api::{ACTOR_HEADER, FIRM_HEADER, INTERNAL_TOKEN_HEADER};
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tracing::Instrument;

/// Each forwarded prefix and the service that owns it. The router forwards exactly these prefixes
/// (and what is under them), [`owner`] routes by them, and the gateway's OpenAPI test checks that
/// each service's document (merged into `/openapi.json`) covers its prefixes and nothing else.
pub const FORWARDED: [(&str, &str); 6] = [
    ("/v1/consent", "optout"),
    ("/v1/escalations", "escalation"),
    ("/v1/notifications", "notification"),
    ("/v1/calls", "voice"),
    ("/v1/texts", "voice"),
    ("/v1/emails", "email"),
];

/// The service that owns a path under a forwarded prefix, or `None` if none does.
pub fn owner(path: &str) -> Option<&'static str> {
    FORWARDED.iter().find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/"))).map(|(_, s)| *s)
}

/// Where each forwarded prefix goes (`[gateway.upstreams]`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Upstreams {
    pub optout: String,
    pub escalation: String,
    pub notification: String,
    /// The voice service: signed telephony callbacks go to its `/internal/telephony/...`.
    #[serde(default = "default_voice")]
    pub voice: String,
    /// The email service: `/v1/emails/...` (uncertain emails a person resends or drops).
    #[serde(default = "default_email")]
    pub email: String,
}

fn default_voice() -> String {
    "http://127.0.0.1:8087".to_string()
}

fn default_email() -> String {
    "http://127.0.0.1:8083".to_string()
}

/// What forwarding needs: the upstreams, the internal token and one HTTP client (pooled).
pub struct Forwarder {
    upstreams: Upstreams,
    token: SecretString,
    client: reqwest::Client,
}

impl Forwarder {
    pub fn new(upstreams: Upstreams, token: SecretString) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(Forwarder { upstreams, token, client })
    }

    /// Whether the internal token is set (without it no upstream would accept a request).
    pub fn configured(&self) -> bool {
        !self.token.expose_secret().is_empty()
    }

    /// The voice service's base URL.
    pub fn voice(&self) -> &str {
        &self.upstreams.voice
    }

    /// Sends one request to `url` with the internal token and `headers`, and returns the answer
    /// as it is. Unreachable: 503 naming `service` (a transport error is logged, not relayed).
    pub async fn relay(
        &self,
        service: &'static str,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Relayed, ApiError> {
        self.relay_patiently(service, method, url, headers, body, Duration::ZERO).await
    }

    /// As [`Forwarder::relay`], but while the upstream refuses connections (restarting, a rolling
    /// deploy) the request is tried again for up to `patience`. Only a refused connection is
    /// retried: the upstream never saw the request, so nothing can be done twice.
    pub async fn relay_patiently(
        &self,
        service: &'static str,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
        patience: Duration,
    ) -> Result<Relayed, ApiError> {
        let give_up = tokio::time::Instant::now() + patience;
        let mut pause = Duration::from_millis(100);
        let response = loop {
            let mut request = self
                .client
                .request(method.clone(), url)
                .header(INTERNAL_TOKEN_HEADER, self.token.expose_secret())
                .body(body.clone());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(r) => break r,
                Err(e) if e.is_connect() && tokio::time::Instant::now() + pause <= give_up => {
                    tracing::info!(error = %e, retry_in_ms = pause.as_millis() as u64, "upstream refused the connection; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "upstream unreachable");
                    return Err(ApiError::Unavailable(format!("the {service} service is unavailable; retry later")));
                }
            }
        };
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response.bytes().await.map_err(|e| ApiError::Upstream(format!("{service}: {e}")))?;
        Ok(Relayed { status, content_type, body })
    }

    /// The owning service and its base URL for a path, or `None` if nothing owns it.
    fn upstream(&self, path: &str) -> Option<(&'static str, &str)> {
        let service = owner(path)?;
        let base = match service {
            "optout" => &self.upstreams.optout,
            "escalation" => &self.upstreams.escalation,
            "notification" => &self.upstreams.notification,
            "voice" => &self.upstreams.voice,
            "email" => &self.upstreams.email,
            _ => return None,
        };
        Some((service, base))
    }
}

/// `afk_` and the first 8 hex digits of the key: enough to tell keys apart in a case history.
fn key_prefix(headers: &HeaderMap) -> String {
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    token.rsplit(' ').next().unwrap_or("").chars().take(12).collect()
}

/// One upstream answer, relayed as it is.
#[derive(Debug)]
pub struct Relayed {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

impl IntoResponse for Relayed {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        if let Some(ct) = self.content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        response
    }
}

/// Request headers passed on (besides the internal ones the gateway sets itself).
const PASSED: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::ACCEPT, header::HeaderName::from_static(idempotency::HEADER)];

pub async fn forward(
    State(state): State<AppState>,
    auth: FirmAuth,
    method: Method,
    OriginalUri(uri): OriginalUri,
    idem: Idempotency,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let firm_id = auth.firm_id;
    let path = uri.path().to_string();
    // Notification subscriptions name where the firm's events go (webhook URLs and secrets).
    if path.starts_with("/v1/notifications/subscriptions") && !matches!(method, Method::GET | Method::HEAD) {
        auth.require_admin("changing notification endpoints")?;
    }
    let Some((service, base)) = state.forward.upstream(&path) else {
        return Err(ApiError::NotFound(format!("no such resource: {path}")));
    };
    // The URL sent upstream resolves `..` and `%2e%2e`: it must stay under the prefix, or a
    // firm key would reach the service's other routes (`/metrics`).
    let resolved = reqwest::Url::parse(&format!("http://gateway{path}")).ok();
    if resolved.as_ref().and_then(|u| state.forward.upstream(u.path())).map(|(s, _)| s) != Some(service) {
        return Err(ApiError::NotFound(format!("no such resource: {path}")));
    }
    if state.forward.token.expose_secret().is_empty() {
        return Err(ApiError::Unavailable(format!(
            "the {service} API is not configured on this gateway (set internal.token)"
        )));
    }
    let url = format!("{}{}", base.trim_end_matches('/'), uri.path_and_query().map_or(path.as_str(), |p| p.as_str()));
    let actor = headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map_or_else(|| format!("api-key:{}", key_prefix(&headers)), str::to_string);
    let span = tracing::info_span!("forward", %firm_id, service, %method, path = %path);
    let mut passed: Vec<(header::HeaderName, HeaderValue)> = Vec::new();
    for (name, value) in [(FIRM_HEADER, firm_id.to_string()), (ACTOR_HEADER, actor)] {
        let value =
            HeaderValue::from_str(&value).map_err(|_| ApiError::Validation(format!("{name} must be visible ASCII")))?;
        passed.push((header::HeaderName::from_static(name), value));
    }
    for name in PASSED {
        if let Some(v) = headers.get(&name) {
            passed.push((name, v.clone()));
        }
    }
    let send = || state.forward.relay(service, method.clone(), &url, &passed, body.clone());
    async {
        if method != Method::POST || !headers.contains_key("idempotency-key") {
            return Ok(send().await?.into_response());
        }
        // Idempotency-Key: only JSON successes are stored and replayed. The key is passed on
        // too, so a service that keeps its own can dedupe a retry the gateway cannot see.
        idempotency::run(&state, firm_id, &idem, &method, &path, |_claim| async {
            let r = send().await?;
            let json = r.status.is_success().then(|| serde_json::from_slice::<serde_json::Value>(&r.body).ok());
            match json.flatten() {
                Some(value) => Ok((r.status, value)),
                None => Err(ApiError::Relayed(r)),
            }
        })
        .await
    }
    .instrument(span)
    .await
}
