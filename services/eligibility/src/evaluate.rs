//! Re-evaluation inside the caller's transaction: lock the affected invoices, read
//! what the rules need with set-based queries, decide, store every changed decision
//! and return the events to enqueue in the same transaction.
use crate::SERVICE;
use crate::rules::{self, Inputs};
use crate::store::{self, DecisionRow, EvaluationState};
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{AllContactsOptedOut, AutomationStatus, InvoiceUpserted, PromiseBroken};
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Invoices evaluated per round of queries (a firm update can touch every invoice of the firm).
const CHUNK: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("database error during evaluation: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What a batch touched: invoices and clients to look at again, each with the event that
/// caused it (the last one wins), so published events carry the causation chain.
#[derive(Debug, Default)]
pub struct Touched<'a> {
    pub invoices: BTreeMap<Uuid, Option<&'a RawEnvelope>>,
    /// Clients whose contacts changed: check whether all of them are opted out.
    pub clients: BTreeMap<Uuid, Option<&'a RawEnvelope>>,
    /// Invoice snapshots still to write, newest version per invoice: written in one
    /// statement at the end of the batch (the bulk of a backfill).
    pub pending_invoices: BTreeMap<Uuid, (InvoiceUpserted, &'a RawEnvelope)>,
}

impl<'a> Touched<'a> {
    pub fn invoice(&mut self, id: Uuid, cause: Option<&'a RawEnvelope>) {
        self.invoices.insert(id, cause);
    }

    pub fn client(&mut self, id: Uuid, cause: Option<&'a RawEnvelope>) {
        self.clients.insert(id, cause);
    }

    /// Queues an invoice snapshot; of several for one invoice the newest is kept. Every
    /// invoice write is version-guarded, so writing it after the batch's other events is safe.
    pub fn invoice_snapshot(&mut self, invoice: InvoiceUpserted, cause: &'a RawEnvelope) {
        match self.pending_invoices.get(&invoice.invoice_id) {
            Some((queued, _)) if queued.version >= invoice.version => {}
            _ => {
                self.pending_invoices.insert(invoice.invoice_id, (invoice, cause));
            }
        }
    }

    /// Writes the queued snapshots; the ones that were newer than stored are re-evaluated.
    pub async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.pending_invoices.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending_invoices);
        let firms: Vec<Uuid> = pending.values().map(|(_, env)| env.firm_id).collect();
        let invoices: Vec<&InvoiceUpserted> = pending.values().map(|(i, _)| i).collect();
        let mut applied = Vec::with_capacity(invoices.len());
        let sizes: Vec<usize> = invoices.iter().map(|i| snapshot_size(i)).collect();
        let mut offset = 0;
        for chunk in store::size_chunks(&sizes, |n| *n) {
            let range = offset..offset + chunk.len();
            applied.extend(store::upsert_invoices(conn, &firms[range.clone()], &invoices[range]).await?);
            offset += chunk.len();
        }
        if applied.len() < pending.len() {
            tracing::debug!(
                ignored = pending.len() - applied.len(),
                "invoice snapshots not newer than stored; ignored"
            );
        }
        for id in applied {
            if let Some((_, env)) = pending.get(&id) {
                self.invoices.insert(id, Some(*env));
            }
        }
        Ok(())
    }
}

/// The counts of one evaluation round, for logs and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub evaluated: usize,
    pub published: usize,
    pub warnings: usize,
    /// Payment promises recorded broken.
    pub broken: usize,
}

/// Re-evaluates everything `touched` names; returns the events for the outbox.
pub async fn run(
    conn: &mut PgConnection,
    touched: &Touched<'_>,
    now: DateTime<Utc>,
) -> Result<(Vec<OutboxMessage>, Outcome), EvaluateError> {
    let mut messages = Vec::new();
    let mut outcome = Outcome::default();
    let ids: Vec<Uuid> = touched.invoices.keys().copied().collect();
    for chunk in ids.chunks(CHUNK) {
        let (mut m, o) = evaluate_chunk(conn, chunk, &touched.invoices, now).await?;
        outcome.evaluated += o.evaluated;
        outcome.published += o.published;
        outcome.broken += o.broken;
        messages.append(&mut m);
    }
    let clients: Vec<Uuid> = touched.clients.keys().copied().collect();
    if !clients.is_empty() {
        let mut warnings = opted_out_warnings(conn, &clients, &touched.clients, now).await?;
        outcome.warnings = warnings.len();
        messages.append(&mut warnings);
    }
    Ok((messages, outcome))
}

