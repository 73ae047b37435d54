//! Stripe objects -> arflow records and `billing.*` events. Shared by the webhook and the
//! backfill so both converge on the same state.
//!
//! Ordering: Stripe delivers out of order. Each record keeps the Stripe event `created` it
//! was last built from (`stripe_version`); an older event does not overwrite newer fields,
//! and a paid or void invoice never becomes open again.
use crate::publish::{Origin, message};
use crate::store::{self, ActivityDetail, ClientRow, ContactRow, InvoiceRow, NewActivity, to_text};
use arflow_contracts::events::{HaltReason, InvoiceStatus, Tier};
use arflow_contracts::subjects::billing;
use arflow_core::{Currency, Money};
use arflow_store::OutboxMessage;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The Stripe object lacks what arflow needs: never retried, answered 400.
    #[error("{0}")]
    Malformed(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Stored(#[from] store::BadValue),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The parts of a Stripe event envelope arflow reads.
#[derive(Debug, Clone)]
pub struct StripeEvent {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub object: Value,
}

impl StripeEvent {
    pub fn parse(v: &Value) -> Result<Self, String> {
        let id = v.get("id").and_then(Value::as_str).ok_or("the event has no string `id`")?;
        let kind = v.get("type").and_then(Value::as_str).ok_or("the event has no string `type`")?;
        let created = v.get("created").and_then(Value::as_i64).ok_or("the event has no integer `created`")?;
        let object = v
            .get("data")
            .and_then(|d| d.get("object"))
            .filter(|o| o.is_object())
            .ok_or("the event has no `data.object`")?;
        if id.is_empty() {
            return Err("the event `id` is empty".into());
        }
        Ok(StripeEvent { id: id.to_string(), kind: kind.to_string(), created, object: object.clone() })
    }
}

/// What an event type means to arflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Customer,
    Invoice,
    Halt(HaltReason),
    PaymentFailed,
    Ignore,
}

pub fn classify(event: &StripeEvent) -> Action {
    match event.kind.as_str() {
        "customer.created" | "customer.updated" => Action::Customer,
        "invoice.created" | "invoice.finalized" | "invoice.updated" => Action::Invoice,
        "invoice.paid" => {
            let oob = event.object.get("paid_out_of_band").and_then(Value::as_bool).unwrap_or(false);
            Action::Halt(if oob { HaltReason::PaidOutOfBand } else { HaltReason::Paid })
        }
        "invoice.payment_succeeded" => Action::Halt(HaltReason::PaymentSucceeded),
        "invoice.voided" => Action::Halt(HaltReason::Voided),
        "invoice.marked_uncollectible" => Action::Halt(HaltReason::Uncollectible),
        "invoice.payment_failed" => Action::PaymentFailed,
        _ => Action::Ignore,
    }
}

pub fn halt_subject(reason: HaltReason) -> &'static str {
    match reason {
        HaltReason::Paid | HaltReason::PaymentSucceeded | HaltReason::PaidOutOfBand => billing::INVOICE_PAID,
        HaltReason::Voided => billing::INVOICE_VOIDED,
        HaltReason::Uncollectible => billing::INVOICE_UNCOLLECTIBLE,
    }
}

fn halt_status(reason: HaltReason) -> InvoiceStatus {
    match reason {
        HaltReason::Paid | HaltReason::PaymentSucceeded | HaltReason::PaidOutOfBand => InvoiceStatus::Paid,
        HaltReason::Voided => InvoiceStatus::Void,
        HaltReason::Uncollectible => InvoiceStatus::Uncollectible,
    }
}

fn str_field<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The id of an expandable field: `"cus_1"` or `{"id": "cus_1", ...}`.
fn expandable_id<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(o @ Value::Object(_)) => str_field(o, "id"),
        _ => None,
    }
}

/// An email address as lettre accepts it, else None (logged: Stripe data is not ours to refuse).
pub fn valid_email(raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    match raw.parse::<lettre::Address>() {
        Ok(a) => Some(a.to_string()),
        Err(e) => {
            tracing::warn!(email = %arflow_core::mask::email(raw), error = %e, "ignoring an invalid email from Stripe");
            None
        }
    }
}

