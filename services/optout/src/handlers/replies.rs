//! `reply.classified.>`: what a client said (email, call, SMS) or what their mail system
//! reported, already matched to a contact by the channel service.
//! - intent `opt_out` -> every channel (`email_reply`, `call_request` or `sms_stop` by channel),
//!   always, even when flagged for review (a missed opt-out is the worst error); a firm user's
//!   label (`labelled_by`) is recorded the same way, its evidence naming who labelled it. The
//!   hold is written first here too: a labelled opt-out has been held by nobody else;
//! - a spam complaint -> every channel (`spam_complaint`);
//! - a hard bounce -> the email channel only (`hard_bounce`).
//!
//! Unmatched messages name no contact: there is nobody to hold (the channel service keeps them
//! for a person).
use super::{Context, Request, process};
use crate::ledger::{Action, Source};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{ReplyClassified, ReplyIntent, ReplyKind};
use arflow_contracts::subjects::reply;
use arflow_core::Channel;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "optout-replies";

pub struct RepliesHandler {
    ctx: Arc<Context>,
}

impl RepliesHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        RepliesHandler { ctx }
    }
}

impl Handler for RepliesHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, decode).await
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The consent request a classified reply carries, if any.
pub fn decode(m: &Incoming) -> Result<Option<Request>, String> {
    if m.envelope.kind != reply::CLASSIFIED {
        return Ok(None);
    }
    let r: ReplyClassified = m.envelope.data_as().map_err(|e| e.to_string())?;
    let hard_bounce = r.kind == ReplyKind::Bounce && r.bounce.as_ref().is_some_and(|b| b.hard);
    let opt_out = r.kind != ReplyKind::Bounce && r.intent == Some(ReplyIntent::OptOut);
    let complaint = r.kind == ReplyKind::Complaint;
    if !(hard_bounce || opt_out || complaint) {
        return Ok(None);
    }
    let Some(contact_id) = r.contact_id else {
        tracing::warn!(reply_id = %r.reply_id, kind = ?r.kind, "opt-out from an unmatched message: no contact to hold");
        return Ok(None);
    };
    let answering = r.step.as_deref().map(|s| format!(", answering {s}")).unwrap_or_default();
    let (channel, source, actor, evidence) = if complaint {
        (None, Source::SpamComplaint, "client", format!("marked our email as spam (reply {}{answering})", r.reply_id))
    } else if hard_bounce {
        let (recipient, status) =
            r.bounce.as_ref().map(|b| (b.recipient.as_str(), b.status.as_str())).unwrap_or_default();
        let evidence = format!("{recipient} bounced with {status} (reply {}{answering})", r.reply_id);
        (Some(Channel::Email), Source::HardBounce, "mail server", evidence)
    } else {
        let source = match r.channel {
            Channel::Email => Source::EmailReply,
            Channel::Voice => Source::CallRequest,
            Channel::Sms => Source::SmsStop,
        };
        let said = if r.evidence.is_empty() { truncate(&r.client_text, 200) } else { truncate(&r.evidence, 200) };
        // A reply arflow was not sure of, labelled an opt-out by a firm user: the client asked,
        // the person read it so.
        let labelled = r.labelled_by.as_deref().map(|by| format!(", labelled opt_out by {by}")).unwrap_or_default();
        (None, source, "client", format!("\"{said}\" ({} {}{answering}{labelled})", r.channel, r.reply_id))
    };
    Ok(Some(Request {
        contact_id,
        client_id: r.client_id,
        channel,
        action: Action::OptOut,
        source,
        actor: actor.to_string(),
        evidence,
        already_held: false,
    }))
}
