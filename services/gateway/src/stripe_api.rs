//! Stripe's REST API for backfill: list customers and open invoices.
//!
//! reqwest rather than async-stripe: async-stripe (=1.0.0-rc.10) can be pointed at another
//! base URL (`ClientBuilder::url`), but its `Invoice` type requires ~80 fields
//! (`automatic_tax`, `issuer`, `lines`, `status_transitions`, ...) to deserialize, so any
//! partial object (a simulator, or an API version it does not know) fails. We read the
//! same JSON as the webhook path instead, through the same REST list contract.
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    #[error("Stripe request {path} failed: {reason}")]
    Http { path: String, reason: String },
    #[error("Stripe refused {path} with {status}: {message}")]
    Status { path: String, status: u16, message: String },
}

#[derive(Debug, Deserialize)]
struct ListPage {
    data: Vec<Value>,
    #[serde(default)]
    has_more: bool,
}

pub struct StripeApi<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub key: &'a str,
}

impl StripeApi<'_> {
    /// Every object of a list endpoint, following `starting_after` while `has_more`.
    pub async fn list_all(&self, path: &str, params: &[(&str, &str)]) -> Result<Vec<Value>, StripeApiError> {
        let url = format!("{}/{}", self.base.trim_end_matches('/'), path.trim_start_matches('/'));
        let err = |reason: String| StripeApiError::Http { path: path.to_string(), reason };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        // Bounded: 1,000 pages of 100 is more than any firm's open book.
        for _ in 0..1_000 {
            let mut query: Vec<(&str, &str)> = params.to_vec();
            query.push(("limit", "100"));
            if let Some(a) = &after {
                query.push(("starting_after", a));
            }
            let response =
                self.http.get(&url).bearer_auth(self.key).query(&query).send().await.map_err(|e| err(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let body: Value = response.json().await.unwrap_or_default();
                let message =
                    body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no error message").to_string();
                return Err(StripeApiError::Status { path: path.to_string(), status: status.as_u16(), message });
            }
            let page: ListPage = response.json().await.map_err(|e| err(e.to_string()))?;
            after = page.data.last().and_then(|o| o.get("id")).and_then(Value::as_str).map(str::to_string);
            out.extend(page.data);
            if !page.has_more || after.is_none() {
                break;
            }
        }
        Ok(out)
    }
}
