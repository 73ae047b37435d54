//! Consumers, one module per subject family. Consent batches: each message is decoded into a
//! request, the holds of every new opt-out are written first (all at once), then the entries and
//! events commit in one transaction with the inbox ids. An opt-in is recorded on its own
//! (`ledger::opt_in`), in stream order with the opt-outs around it.
pub mod commands;
pub mod contacts;
pub mod replies;

use crate::config::OptOutSettings;
use crate::ledger::{self, Action, Change, LedgerError, Source};
use crate::store;
use arflow_bus::{HandlerError, Holds, Incoming, Rejection};
use arflow_core::{Channel, Clock};
use arflow_runtime::Metrics;
use arflow_store::{Outbox, handler_error, inbox};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What handlers and routes share.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub holds: Holds,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    pub settings: OptOutSettings,
}

/// A consent change asked for by one event, before its contact is resolved.
#[derive(Debug, Clone)]
pub struct Request {
    pub contact_id: Uuid,
    /// When the event names it (a reply); otherwise the contacts read model must know it.
    pub client_id: Option<Uuid>,
    pub channel: Option<Channel>,
    pub action: Action,
    pub source: Source,
    pub actor: String,
    pub evidence: String,
    /// The publisher already wrote this hold (the one-click link): no need to write it first.
    pub already_held: bool,
}

/// A request resolved against the read model: what to do with its message.
enum Resolved {
    /// Nothing to record (another reply intent, an unmatched reply).
    Skip,
    Change(Box<Change>, bool),
    /// Never recordable: dead-lettered.
    Reject(String),
    /// The contact is not known yet (its record is on its way): held now, recorded on a retry.
    Unknown(Box<Request>),
}

fn resolve(
    m: &Incoming,
    request: Result<Option<Request>, String>,
    contacts: &HashMap<Uuid, store::ContactRow>,
) -> Resolved {
    let r = match request {
        Ok(Some(r)) => r,
        Ok(None) => return Resolved::Skip,
        Err(reason) => return Resolved::Reject(reason),
    };
    let firm_id = m.envelope.firm_id;
    let client_id = match contacts.get(&r.contact_id) {
        Some(c) if c.firm_id != firm_id => {
            return Resolved::Reject(format!("contact {} belongs to another firm than {firm_id}", r.contact_id));
        }
        Some(c) => c.client_id,
        None => match r.client_id {
            Some(client) => client,
            None => return Resolved::Unknown(Box::new(r)),
        },
    };
    let change = Change {
        firm_id,
        contact_id: r.contact_id,
        client_id,
        channel: r.channel,
        action: r.action,
        source: r.source,
        actor: r.actor,
        evidence: r.evidence,
        cause: Some(m.envelope.clone()),
    };
    Resolved::Change(Box::new(change), r.already_held)
}

fn transient(e: LedgerError) -> HandlerError {
    handler_error(e)
}

