//! What happens to a case: opened by a trigger (or noted when one of its family is already
//! active), acted on by a person or by arflow, and published whole each time through the outbox.
use crate::SERVICE;
use crate::store::{self, ActionRow, CaseRow};
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    CaseAction, CaseActionKind, CaseActivity, CaseClient, CaseContact, CaseFirm, CaseInvoice, CaseLinks, CaseReview,
    CaseStatus, EscalationCase, EscalationReason, MarkUncollectible, ReplyClassified, ReplyIntent, ReviewLabel, Tier,
};
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_core::Currency;
use arflow_core::window::parse_tz;
use arflow_store::OutboxMessage;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// Who acts when arflow itself does.
pub const ARFLOW: &str = "arflow";

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// A read model the payload needs has not arrived yet (retry later).
    #[error("{0} not known yet")]
    NotYetKnown(String),
    /// Another transaction opened the same case first (retry and it becomes a note).
    #[error("a case of this family was opened concurrently")]
    Raced,
    /// The action is not allowed in the case's state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

/// The family a reason belongs to: at most one case per invoice (or client) and family is
/// active at a time; a new trigger in the family notes the active case instead.
pub fn family(reason: EscalationReason) -> &'static str {
    match reason {
        EscalationReason::Dispute => "dispute",
        // The client asked something a person must answer.
        EscalationReason::PaymentPlan
        | EscalationReason::Question
        | EscalationReason::WrongContact
        | EscalationReason::PersonRequested => "client_request",
        // Automation ran its course without collecting.
        EscalationReason::CadenceExhausted | EscalationReason::PromiseBrokenTwice | EscalationReason::DaysPastDue => {
            "collection"
        }
        EscalationReason::AllContactsOptedOut => "unreachable",
        EscalationReason::Manual => "manual",
        // One case per reply to label (see `family_key`).
        EscalationReason::NeedsReview => "review",
    }
}

/// The family key of a trigger's case: its family, except that every reply to label has a case of
/// its own (`review:<reply_id>`), so two unclear replies of one invoice are labelled one by one.
fn family_key(t: &Trigger) -> String {
    match (t.reason, &t.review) {
        (EscalationReason::NeedsReview, Some(r)) => format!("review:{}", r.reply.reply_id),
        (reason, _) => family(reason).to_string(),
    }
}

pub fn parse_reason(s: &str) -> EscalationReason {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(EscalationReason::Manual)
}

pub fn parse_status(s: &str) -> CaseStatus {
    match s {
        "paused" => CaseStatus::Paused,
        "referred" => CaseStatus::Referred,
        "resolved" => CaseStatus::Resolved,
        _ => CaseStatus::Open,
    }
}

pub fn status_str(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Open => "open",
        CaseStatus::Paused => "paused",
        CaseStatus::Referred => "referred",
        CaseStatus::Resolved => "resolved",
    }
}

pub fn action_str(a: CaseActionKind) -> String {
    serde_json::to_value(a).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn parse_action(s: &str) -> CaseActionKind {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(CaseActionKind::Note)
}

/// Why a case should open.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub firm_id: Uuid,
    pub client_id: Uuid,
    /// `None`: a client-wide case.
    pub invoice_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// `needs_review`: the reply a person must label (stored with the case it opens).
    pub review: Option<Review>,
    pub reason: EscalationReason,
    pub evidence: String,
    pub actor: String,
    pub note: String,
    /// What caused it (stored with the action).
    pub details: serde_json::Value,
}

/// The reply a `needs_review` case is opened for, as it came in.
#[derive(Debug, Clone)]
pub struct Review {
    pub reply: ReplyClassified,
    /// The event it came in: the labelled reply continues its chain.
    pub cause_event_id: Uuid,
    pub correlation_id: Uuid,
}

/// What a trigger did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Opened(CaseRow),
    /// A case of the family was already active: the trigger was added to it as a note.
    Noted(CaseRow),
}

impl Outcome {
    pub fn case(&self) -> &CaseRow {
        match self {
            Outcome::Opened(c) | Outcome::Noted(c) => c,
        }
    }
}

/// Where payload links point.
#[derive(Debug, Clone)]
pub struct Links {
    pub base: String,
}

