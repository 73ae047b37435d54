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

/// The Stripe API version the builders' shapes follow: the one async-stripe
/// 1.0.0-rc.10 pins (`stripe_shared::version::VERSION`) and sends as `Stripe-Version`.
pub const API_VERSION: &str = "2026-09-30.endive";

/// The creation time every built object reports (unix seconds).
const CREATED: i64 = 1_700_000_000;

/// An empty Stripe list object, as Stripe embeds one-to-many relations.
fn empty_list(url: &str) -> Value {
    json!({"object": "list", "data": [], "has_more": false, "url": url})
}

/// A Stripe `customer` object: every field of `stripe_shared::Customer` (API version
/// [`API_VERSION`]), nullable ones `null`, embedded lists empty.
pub fn customer(id: &str, name: &str, email: &str) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "business_name": null,
        "cash_balance": null,
        "created": CREATED,
        "currency": "usd",
        "customer_account": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": email,
        "individual_name": null,
        "invoice_credit_balance": {},
        "invoice_prefix": id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false,
        "metadata": {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "sources": empty_list(&format!("/v1/customers/{id}/sources")),
        "subscriptions": empty_list(&format!("/v1/customers/{id}/subscriptions")),
        "tax": null,
        "tax_exempt": "none",
        "tax_ids": empty_list(&format!("/v1/customers/{id}/tax_ids")),
        "test_clock": null
    })
}

/// A Stripe `invoice` object (`status`: draft, open, paid, void, uncollectible): every
/// field of `stripe_shared::Invoice` (API version [`API_VERSION`]), nullable ones `null`,
/// embedded lists empty. A one-off `send_invoice` invoice, finalized at creation unless draft.
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
    let finalized = status != "draft";
    let at = |yes: bool| if yes { json!(CREATED) } else { Value::Null };
    let mut object = json!({
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Test Firm",
        "account_tax_ids": null,
        "amount_due": amount_minor,
        "amount_overpaid": 0,
        "amount_paid": if paid { amount_minor } else { 0 },
        "amount_paid_off_stripe": 0,
        "amount_remaining": if paid || status == "void" { 0 } else { amount_minor },
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": false,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
        "automatically_finalizes_at": null,
        "billing_reason": "manual",
        "collection_method": "send_invoice",
        "confirmation_secret": null,
        "created": CREATED,
        "currency": currency.to_lowercase(),
        "custom_fields": null,
        "customer": customer,
        "customer_account": null,
        "customer_address": null,
        "customer_email": null,
        "customer_name": null,
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": []
    });
    // In parts: one `json!` of 80 fields exceeds the default macro recursion limit.
    let rest = json!({
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": due_date_unix,
        "effective_at": at(finalized),
        "ending_balance": if finalized { json!(0) } else { Value::Null },
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_test/{id}"),
        "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_test/{id}/pdf"),
        "issuer": {"account": null, "type": "self"},
        "last_finalization_error": null
    });
    let tail = json!({
        "latest_revision": null,
        "lines": empty_list(&format!("/v1/invoices/{id}/lines")),
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": number,
        "on_behalf_of": null,
        "parent": null,
        "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
        "payments": empty_list("/v1/invoice_payments"),
        "period_end": CREATED,
        "period_start": CREATED,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": {"amount_tax_display": null, "pdf": {"page_size": "auto"}, "template": null, "template_version": null},
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": status,
        "status_details": null,
        "status_transitions": {
            "finalized_at": at(finalized),
            "marked_uncollectible_at": at(status == "uncollectible"),
            "paid_at": at(paid),
            "voided_at": at(status == "void")
        },
        "subscription": null,
        "subtotal": amount_minor,
        "subtotal_excluding_tax": amount_minor,
        "test_clock": null,
        "threshold_reason": null,
        "total": amount_minor,
        "total_discount_amounts": [],
        "total_excluding_tax": amount_minor,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": at(finalized)
    });
    for part in [rest, tail] {
        if let (Value::Object(head), Value::Object(part)) = (&mut object, part) {
            head.extend(part);
        }
    }
    object
}