async fn evaluate_chunk(
    conn: &mut PgConnection,
    ids: &[Uuid],
    causes: &BTreeMap<Uuid, Option<&RawEnvelope>>,
    now: DateTime<Utc>,
) -> Result<(Vec<OutboxMessage>, Outcome), EvaluateError> {
    let mut invoices = store::lock_invoices(conn, ids).await?;
    let mut firm_ids: Vec<Uuid> = invoices.iter().map(|i| i.firm_id).collect();
    firm_ids.sort_unstable();
    firm_ids.dedup();
    let mut client_ids: Vec<Uuid> = invoices.iter().map(|i| i.client_id).collect();
    client_ids.sort_unstable();
    client_ids.dedup();
    let firms: HashMap<Uuid, store::FirmRow> =
        store::firms(conn, &firm_ids).await?.into_iter().map(|f| (f.firm_id, f)).collect();
    let clients: HashMap<Uuid, store::ClientRow> =
        store::clients(conn, &client_ids).await?.into_iter().map(|c| (c.client_id, c)).collect();
    let mut contacts: HashMap<Uuid, Vec<store::ContactRow>> = HashMap::new();
    for c in store::contacts_of_clients(conn, &client_ids).await? {
        contacts.entry(c.client_id).or_default().push(c);
    }

    let mut messages = Vec::new();
    // A payment promise whose pause just ended unpaid: recorded once, announced, and carried
    // by this and every later decision (the scheduler resumes with a firmer step).
    let mut broken: Vec<(Uuid, i64, PromiseBroken)> = Vec::new();
    for inv in invoices.iter_mut() {
        let (Some(promise), Some(pause_version)) = (rules::newly_broken(inv, now), inv.pause_version) else {
            continue;
        };
        tracing::info!(invoice_id = %inv.invoice_id, promised_date = ?promise.promised_date, "payment promise broken");
        let cause = causes.get(&inv.invoice_id).copied().flatten();
        let kind = subjects::eligibility::PROMISE_BROKEN;
        let env = Envelope::new(kind, SERVICE, now, inv.firm_id, inv.invoice_id, cause, promise.clone());
        messages.push(OutboxMessage::new(
            subjects::subject(kind, inv.firm_id),
            promise_broken_msg_id(inv.invoice_id, pause_version),
            env,
        )?);
        inv.broken_promise = Some(Json(promise.clone()));
        inv.broken_pause_version = Some(pause_version);
        broken.push((inv.invoice_id, pause_version, promise));
    }
    if !broken.is_empty() {
        let rows: Vec<(Uuid, i64, &PromiseBroken)> = broken.iter().map(|(i, v, p)| (*i, *v, p)).collect();
        store::save_broken_promises(conn, &rows).await?;
    }

    let mut states = Vec::with_capacity(invoices.len());
    let mut decisions = Vec::new();
    for inv in &invoices {
        // A record of another firm never feeds this invoice's decision (tenant isolation).
        let client = clients.get(&inv.client_id).filter(|c| c.firm_id == inv.firm_id);
        let inputs = Inputs {
            invoice: inv,
            client,
            firm: firms.get(&inv.firm_id),
            contacts: contacts
                .get(&inv.client_id)
                .map(|v| v.iter().filter(|c| c.firm_id == inv.firm_id).collect())
                .unwrap_or_default(),
        };
        let Some(decision) = rules::decide(&inputs, now) else {
            // A placeholder: nothing to decide until the invoice record arrives.
            states.push(EvaluationState {
                invoice_id: inv.invoice_id,
                decision_version: inv.decision_version,
                decision_hash: inv.decision_hash.clone(),
                past_due: false,
                next_check_at: None,
            });
            continue;
        };
        let changed = inv.decision_hash.as_deref() != Some(decision.hash.as_str());
        let version = if changed { inv.decision_version + 1 } else { inv.decision_version };
        states.push(EvaluationState {
            invoice_id: inv.invoice_id,
            decision_version: version,
            decision_hash: Some(decision.hash.clone()),
            past_due: decision.payload.past_due,
            next_check_at: decision.next_check_at,
        });
        if !changed {
            continue;
        }
        let mut payload = decision.payload;
        payload.version = version;
        payload.evaluated_at = now;
        tracing::debug!(
            invoice_id = %inv.invoice_id, version, eligible = payload.eligible, past_due = payload.past_due,
            failed = ?payload.failed_rules(), "eligibility changed"
        );
        decisions.push(DecisionRow {
            invoice_id: inv.invoice_id,
            version,
            firm_id: inv.firm_id,
            eligible: payload.eligible,
            past_due: payload.past_due,
            automation_status: status_name(payload.automation_status),
            checks: serde_json::to_value(&payload.checks)?,
            payload_hash: decision.hash,
            evaluated_at: now,
        });
        let cause = causes.get(&inv.invoice_id).copied().flatten();
        let env =
            Envelope::new(subjects::eligibility::CHANGED, SERVICE, now, inv.firm_id, inv.invoice_id, cause, payload);
        messages.push(OutboxMessage::new(
            subjects::subject(subjects::eligibility::CHANGED, inv.firm_id),
            msg_id::eligibility(inv.invoice_id, version),
            env,
        )?);
    }
    store::save_states(conn, &states).await?;
    store::insert_decisions(conn, &decisions).await?;
    let outcome = Outcome {
        evaluated: invoices.len(),
        published: messages.len() - broken.len(),
        warnings: 0,
        broken: broken.len(),
    };
    Ok((messages, outcome))
}