/// A phone number in E.164, if it parses (numbers without a country code need a leading +).
pub fn e164(raw: &str) -> Result<String, String> {
    let parsed = phonenumber::parse(None, raw.trim()).map_err(|e| format!("{e}"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err("not a valid phone number".into());
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

fn valid_phone(raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    match e164(raw) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(phone = %arflow_core::mask::phone(raw), error = %e, "ignoring an invalid phone from Stripe");
            None
        }
    }
}

/// Everything one event or backfilled object changed: events to publish and activity rows.
#[derive(Debug, Default)]
pub struct Applied {
    pub messages: Vec<OutboxMessage>,
    /// The halt event, also published directly before answering Stripe.
    pub halt: Option<OutboxMessage>,
    pub invoice_id: Option<Uuid>,
}

pub struct Ctx<'a> {
    pub firm_id: Uuid,
    pub origin: Origin<'a>,
    /// Stripe's `created` of the event (or the fetch time of a backfill).
    pub created: i64,
    /// Business time from the clock (event `time`, row timestamps).
    pub now: DateTime<Utc>,
}

/// `customer.created|updated`: the client and its Stripe billing contact.
pub async fn apply_customer(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    obj: &Value,
    out: &mut Applied,
) -> Result<(), IngestError> {
    let customer_id = str_field(obj, "id").ok_or_else(|| IngestError::Malformed("the customer has no `id`".into()))?;
    let email = valid_email(str_field(obj, "email"));
    let name =
        str_field(obj, "name").map(str::to_string).or_else(|| email.clone()).unwrap_or_else(|| customer_id.to_string());
    let phone = valid_phone(str_field(obj, "phone"));
    store::lock_stripe_customer(tx, ctx.firm_id, customer_id).await?;
    let existing = store::client_by_stripe_id(tx, ctx.firm_id, customer_id).await?;
    if let Some(c) = &existing
        && ctx.created < c.stripe_version
    {
        tracing::info!(customer_id, "older customer event ignored");
        return Ok(());
    }
    let client = upsert_client(tx, ctx, existing, customer_id, &name, out).await?;
    upsert_stripe_contact(tx, ctx, &client, &name, email, phone, out).await
}

async fn upsert_client(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    existing: Option<ClientRow>,
    customer_id: &str,
    name: &str,
    out: &mut Applied,
) -> Result<ClientRow, IngestError> {
    let row = match existing {
        Some(c) => ClientRow {
            name: name.to_string(),
            version: c.version + 1,
            stripe_version: c.stripe_version.max(ctx.created),
            ..c
        },
        None => ClientRow {
            id: arflow_core::new_id(),
            firm_id: ctx.firm_id,
            stripe_customer_id: Some(customer_id.to_string()),
            name: name.to_string(),
            tier: to_text(&Tier::Standard),
            timezone: None,
            excluded: false,
            version: 1,
            stripe_version: ctx.created,
            created_at: ctx.now,
        },
    };
    store::upsert_client(tx, &row, ctx.now).await?;
    out.messages.push(message(
        billing::CLIENT_UPSERTED,
        ctx.firm_id,
        row.id,
        ctx.now,
        ctx.origin.msg_id("client", row.id, row.version),
        row.event()?,
    )?);
    Ok(row)
}

