//! HTTP endpoints. The email service has no public API of its own (the gateway serves the
//! firm-facing API and the unsubscribe endpoint); it serves `/healthz`, `/readyz` and
//! `/metrics` through `arflow_service::Base::run`.
pub fn router() -> axum::Router {
    axum::Router::new()
}
