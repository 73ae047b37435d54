//! Stripe's REST API through async-stripe: list customers and open invoices (backfill), read an
//! invoice (reconciliation), mark one uncollectible (for an escalation case).
//!
//! async-stripe parses Stripe's objects into its typed `Customer` / `Invoice`; we serialize
//! them back to Stripe's JSON shape (async-stripe's `serialize` feature emits every field
//! plus `object`) so the backfill feeds the same `serde_json::Value` ingest path as the
//! webhooks (`crate::ingest`).
use futures::{Stream, TryStreamExt};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use stripe_billing::InvoiceStatus;
use stripe_billing::invoice::{ListInvoice, MarkUncollectibleInvoice, RetrieveInvoice};
use stripe_core::customer::ListCustomer;

/// Stripe's largest page.
const PAGE: i64 = 100;
/// A bound on one listing: 1,000 pages of 100 is more than any firm's open book.
const MAX_OBJECTS: usize = 100_000;
/// Per attempt (the client does not retry: `RequestStrategy::Once`).
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    #[error("Stripe client: {0}")]
    Config(String),
    #[error("Stripe request {path} failed: {reason}")]
    Http { path: String, reason: String },
    #[error("Stripe refused {path} with {status}: {message}")]
    Status { path: String, status: u16, message: String },
}

impl StripeApiError {
    fn from_stripe(path: &str, e: stripe::StripeError) -> Self {
        match e {
            stripe::StripeError::Stripe(api, status) => StripeApiError::Status {
                path: path.to_string(),
                status,
                message: api.message.unwrap_or_else(|| "no error message".to_string()),
            },
            other => StripeApiError::Http { path: path.to_string(), reason: other.to_string() },
        }
    }
}

/// A Stripe API client for one firm's secret key.
pub struct StripeApi {
    client: stripe::Client,
}

impl StripeApi {
    /// `base` is Stripe's API root (`https://api.stripe.com/`, or a simulator's).
    pub fn new(base: &str, secret_key: &str) -> Result<Self, StripeApiError> {
        // async-stripe's rustls connector uses the process-default crypto provider; rustls
        // only infers one when exactly one of ring / aws-lc-rs is compiled in, so pick the
        // workspace's (ring). An Err means one is already installed, which is as good.
        let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
        // async-stripe appends `v1/...` to the base as written.
        let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
        let client = stripe::ClientBuilder::new(secret_key)
            .url(base)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| StripeApiError::Config(e.to_string()))?;
        Ok(StripeApi { client })
    }

    /// Every customer (`GET /v1/customers`, all pages), as Stripe's JSON.
    pub async fn customers(&self) -> Result<Vec<Value>, StripeApiError> {
        let stream = ListCustomer::new().limit(PAGE).paginate().stream(&self.client);
        collect_json("/v1/customers", stream).await
    }

    /// One invoice as Stripe has it now (`GET /v1/invoices/{id}`), as Stripe's JSON.
    pub async fn invoice(&self, id: &str) -> Result<Value, StripeApiError> {
        let path = format!("/v1/invoices/{id}");
        let invoice =
            RetrieveInvoice::new(id).send(&self.client).await.map_err(|e| StripeApiError::from_stripe(&path, e))?;
        serde_json::to_value(&invoice).map_err(|e| StripeApiError::Http { path, reason: format!("re-encoding: {e}") })
    }

    /// Marks an open invoice uncollectible (`POST /v1/invoices/{id}/mark_uncollectible`); returns
    /// the invoice as Stripe now has it, as Stripe's JSON.
    pub async fn mark_uncollectible(&self, id: &str) -> Result<Value, StripeApiError> {
        let path = format!("/v1/invoices/{id}/mark_uncollectible");
        let invoice = MarkUncollectibleInvoice::new(id)
            .send(&self.client)
            .await
            .map_err(|e| StripeApiError::from_stripe(&path, e))?;
        serde_json::to_value(&invoice).map_err(|e| StripeApiError::Http { path, reason: format!("re-encoding: {e}") })
    }

    /// Every open invoice (`GET /v1/invoices?status=open`, all pages), as Stripe's JSON.
    pub async fn open_invoices(&self) -> Result<Vec<Value>, StripeApiError> {
        let stream = ListInvoice::new().status(InvoiceStatus::Open).limit(PAGE).paginate().stream(&self.client);
        collect_json("/v1/invoices", stream).await
    }
}

/// Drain a paginated listing (async-stripe follows `starting_after` while `has_more`).
async fn collect_json<T: Serialize>(
    path: &str,
    mut stream: impl Stream<Item = Result<T, stripe::StripeError>> + Unpin,
) -> Result<Vec<Value>, StripeApiError> {
    let mut out = Vec::new();
    while let Some(object) = stream.try_next().await.map_err(|e| StripeApiError::from_stripe(path, e))? {
        if out.len() >= MAX_OBJECTS {
            tracing::warn!(path, max = MAX_OBJECTS, "Stripe listing truncated");
            break;
        }
        let json = serde_json::to_value(&object)
            .map_err(|e| StripeApiError::Http { path: path.to_string(), reason: format!("re-encoding: {e}") })?;
        out.push(json);
    }
    Ok(out)
}
