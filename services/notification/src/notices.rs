//! What each event means to a firm user: the notifications it makes, before anyone is
//! chosen to receive them. No I/O (the handler looks up what needs the database).
use crate::kinds::Kind;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    AllContactsOptedOut, ConsentChanged, DeadLetter, EscalationCase, EscalationReason, InvoiceHalted, PromiseBroken,
    ReplyClassified, ReplyIntent,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One notification, for every subscription of the firm to `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: Kind,
    /// Unique per subscription: the event id, or what makes it once-only (a dispute is told
    /// once per reply, whichever of the reply or the escalation it opened comes first).
    pub event_key: String,
    pub title: String,
    pub summary: String,
    pub links: BTreeMap<String, String>,
    /// The event's own payload, for webhook consumers that want everything.
    pub event: Value,
}

impl Notice {
    /// The stored message: the Standard Webhooks body `{type, timestamp, data}`; email and
    /// Slack render from the same.
    pub fn message(&self, env: &RawEnvelope) -> Value {
        json!({
            "type": self.kind.as_str(),
            "timestamp": env.time,
            "data": {
                "firm_id": env.firm_id,
                "event_id": env.id,
                "event_type": env.kind,
                "subject_id": env.subject_id,
                "title": self.title,
                "summary": self.summary,
                "links": self.links,
                "event": self.event,
            }
        })
    }
}

/// Links into the arflow API (through the gateway).
pub struct Links<'a> {
    pub base: &'a str,
}

impl Links<'_> {
    pub fn invoice(&self, id: Uuid) -> String {
        format!("{}/v1/invoices/{id}/activity", self.base.trim_end_matches('/'))
    }
    pub fn client(&self, id: Uuid) -> String {
        format!("{}/v1/clients/{id}", self.base.trim_end_matches('/'))
    }
}

fn quote(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    format!("\u{201c}{}\u{201d}", s.trim())
}

pub fn opt_out(env: &RawEnvelope, c: &ConsentChanged, links: &Links) -> Notice {
    let channel = c.channel.map(|ch| format!("{ch}")).unwrap_or_else(|| "every channel".into());
    Notice {
        kind: Kind::OptOut,
        event_key: env.id.to_string(),
        title: format!("A contact opted out of {channel}"),
        summary: format!(
            "Contact {} opted out of {channel} (source: {}): {}",
            c.contact_id,
            c.source,
            quote(&c.evidence)
        ),
        links: BTreeMap::from([("client".into(), links.client(c.client_id))]),
        event: env.data.clone(),
    }
}

fn case_links(case: &EscalationCase) -> BTreeMap<String, String> {
    let mut links = BTreeMap::from([("case".to_string(), case.links.case.clone())]);
    if let Some(l) = &case.links.invoice_activity {
        links.insert("invoice_activity".into(), l.clone());
    }
    if let Some(l) = &case.links.hosted_invoice {
        links.insert("hosted_invoice".into(), l.clone());
    }
    links
}

fn case_invoice(case: &EscalationCase) -> String {
    match &case.invoice {
        Some(i) => format!(
            "invoice {} ({} {}, {} days past due)",
            i.number.as_deref().unwrap_or(&i.stripe_invoice_id),
            i.amount_remaining,
            i.currency,
            i.days_past_due
        ),
        None => "every open invoice".into(),
    }
}

/// `escalation.opened`: the opening itself, and a dispute when that is the reason.
pub fn escalation_opened(env: &RawEnvelope, case: &EscalationCase) -> Vec<Notice> {
    let reason = case.reason.as_str().replace('_', " ");
    let mut out = vec![Notice {
        kind: Kind::EscalationOpened,
        event_key: env.id.to_string(),
        title: format!("Escalation opened for {}: {reason}", case.client.name),
        summary: format!(
            "A case was opened for {} on {} because of {reason}: {}",
            case.client.name,
            case_invoice(case),
            quote(&case.evidence)
        ),
        links: case_links(case),
        event: env.data.clone(),
    }];
    if case.reason == EscalationReason::Dispute {
        out.push(Notice {
            kind: Kind::Dispute,
            event_key: dispute_key(env),
            title: format!("{} disputes {}", case.client.name, case_invoice(case)),
            summary: format!("{} disputes {}: {}", case.client.name, case_invoice(case), quote(&case.evidence)),
            links: case_links(case),
            event: env.data.clone(),
        });
    }
    out
}

/// A reply and the escalation it opens share the reply's correlation id.
fn dispute_key(env: &RawEnvelope) -> String {
    format!("dispute:{}", env.correlation_id)
}

/// `reply.classified`: a dispute, or a promise to pay. Not for a reply awaiting a person's label
/// (the classifier's guess is not a dispute; the review case is notified as an escalation); its
/// label, when it comes, is notified like a classified reply.
pub fn reply(env: &RawEnvelope, r: &ReplyClassified, links: &Links) -> Option<Notice> {
    let who = r.from.clone().unwrap_or_else(|| "A client".into());
    let mut link_map = BTreeMap::new();
    if let Some(invoice) = r.invoice_id {
        link_map.insert("invoice_activity".to_string(), links.invoice(invoice));
    }
    if let Some(client) = r.client_id {
        link_map.insert("client".to_string(), links.client(client));
    }
    let (kind, event_key, title, summary) = match r.actionable_intent()? {
        ReplyIntent::Dispute => (
            Kind::Dispute,
            dispute_key(env),
            format!("{who} disputes an invoice"),
            format!("{who} disputes the invoice: {}", quote(&r.evidence)),
        ),
        ReplyIntent::PromiseToPay => {
            let by = r.promised_date.map(|d| format!("by {d}")).unwrap_or_else(|| "(no date given)".into());
            (
                Kind::PromiseMade,
                env.id.to_string(),
                format!("{who} promised to pay {by}"),
                format!("{who} promised to pay {by}: {}", quote(&r.evidence)),
            )
        }
        _ => return None,
    };
    Some(Notice { kind, event_key, title, summary, links: link_map, event: env.data.clone() })
}

/// `billing.invoice_paid` for an invoice that had reminders: once per invoice (paid and
/// payment_succeeded both arrive for one payment).
pub fn payment_after_outreach(env: &RawEnvelope, h: &InvoiceHalted, emails_sent: i32, links: &Links) -> Notice {
    Notice {
        kind: Kind::PaymentAfterOutreach,
        event_key: format!("paid:{}", h.invoice_id),
        title: format!("Invoice {} was paid after outreach", h.stripe_invoice_id),
        summary: format!("Invoice {} was paid after {emails_sent} reminder(s).", h.stripe_invoice_id),
        links: BTreeMap::from([
            ("invoice_activity".into(), links.invoice(h.invoice_id)),
            ("client".into(), links.client(h.client_id)),
        ]),
        event: env.data.clone(),
    }
}

pub fn promise_broken(env: &RawEnvelope, p: &PromiseBroken, links: &Links) -> Notice {
    let by = p.promised_date.map(|d| format!("to pay by {d}")).unwrap_or_else(|| "to pay".into());
    Notice {
        kind: Kind::PromiseBroken,
        event_key: env.id.to_string(),
        title: format!("A payment promise was broken (promised {by})"),
        summary: format!("The client promised {by} and has not paid; reminders resume: {}", quote(&p.evidence)),
        links: BTreeMap::from([
            ("invoice_activity".into(), links.invoice(p.invoice_id)),
            ("client".into(), links.client(p.client_id)),
        ]),
        event: env.data.clone(),
    }
}

pub fn all_contacts_opted_out(env: &RawEnvelope, a: &AllContactsOptedOut, links: &Links) -> Notice {
    Notice {
        kind: Kind::AllContactsOptedOut,
        event_key: env.id.to_string(),
        title: format!("Every contact of {} opted out", a.client_name),
        summary: format!(
            "Every contact of {} opted out of every channel they could be reached on (email, calls, texts): \
             automation stopped for {} invoice(s). Add a contact or follow up yourself.",
            a.client_name,
            a.invoice_ids.len()
        ),
        links: BTreeMap::from([("client".into(), links.client(a.client_id))]),
        event: env.data.clone(),
    }
}

/// A dead letter told to the firm by its ids only: the failed message's payload and the internal
/// error text stay with the operator (the DLQ stream and the service's logs), since a firm's
/// webhook endpoint is outside arflow.
pub fn dead_letter(env: &RawEnvelope, d: &DeadLetter) -> Notice {
    // The failed message's own event id, when its payload was an envelope.
    let message_id = serde_json::from_str::<Value>(&d.payload)
        .ok()
        .and_then(|p| p.get("id").and_then(Value::as_str).map(str::to_string));
    Notice {
        kind: Kind::DeadLetter,
        event_key: env.id.to_string(),
        title: format!("A message could not be processed by {}", d.service),
        summary: format!(
            "{} could not process an event on {} after {} deliveries (stream {} #{}{}); the operator has the details",
            d.service,
            d.subject,
            d.deliveries,
            d.stream,
            d.stream_sequence,
            message_id.as_deref().map(|id| format!(", event {id}")).unwrap_or_default()
        ),
        links: BTreeMap::new(),
        event: serde_json::json!({
            "service": d.service,
            "consumer": d.consumer,
            "stream": d.stream,
            "stream_sequence": d.stream_sequence,
            "subject": d.subject,
            "deliveries": d.deliveries,
            "message_id": message_id,
            "dead_lettered_at": d.dead_lettered_at,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_contracts::Envelope;

    fn dispute() -> ReplyClassified {
        serde_json::from_value(serde_json::json!({
            "reply_id": Uuid::now_v7(), "channel": "email", "kind": "reply", "intent": "dispute",
            "promised_date": null, "evidence": "wrong amount", "sure": true, "client_text": "wrong amount",
            "invoice_id": Uuid::now_v7(), "contact_id": null, "client_id": null, "matched_by": null,
            "answered_message_id": null, "step": null, "from": "hank@globex.test", "subject": null,
            "received_at": "2026-03-10T10:00:00Z", "reference_date": "2026-03-10", "bounce": null, "action": ""
        }))
        .unwrap()
    }

    #[test]
    fn a_guess_awaiting_review_is_not_notified_and_its_label_is() {
        let links = Links { base: "https://arflow.test" };
        let mut r = dispute();
        r.needs_review = true;
        let env = |r: &ReplyClassified| {
            Envelope::new("reply.classified", "email", chrono::Utc::now(), Uuid::now_v7(), Uuid::now_v7(), None, r)
                .into_raw()
                .unwrap()
        };
        assert!(reply(&env(&r), &r, &links).is_none(), "the classifier's guess is no dispute");
        r.labelled_by = Some("pat@acme.test".into());
        let notice = reply(&env(&r), &r, &links).expect("the person's label is");
        assert_eq!(notice.kind, Kind::Dispute);
        assert!(reply(&env(&dispute()), &dispute(), &links).is_some());
    }
}
