//! Clients, contacts and invoices. Each change publishes its `billing.*_upserted` event
//! with a bumped version; another firm's record is simply not found.
use super::{ApiJson, ApiPath, ApiQuery, List, Page, check_email, check_name, check_tz, nullable};
use crate::auth::FirmAuth;
use crate::error::ApiError;
use crate::idempotency::{self, Idempotency};
use crate::publish::{Origin, message};
use crate::startup::AppState;
use crate::store::{self, ClientRow, ContactRow, InvoiceRow, to_text};
use arflow_contracts::events::{AutomationStatus, Consent, NextAction, Tier};
use arflow_contracts::subjects::billing;
use arflow_store::OutboxMessage;
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

// ---------- wire types ----------

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierBody {
    New,
    Standard,
    LongStanding,
    Key,
}

impl From<TierBody> for Tier {
    fn from(t: TierBody) -> Self {
        match t {
            TierBody::New => Tier::New,
            TierBody::Standard => Tier::Standard,
            TierBody::LongStanding => Tier::LongStanding,
            TierBody::Key => Tier::Key,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub voice: bool,
    #[serde(default)]
    pub sms: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Contact {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub timezone: Option<String>,
    pub primary: bool,
    pub consent: ConsentBody,
    pub version: i64,
}

impl From<&ContactRow> for Contact {
    fn from(c: &ContactRow) -> Self {
        Contact {
            id: c.id,
            client_id: c.client_id,
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            timezone: c.timezone.clone(),
            primary: c.is_primary,
            consent: ConsentBody { email: c.consent_email, voice: c.consent_voice, sms: c.consent_sms },
            version: c.version,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub id: Uuid,
    pub name: String,
    pub stripe_customer_id: Option<String>,
    /// `new`, `standard`, `long_standing` or `key`.
    pub tier: String,
    pub timezone: Option<String>,
    pub excluded: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// Present on `GET /v1/clients/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Contact>>,
}

impl From<&ClientRow> for Client {
    fn from(c: &ClientRow) -> Self {
        Client {
            id: c.id,
            name: c.name.clone(),
            stripe_customer_id: c.stripe_customer_id.clone(),
            tier: c.tier.clone(),
            timezone: c.timezone.clone(),
            excluded: c.excluded,
            version: c.version,
            created_at: c.created_at,
            contacts: None,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    pub id: Uuid,
    pub client_id: Uuid,
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    pub currency: String,
    #[schema(value_type = String)]
    pub amount_due: Decimal,
    #[schema(value_type = String)]
    pub amount_remaining: Decimal,
    pub due_date: Option<NaiveDate>,
    /// `draft`, `open`, `paid`, `void` or `uncollectible`.
    pub status: String,
    pub hosted_invoice_url: Option<String>,
    pub excluded: bool,
    pub disputed: bool,
    pub automation_status: Option<AutomationStatus>,
    pub next_action: Option<NextAction>,
    pub version: i64,
}

impl From<&InvoiceRow> for Invoice {
    fn from(i: &InvoiceRow) -> Self {
        Invoice {
            id: i.id,
            client_id: i.client_id,
            stripe_invoice_id: i.stripe_invoice_id.clone(),
            number: i.number.clone(),
            currency: i.currency.clone(),
            amount_due: i.scaled(i.amount_due),
            amount_remaining: i.scaled(i.amount_remaining),
            due_date: i.due_date,
            status: i.status.clone(),
            hosted_invoice_url: i.hosted_invoice_url.clone(),
            excluded: i.excluded,
            disputed: i.disputed,
            automation_status: i.automation_status.as_deref().and_then(|s| store::from_text("status", s).ok()),
            next_action: i.next_action.as_ref().map(|n| n.0.clone()),
            version: i.version,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    pub name: String,
    pub tier: Option<TierBody>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub excluded: bool,
    /// The Stripe customer (`cus_...`) this client is billed as; its invoices link here.
    pub stripe_customer_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchClient {
    pub name: Option<String>,
    pub tier: Option<TierBody>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    /// Excluded from all automation by the firm.
    pub excluded: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    pub name: String,
    pub email: Option<String>,
    /// E.164, e.g. `+14155552671`.
    pub phone: Option<String>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub primary: bool,
    #[serde(default)]
    pub consent: ConsentBody,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchContact {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    pub primary: Option<bool>,
    pub consent: Option<ConsentBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchInvoice {
    pub excluded: Option<bool>,
    pub disputed: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceFilter {
    pub client_id: Option<Uuid>,
}

// ---------- helpers ----------

fn phone(field: &str, raw: &str) -> Result<String, ApiError> {
    crate::ingest::e164(raw)
        .map_err(|e| ApiError::Validation(format!("{field}: {raw:?} is not an E.164 phone number ({e})")))
}

fn client_message(c: &ClientRow, now: DateTime<Utc>) -> Result<OutboxMessage, ApiError> {
    let event = c.event().map_err(ApiError::internal)?;
    Ok(message(
        billing::CLIENT_UPSERTED,
        c.firm_id,
        c.id,
        now,
        Origin::Record.msg_id("client", c.id, c.version),
        event,
    )?)
}

fn contact_message(c: &ContactRow, now: DateTime<Utc>) -> Result<OutboxMessage, ApiError> {
    Ok(message(
        billing::CONTACT_UPSERTED,
        c.firm_id,
        c.id,
        now,
        Origin::Record.msg_id("contact", c.id, c.version),
        c.event(),
    )?)
}

fn not_found(what: &str, id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no {what} with id {id}"))
}

/// Makes `keep` the only primary contact of its client; returns the demoted ones' events.
async fn demote_other_primaries(
    tx: &mut PgConnection,
    keep: &ContactRow,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, ApiError> {
    let mut out = Vec::new();
    for c in store::contacts_of_client(tx, keep.firm_id, keep.client_id).await? {
        if c.id != keep.id && c.is_primary {
            let demoted = ContactRow { is_primary: false, version: c.version + 1, ..c };
            store::upsert_contact(tx, &demoted, now).await?;
            out.push(contact_message(&demoted, now)?);
        }
    }
    Ok(out)
}

// ---------- clients ----------

#[utoipa::path(post, path = "/v1/clients", request_body = CreateClient, tag = "records",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 201, body = Client), (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn create_client(
    State(state): State<AppState>,
    auth: FirmAuth,
    idem: Idempotency,
    ApiJson(body): ApiJson<CreateClient>,
) -> Result<Response, ApiError> {
    let state = &state;
    idempotency::run(state, auth.firm_id, &idem, &Method::POST, "/v1/clients", |claim| async move {
        let name = check_name("name", &body.name)?;
        if let Some(tz) = &body.timezone {
            check_tz("timezone", tz)?;
        }
        let stripe_customer_id = match body.stripe_customer_id.as_deref().map(str::trim) {
            Some("") => return Err(ApiError::Validation("stripe_customer_id must not be empty".into())),
            other => other.map(str::to_string),
        };
        let now = state.base.clock.now();
        let client = ClientRow {
            id: arflow_core::new_id(),
            firm_id: auth.firm_id,
            stripe_customer_id: stripe_customer_id.clone(),
            name,
            tier: to_text(&Tier::from(body.tier.unwrap_or(TierBody::Standard))),
            timezone: body.timezone.clone(),
            excluded: body.excluded,
            version: 1,
            stripe_version: 0,
            created_at: now,
        };
        let mut tx = state.base.pool.begin().await?;
        if let Some(cus) = &stripe_customer_id {
            store::lock_stripe_customer(&mut tx, auth.firm_id, cus).await?;
        }
        if let Some(cus) = &stripe_customer_id
            && store::client_by_stripe_id(&mut tx, auth.firm_id, cus).await?.is_some()
        {
            return Err(ApiError::Conflict(format!("a client is already linked to Stripe customer {cus}")));
        }
        store::upsert_client(&mut tx, &client, now).await?;
        arflow_store::outbox::enqueue(&mut tx, &[client_message(&client, now)?]).await?;
        let created = serde_json::to_value(Client::from(&client))?;
        claim.complete(&mut tx, StatusCode::CREATED, &created).await?;
        tx.commit().await?;
        state.base.outbox.notify();
        Ok((StatusCode::CREATED, created))
    })
    .await
}

#[utoipa::path(get, path = "/v1/clients", tag = "records", params(Page),
    responses((status = 200, body = List<Client>)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn list_clients(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<Client>>, ApiError> {
    let limit = page.limit()?;
    let rows = store::list_clients(&state.base.pool, auth.firm_id, page.cursor, limit + 1).await?;
    let page = List::page(rows, limit, |c| c.id);
    Ok(Json(page.map(|c| Client::from(&c))))
}

#[utoipa::path(get, path = "/v1/clients/{id}", tag = "records", params(("id" = Uuid, Path)),
    responses((status = 200, body = Client), (status = 404, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, client_id = %id))]
pub async fn get_client(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Client>, ApiError> {
    let mut conn = state.base.pool.acquire().await?;
    let row = store::client(&mut conn, auth.firm_id, id).await?.ok_or_else(|| not_found("client", id))?;
    let contacts = store::contacts_of_client(&mut conn, auth.firm_id, id).await?;
    let mut client = Client::from(&row);
    client.contacts = Some(contacts.iter().map(Contact::from).collect());
    Ok(Json(client))
}

#[utoipa::path(patch, path = "/v1/clients/{id}", request_body = PatchClient, tag = "records",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Client), (status = 404, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, client_id = %id))]
pub async fn patch_client(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchClient>,
) -> Result<Json<Client>, ApiError> {
    let now = state.base.clock.now();
    let mut tx = state.base.pool.begin().await?;
    let mut c = store::client(&mut tx, auth.firm_id, id).await?.ok_or_else(|| not_found("client", id))?;
    if let Some(name) = &body.name {
        c.name = check_name("name", name)?;
    }
    if let Some(t) = body.tier {
        c.tier = to_text(&Tier::from(t));
    }
    if let Some(tz) = body.timezone {
        if let Some(tz) = &tz {
            check_tz("timezone", tz)?;
        }
        c.timezone = tz;
    }
    if let Some(x) = body.excluded {
        c.excluded = x;
    }
    c.version += 1;
    store::upsert_client(&mut tx, &c, now).await?;
    arflow_store::outbox::enqueue(&mut tx, &[client_message(&c, now)?]).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    Ok(Json(Client::from(&c)))
}

// ---------- contacts ----------

#[utoipa::path(post, path = "/v1/clients/{id}/contacts", request_body = CreateContact, tag = "records",
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 201, body = Contact), (status = 404, body = crate::error::ProblemBody),
        (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, client_id = %id))]
pub async fn create_contact(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
    idem: Idempotency,
    ApiJson(body): ApiJson<CreateContact>,
) -> Result<Response, ApiError> {
    let path = format!("/v1/clients/{id}/contacts");
    let state = &state;
    idempotency::run(state, auth.firm_id, &idem, &Method::POST, &path, |claim| async move {
        let name = check_name("name", &body.name)?;
        let email = body.email.as_deref().map(|e| check_email("email", e)).transpose()?;
        let phone = body.phone.as_deref().map(|p| phone("phone", p)).transpose()?;
        if let Some(tz) = &body.timezone {
            check_tz("timezone", tz)?;
        }
        let now = state.base.clock.now();
        let mut tx = state.base.pool.begin().await?;
        store::client(&mut tx, auth.firm_id, id).await?.ok_or_else(|| not_found("client", id))?;
        let contact = ContactRow {
            id: arflow_core::new_id(),
            firm_id: auth.firm_id,
            client_id: id,
            name,
            email,
            phone,
            timezone: body.timezone.clone(),
            is_primary: body.primary,
            consent_email: body.consent.email,
            consent_voice: body.consent.voice,
            consent_sms: body.consent.sms,
            from_stripe: false,
            version: 1,
            created_at: now,
        };
        store::upsert_contact(&mut tx, &contact, now).await?;
        let mut messages = vec![contact_message(&contact, now)?];
        if contact.is_primary {
            messages.extend(demote_other_primaries(&mut tx, &contact, now).await?);
        }
        arflow_store::outbox::enqueue(&mut tx, &messages).await?;
        let created = serde_json::to_value(Contact::from(&contact))?;
        claim.complete(&mut tx, StatusCode::CREATED, &created).await?;
        tx.commit().await?;
        state.base.outbox.notify();
        Ok((StatusCode::CREATED, created))
    })
    .await
}

#[utoipa::path(patch, path = "/v1/contacts/{id}", request_body = PatchContact, tag = "records",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Contact), (status = 404, body = crate::error::ProblemBody),
        (status = 422, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, contact_id = %id))]
pub async fn patch_contact(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchContact>,
) -> Result<Json<Contact>, ApiError> {
    let now = state.base.clock.now();
    let mut tx = state.base.pool.begin().await?;
    let mut c = store::contact(&mut tx, auth.firm_id, id).await?.ok_or_else(|| not_found("contact", id))?;
    if let Some(name) = &body.name {
        c.name = check_name("name", name)?;
    }
    if let Some(email) = body.email {
        c.email = email.as_deref().map(|e| check_email("email", e)).transpose()?;
    }
    if let Some(p) = body.phone {
        c.phone = p.as_deref().map(|p| phone("phone", p)).transpose()?;
    }
    if let Some(tz) = body.timezone {
        if let Some(tz) = &tz {
            check_tz("timezone", tz)?;
        }
        c.timezone = tz;
    }
    if let Some(p) = body.primary {
        c.is_primary = p;
    }
    if let Some(consent) = body.consent {
        let Consent { email, voice, sms } = Consent { email: consent.email, voice: consent.voice, sms: consent.sms };
        (c.consent_email, c.consent_voice, c.consent_sms) = (email, voice, sms);
    }
    c.version += 1;
    store::upsert_contact(&mut tx, &c, now).await?;
    let mut messages = vec![contact_message(&c, now)?];
    if c.is_primary {
        messages.extend(demote_other_primaries(&mut tx, &c, now).await?);
    }
    arflow_store::outbox::enqueue(&mut tx, &messages).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    Ok(Json(Contact::from(&c)))
}

// ---------- invoices ----------

#[utoipa::path(get, path = "/v1/invoices", tag = "records", params(Page, InvoiceFilter),
    responses((status = 200, body = List<Invoice>)), security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id))]
pub async fn list_invoices(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiQuery(page): ApiQuery<Page>,
    ApiQuery(filter): ApiQuery<InvoiceFilter>,
) -> Result<Json<List<Invoice>>, ApiError> {
    let limit = page.limit()?;
    let rows = store::list_invoices(&state.base.pool, auth.firm_id, filter.client_id, page.cursor, limit + 1).await?;
    let page = List::page(rows, limit, |c| c.id);
    Ok(Json(page.map(|i| Invoice::from(&i))))
}

#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "records", params(("id" = Uuid, Path)),
    responses((status = 200, body = Invoice), (status = 404, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, invoice_id = %id))]
pub async fn get_invoice(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Invoice>, ApiError> {
    let mut conn = state.base.pool.acquire().await?;
    let row = store::invoice(&mut conn, auth.firm_id, id).await?.ok_or_else(|| not_found("invoice", id))?;
    Ok(Json(Invoice::from(&row)))
}

#[utoipa::path(patch, path = "/v1/invoices/{id}", request_body = PatchInvoice, tag = "records",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Invoice), (status = 404, body = crate::error::ProblemBody)),
    security(("api_key" = [])))]
#[tracing::instrument(skip_all, fields(firm_id = %auth.firm_id, invoice_id = %id))]
pub async fn patch_invoice(
    State(state): State<AppState>,
    auth: FirmAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchInvoice>,
) -> Result<Json<Invoice>, ApiError> {
    let now = state.base.clock.now();
    let mut tx = state.base.pool.begin().await?;
    let mut i = store::invoice(&mut tx, auth.firm_id, id).await?.ok_or_else(|| not_found("invoice", id))?;
    if let Some(x) = body.excluded {
        i.excluded = x;
    }
    if let Some(d) = body.disputed {
        i.disputed = d;
    }
    i.version += 1;
    store::upsert_invoice(&mut tx, &i, now).await?;
    let event = i.event().map_err(ApiError::internal)?;
    let msg = message(
        billing::INVOICE_UPSERTED,
        i.firm_id,
        i.id,
        now,
        Origin::Record.msg_id("invoice", i.id, i.version),
        event,
    )?;
    arflow_store::outbox::enqueue(&mut tx, &[msg]).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    Ok(Json(Invoice::from(&i)))
}