/// Warns the firm once per transition when no channel is left on any contact of a client
/// (each channel judged on its own: a contact whose email bounced but who may still be called
/// keeps the client reachable).
async fn opted_out_warnings(
    conn: &mut PgConnection,
    client_ids: &[Uuid],
    causes: &BTreeMap<Uuid, Option<&RawEnvelope>>,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, EvaluateError> {
    let mut messages = Vec::new();
    let mut contacts: HashMap<Uuid, Vec<store::ContactRow>> = HashMap::new();
    for c in store::contacts_of_clients(conn, client_ids).await? {
        contacts.entry(c.client_id).or_default().push(c);
    }
    for state in store::opt_out_states(conn, client_ids).await? {
        // A record of another firm never counts for this client (tenant isolation).
        let own = contacts.get(&state.client_id).into_iter().flatten().filter(|c| c.firm_id == state.firm_id);
        let all = rules::client_reach(own) == rules::ClientReach::AllOptedOut;
        if all == state.all_opted_out {
            continue;
        }
        let Some(warnings) = store::set_all_opted_out(conn, state.client_id, all).await? else { continue };
        if !all {
            tracing::info!(client_id = %state.client_id, "a contact of the client can be reached again");
            continue;
        }
        let invoice_ids = store::open_invoices_of_client(conn, state.client_id).await?;
        tracing::warn!(client_id = %state.client_id, invoices = invoice_ids.len(), "no channel left on any contact of the client; warning the firm");
        let data = AllContactsOptedOut { client_id: state.client_id, client_name: state.name.clone(), invoice_ids };
        let cause = causes.get(&state.client_id).copied().flatten();
        let env = Envelope::new(
            subjects::eligibility::ALL_CONTACTS_OPTED_OUT,
            SERVICE,
            now,
            state.firm_id,
            state.client_id,
            cause,
            data,
        );
        messages.push(OutboxMessage::new(
            subjects::subject(subjects::eligibility::ALL_CONTACTS_OPTED_OUT, state.firm_id),
            msg_id::record("all_contacts_opted_out", state.client_id, warnings),
            env,
        )?);
    }
    Ok(messages)
}

/// `promise:<invoice>:<pause_version>:broken`: one promise breaks once, whatever re-evaluates it.
pub fn promise_broken_msg_id(invoice_id: Uuid, pause_version: i64) -> String {
    format!("promise:{invoice_id}:{pause_version}:broken")
}

/// Roughly the bytes one snapshot adds to the bulk upsert.
fn snapshot_size(i: &InvoiceUpserted) -> usize {
    160 + i.stripe_invoice_id.len()
        + i.number.as_ref().map_or(0, String::len)
        + i.hosted_invoice_url.as_ref().map_or(0, String::len)
}

pub fn status_name(s: AutomationStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
