//! Limits at the public edge: requests a second per API key and per client address (429 with
//! `Retry-After`), and a deadline per request. Body sizes are enforced by each route while it
//! streams the body, after its credentials were checked (`routes::inbound`, `routes::webhooks`).
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Requests a second one API key may make on `/v1` (sustained), and its burst.
    pub per_key_per_sec: u32,
    pub per_key_burst: u32,
    /// Requests a second one client address may make on every route except the signed Stripe
    /// and telephony webhooks (those providers send from a few addresses, and a payment must
    /// never wait behind a limit), and its burst.
    pub per_ip_per_sec: u32,
    pub per_ip_burst: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (the one the ingress
    /// appended) instead of the TCP peer. Only behind a proxy that sets it.
    pub trust_forwarded_for: bool,
    /// A request that takes longer is answered 503 `timeout` (its work is dropped, and a
    /// transaction in flight rolls back).
    pub request_timeout_secs: u64,
    /// Largest Stripe event accepted (read only after the signature header checked out).
    pub stripe_max_bytes: usize,
}

impl LimitSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("per_key_per_sec", self.per_key_per_sec),
            ("per_key_burst", self.per_key_burst),
            ("per_ip_per_sec", self.per_ip_per_sec),
            ("per_ip_burst", self.per_ip_burst),
        ] {
            if v == 0 {
                return Err(format!("gateway.limits.{key} must be at least 1"));
            }
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            return Err("gateway.limits.request_timeout_secs must be between 1 and 600".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.stripe_max_bytes) {
            return Err("gateway.limits.stripe_max_bytes must be between 1 KiB and 16 MiB".into());
        }
        Ok(())
    }
}

/// The keyed limiters, shared by every request.
pub struct Limiter {
    settings: LimitSettings,
    keys: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_sec).allow_burst(burst)
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Arc<Self> {
        Arc::new(Limiter {
            keys: RateLimiter::keyed(quota(settings.per_key_per_sec, settings.per_key_burst)),
            addresses: RateLimiter::keyed(quota(settings.per_ip_per_sec, settings.per_ip_burst)),
            settings,
        })
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Forgets keys and addresses that have been quiet (called every minute).
    pub fn forget_quiet(&self) {
        self.keys.retain_recent();
        self.addresses.retain_recent();
        self.keys.shrink_to_fit();
        self.addresses.shrink_to_fit();
    }

    fn client_address(&self, request: &Request) -> Option<IpAddr> {
        if self.settings.trust_forwarded_for
            && let Some(ip) = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok())
        {
            return Some(ip);
        }
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
    }
}

/// The API key of a request, as a short hash (the limiter never holds a key).
fn key_of(request: &Request) -> Option<String> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| hex::encode(&Sha256::digest(token.trim().as_bytes())[..12]))
}

/// Routes the per-address limit leaves alone: signed by a provider, and a payment halt rides on them.
fn signed_webhook(path: &str) -> bool {
    path.starts_with("/webhooks/stripe/") || path.starts_with("/webhooks/telephony/")
}

fn limited(until: governor::NotUntil<governor::clock::QuantaInstant>, what: &str) -> Response {
    let wait = until.wait_time_from(DefaultClock::default().now());
    let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited { detail: format!("too many requests from this {what}; retry later"), retry_after_secs }
        .into_response()
}

/// Middleware: the per-address and per-key limits, then the request's deadline.
pub async fn enforce(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !signed_webhook(path)
        && let Some(ip) = limiter.client_address(&request)
        && let Err(until) = limiter.addresses.check_key(&ip)
    {
        tracing::info!(%ip, "rate limited (address)");
        return limited(until, "address");
    }
    if path.starts_with("/v1/")
        && let Some(key) = key_of(&request)
        && let Err(until) = limiter.keys.check_key(&key)
    {
        tracing::info!("rate limited (API key)");
        return limited(until, "API key");
    }
    let deadline = Duration::from_secs(limiter.settings.request_timeout_secs);
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?deadline, "request timed out");
            ApiError::Timeout(format!("the request took longer than {} s", deadline.as_secs())).into_response()
        }
    }
}