impl Links {
    fn of(&self, case: &CaseRow, invoice: Option<&store::InvoiceRow>) -> CaseLinks {
        let base = self.base.trim_end_matches('/');
        CaseLinks {
            case: format!("{base}/v1/escalations/{}", case.case_id),
            invoice_activity: case.invoice_id.map(|id| format!("{base}/v1/invoices/{id}/activity")),
            hosted_invoice: invoice.and_then(|i| i.hosted_invoice_url.clone()),
        }
    }
}

/// Opens a case for `t`, or notes the active case of its family. Returns the events to enqueue.
pub async fn open_or_note(
    conn: &mut PgConnection,
    links: &Links,
    t: Trigger,
    now: DateTime<Utc>,
    cause: Option<&RawEnvelope>,
) -> Result<(Outcome, Vec<OutboxMessage>), CaseError> {
    let family = family_key(&t);
    let key = t.invoice_id.unwrap_or(t.client_id);
    if let Some(mut case) = store::lock_active_case(conn, t.firm_id, key, &family).await? {
        let note = format!("{}: {}", t.reason.as_str(), t.note);
        let details = json!({ "trigger": t.reason, "evidence": t.evidence, "cause": t.details });
        // New evidence on a case a person paused needs a person again.
        if case.status == "paused" {
            case.status = "open".into();
            case.paused_until = None;
        }
        let input = ActionInput::new(CaseActionKind::Note, &t.actor, &note).with_details(details);
        let messages = record(conn, links, &mut case, input, now, cause).await?;
        return Ok((Outcome::Noted(case), messages));
    }
    // The payload must be whole: wait for the records it is built from.
    let contact_id = match t.contact_id {
        Some(id) => Some(id),
        None => store::primary_contact(conn, t.firm_id, t.client_id).await?.map(|c| c.contact_id),
    };
    let mut case = CaseRow {
        case_id: arflow_core::new_id(),
        firm_id: t.firm_id,
        client_id: t.client_id,
        contact_id,
        invoice_id: t.invoice_id,
        reason: t.reason.as_str().to_string(),
        family,
        evidence: t.evidence.clone(),
        status: "open".into(),
        version: 0,
        opened_at: now,
        updated_at: now,
        resolved_at: None,
        paused_until: None,
        agency: None,
        pending_command: None,
    };
    check_known(conn, &case).await?;
    case.version = 1;
    if !store::insert_case(conn, &case).await? {
        return Err(CaseError::Raced);
    }
    let action = ActionRow {
        action_id: arflow_core::new_id(),
        case_id: case.case_id,
        firm_id: case.firm_id,
        version: 1,
        action: action_str(CaseActionKind::Opened),
        actor: t.actor,
        note: t.note,
        at: now,
        paused_until: None,
        agency: None,
        details: Json(json!({ "trigger": t.reason, "cause": t.details })),
    };
    store::insert_action(conn, &action).await?;
    if let Some(r) = t.review {
        let review = store::ReviewRow {
            case_id: case.case_id,
            firm_id: case.firm_id,
            reply_id: r.reply.reply_id,
            reply: Json(r.reply),
            cause_event_id: r.cause_event_id,
            correlation_id: r.correlation_id,
            label: None,
        };
        store::insert_review(conn, &review).await?;
    }
    tracing::info!(case_id = %case.case_id, invoice_id = ?case.invoice_id, reason = %case.reason, "case opened");
    let message = event(conn, links, &case, &action, subjects::escalation::OPENED, now, cause).await?;
    Ok((Outcome::Opened(case), vec![message]))
}

/// Fails when the firm, the client or the invoice of a new case is not known yet.
async fn check_known(conn: &mut PgConnection, case: &CaseRow) -> Result<(), CaseError> {
    if store::firm(conn, case.firm_id).await?.is_none() {
        return Err(CaseError::NotYetKnown(format!("firm {}", case.firm_id)));
    }
    if store::client(conn, case.firm_id, case.client_id).await?.is_none() {
        return Err(CaseError::NotYetKnown(format!("client {}", case.client_id)));
    }
    if let Some(id) = case.invoice_id {
        let known = store::invoice(conn, case.firm_id, id).await?.is_some_and(|i| i.currency.is_some());
        if !known {
            return Err(CaseError::NotYetKnown(format!("invoice {id}")));
        }
    }
    Ok(())
}