/// One batch of consent requests (see the module doc). `decode` turns a message into a request.
pub(crate) async fn process(
    ctx: &Context,
    consumer: &str,
    batch: &[Incoming],
    decode: impl Fn(&Incoming) -> Result<Option<Request>, String>,
) -> Result<Vec<Rejection>, HandlerError> {
    let requests: Vec<Result<Option<Request>, String>> = batch.iter().map(&decode).collect();
    let contact_ids: Vec<Uuid> =
        requests.iter().filter_map(|r| r.as_ref().ok()?.as_ref().map(|r| r.contact_id)).collect();
    let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
    let (seen, contacts) = {
        let mut conn = ctx.pool.acquire().await.map_err(handler_error)?;
        let seen: HashSet<Uuid> =
            store::seen(&mut conn, consumer, &ids).await.map_err(handler_error)?.into_iter().collect();
        let contacts = store::contacts_by_id(&mut conn, &contact_ids).await.map_err(handler_error)?;
        (seen, contacts)
    };
    let resolved: Vec<Resolved> = batch
        .iter()
        .zip(requests)
        .map(|(m, r)| if seen.contains(&m.envelope.id) { Resolved::Skip } else { resolve(m, r, &contacts) })
        .collect();

    // Fence 2: the holds of every new opt-out before anything else, unknown contacts included.
    let now = ctx.clock.now();
    let unknown: Vec<Change> = batch
        .iter()
        .zip(&resolved)
        .filter_map(|(m, r)| match r {
            Resolved::Unknown(r) => Some(placeholder(m, r)),
            _ => None,
        })
        .collect();
    let mut first: Vec<&Change> = resolved
        .iter()
        .filter_map(|r| match r {
            Resolved::Change(c, false) if c.action == Action::OptOut => Some(c.as_ref()),
            _ => None,
        })
        .collect();
    first.extend(unknown.iter().filter(|c| c.action == Action::OptOut));
    ledger::hold_all(&ctx.holds, &first, now, ctx.settings.import_concurrency, false).await.map_err(handler_error)?;
    if let Some(contact) = unknown.first() {
        return Err(HandlerError::Retry(format!(
            "contact {} is not known yet (its record has not arrived); hold written, entry retried",
            contact.contact_id
        )));
    }

    let mut rejections = Vec::new();
    let mut segment: Vec<usize> = Vec::new();
    for (index, r) in resolved.iter().enumerate() {
        match r {
            Resolved::Reject(reason) => {
                batch[index].span().in_scope(|| tracing::warn!(%reason, "consent request refused; dead-lettering"));
                rejections.push(Rejection { index, reason: reason.clone() });
            }
            Resolved::Change(c, _) if c.action == Action::OptIn => {
                flush(ctx, consumer, batch, &resolved, &mut segment).await?;
                match ledger::opt_in(&ctx.pool, &ctx.holds, c, ctx.clock.now(), Some(consumer)).await {
                    Ok(_) => {}
                    Err(LedgerError::Invalid(reason)) => {
                        batch[index].span().in_scope(|| tracing::warn!(%reason, "opt-in refused; dead-lettering"));
                        rejections.push(Rejection { index, reason });
                    }
                    Err(e) => return Err(transient(e)),
                }
            }
            _ => segment.push(index),
        }
    }
    flush(ctx, consumer, batch, &resolved, &mut segment).await?;
    Ok(rejections)
}

/// Opt-outs (and no-ops) of `segment` in one transaction with their inbox ids.
async fn flush(
    ctx: &Context,
    consumer: &str,
    batch: &[Incoming],
    resolved: &[Resolved],
    segment: &mut Vec<usize>,
) -> Result<(), HandlerError> {
    if segment.is_empty() {
        return Ok(());
    }
    let mut tx = ctx.pool.begin().await.map_err(handler_error)?;
    let ids: Vec<Uuid> = segment.iter().map(|&i| batch[i].envelope.id).collect();
    let fresh = inbox::record_new(&mut tx, consumer, &ids).await.map_err(handler_error)?;
    let mut taken = HashSet::new();
    let changes: Vec<&Change> = segment
        .iter()
        .filter_map(|&i| match &resolved[i] {
            // `insert`: an id twice in one batch is recorded once.
            Resolved::Change(c, _) if fresh.contains(&batch[i].envelope.id) && taken.insert(batch[i].envelope.id) => {
                Some(c.as_ref())
            }
            _ => None,
        })
        .collect();
    let now = ctx.clock.now();
    let recorded = ledger::record_opt_outs(&mut tx, &ctx.holds, &changes, now, ctx.settings.import_concurrency)
        .await
        .map_err(transient)?;
    tx.commit().await.map_err(handler_error)?;
    let published = recorded.iter().filter(|r| r.event.is_some()).count() as u64;
    if published > 0 {
        ctx.outbox.notify();
    }
    ctx.metrics.count("consent_entries", recorded.len() as u64);
    ctx.metrics.count("consent_events_published", published);
    segment.clear();
    Ok(())
}

/// A request whose contact is not known yet, as a change (for its hold only).
fn placeholder(m: &Incoming, r: &Request) -> Change {
    Change {
        firm_id: m.envelope.firm_id,
        contact_id: r.contact_id,
        client_id: Uuid::nil(),
        channel: r.channel,
        action: r.action,
        source: r.source,
        actor: r.actor.clone(),
        evidence: r.evidence.clone(),
        cause: Some(m.envelope.clone()),
    }
}