async fn upsert_stripe_contact(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    client: &ClientRow,
    name: &str,
    email: Option<String>,
    phone: Option<String>,
    out: &mut Applied,
) -> Result<(), IngestError> {
    if email.is_none() && phone.is_none() {
        return Ok(());
    }
    let contacts = store::contacts_of_client(tx, ctx.firm_id, client.id).await?;
    let has_primary = contacts.iter().any(|c| c.is_primary);
    let row = match contacts.into_iter().find(|c| c.from_stripe) {
        Some(c) => {
            let next = ContactRow {
                name: name.to_string(),
                email: email.or(c.email.clone()),
                phone: phone.or(c.phone.clone()),
                ..c.clone()
            };
            if next == c {
                return Ok(());
            }
            ContactRow { version: c.version + 1, ..next }
        }
        // Stripe's billing contact: email consent by default (the invoice went there already).
        None => ContactRow {
            id: arflow_core::new_id(),
            firm_id: ctx.firm_id,
            client_id: client.id,
            name: name.to_string(),
            email,
            phone,
            timezone: None,
            is_primary: !has_primary,
            consent_email: true,
            consent_voice: false,
            consent_sms: false,
            from_stripe: true,
            version: 1,
            created_at: ctx.now,
        },
    };
    store::upsert_contact(tx, &row, ctx.now).await?;
    out.messages.push(message(
        billing::CONTACT_UPSERTED,
        ctx.firm_id,
        row.id,
        ctx.now,
        ctx.origin.msg_id("contact", row.id, row.version),
        row.event(),
    )?);
    Ok(())
}

fn parse_status(obj: &Value) -> InvoiceStatus {
    match str_field(obj, "status") {
        Some("open") => InvoiceStatus::Open,
        Some("paid") => InvoiceStatus::Paid,
        Some("void") => InvoiceStatus::Void,
        Some("uncollectible") => InvoiceStatus::Uncollectible,
        _ => InvoiceStatus::Draft,
    }
}

/// Merges a status: paid and void are final; uncollectible only moves to paid or void; an
/// older event never moves an open invoice back to draft.
fn merge_status(current: InvoiceStatus, incoming: InvoiceStatus, newer: bool) -> InvoiceStatus {
    use InvoiceStatus::*;
    match (current, incoming) {
        (Paid | Void, _) => current,
        (_, Paid | Void) => incoming,
        (Uncollectible, _) => current,
        (_, Uncollectible) => incoming,
        _ if newer => incoming,
        _ => current,
    }
}

fn unix_date(obj: &Value, key: &str) -> Option<NaiveDate> {
    let ts = obj.get(key).and_then(Value::as_i64)?;
    DateTime::from_timestamp(ts, 0).map(|t| t.date_naive())
}

/// Ensures the invoice's client exists (created from the invoice's customer fields if Stripe
/// has not told us about the customer yet, so nothing is lost).
async fn client_for_invoice(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    obj: &Value,
    out: &mut Applied,
) -> Result<Uuid, IngestError> {
    let customer_id =
        expandable_id(obj, "customer").ok_or_else(|| IngestError::Malformed("the invoice has no `customer`".into()))?;
    store::lock_stripe_customer(tx, ctx.firm_id, customer_id).await?;
    if let Some(c) = store::client_by_stripe_id(tx, ctx.firm_id, customer_id).await? {
        return Ok(c.id);
    }
    let email = valid_email(str_field(obj, "customer_email"));
    let name = str_field(obj, "customer_name")
        .map(str::to_string)
        .or_else(|| email.clone())
        .unwrap_or_else(|| customer_id.to_string());
    let phone = valid_phone(str_field(obj, "customer_phone"));
    // stripe_version 0: the customer's own events, whenever they come, are newer.
    let sub = Ctx { created: 0, ..*ctx };
    let client = upsert_client(tx, &sub, None, customer_id, &name, out).await?;
    upsert_stripe_contact(tx, &sub, &client, &name, email, phone, out).await?;
    Ok(client.id)
}