/// A Stripe `event` wrapping `object` (`type` e.g. `invoice.paid`).
pub fn event(evt_id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": evt_id,
        "object": "event",
        "api_version": API_VERSION,
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
    versions: Vec<Option<String>>,
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

    /// Request lines seen (`GET /v1/invoices?limit=100&status=open`), for assertions.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The `Stripe-Version` header of each request in [`Self::requests`] (None: not sent,
    /// the account's default version applies, as on Stripe).
    pub fn stripe_versions(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().versions.clone()
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

fn log(state: &Shared, headers: &HeaderMap, line: String) {
    let version = headers.get("stripe-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut s = state.lock().unwrap();
    s.requests.push(line);
    s.versions.push(version);
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
    log(&state, &headers, format!("GET /v1/customers?{}", query_line(&q)));
    let items = state.lock().unwrap().customers.clone();
    page("/v1/customers", items, &q)
}

async fn list_invoices(state: Shared, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = authorized(&headers) {
        return r;
    }
    log(&state, &headers, format!("GET /v1/invoices?{}", query_line(&q)));
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
    log(&state, &headers, format!("GET /v1/invoices/{id}"));
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
    log(&state, &headers, format!("POST /v1/invoices/{id}/mark_uncollectible"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use stripe_billing::InvoiceStatus;
    use stripe_billing::invoice::ListInvoice;
    use stripe_core::customer::ListCustomer;

    const STATUSES: [&str; 5] = ["draft", "open", "paid", "void", "uncollectible"];

    fn client_with(key: &str, sim: &StripeSim) -> stripe::Client {
        // ring and aws-lc-rs are both compiled in (mailin-embedded enables the latter), so
        // rustls cannot pick a default provider for async-stripe's connector by itself.
        let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
        stripe::ClientBuilder::new(key).url(sim.base_url()).build().expect("client")
    }

    fn client(sim: &StripeSim) -> stripe::Client {
        client_with("sk_test_builders", sim)
    }

    /// Parsed by async-stripe's client (its miniserde path) from the simulator, then
    /// serialized back: equal to the builder's JSON, so no field is missing or extra.
    #[tokio::test]
    async fn builders_parse_as_async_stripe_types_through_the_simulator() {
        let sim = StripeSim::start().await;
        let customers: Vec<Value> = (0..3)
            .map(|n| customer(&format!("cus_{n}"), &format!("Client {n}"), &format!("ap{n}@client.test")))
            .collect();
        let invoices: Vec<Value> = STATUSES
            .iter()
            .enumerate()
            .map(|(n, s)| {
                invoice(&format!("in_{n}"), "cus_0", &format!("INV-{n}"), 1_000 + n as i64, "EUR", 1_767_225_600, s)
            })
            .collect();
        customers.iter().for_each(|c| sim.add_customer(c.clone()));
        invoices.iter().for_each(|i| sim.add_invoice(i.clone()));
        let client = client(&sim);

        let listed: Vec<stripe_core::Customer> =
            ListCustomer::new().limit(2).paginate().stream(&client).try_collect().await.expect("customers parse");
        assert_eq!(listed.len(), 3);
        for (typed, built) in listed.iter().zip(&customers) {
            assert_eq!(&serde_json::to_value(typed).expect("serializes"), built);
        }

        let all: Vec<stripe_billing::Invoice> =
            ListInvoice::new().paginate().stream(&client).try_collect().await.expect("invoices parse");
        assert_eq!(all.len(), STATUSES.len());
        for (typed, built) in all.iter().zip(&invoices) {
            assert_eq!(&serde_json::to_value(typed).expect("serializes"), built);
        }

        let open: Vec<stripe_billing::Invoice> = ListInvoice::new()
            .status(InvoiceStatus::Open)
            .limit(100)
            .paginate()
            .stream(&client)
            .try_collect()
            .await
            .expect("open invoices parse");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].id.as_ref().map(|i| i.as_str()), Some("in_1"));
        assert_eq!(open[0].status, Some(InvoiceStatus::Open));
        assert_eq!(open[0].amount_remaining, 1_001);

        // Pages of 2 (`starting_after` the last id), what async-stripe sends and expects.
        let requests = sim.requests();
        assert_eq!(
            requests[..2],
            ["GET /v1/customers?limit=2".to_string(), "GET /v1/customers?limit=2&starting_after=cus_1".to_string()]
        );
        assert!(requests.contains(&"GET /v1/invoices?limit=100&status=open".to_string()), "{requests:?}");
        assert!(sim.stripe_versions().iter().all(|v| v.as_deref() == Some(API_VERSION)), "{:?}", sim.stripe_versions());
    }

    /// A caller's edit (`amount_remaining` after a partial payment) keeps the object valid.
    #[tokio::test]
    async fn edited_objects_still_parse_and_bad_keys_are_refused() {
        let sim = StripeSim::start().await;
        let mut partly = invoice("in_p", "cus_0", "INV-P", 10_000, "usd", 0, "open");
        partly["amount_paid"] = json!(4_000);
        partly["amount_remaining"] = json!(6_000);
        sim.add_invoice(partly);
        let page = ListInvoice::new().send(&client(&sim)).await.expect("invoice parses");
        assert_eq!(page.data[0].amount_remaining, 6_000);
        assert!(!page.has_more);

        let refused = client_with("rk_live_x", &sim);
        match ListInvoice::new().send(&refused).await {
            Err(stripe::StripeError::Stripe(e, 401)) => {
                assert_eq!(e.message.as_deref(), Some("Invalid API Key provided"))
            }
            other => panic!("expected a 401 Stripe error, got {other:?}"),
        }
    }
}
