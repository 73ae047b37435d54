//! HTTP pieces every service shares: health and metrics routes, RFC 9457 problems, serving.
use crate::{Metrics, Shutdown};
use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// What `/readyz` checks: the broker and the database the service needs.
#[derive(Clone)]
pub struct Probes {
    pub nats: Option<async_nats::Client>,
    pub db: Option<sqlx::PgPool>,
    pub metrics: Metrics,
}

/// `/healthz` (the process is alive), `/readyz` (NATS and PostgreSQL reachable), `/metrics`.
pub fn health_routes(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

#[derive(Serialize)]
struct Readiness {
    nats: &'static str,
    database: &'static str,
}

async fn readyz(State(p): State<Probes>) -> Response {
    let nats_ok =
        p.nats.as_ref().map(|c| c.connection_state() == async_nats::connection::State::Connected).unwrap_or(true);
    let db_ok = match &p.db {
        Some(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
        None => true,
    };
    let body = Readiness {
        nats: if nats_ok { "ok" } else { "unreachable" },
        database: if db_ok { "ok" } else { "unreachable" },
    };
    let status = if nats_ok && db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics(State(p): State<Probes>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], p.metrics.encode()).into_response()
}

/// An RFC 9457 problem: stable `type`, short `title`, human `detail`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    /// `kind` is the last segment of the type URI, e.g. `invalid-signature`.
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://arflow.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// An unexpected error: logged in full by the caller, answered opaquely.
    pub fn internal() -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an unexpected error occurred; it has been logged")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

/// Counts every request by route template, method and status, and times it by route
/// (`arflow_http_requests_total`, `arflow_http_request_seconds`). Add with `Router::layer`, so
/// the route template (`MatchedPath`) is known; unmatched paths count as `unmatched`, never by
/// their raw path (which would let anyone grow the label set).
pub async fn track(
    State(metrics): State<Metrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics
        .http_requests
        .get_or_create(&crate::metrics::HttpLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16().to_string(),
        })
        .inc();
    metrics
        .http_request_seconds
        .get_or_create(&crate::metrics::RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A bound listener (port 0 picks a free one) and the address it got.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `router` until `shutdown` fires, finishing in-flight requests.
pub async fn serve(listener: TcpListener, router: Router, shutdown: Shutdown) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