/// An invoice object (from any invoice.* event or a backfill). `forced` is the status the
/// event type itself implies (a halt).
pub async fn apply_invoice(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    obj: &Value,
    forced: Option<InvoiceStatus>,
    event_id: &str,
    out: &mut Applied,
) -> Result<InvoiceRow, IngestError> {
    let stripe_id = str_field(obj, "id").ok_or_else(|| IngestError::Malformed("the invoice has no `id`".into()))?;
    let currency = str_field(obj, "currency")
        .ok_or_else(|| IngestError::Malformed("the invoice has no `currency`".into()))
        .and_then(|c| Currency::parse(c).map_err(|e| IngestError::Malformed(e.to_string())))?;
    let amount_due = obj
        .get("amount_due")
        .and_then(Value::as_i64)
        .ok_or_else(|| IngestError::Malformed("the invoice has no integer `amount_due`".into()))?;
    let amount_remaining = obj.get("amount_remaining").and_then(Value::as_i64).unwrap_or(amount_due);
    let client_id = client_for_invoice(tx, ctx, obj, out).await?;
    let invoice_id = store::invoice_id_for(tx, ctx.firm_id, stripe_id).await?;
    let incoming_status = forced.unwrap_or_else(|| parse_status(obj));
    let fresh = InvoiceRow {
        id: invoice_id,
        firm_id: ctx.firm_id,
        client_id,
        stripe_invoice_id: stripe_id.to_string(),
        number: str_field(obj, "number").map(str::to_string),
        currency: currency.code().to_string(),
        amount_due: Money::from_minor(amount_due, currency).amount,
        amount_remaining: Money::from_minor(amount_remaining, currency).amount,
        due_date: unix_date(obj, "due_date"),
        status: to_text(&incoming_status),
        hosted_invoice_url: str_field(obj, "hosted_invoice_url").map(str::to_string),
        excluded: false,
        disputed: false,
        version: ctx.created.max(1),
        stripe_version: ctx.created,
        automation_status: None,
        next_action: None,
        created_at: ctx.now,
    };
    out.invoice_id = Some(invoice_id);
    let existing = store::invoice(tx, ctx.firm_id, invoice_id).await?;
    let row = match &existing {
        None => fresh,
        Some(cur) => {
            let newer = ctx.created >= cur.stripe_version;
            let status = merge_status(cur.status()?, incoming_status, newer);
            let mut next = if newer {
                InvoiceRow {
                    client_id: cur.client_id,
                    excluded: cur.excluded,
                    disputed: cur.disputed,
                    stripe_version: ctx.created,
                    version: cur.version,
                    automation_status: cur.automation_status.clone(),
                    next_action: cur.next_action.clone(),
                    created_at: cur.created_at,
                    ..fresh.clone()
                }
            } else {
                cur.clone()
            };
            // A payment is applied even when its event is older than the last update.
            if status == InvoiceStatus::Paid && incoming_status == InvoiceStatus::Paid {
                next.amount_remaining = fresh.amount_remaining;
            }
            next.status = to_text(&status);
            if &next == cur {
                return Ok(next);
            }
            next.version = (cur.version + 1).max(ctx.created);
            next
        }
    };
    store::upsert_invoice(tx, &row, ctx.now).await?;
    out.messages.push(message(
        billing::INVOICE_UPSERTED,
        ctx.firm_id,
        row.id,
        ctx.now,
        ctx.origin.msg_id("invoice", row.id, row.version),
        row.event()?,
    )?);
    if existing.is_none() {
        let number = row.number.clone().unwrap_or_else(|| row.stripe_invoice_id.clone());
        let amount = Money::new(row.amount_remaining, currency);
        store::add_activity(
            tx,
            &NewActivity {
                firm_id: ctx.firm_id,
                invoice_id: row.id,
                at: ctx.now,
                kind: "invoice_created".into(),
                summary: format!("Invoice {number} received from Stripe: {amount} remaining, status {}", row.status),
                detail: ActivityDetail::default(),
                event_id: event_id.to_string(),
            },
        )
        .await?;
    }
    Ok(row)
}