/// One action on a case.
#[derive(Debug, Clone)]
pub struct ActionInput {
    pub kind: CaseActionKind,
    pub actor: String,
    pub note: String,
    pub paused_until: Option<DateTime<Utc>>,
    pub agency: Option<String>,
    /// `label`: what the reply means, and for `promise_to_pay` the promised day if the person
    /// gave it.
    pub label: Option<(ReplyIntent, Option<NaiveDate>)>,
    pub details: serde_json::Value,
}

impl ActionInput {
    pub fn new(kind: CaseActionKind, actor: &str, note: &str) -> Self {
        ActionInput {
            kind,
            actor: actor.to_string(),
            note: note.to_string(),
            paused_until: None,
            agency: None,
            label: None,
            details: json!({}),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Applies an action a firm user (or arflow) took on a locked, not yet resolved case:
/// records it, moves the status, and returns the events (the case, and for
/// mark-uncollectible the command to the gateway).
pub async fn act(
    conn: &mut PgConnection,
    links: &Links,
    case: &mut CaseRow,
    input: ActionInput,
    now: DateTime<Utc>,
    cause: Option<&RawEnvelope>,
) -> Result<Vec<OutboxMessage>, CaseError> {
    if case.status == "resolved" {
        return Err(CaseError::Conflict(format!("case {} is already resolved", case.case_id)));
    }
    let mut input = input;
    let mut extra = Vec::new();
    let review = case.reason == EscalationReason::NeedsReview.as_str();
    match input.kind {
        CaseActionKind::Resolve if review => {
            return Err(CaseError::Conflict(format!(
                "case {} waits for the reply to be labelled: use label (or continue_automation to resume without \
                 acting on it)",
                case.case_id
            )));
        }
        CaseActionKind::ContinueAutomation | CaseActionKind::Resolve | CaseActionKind::Paid => {
            mark_resolved(case, now);
        }
        CaseActionKind::Label => {
            let Some((intent, promised_date)) = input.label else {
                return Err(CaseError::Invalid(format!("label needs the intent: one of {}", intent_labels())));
            };
            if !review {
                return Err(CaseError::Invalid(format!(
                    "case {} is a {} case: only needs_review cases are labelled",
                    case.case_id, case.reason
                )));
            }
            if promised_date.is_some() && intent != ReplyIntent::PromiseToPay {
                return Err(CaseError::Invalid("promised_date goes only with promise_to_pay".into()));
            }
            let Some(reviewed) = store::review(conn, case.case_id).await? else {
                return Err(CaseError::Invalid(format!("case {} has no reply to label", case.case_id)));
            };
            let label = ReviewLabel { intent, promised_date, labelled_by: input.actor.clone(), labelled_at: now };
            extra.push(labelled_reply(conn, case, &reviewed, &label, now).await?);
            mark_resolved(case, now);
            input.details = json!({ "reply_id": reviewed.reply_id, "intent": intent, "promised_date": promised_date });
        }
        CaseActionKind::MarkUncollectible => {
            // A person asks: Stripe is called by the gateway; the case resolves when Stripe's
            // answer comes back as `billing.invoice_uncollectible`.
            if let Some(pending) = case.pending_command {
                return Err(CaseError::Conflict(format!(
                    "mark-uncollectible {pending} is already waiting for Stripe's answer"
                )));
            }
            let Some(invoice_id) = case.invoice_id else {
                return Err(CaseError::Invalid("a client-wide case has no invoice to mark uncollectible".into()));
            };
            let invoice = store::invoice(conn, case.firm_id, invoice_id).await?;
            let Some((invoice, stripe_invoice_id)) = invoice.and_then(|i| i.stripe_invoice_id.clone().map(|s| (i, s)))
            else {
                return Err(CaseError::Invalid(format!("invoice {invoice_id} has no Stripe invoice id")));
            };
            if invoice.status.as_deref() != Some("open") {
                return Err(CaseError::Conflict(format!(
                    "invoice {invoice_id} is {}, not open",
                    invoice.status.as_deref().unwrap_or("unknown")
                )));
            }
            let request_id = arflow_core::new_id();
            case.pending_command = Some(request_id);
            let command = MarkUncollectible {
                request_id,
                case_id: case.case_id,
                invoice_id,
                stripe_invoice_id: stripe_invoice_id.clone(),
                actor: input.actor.clone(),
                note: input.note.clone(),
            };
            input.details = json!({ "request_id": request_id, "stripe_invoice_id": stripe_invoice_id });
            let kind = subjects::command::STRIPE_MARK_UNCOLLECTIBLE;
            let env = Envelope::new(kind, SERVICE, now, case.firm_id, invoice_id, cause, command);
            extra.push(OutboxMessage::new(subjects::subject(kind, case.firm_id), msg_id::command(request_id), env)?);
        }
        CaseActionKind::Pause => {
            if let Some(until) = input.paused_until
                && until <= now
            {
                return Err(CaseError::Invalid(format!("paused_until {until} is not in the future")));
            }
            case.status = "paused".into();
            case.paused_until = input.paused_until;
        }
        CaseActionKind::ReferToAgency => {
            let Some(agency) = input.agency.clone().filter(|a| !a.trim().is_empty()) else {
                return Err(CaseError::Invalid("refer_to_agency needs the agency's name".into()));
            };
            case.status = "referred".into();
            case.agency = Some(agency);
            case.paused_until = None;
        }
        CaseActionKind::Note => {}
        CaseActionKind::Opened => return Err(CaseError::Invalid("a case is opened, not acted on, with opened".into())),
    }
    if input.kind == CaseActionKind::ReferToAgency {
        let summary = hand_off_summary(conn, case, &input, now).await?;
        input.details = json!({ "summary": summary });
    }
    let mut messages = record(conn, links, case, input, now, cause).await?;
    messages.extend(extra);
    Ok(messages)
}

/// The nine labels, for an error message.
fn intent_labels() -> String {
    ReplyIntent::ALL.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
}

/// What a person's label does: the reply becomes a labelled example (one per reply) and is
/// published again, as `reply.classified` for the same reply, invoice and contact, with the
/// label as its intent, sure and not in review. From there every service acts on it as on a
/// classified reply (an opt-out: the opt-out service holds the contact first, then records it).
async fn labelled_reply(
    conn: &mut PgConnection,
    case: &CaseRow,
    reviewed: &store::ReviewRow,
    label: &ReviewLabel,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, CaseError> {
    let original = &reviewed.reply.0;
    store::set_review_label(conn, case.case_id, label).await?;
    let example = store::LabelledRow {
        reply_id: reviewed.reply_id,
        firm_id: case.firm_id,
        case_id: case.case_id,
        channel: original.channel.as_str().to_string(),
        reference_date: original.reference_date,
        text: original.client_text.clone(),
        intent: label.intent.as_str().to_string(),
        promised_date: label.promised_date,
        labelled_by: label.labelled_by.clone(),
        labelled_at: now,
    };
    if !store::insert_labelled(conn, &example).await? {
        return Err(CaseError::Conflict(format!("reply {} is already labelled", reviewed.reply_id)));
    }
    let data = original.labelled(label.intent, label.promised_date, &label.labelled_by);
    let kind = subjects::reply::CLASSIFIED;
    let subject_id = original.invoice_id.unwrap_or(original.reply_id);
    let mut env = Envelope::new(kind, SERVICE, now, case.firm_id, subject_id, None, data);
    // The same reply's chain: what follows from the label is correlated with the reply.
    env.correlation_id = reviewed.correlation_id;
    env.causation_id = Some(reviewed.cause_event_id);
    tracing::info!(case_id = %case.case_id, reply_id = %reviewed.reply_id, intent = %label.intent.as_str(), labelled_by = %label.labelled_by, "reply labelled");
    Ok(OutboxMessage::new(subjects::subject(kind, case.firm_id), msg_id::label(case.case_id), env)?)
}

fn mark_resolved(case: &mut CaseRow, now: DateTime<Utc>) {
    case.status = "resolved".into();
    case.resolved_at = Some(now);
    case.paused_until = None;
    case.pending_command = None;
}

/// Resolves a locked case because of what happened to its invoice (paid, void, written off in
/// Stripe), recording `input` as the resolving action whatever its kind.
pub async fn resolve(
    conn: &mut PgConnection,
    links: &Links,
    case: &mut CaseRow,
    input: ActionInput,
    now: DateTime<Utc>,
    cause: Option<&RawEnvelope>,
) -> Result<Vec<OutboxMessage>, CaseError> {
    if case.status == "resolved" {
        return Ok(Vec::new());
    }
    mark_resolved(case, now);
    record(conn, links, case, input, now, cause).await
}

/// Records a note on a locked case without changing its status (a Stripe refusal).
pub async fn note(
    conn: &mut PgConnection,
    links: &Links,
    case: &mut CaseRow,
    input: ActionInput,
    now: DateTime<Utc>,
    cause: Option<&RawEnvelope>,
) -> Result<Vec<OutboxMessage>, CaseError> {
    record(conn, links, case, input, now, cause).await
}

/// Bumps the case, appends the action and builds the case event.
async fn record(
    conn: &mut PgConnection,
    links: &Links,
    case: &mut CaseRow,
    input: ActionInput,
    now: DateTime<Utc>,
    cause: Option<&RawEnvelope>,
) -> Result<Vec<OutboxMessage>, CaseError> {
    case.version += 1;
    case.updated_at = now;
    store::update_case(conn, case).await?;
    let action = ActionRow {
        action_id: arflow_core::new_id(),
        case_id: case.case_id,
        firm_id: case.firm_id,
        version: case.version,
        action: action_str(input.kind),
        actor: input.actor,
        note: input.note,
        at: now,
        paused_until: input.paused_until,
        agency: input.agency,
        details: Json(input.details),
    };
    store::insert_action(conn, &action).await?;
    let kind = if case.status == "resolved" { subjects::escalation::RESOLVED } else { subjects::escalation::UPDATED };
    tracing::info!(case_id = %case.case_id, action = %action.action, actor = %action.actor, status = %case.status, version = case.version, "case action recorded");
    Ok(vec![event(conn, links, case, &action, kind, now, cause).await?])
}

/// The case event (`Nats-Msg-Id` `case:<id>:v<version>`).
async fn event(
    conn: &mut PgConnection,
    links: &Links,
    case: &CaseRow,
    action: &ActionRow,
    kind: &str,
    now: DateTime<Utc>,
    cause: Option<&RawEnvelope>,
) -> Result<OutboxMessage, CaseError> {
    let payload = payload(conn, links, case, action, now).await?;
    let env = Envelope::new(kind, SERVICE, now, case.firm_id, case.case_id, cause, payload);
    Ok(OutboxMessage::new(subjects::subject(kind, case.firm_id), msg_id::case(case.case_id, case.version), env)?)
}

fn tier(s: &str) -> Tier {
    Tier::parse(s).unwrap_or(Tier::Standard)
}

/// Days past due on `now`'s date in `zone` (0 before the due date or without one).
pub fn days_past_due(due: Option<NaiveDate>, zone: Tz, now: DateTime<Utc>) -> i64 {
    let Some(due) = due else { return 0 };
    (now.with_timezone(&zone).date_naive() - due).num_days().max(0)
}

pub fn zone(name: Option<&str>) -> Tz {
    name.and_then(|n| parse_tz(n).ok()).unwrap_or(Tz::UTC)
}

/// What the read models know of a case's firm, client, contact and invoice, and the firm's zone.
struct Records {
    firm: Option<store::FirmRow>,
    client: Option<store::ClientRow>,
    contact: Option<store::ContactRow>,
    invoice: Option<store::InvoiceRow>,
    tz: Tz,
}

impl Records {
    async fn of(conn: &mut PgConnection, case: &CaseRow) -> Result<Records, CaseError> {
        let firm = store::firm(conn, case.firm_id).await?;
        let client = store::client(conn, case.firm_id, case.client_id).await?;
        let contact = match case.contact_id {
            Some(id) => store::contact(conn, case.firm_id, id).await?,
            None => None,
        };
        let invoice = match case.invoice_id {
            Some(id) => store::invoice(conn, case.firm_id, id).await?,
            None => None,
        };
        let tz = zone(firm.as_ref().map(|f| f.timezone.as_str()));
        Ok(Records { firm, client, contact, invoice, tz })
    }
}

/// The whole case as published and as the API shows it: everything a consumer needs.
pub async fn payload(
    conn: &mut PgConnection,
    links: &Links,
    case: &CaseRow,
    action: &ActionRow,
    now: DateTime<Utc>,
) -> Result<EscalationCase, CaseError> {
    let Records { firm, client, contact, invoice, tz } = Records::of(conn, case).await?;
    let case_invoice = invoice.as_ref().map(|i| CaseInvoice {
        invoice_id: i.invoice_id,
        stripe_invoice_id: i.stripe_invoice_id.clone().unwrap_or_default(),
        number: i.number.clone(),
        currency: i.currency.as_deref().and_then(|c| Currency::parse(c).ok()).unwrap_or(Currency::USD),
        amount_due: i.amount_due.unwrap_or(Decimal::ZERO),
        amount_remaining: i.amount_remaining.unwrap_or(Decimal::ZERO),
        due_date: i.due_date,
        days_past_due: days_past_due(i.due_date, tz, now),
        hosted_invoice_url: i.hosted_invoice_url.clone(),
    });
    Ok(EscalationCase {
        case_id: case.case_id,
        version: case.version,
        status: parse_status(&case.status),
        reason: parse_reason(&case.reason),
        evidence: case.evidence.clone(),
        firm: CaseFirm {
            firm_id: case.firm_id,
            name: firm.as_ref().map(|f| f.name.clone()).unwrap_or_default(),
            timezone: firm.as_ref().map_or_else(|| "UTC".to_string(), |f| f.timezone.clone()),
        },
        client: CaseClient {
            client_id: case.client_id,
            name: client.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
            tier: client.as_ref().map_or(Tier::Standard, |c| tier(&c.tier)),
        },
        contact: contact.map(|c| CaseContact {
            contact_id: c.contact_id,
            name: c.name,
            email: c.email,
            phone: c.phone,
        }),
        opened_at: case.opened_at,
        updated_at: case.updated_at,
        resolved_at: case.resolved_at,
        action: CaseAction {
            action: parse_action(&action.action),
            actor: action.actor.clone(),
            note: action.note.clone(),
            at: action.at,
            paused_until: action.paused_until,
            agency: action.agency.clone(),
        },
        latest_activity: invoice.as_ref().and_then(|i| i.latest_activity.as_ref().map(|a| a.0.clone())),
        links: links.of(case, invoice.as_ref()),
        invoice: case_invoice,
        review: review_of(conn, case).await?,
    })
}

/// The reply a `needs_review` case is about, with what the classifier made of it and the label.
async fn review_of(conn: &mut PgConnection, case: &CaseRow) -> Result<Option<CaseReview>, CaseError> {
    if case.reason != EscalationReason::NeedsReview.as_str() {
        return Ok(None);
    }
    Ok(store::review(conn, case.case_id).await?.map(|r| {
        let reply = r.reply.0;
        CaseReview {
            reply_id: r.reply_id,
            channel: reply.channel,
            client_text: reply.client_text,
            evidence: reply.evidence,
            confidence: reply.confidence,
            scores: reply.scores,
            label: r.label.map(|l| l.0),
        }
    }))
}

/// The text handed to a collection agency: the case, the invoice, the client and its contact,
/// the history of actions. Stored with the `refer_to_agency` action.
async fn hand_off_summary(
    conn: &mut PgConnection,
    case: &CaseRow,
    input: &ActionInput,
    now: DateTime<Utc>,
) -> Result<String, CaseError> {
    let Records { firm, client, contact, invoice, tz } = Records::of(conn, case).await?;
    let mut s = String::new();
    let firm_name = firm.as_ref().map_or("", |f| f.name.as_str());
    s.push_str(&format!(
        "Referral to {} from {firm_name} on {}\n",
        input.agency.as_deref().unwrap_or(""),
        now.with_timezone(&tz).format("%Y-%m-%d")
    ));
    s.push_str(&format!("Case {} ({}), opened {}\n", case.case_id, case.reason, case.opened_at.to_rfc3339()));
    s.push_str(&format!("Client: {}\n", client.as_ref().map_or("", |c| c.name.as_str())));
    if let Some(c) = &contact {
        s.push_str(&format!(
            "Contact: {} <{}> {}\n",
            c.name,
            c.email.as_deref().unwrap_or("-"),
            c.phone.as_deref().unwrap_or("-")
        ));
    }
    if let Some(i) = &invoice {
        let currency = i.currency.as_deref().unwrap_or("");
        s.push_str(&format!(
            "Invoice {} ({}): {} {currency} remaining of {} {currency}, due {}, {} days past due\n",
            i.number.as_deref().unwrap_or("-"),
            i.stripe_invoice_id.as_deref().unwrap_or("-"),
            i.amount_remaining.unwrap_or_default(),
            i.amount_due.unwrap_or_default(),
            i.due_date.map_or_else(|| "-".to_string(), |d| d.to_string()),
            days_past_due(i.due_date, tz, now),
        ));
        if let Some(a) = &i.latest_activity {
            s.push_str(&format!("Latest activity ({}, {}): {}\n", a.0.kind, a.0.at.to_rfc3339(), a.0.summary));
        }
    }
    s.push_str(&format!("Evidence: {}\n", case.evidence));
    s.push_str("History:\n");
    for a in store::actions(conn, case.case_id).await? {
        s.push_str(&format!("- {} {} by {}: {}\n", a.at.to_rfc3339(), a.action, a.actor, a.note));
    }
    s.push_str(&format!("- {} refer_to_agency by {}: {}\n", now.to_rfc3339(), input.actor, input.note));
    Ok(s)
}

/// Latest activity for the payload.
pub fn activity(kind: &str, at: DateTime<Utc>, summary: String) -> CaseActivity {
    CaseActivity { at, kind: kind.to_string(), summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(reason: EscalationReason, review: Option<Review>) -> Trigger {
        Trigger {
            firm_id: Uuid::nil(),
            client_id: Uuid::nil(),
            invoice_id: Some(Uuid::nil()),
            contact_id: None,
            review,
            reason,
            evidence: String::new(),
            actor: ARFLOW.into(),
            note: String::new(),
            details: json!({}),
        }
    }

    fn reply(reply_id: Uuid) -> Review {
        let reply: ReplyClassified = serde_json::from_value(json!({
            "reply_id": reply_id, "channel": "email", "kind": "reply", "intent": "question", "promised_date": null,
            "evidence": "", "sure": false, "needs_review": true, "client_text": "see below", "invoice_id": null,
            "contact_id": null, "client_id": null, "matched_by": null, "answered_message_id": null, "step": null,
            "from": null, "subject": null, "received_at": "2026-03-10T10:00:00Z", "reference_date": "2026-03-10",
            "bounce": null, "action": ""
        }))
        .unwrap();
        Review { reply, cause_event_id: Uuid::nil(), correlation_id: Uuid::nil() }
    }

    /// Each reply to label is a case of its own; every other reason keeps one case per family.
    #[test]
    fn each_reply_to_label_has_its_own_case_family() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = family_key(&trigger(EscalationReason::NeedsReview, Some(reply(a))));
        let second = family_key(&trigger(EscalationReason::NeedsReview, Some(reply(b))));
        assert_eq!(first, format!("review:{a}"));
        assert_ne!(first, second);
        assert_eq!(family_key(&trigger(EscalationReason::Question, None)), "client_request");
        assert_eq!(family_key(&trigger(EscalationReason::PaymentPlan, None)), family(EscalationReason::Question));
        // Review cases never share a family with what the label may open.
        for reason in [EscalationReason::Dispute, EscalationReason::Question, EscalationReason::WrongContact] {
            assert_ne!(family(reason), family(EscalationReason::NeedsReview));
        }
        assert_eq!(intent_labels().split(", ").count(), 9);
    }
}
