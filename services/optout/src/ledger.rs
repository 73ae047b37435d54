//! Recording consent: the holds (fence 2), the ledger entry and the consent event, in the
//! order that keeps the fence.
//!
//! Opt-out: the hold is written FIRST (nothing else needs to succeed for sends to stop), then
//! the ledger entry and the event are written in one transaction with the contact locked. Under
//! the lock the hold is checked again: a firm user's opt-in released before the lock was taken
//! must not leave an opted-out contact unheld.
//!
//! Opt-in: only a firm user with a reason. The contact is locked for its transaction (a
//! transaction lock, so a cancelled request releases it): the entry and the event commit, then
//! holds are written for the channels still opted out and the released ones are deleted, except
//! a hold the ledger did not know at commit (an opt-out that wrote its hold meanwhile). If the
//! release fails the contact stays held (the safe side) and the firm user can repeat the opt-in.
use crate::SERVICE;
use crate::store::{self, CHANNELS, Entry, NewEntry, State};
use arflow_bus::{BusError, HoldValue, Holds};
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::ConsentChanged;
use arflow_contracts::streams::{contact_channel_hold_key, contact_hold_key};
use arflow_contracts::subjects::{consent, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::Channel;
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Where a consent change came from (the ledger's `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    EmailReply,
    SpamComplaint,
    HardBounce,
    UnsubscribeLink,
    FirmUser,
    CsvImport,
    CallRequest,
    SmsStop,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::EmailReply => "email_reply",
            Source::SpamComplaint => "spam_complaint",
            Source::HardBounce => "hard_bounce",
            Source::UnsubscribeLink => "unsubscribe_link",
            Source::FirmUser => "firm_user",
            Source::CsvImport => "csv_import",
            Source::CallRequest => "call_request",
            Source::SmsStop => "sms_stop",
        }
    }

    /// The sources a command may name (replies arrive as `reply.classified`).
    pub fn from_command(s: &str) -> Option<Source> {
        match s {
            "unsubscribe_link" => Some(Source::UnsubscribeLink),
            "firm_user" => Some(Source::FirmUser),
            "csv_import" => Some(Source::CsvImport),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OptOut,
    OptIn,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OptOut => "opt_out",
            Action::OptIn => "opt_in",
        }
    }
}

/// One requested change, before it is recorded.
#[derive(Debug, Clone)]
pub struct Change {
    pub firm_id: Uuid,
    pub contact_id: Uuid,
    pub client_id: Uuid,
    /// `None`: every channel.
    pub channel: Option<Channel>,
    pub action: Action,
    pub source: Source,
    pub actor: String,
    pub evidence: String,
    /// The event that asked for it, when there was one (chains the consent event to it).
    pub cause: Option<RawEnvelope>,
}

impl Change {
    /// The hold key this change writes: `contact.<id>` or `contact.<id>.<channel>`.
    pub fn hold_key(&self) -> String {
        hold_key(self.contact_id, self.channel)
    }

    /// What the hold names as its origin (read by a sender that was refused).
    pub fn hold_origin(&self) -> String {
        match &self.cause {
            Some(env) => format!("{}:{}", self.source.as_str(), env.id),
            None => format!("{}:{}", self.source.as_str(), self.actor),
        }
    }

    fn channels(&self) -> Vec<Channel> {
        match self.channel {
            Some(c) => vec![c],
            None => CHANNELS.to_vec(),
        }
    }
}