/// Applies one verified webhook event. For halts, `hold_revision` is the revision of the hold
/// already written to the `holds` bucket.
pub async fn apply_event(
    tx: &mut PgConnection,
    firm_id: Uuid,
    event: &StripeEvent,
    hold_revision: Option<u64>,
    now: DateTime<Utc>,
) -> Result<Applied, IngestError> {
    let ctx = Ctx { firm_id, origin: Origin::Stripe(&event.id), created: event.created, now };
    let mut out = Applied::default();
    match classify(event) {
        Action::Ignore => {}
        Action::Customer => apply_customer(tx, &ctx, &event.object, &mut out).await?,
        Action::Invoice => {
            apply_invoice(tx, &ctx, &event.object, None, &event.id, &mut out).await?;
        }
        Action::PaymentFailed => {
            let row = apply_invoice(tx, &ctx, &event.object, None, &event.id, &mut out).await?;
            let data = arflow_contracts::events::InvoicePaymentFailed {
                invoice_id: row.id,
                client_id: row.client_id,
                stripe_invoice_id: row.stripe_invoice_id.clone(),
                stripe_event_id: event.id.clone(),
            };
            out.messages.push(message(
                billing::INVOICE_PAYMENT_FAILED,
                firm_id,
                row.id,
                now,
                arflow_contracts::msg_id::stripe_event(&event.id),
                data,
            )?);
            store::add_activity(
                tx,
                &NewActivity {
                    firm_id,
                    invoice_id: row.id,
                    at: now,
                    kind: "payment_failed".into(),
                    summary: "Stripe reported a failed payment attempt".into(),
                    detail: ActivityDetail { reason: Some("payment_failed".into()), ..Default::default() },
                    event_id: event.id.clone(),
                },
            )
            .await?;
        }
        Action::Halt(reason) => {
            let mut row =
                apply_invoice(tx, &ctx, &event.object, Some(halt_status(reason)), &event.id, &mut out).await?;
            let hold_revision = hold_revision.unwrap_or_default();
            // The merged status decides, not the event: a `marked_uncollectible` that arrives
            // after `paid` (out of order) leaves a paid invoice paid, and says nothing more.
            let uncollectible = to_text(&InvoiceStatus::Uncollectible);
            if reason == HaltReason::Uncollectible && row.status != uncollectible {
                tracing::info!(status = %row.status, "uncollectible after the invoice was settled; kept as it is");
                return Ok(out);
            }
            let automation = if row.status == uncollectible {
                arflow_contracts::events::AutomationStatus::Uncollectible
            } else {
                arflow_contracts::events::AutomationStatus::HaltedPaid
            };
            row.automation_status = Some(to_text(&automation));
            store::upsert_invoice(tx, &row, now).await?;
            let data = arflow_contracts::events::InvoiceHalted {
                invoice_id: row.id,
                client_id: row.client_id,
                stripe_invoice_id: row.stripe_invoice_id.clone(),
                reason,
                stripe_event_id: event.id.clone(),
                hold_revision,
                version: row.version,
            };
            let halt = message(
                halt_subject(reason),
                firm_id,
                row.id,
                now,
                arflow_contracts::msg_id::stripe_event(&event.id),
                data,
            )?;
            out.messages.push(halt.clone());
            out.halt = Some(halt);
            let reason_text = to_text(&reason);
            store::add_activity(tx, &NewActivity {
                firm_id,
                invoice_id: row.id,
                at: now,
                kind: "halted".into(),
                summary: format!(
                    "Outreach halted: Stripe reported {} ({}); hold revision {hold_revision} written before acknowledging",
                    reason_text.replace('_', " "),
                    event.kind
                ),
                detail: ActivityDetail { reason: Some(reason_text), hold_revision: Some(hold_revision), ..Default::default() },
                event_id: event.id.clone(),
            })
            .await?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn statuses_merge_without_ever_unpaying() {
        use InvoiceStatus::*;
        assert_eq!(merge_status(Paid, Open, true), Paid);
        assert_eq!(merge_status(Open, Paid, false), Paid);
        assert_eq!(merge_status(Draft, Open, true), Open);
        assert_eq!(merge_status(Open, Draft, false), Open);
        assert_eq!(merge_status(Uncollectible, Open, true), Uncollectible);
        assert_eq!(merge_status(Uncollectible, Paid, false), Paid);
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(e164("+1 415 555 2671").unwrap(), "+14155552671");
        assert!(e164("12").is_err());
    }

    #[test]
    fn events_parse_and_classify() {
        let v = serde_json::json!({"id": "evt_1", "type": "invoice.paid", "created": 5,
            "data": {"object": {"id": "in_1", "paid_out_of_band": true}}});
        let e = StripeEvent::parse(&v).unwrap();
        assert_eq!(classify(&e), Action::Halt(HaltReason::PaidOutOfBand));
        assert!(StripeEvent::parse(&serde_json::json!({"id": "evt_1"})).is_err());
    }
}
