//! `reply.received.<firm>` (channel email): the raw message from the `inbound` object store is
//! parsed (MIME, bounces, complaints, auto-replies), matched to the email it answers, classified,
//! and acted on:
//! - an opt-out (a reply asking to stop, or a spam complaint) writes the contact's hold FIRST
//!   (fence 2: no send can claim the contact afterwards, before any other service has heard);
//! - a hard bounce stops email to that address (our own copy, checked before SMTP); a soft bounce
//!   is only reported;
//! - every message becomes `reply.classified` (what the other services act on) and a `replies` row.
//!
//! Consent is the opt-out service's: it records the ledger entry and publishes `consent.opted_out`
//! from `reply.classified` (opt-out intent, complaint, hard bounce), so this service publishes none.
//!
//! All in one transaction with the inbox id, like every consumer.
use crate::SERVICE;
use crate::store::{self, EmailRow, ReplyRecord};
use arflow_bus::{Bus, Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{
    BounceInfo, EmailBounced, IntentScore, ReplyClassified, ReplyIntent, ReplyKind, ReplyReceived,
};
use arflow_contracts::streams::contact_hold_key;
use arflow_contracts::subjects::{outreach, reply, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::{Channel, Clock, mask};
use arflow_inbound::{BounceType, Inbound, Kind};
use arflow_replies::assist::{Assist, classify_assisted};
use arflow_replies::{Classification, Intent};
use arflow_store::{Outbox, OutboxMessage, handler_error, inbox};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

/// The durable consumer's name (also its inbox key).
pub const DURABLE: &str = "email-replies";

/// The longest client text carried on the bus (the full text stays in the `replies` table).
const MAX_TEXT: usize = 4_000;

pub struct RepliesHandler {
    pub pool: PgPool,
    pub bus: Bus,
    pub clock: Clock,
    pub outbox: Outbox,
    /// Asked only about replies no rule is sure of.
    pub assist: Option<Arc<dyn Assist>>,
}

/// How an inbound message was tied to what we sent.
struct Matched {
    email: EmailRow,
    by: &'static str,
}

#[derive(Debug, thiserror::Error)]
enum ReplyError {
    /// Can never be processed: dead-lettered with the reason.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Transient(#[from] HandlerError),
}

fn db(e: sqlx::Error) -> ReplyError {
    ReplyError::Transient(handler_error(e))
}

fn encode(e: serde_json::Error) -> ReplyError {
    ReplyError::Invalid(format!("event could not be encoded: {e}"))
}

fn naive(d: arflow_replies::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::from(d.year()), u32::try_from(d.month()).ok()?, u32::try_from(d.day()).ok()?)
}

fn jiff_date(d: NaiveDate) -> arflow_replies::Date {
    use chrono::Datelike;
    let (y, m, day) = (d.year(), d.month(), d.day());
    arflow_replies::Date::new(
        i16::try_from(y).unwrap_or(2000),
        i8::try_from(m).unwrap_or(1),
        i8::try_from(day).unwrap_or(1),
    )
    .unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What arflow does about a reply, in words for the activity history.
fn action_for(kind: Kind, intent: Option<Intent>, bounce_hard: bool, matched: bool, review: bool) -> &'static str {
    if !matched && !matches!(kind, Kind::AutoReply) {
        return match (kind, intent) {
            (Kind::Reply, Some(Intent::OptOut)) | (Kind::Complaint, _) => {
                "unmatched opt-out: no contact could be identified; kept for a person"
            }
            _ => "unmatched: not tied to any email we sent; kept for a person",
        };
    }
    match (kind, intent) {
        (Kind::Complaint, _) => "spam complaint: contact opted out on every channel",
        (Kind::Bounce, _) if bounce_hard => "hard bounce: no more email to this address",
        (Kind::Bounce, _) => "soft bounce: reported; the cadence continues",
        (Kind::AutoReply, _) => "auto-reply ignored; the cadence continues",
        (_, Some(Intent::OptOut)) => "contact opted out on every channel",
        _ if review => REVIEW_ACTION,
        (_, Some(Intent::Dispute)) => "invoice disputed: outreach halted, an escalation case opened for the firm",
        (_, Some(Intent::AlreadyPaid)) => "client says it is paid: outreach paused pending reconciliation with Stripe",
        (_, Some(Intent::PromiseToPay)) => "payment promised: outreach paused until the promised date plus grace",
        (_, Some(Intent::PaymentPlan)) => "payment plan requested: handed to a person (escalation case)",
        (_, Some(Intent::Question)) => "question: handed to a person (escalation case)",
        (_, Some(Intent::WrongContact)) => "wrong contact: handed to a person (escalation case)",
        (_, Some(Intent::Acknowledged)) => "acknowledged; the cadence continues",
        (_, Some(Intent::AutoReply)) => "auto-reply ignored; the cadence continues",
        (_, None) => "recorded",
    }
}

/// What is done about a reply a person must label first.
const REVIEW_ACTION: &str =
    "not understood with confidence: outreach paused until a person labels it (needs_review case)";

/// Whether a reply must wait for a person: the classifier was not confident and it is not an
/// opt-out (an opt-out is always acted on at once).
fn needs_review(kind: Kind, c: Option<&Classification>) -> bool {
    kind == Kind::Reply && c.is_some_and(|c| c.needs_review && c.intent != Intent::OptOut)
}

impl RepliesHandler {
    async fn find_email(
        &self,
        conn: &mut PgConnection,
        firm_id: Uuid,
        msg: &Inbound,
    ) -> Result<Option<Matched>, sqlx::Error> {
        if let Some(token) = &msg.reply_token
            && let Some(email) = store::email_by_reply_token(conn, firm_id, token).await?
        {
            return Ok(Some(Matched { email, by: "reply_token" }));
        }
        if let Some(email) = store::email_by_message_ids(conn, firm_id, &msg.references).await? {
            return Ok(Some(Matched { email, by: "in_reply_to" }));
        }
        // A bounce names the recipient; a reply without thread headers has its sender.
        let address = msg.bounce.as_ref().map(|b| b.recipient.as_str()).or(msg.from.as_deref());
        if let Some(address) = address
            && let Some(email) = store::latest_email_to(conn, firm_id, address).await?
        {
            return Ok(Some(Matched { email, by: "sender_address" }));
        }
        Ok(None)
    }

    /// One message: parse, match, act; returns the events for the outbox.
    async fn process(&self, conn: &mut PgConnection, m: &Incoming) -> Result<Vec<OutboxMessage>, ReplyError> {
        let env = &m.envelope;
        let firm_id = env.firm_id;
        let received: ReplyReceived = env.data_as().map_err(|e| ReplyError::Invalid(e.to_string()))?;
        if received.channel != Channel::Email {
            tracing::debug!(channel = %received.channel, "not an email reply; not ours");
            return Ok(Vec::new());
        }
        if !received.object.starts_with(&format!("{firm_id}/")) {
            return Err(ReplyError::Invalid(format!("object {} is not under firm {firm_id}", received.object)));
        }
        let raw = self.bus.get_inbound(&received.object).await.map_err(|e| {
            ReplyError::Transient(HandlerError::Retry(format!("inbound object {}: {e}", received.object)))
        })?;
        let fallback = jiff_date(received.received_at.date_naive());
        let mut msg = arflow_inbound::parse(&raw, fallback)
            .map_err(|e| ReplyError::Invalid(format!("not an email message: {e}")))?;
        if let (Some(assist), Kind::Reply) = (&self.assist, msg.kind)
            && msg.classification.as_ref().is_some_and(|c| !c.sure())
        {
            let reference = msg.reference_date.unwrap_or(fallback);
            let assisted =
                classify_assisted(Some(assist.as_ref()), arflow_replies::Source::Email, &msg.client_text, reference)
                    .await;
            tracing::info!(intent = %assisted.intent, evidence = %assisted.evidence, "rules unsure; assist consulted");
            msg.classification = Some(assisted);
        }
        let now = self.clock.now();
        let matched = self.find_email(conn, firm_id, &msg).await.map_err(db)?;
        let intent = msg.classification.as_ref().map(|c| c.intent);
        let bounce_hard = msg.bounce.as_ref().is_some_and(|b| b.kind == BounceType::Hard);
        let review = needs_review(msg.kind, msg.classification.as_ref());
        let action = action_for(msg.kind, intent, bounce_hard, matched.is_some(), review);
        let email = matched.as_ref().map(|x| &x.email);
        let span = tracing::Span::current();
        if let Some(e) = email {
            span.record("invoice_id", tracing::field::display(e.invoice_id));
        }
        tracing::info!(
            kind = ?msg.kind, intent = ?intent, needs_review = review, matched_by = matched.as_ref().map(|x| x.by),
            from = %msg.from.as_deref().map(mask::email).unwrap_or_default(), action, "inbound email understood"
        );

        let mut messages = Vec::new();
        let evidence = msg.classification.as_ref().map(|c| c.evidence.clone()).unwrap_or_default();
        let bounce = msg.bounce.as_ref().map(|b| BounceInfo {
            recipient: b.recipient.clone(),
            hard: b.kind == BounceType::Hard,
            status: b.status.clone(),
        });
        let opt_out =
            matches!(msg.kind, Kind::Complaint) || (msg.kind == Kind::Reply && intent == Some(Intent::OptOut));
        // A hard-bounced address is dead whether or not the report can be tied to one email.
        if let Some(b) = bounce.as_ref().filter(|b| b.hard) {
            store::add_bounced_address(conn, firm_id, &b.recipient, &b.status, received.reply_id, now)
                .await
                .map_err(db)?;
        }
        if let Some(e) = email {
            if opt_out {
                // Fence 2: the hold before anything else, so no send can claim the contact from now on.
                let source = format!("reply:{}", received.reply_id);
                let revision = self
                    .bus
                    .holds()
                    .hold(&contact_hold_key(e.contact_id), "opted_out", &source, now)
                    .await
                    .map_err(|err| ReplyError::Transient(HandlerError::Retry(format!("contact hold: {err}"))))?;
                tracing::info!(contact_id = %e.contact_id, revision, "contact hold written");
            }
            if let Some(b) = &bounce {
                let data = EmailBounced {
                    reply_id: received.reply_id,
                    step_id: Some(e.step_id),
                    invoice_id: Some(e.invoice_id),
                    contact_id: Some(e.contact_id),
                    bounce: b.clone(),
                };
                messages.push(event(
                    outreach::EMAIL_BOUNCED,
                    m,
                    e.invoice_id,
                    received.reply_id,
                    "bounced",
                    now,
                    data,
                )?);
            }
        }

        let kind = match msg.kind {
            Kind::Reply => ReplyKind::Reply,
            Kind::AutoReply => ReplyKind::AutoReply,
            Kind::Bounce => ReplyKind::Bounce,
            Kind::Complaint => ReplyKind::Complaint,
        };
        let reference_date = msg.reference_date.and_then(naive).unwrap_or_else(|| received.received_at.date_naive());
        let promised_date = msg.classification.as_ref().and_then(|c| c.promised_date).and_then(naive);
        let classified = ReplyClassified {
            reply_id: received.reply_id,
            channel: Channel::Email,
            kind,
            intent: intent.map(ReplyIntent::from),
            promised_date,
            evidence: evidence.clone(),
            sure: !review,
            confidence: msg.classification.as_ref().map_or(1.0, |c| c.confidence),
            needs_review: review,
            scores: msg.classification.as_ref().map(wire_scores).unwrap_or_default(),
            client_text: truncate(&msg.client_text, MAX_TEXT),
            invoice_id: email.map(|e| e.invoice_id),
            contact_id: email.map(|e| e.contact_id),
            client_id: email.and_then(|e| e.client_id),
            matched_by: matched.as_ref().map(|x| x.by.to_string()),
            answered_message_id: email.and_then(|e| e.message_id.clone()),
            step: email.map(|e| e.step.clone()),
            from: msg.from.clone(),
            subject: msg.subject.clone(),
            received_at: received.received_at,
            reference_date,
            bounce: bounce.clone(),
            action: action.to_string(),
            labelled_by: None,
        };
        let subject_id = email.map(|e| e.invoice_id).unwrap_or(received.reply_id);
        messages.push(event(reply::CLASSIFIED, m, subject_id, received.reply_id, "classified", now, &classified)?);
        store::insert_reply(
            conn,
            &ReplyRecord {
                reply_id: received.reply_id,
                firm_id,
                kind: msg.kind.as_str(),
                intent: intent.map(|i| i.as_str()),
                promised_date,
                evidence: &evidence,
                sure: classified.sure,
                matched_by: matched.as_ref().map(|x| x.by),
                email,
                from_address: msg.from.as_deref(),
                subject: msg.subject.as_deref(),
                message_id: msg.message_id.as_deref(),
                client_text: &msg.client_text,
                bounce: bounce.as_ref().and_then(|b| serde_json::to_value(b).ok()),
                action,
                received_at: received.received_at,
                now,
            },
        )
        .await
        .map_err(db)?;
        Ok(messages)
    }
}

/// The classifier's ranking as events carry it.
fn wire_scores(c: &Classification) -> Vec<IntentScore> {
    c.scores.iter().map(|s| IntentScore { intent: s.intent.into(), score: s.score }).collect()
}

/// An event caused by the `reply.received` message `m`, with a deterministic id.
fn event<T: serde::Serialize>(
    kind: &str,
    m: &Incoming,
    subject_id: Uuid,
    reply_id: Uuid,
    what: &str,
    now: DateTime<Utc>,
    data: T,
) -> Result<OutboxMessage, ReplyError> {
    let env = Envelope::new(kind, SERVICE, now, m.envelope.firm_id, subject_id, Some(&m.envelope), data);
    OutboxMessage::new(subject(kind, m.envelope.firm_id), msg_id::reply(reply_id, what), env).map_err(encode)
}

impl Handler for RepliesHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(handler_error)?;
        let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let fresh = inbox::record_new(&mut tx, DURABLE, &ids).await.map_err(handler_error)?;
        let mut rejections = Vec::new();
        let mut messages = Vec::new();
        for (index, m) in batch.iter().enumerate() {
            if !fresh.contains(&m.envelope.id) {
                continue; // a redelivery
            }
            let span = m.span();
            match self.process(&mut tx, m).instrument(span.clone()).await {
                Ok(mut out) => messages.append(&mut out),
                Err(ReplyError::Invalid(reason)) => {
                    span.in_scope(|| tracing::error!(%reason, "inbound message cannot be processed; dead-lettering"));
                    rejections.push(Rejection { index, reason });
                }
                Err(ReplyError::Transient(e)) => return Err(e),
            }
        }
        arflow_store::outbox::enqueue(&mut tx, &messages).await.map_err(handler_error)?;
        tx.commit().await.map_err(handler_error)?;
        if !messages.is_empty() {
            self.outbox.notify();
        }
        Ok(rejections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_intent_has_a_wire_form_and_an_action() {
        for i in Intent::ALL {
            assert_eq!(ReplyIntent::from(i).as_str(), i.as_str());
            assert!(!action_for(Kind::Reply, Some(i), false, true, false).is_empty());
        }
        assert!(action_for(Kind::Bounce, None, true, true, false).starts_with("hard bounce"));
        assert!(action_for(Kind::Reply, Some(Intent::OptOut), false, false, false).starts_with("unmatched opt-out"));
        assert_eq!(action_for(Kind::Reply, Some(Intent::Question), false, true, true), REVIEW_ACTION);
        // An opt-out is acted on even when flagged for review.
        assert!(action_for(Kind::Reply, Some(Intent::OptOut), false, true, true).starts_with("contact opted out"));
    }

    /// An unsure reply waits for a person, with its scores; an opt-out, an auto-reply, a bounce
    /// never do.
    #[test]
    fn only_an_unsure_reply_that_is_not_an_opt_out_needs_review() {
        let d = arflow_replies::Date::new(2026, 3, 10).unwrap();
        let unsure = arflow_replies::classify(arflow_replies::Source::Email, "Well, we will see about that.", d);
        assert!(unsure.needs_review, "the classifier changed: pick another unsure reply for this test");
        assert!(needs_review(Kind::Reply, Some(&unsure)));
        assert_eq!(
            wire_scores(&unsure).iter().map(|s| (s.intent.as_str(), s.score)).collect::<Vec<_>>(),
            unsure.scores.iter().map(|s| (s.intent.as_str(), s.score)).collect::<Vec<_>>()
        );
        let mut flagged_opt_out = unsure.clone();
        flagged_opt_out.intent = Intent::OptOut;
        assert!(!needs_review(Kind::Reply, Some(&flagged_opt_out)), "opt-out wins");
        assert!(!needs_review(Kind::AutoReply, Some(&unsure)));
        assert!(!needs_review(Kind::Bounce, None));
        let sure = Classification::certain(Intent::Dispute, None, "wrong amount".into());
        assert!(!needs_review(Kind::Reply, Some(&sure)));
    }

    #[test]
    fn dates_convert_both_ways() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
        assert_eq!(naive(jiff_date(d)), Some(d));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("ok", 5), "ok");
    }
}