pub fn hold_key(contact_id: Uuid, channel: Option<Channel>) -> String {
    match channel {
        Some(c) => contact_channel_hold_key(contact_id, c),
        None => contact_hold_key(contact_id),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Can never be recorded (an opt-in without a firm user's reason, another firm's contact).
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("holds: {0}")]
    Holds(#[from] BusError),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The reason every hold from this service carries.
pub const HOLD_REASON: &str = "opted_out";

/// Writes the holds of `changes` (opt-outs) at once, up to `concurrency` in flight; returns each
/// revision. With `only_missing`, a key already held is left as it is (its revision is returned).
pub async fn hold_all(
    holds: &Holds,
    changes: &[&Change],
    now: DateTime<Utc>,
    concurrency: usize,
    only_missing: bool,
) -> Result<Vec<u64>, BusError> {
    // Owned inputs: the futures then borrow nothing but `holds` (and stay `Send`).
    let keys: Vec<(String, String, Uuid)> =
        changes.iter().map(|c| (c.hold_key(), c.hold_origin(), c.contact_id)).collect();
    let results: Vec<Result<u64, BusError>> = futures::stream::iter(keys)
        .map(|(key, origin, contact_id)| hold_one(holds, key, origin, contact_id, now, only_missing))
        .buffered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn hold_one(
    holds: &Holds,
    key: String,
    origin: String,
    contact_id: Uuid,
    now: DateTime<Utc>,
    only_missing: bool,
) -> Result<u64, BusError> {
    if only_missing && let Some((HoldValue::Held { .. }, revision)) = holds.get(&key).await? {
        return Ok(revision);
    }
    let revision = holds.hold(&key, HOLD_REASON, &origin, now).await?;
    tracing::info!(%contact_id, %key, revision, "contact hold written");
    Ok(revision)
}

/// What recording one change produced.
pub struct Recorded {
    pub entry: Entry,
    /// The consent event, when the state changed (already in the caller's outbox batch).
    pub event: Option<OutboxMessage>,
}

/// Appends an opt-out whose hold is written (revision `hold_revision`) and builds its event if
/// the contact's state changes. The caller holds the contact's lock in `conn`'s transaction.
pub async fn append_opt_out(
    conn: &mut PgConnection,
    change: &Change,
    hold_revision: u64,
    now: DateTime<Utc>,
) -> Result<Recorded, LedgerError> {
    let before = store::state(conn, change.contact_id).await?;
    let changed = change.channels().into_iter().any(|c| !before.opted_out(c));
    append(conn, change, changed, Some(hold_revision), now).await
}

async fn append(
    conn: &mut PgConnection,
    change: &Change,
    changed: bool,
    hold_revision: Option<u64>,
    now: DateTime<Utc>,
) -> Result<Recorded, LedgerError> {
    let id = arflow_core::new_id();
    let entry = store::insert_entry(
        conn,
        &NewEntry {
            id,
            firm_id: change.firm_id,
            contact_id: change.contact_id,
            client_id: change.client_id,
            channel: change.channel,
            action: change.action.as_str(),
            source: change.source.as_str(),
            actor: &change.actor,
            evidence: &change.evidence,
            cause_event_id: change.cause.as_ref().map(|c| c.id),
            changed,
            hold_revision,
            recorded_at: now,
        },
    )
    .await?;
    let event = if changed { Some(event(change, id, now)?) } else { None };
    tracing::info!(
        firm_id = %change.firm_id, correlation_id = ?change.cause.as_ref().map(|c| c.correlation_id),
        contact_id = %change.contact_id, channel = ?change.channel, action = change.action.as_str(),
        source = change.source.as_str(), changed, entry_id = %id, "consent recorded"
    );
    Ok(Recorded { entry, event })
}

fn event(change: &Change, entry_id: Uuid, now: DateTime<Utc>) -> Result<OutboxMessage, serde_json::Error> {
    let kind = match change.action {
        Action::OptOut => consent::OPTED_OUT,
        Action::OptIn => consent::OPTED_IN,
    };
    let data = ConsentChanged {
        contact_id: change.contact_id,
        client_id: change.client_id,
        channel: change.channel,
        source: change.source.as_str().to_string(),
        evidence: change.evidence.clone(),
    };
    let env = Envelope::new(kind, SERVICE, now, change.firm_id, change.contact_id, change.cause.as_ref(), data);
    OutboxMessage::new(subject(kind, change.firm_id), msg_id::consent(entry_id), env)
}

/// Opt-outs whose holds are written: lock their contacts, check the holds again, append the
/// entries and enqueue the events, in the caller's transaction. Returns one result per change.
pub async fn record_opt_outs(
    conn: &mut PgConnection,
    holds: &Holds,
    changes: &[&Change],
    now: DateTime<Utc>,
    concurrency: usize,
) -> Result<Vec<Recorded>, LedgerError> {
    let contacts: Vec<Uuid> = changes.iter().map(|c| c.contact_id).collect();
    store::lock_contacts(conn, &contacts).await?;
    // An opt-in that released a key between our hold and our lock: hold it again.
    let revisions = hold_all(holds, changes, now, concurrency, true).await?;
    let mut out = Vec::with_capacity(changes.len());
    let mut events = Vec::new();
    for (change, revision) in changes.iter().zip(revisions) {
        let recorded = append_opt_out(conn, change, revision, now).await?;
        events.extend(recorded.event.clone());
        out.push(recorded);
    }
    arflow_store::outbox::enqueue(conn, &events).await?;
    Ok(out)
}

/// Checks that an opt-in may be recorded at all: a firm user with a reason.
pub fn validate_opt_in(change: &Change) -> Result<(), LedgerError> {
    if change.source != Source::FirmUser {
        return Err(LedgerError::Invalid(format!(
            "an opt-in comes only from a firm user, not {}",
            change.source.as_str()
        )));
    }
    if change.evidence.trim().is_empty() {
        return Err(LedgerError::Invalid("an opt-in needs the firm user's reason".into()));
    }
    Ok(())
}

/// Records an opt-in end to end (see the module doc). With `inbox`, the causing event's id is
/// recorded in the same transaction; `None` is returned when it was handled before.
pub async fn opt_in(
    pool: &PgPool,
    holds: &Holds,
    change: &Change,
    now: DateTime<Utc>,
    inbox: Option<&str>,
) -> Result<Option<Recorded>, LedgerError> {
    validate_opt_in(change)?;
    let mut tx = pool.begin().await?;
    // A transaction lock: released by the commit, or by the rollback when the request is
    // cancelled midway, so an abandoned opt-in can never leave the contact locked.
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(store::lock_key(change.contact_id)).execute(&mut *tx).await?;
    if let (Some(consumer), Some(cause)) = (inbox, &change.cause)
        && arflow_store::inbox::record_new(&mut tx, consumer, &[cause.id]).await?.is_empty()
    {
        tracing::debug!("opt-in already handled (inbox); skipped");
        return Ok(None);
    }
    let before = store::state(&mut tx, change.contact_id).await?;
    let released = change.channels();
    let changed = released.iter().any(|c| before.opted_out(*c));
    let still_out: Vec<Channel> =
        CHANNELS.into_iter().filter(|c| !released.contains(c) && before.opted_out(*c)).collect();
    let recorded = append(&mut tx, change, changed, None, now).await?;
    arflow_store::outbox::enqueue(&mut tx, recorded.event.as_slice()).await?;
    let recorded_holds = store::recorded_holds(&mut tx, change.contact_id).await?;
    tx.commit().await?;
    // After the commit, without the lock: no database lock is ever held across NATS calls. An
    // opt-out that writes its hold meanwhile is safe: its revision is not among the holds read
    // above, so `release_holds` keeps it.
    release_holds(holds, change, &still_out, &before, &recorded_holds, now).await?;
    Ok(Some(recorded))
}

/// The channels still opted out get their own key before any key covering them is deleted, so no
/// send slips through in between; then the released keys go. A key is released only when its
/// hold is one the ledger knows (an opt-out recorded before this opt-in, or a key held again by
/// an earlier opt-in): a hold written by an opt-out that is waiting for the contact's lock stays,
/// since that opt-out is recorded after this opt-in and no send may be claimed after its hold.
async fn release_holds(
    holds: &Holds,
    change: &Change,
    still_out: &[Channel],
    before: &State,
    recorded: &store::RecordedHolds,
    now: DateTime<Utc>,
) -> Result<(), BusError> {
    let contact = change.contact_id;
    for c in still_out {
        let origin = before.by_channel.get(c).map(|e| reheld_origin(&e.source, e.id)).unwrap_or_default();
        holds.hold(&contact_channel_hold_key(contact, *c), HOLD_REASON, &origin, now).await?;
    }
    let keep = |value: &HoldValue, revision: u64| match value {
        HoldValue::Held { source_event, .. } => {
            !recorded.revisions.contains(&revision) && !recorded.reheld_origins.contains(source_event)
        }
        HoldValue::Claimed { .. } => false,
    };
    let mut keys = vec![contact_hold_key(contact)];
    keys.extend(change.channels().into_iter().map(|c| contact_channel_hold_key(contact, c)));
    for key in keys {
        match holds.release_unless(&key, keep).await? {
            None => tracing::info!(contact_id = %contact, %key, "contact hold released (opt-in)"),
            Some(revision) => tracing::info!(
                contact_id = %contact, %key, revision,
                "contact hold kept: an opt-out not recorded yet wrote it (recorded after this opt-in)"
            ),
        }
    }
    Ok(())
}

/// The origin of a key held again by an opt-in for a channel that stays opted out.
pub fn reheld_origin(source: &str, entry_id: Uuid) -> String {
    format!("{source}:{entry_id}")
}
