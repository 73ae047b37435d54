//! Stripe test doubles: JSON builders in Stripe's real shapes, a webhook signer, and
//! `StripeSim`, an HTTP server speaking Stripe's REST list contract.
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A Stripe `customer` object.
pub fn customer(id: &str, name: &str, email: &str) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": 1_700_000_000,
        "currency": "usd",
        "default_source": null,
        "delinquent": false,
        "description": null,
        "email": email,
        "invoice_prefix": id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false,
        "metadata": {},
        "name": name,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

/// A Stripe `invoice` object (`status`: draft, open, paid, void, uncollectible).
pub fn invoice(
    id: &str,
    customer: &str,
    number: &str,
    amount_minor: i64,
    currency: &str,
    due_date_unix: i64,
    status: &str,
) -> Value {
    let paid = status == "paid";
    json!({
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Test Firm",
        "amount_due": amount_minor,
        "amount_paid": if paid { amount_minor } else { 0 },
        "amount_remaining": if paid || status == "void" { 0 } else { amount_minor },
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": false,
        "billing_reason": "manual",
        "collection_method": "send_invoice",
        "created": 1_700_000_000,
        "currency": currency.to_lowercase(),
        "customer": customer,
        "customer_email": null,
        "customer_name": null,
        "description": null,
        "due_date": due_date_unix,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_test/{id}"),
        "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_test/{id}/pdf"),
        "livemode": false,
        "metadata": {},
        "number": number,
        "paid_out_of_band": false,
        "status": status,
        "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
        "subtotal": amount_minor,
        "total": amount_minor
    })
}

/// A Stripe `event` wrapping `object` (`type` e.g. `invoice.paid`).
pub fn event(evt_id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": evt_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind
    })
}

/// `(Stripe-Signature header value, body)` signed now, as Stripe would send it.
pub fn signed_webhook(secret: &str, payload: &Value) -> (String, Vec<u8>) {
    signed_webhook_at(secret, payload, chrono::Utc::now().timestamp())
}

/// The same, signed at `timestamp` (unix seconds): for stale-timestamp tests.
pub fn signed_webhook_at(secret: &str, payload: &Value, timestamp: i64) -> (String, Vec<u8>) {
    let body = serde_json::to_vec(payload).expect("payload encodes");
    let header = arflow_runtime::signature::stripe_signature_header(secret, &body, timestamp);
    (header, body)
}

#[derive(Default)]
struct SimState {
    customers: Vec<Value>,
    invoices: Vec<Value>,
    requests: Vec<String>,
}

/// A Stripe REST API simulator on a free port: `GET /v1/customers`, `GET /v1/invoices`
/// (`status`, `customer`, `limit`, `starting_after`), `GET /v1/invoices/{id}`,
/// `POST /v1/invoices/{id}/mark_uncollectible`. Requires `Authorization: Bearer sk_test_...`.
pub struct StripeSim {
    port: u16,
    state: Arc<Mutex<SimState>>,
    task: tokio::task::JoinHandle<()>,
}

impl StripeSim {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(SimState::default()));
        let app = Router::new()
            .route("/v1/customers", get(list_customers))
            .route("/v1/invoices", get(list_invoices))
            .route("/v1/invoices/{id}", get(get_invoice))
            .route("/v1/invoices/{id}/mark_uncollectible", post(mark_uncollectible))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stripe sim");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stripe sim serves");
        });
        StripeSim { port, state, task }
    }

    /// `http://127.0.0.1:<port>/`, the value for `gateway.stripe_api_base`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn add_customer(&self, customer: Value) {
        self.state.lock().unwrap().customers.push(customer);
    }

    pub fn add_invoice(&self, invoice: Value) {
        self.state.lock().unwrap().invoices.push(invoice);
    }

    /// The invoice as the simulator holds it now.
    pub fn invoice(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().invoices.iter().find(|i| i["id"] == id).cloned()
    }

    /// Request lines seen (`GET /v1/invoices?status=open&limit=100`), for assertions.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for StripeSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = State<Arc<Mutex<SimState>>>;

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"type": kind, "message": message}}))).into_response()
}

/// Stripe accepts secret keys as Bearer tokens; `Some` is the refusal.
fn authorized(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k.starts_with("sk_test_"));
    (!ok).then(|| stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "Invalid API Key provided"))
}

/// One page of `items` after `starting_after`, as Stripe's list object.
fn page(url: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "Invalid integer: limit"),
    };
    let start = match q.get("starting_after") {
        None => 0,
        Some(after) => match items.iter().position(|i| i["id"] == after.as_str()) {
            Some(p) => p + 1,
            None => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("No such object: '{after}'"),
                );
            }
        },
    };
    let rest: Vec<Value> = items.into_iter().skip(start).collect();
    let has_more = rest.len() > limit;
    let data: Vec<Value> = rest.into_iter().take(limit).collect();
    Json(json!({"object": "list", "url": url, "has_more": has_more, "data": data})).into_response()
}

fn log(state: &Shared, line: String) {
    state.lock().unwrap().requests.push(line);
}

fn query_line(q: &HashMap<String, String>) -> String {
    let mut parts: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.sort();
    parts.join("&")
}

async fn list_customers(state: Shared, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = authorized(&headers) {
        return r;
    }
    log(&state, format!("GET /v1/customers?{}", query_line(&q)));
    let items = state.lock().unwrap().customers.clone();
    page("/v1/customers", items, &q)
}

async fn list_invoices(state: Shared, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = authorized(&headers) {
        return r;
    }
    log(&state, format!("GET /v1/invoices?{}", query_line(&q)));
    let items: Vec<Value> = state
        .lock()
        .unwrap()
        .invoices
        .iter()
        .filter(|i| q.get("status").is_none_or(|s| i["status"] == s.as_str()))
        .filter(|i| q.get("customer").is_none_or(|c| i["customer"] == c.as_str()))
        .cloned()
        .collect();
    page("/v1/invoices", items, &q)
}

async fn get_invoice(state: Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = authorized(&headers) {
        return r;
    }
    log(&state, format!("GET /v1/invoices/{id}"));
    match state.lock().unwrap().invoices.iter().find(|i| i["id"] == id.as_str()) {
        Some(i) => Json(i.clone()).into_response(),
        None => stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", &format!("No such invoice: '{id}'")),
    }
}

/// Form-encoded like every Stripe POST; the body carries nothing this endpoint needs.
async fn mark_uncollectible(state: Shared, headers: HeaderMap, Path(id): Path<String>, _form: String) -> Response {
    if let Some(r) = authorized(&headers) {
        return r;
    }
    log(&state, format!("POST /v1/invoices/{id}/mark_uncollectible"));
    let mut s = state.lock().unwrap();
    match s.invoices.iter_mut().find(|i| i["id"] == id.as_str()) {
        Some(i) if i["status"] == "open" => {
            i["status"] = json!("uncollectible");
            Json(i.clone()).into_response()
        }
        Some(_) => stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "You can only mark an open invoice as uncollectible.",
        ),
        None => stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", &format!("No such invoice: '{id}'")),
    }
}
