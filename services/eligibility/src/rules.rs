//! The eligibility rules (DESIGN.md "Eligibility"), as a pure function of the read
//! models and the time: no I/O, so every rule is unit-tested on its own.
use crate::replies::{self, quote};
use crate::store::{ClientRow, ContactRow, FirmRow, InvoiceRow};
use arflow_contracts::events::{
    AutomationStatus, Check, ClientSnapshot, ContactSnapshot, EligibilityChanged, FirmSnapshot, InvoiceSnapshot,
    PromiseBroken, Tier,
};
use arflow_core::{Channel, Currency, Money, SendWindow, window::parse_tz};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

/// Every channel a contact can be reached on; each is judged on its own.
pub const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Voice, Channel::Sms];

/// Stable rule names, in the order they are checked.
pub mod rule {
    pub const STRIPE_CONNECTED: &str = "stripe_connected";
    pub const INVOICE_OPEN: &str = "invoice_open";
    pub const NOT_EXCLUDED: &str = "not_excluded";
    pub const AMOUNT_ABOVE_MINIMUM: &str = "amount_above_minimum";
    pub const CONTACT_WITH_CONSENT: &str = "contact_with_consent";
    pub const CONTACT_NOT_OPTED_OUT: &str = "contact_not_opted_out";
    pub const NOT_DISPUTED: &str = "not_disputed";
    pub const NO_OPEN_ESCALATION: &str = "no_open_escalation";
    pub const NO_ACTIVE_PROMISE_OR_PLAN: &str = "no_active_promise_or_plan";
    /// A reply not understood with confidence waits for a person's label (issue 13).
    pub const NO_REPLY_AWAITING_REVIEW: &str = "no_reply_awaiting_review";
}

/// Everything one invoice's decision reads.
pub struct Inputs<'a> {
    pub invoice: &'a InvoiceRow,
    pub client: Option<&'a ClientRow>,
    pub firm: Option<&'a FirmRow>,
    /// The client's contacts (placeholders included; they are skipped).
    pub contacts: Vec<&'a ContactRow>,
}

/// A decision: the payload to publish (without version and time) and what is stored.
#[derive(Debug, Clone)]
pub struct Decision {
    /// `version` is 0 and `evaluated_at` the epoch until it is published.
    pub payload: EligibilityChanged,
    /// SHA-256 of the payload without version and time: unchanged hash, nothing to publish.
    pub hash: String,
    /// When a time-dependent input (past due, pause expiry) flips next.
    pub next_check_at: Option<DateTime<Utc>>,
}

fn check(rule: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check { rule: rule.to_string(), passed, detail: detail.into() }
}

fn tz_of(name: Option<&str>) -> Option<Tz> {
    name.and_then(|n| parse_tz(n).ok())
}

/// Whether `due` has passed in `tz` at `now` (the due date itself is not overdue),
/// and the instant it will have if not yet: the next local midnight after the due date.
pub fn past_due(due: Option<NaiveDate>, tz: Tz, now: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>) {
    let Some(due) = due else { return (false, None) };
    let today = now.with_timezone(&tz).date_naive();
    if today > due {
        return (true, None);
    }
    let flip = due
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|midnight| tz.from_local_datetime(&midnight).earliest())
        .map(|t| t.with_timezone(&Utc))
        // A local midnight skipped by DST: an hour later exists.
        .or_else(|| {
            let next = due.succ_opt()?.and_hms_opt(1, 0, 0)?;
            tz.from_local_datetime(&next).earliest().map(|t| t.with_timezone(&Utc))
        });
    (false, flip)
}

fn address(c: &ContactRow, channel: Channel) -> Option<&str> {
    let a = match channel {
        Channel::Email => c.email.as_deref(),
        Channel::Voice | Channel::Sms => c.phone.as_deref(),
    };
    a.filter(|s| !s.trim().is_empty())
}

fn consented(c: &ContactRow, channel: Channel) -> bool {
    match channel {
        Channel::Email => c.consent_email,
        Channel::Voice => c.consent_voice,
        Channel::Sms => c.consent_sms,
    }
}

/// Opted out of `channel`: of that channel alone, or of every channel (which sets all three).
pub fn opted_out(c: &ContactRow, channel: Channel) -> bool {
    match channel {
        Channel::Email => c.opted_out_email,
        Channel::Voice => c.opted_out_voice,
        Channel::Sms => c.opted_out_sms,
    }
}

/// How one contact can be reached, channel by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// Channels with consent and the contact info for them (an email address for email, a
    /// phone for voice and SMS).
    pub consented: Vec<Channel>,
    /// Of those, the channels not opted out: the ones outreach may use.
    pub left: Vec<Channel>,
}

impl Reach {
    /// Consented channels the contact opted out of.
    pub fn opted_out(&self) -> Vec<Channel> {
        self.consented.iter().copied().filter(|ch| !self.left.contains(ch)).collect()
    }
}

/// The per-channel rule: a channel is usable when the contact consented to it, has the contact
/// info for it and has not opted out of it (or of every channel). One channel's opt-out (a
/// hard bounce suppresses email only) leaves the others as they are.
pub fn reach(c: &ContactRow) -> Reach {
    let consented: Vec<Channel> =
        CHANNELS.into_iter().filter(|ch| consented(c, *ch) && address(c, *ch).is_some()).collect();
    let left = consented.iter().copied().filter(|ch| !opted_out(c, *ch)).collect();
    Reach { consented, left }
}

/// Whether a client can still be reached, from its contacts' channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientReach {
    /// A known contact has a channel left.
    Reachable,
    /// Contacts consented to channels, and every one of those channels is opted out: no channel
    /// is left on any contact. The firm is warned (`all_contacts_opted_out`).
    AllOptedOut,
    /// No known contact, or none with consent and the contact info for a channel: nothing was
    /// opted out (`contact_with_consent` fails instead).
    NoConsent,
}

/// Judges a client's contacts (placeholders are skipped).
pub fn client_reach<'a>(contacts: impl IntoIterator<Item = &'a ContactRow>) -> ClientReach {
    let reaches: Vec<Reach> = contacts.into_iter().filter(|c| c.version.is_some()).map(reach).collect();
    if reaches.iter().any(|r| !r.left.is_empty()) {
        ClientReach::Reachable
    } else if reaches.iter().any(|r| !r.consented.is_empty()) {
        ClientReach::AllOptedOut
    } else {
        ClientReach::NoConsent
    }
}

/// Contacts in the order outreach tries them: primary first, then by name and id.
fn contact_order(a: &ContactRow, b: &ContactRow) -> std::cmp::Ordering {
    b.is_primary.cmp(&a.is_primary).then_with(|| a.name.cmp(&b.name)).then_with(|| a.contact_id.cmp(&b.contact_id))
}

/// `email, voice`, or `none`.
fn channel_list(channels: &[Channel]) -> String {
    if channels.is_empty() {
        return "none".into();
    }
    channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

/// The contact as a check detail names it.
fn contact_label(c: &ContactRow) -> String {
    match c.name.trim() {
        "" => format!("contact {}", c.contact_id),
        name => name.to_string(),
    }
}

/// `Amy: voice, sms (opted out of email)` for each contact with consent: the channels left.
fn channels_left(reaches: &[(&ContactRow, Reach)]) -> String {
    reaches
        .iter()
        .filter(|(_, r)| !r.consented.is_empty())
        .map(|(c, r)| {
            let out = r.opted_out();
            let out = if out.is_empty() { String::new() } else { format!(" (opted out of {})", channel_list(&out)) };
            format!("{}: {}{out}", contact_label(c), channel_list(&r.left))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse_tier(s: &str) -> Tier {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(Tier::Standard)
}

fn status_detail(status: Option<&str>) -> (bool, String) {
    match status {
        Some("open") => (true, "invoice is open".into()),
        Some("paid") => (false, "invoice is paid".into()),
        Some("void") => (false, "invoice is void".into()),
        Some("uncollectible") => (false, "invoice was marked uncollectible".into()),
        Some("draft") => (false, "invoice is a draft, not finalized yet".into()),
        Some(other) => (false, format!("invoice status is {other}")),
        None => (false, "invoice status not known yet".into()),
    }
}

/// Decides one invoice; `None` while only a placeholder is known (a halt or pause
/// that arrived before the invoice record): there is nothing to describe yet.
pub fn decide(inputs: &Inputs<'_>, now: DateTime<Utc>) -> Option<Decision> {
    let inv = inputs.invoice;
    inv.version?;
    let currency = inv.currency.as_deref().and_then(|c| Currency::parse(c).ok())?;
    let stripe_invoice_id = inv.stripe_invoice_id.clone().unwrap_or_default();
    let amount_due = inv.amount_due.unwrap_or_default();
    let amount_remaining = inv.amount_remaining.unwrap_or_default();
    let firm = inputs.firm;
    let client = inputs.client;
    let firm_tz = firm.and_then(|f| tz_of(Some(&f.timezone)));
    let client_tz = client.and_then(|c| tz_of(c.timezone.as_deref()));
    // The client experiences the due date in its own zone, else the firm's.
    let zone = client_tz.or(firm_tz).unwrap_or(Tz::UTC);

    let mut checks = Vec::with_capacity(10);

    // 1. The firm's Stripe connection.
    checks.push(match firm {
        None => check(rule::STRIPE_CONNECTED, false, "firm settings not received yet: Stripe connection unknown"),
        Some(f) if f.stripe_connected => check(rule::STRIPE_CONNECTED, true, "Stripe connection active"),
        Some(_) => check(rule::STRIPE_CONNECTED, false, "the firm's Stripe connection is disconnected"),
    });

    // 2. Open (past due is reported separately).
    let (open, detail) = status_detail(inv.status.as_deref());
    checks.push(check(rule::INVOICE_OPEN, open, detail));

    // 3. Not excluded by the firm.
    checks.push(match client {
        _ if inv.excluded => check(rule::NOT_EXCLUDED, false, "the firm excluded this invoice from automation"),
        None => check(rule::NOT_EXCLUDED, false, "client record not received yet: exclusion unknown"),
        Some(c) if c.excluded => {
            check(rule::NOT_EXCLUDED, false, format!("the firm excluded client {} from automation", c.name))
        }
        Some(_) => check(rule::NOT_EXCLUDED, true, "neither the invoice nor the client is excluded"),
    });

    // 4. Amount remaining above the firm's minimum for the currency.
    let remaining = Money::new(amount_remaining, currency);
    checks.push(match firm {
        None => check(rule::AMOUNT_ABOVE_MINIMUM, false, "firm settings not received yet: minimum amount unknown"),
        Some(f) => match f.min_amounts.0.get(&currency) {
            Some(min) if amount_remaining > *min => check(
                rule::AMOUNT_ABOVE_MINIMUM,
                true,
                format!("amount remaining {remaining} is above the firm's minimum {}", Money::new(*min, currency)),
            ),
            Some(min) => check(
                rule::AMOUNT_ABOVE_MINIMUM,
                false,
                format!("amount remaining {remaining} is not above the firm's minimum {}", Money::new(*min, currency)),
            ),
            None if amount_remaining > Decimal::ZERO => check(
                rule::AMOUNT_ABOVE_MINIMUM,
                true,
                format!("amount remaining {remaining} is positive (no minimum set for {currency})"),
            ),
            None => check(rule::AMOUNT_ABOVE_MINIMUM, false, format!("nothing remains to collect ({remaining})")),
        },
    });

    // 5 and 6. Judged per channel: a contact is reachable when one of its channels has consent,
    // the contact info for it and no opt-out of it (or of every channel). Primary first.
    let mut known: Vec<&ContactRow> = inputs.contacts.iter().copied().filter(|c| c.version.is_some()).collect();
    known.sort_by(|a, b| contact_order(a, b));
    let reaches: Vec<(&ContactRow, Reach)> = known.iter().map(|c| (*c, reach(c))).collect();
    let consenting: Vec<String> = reaches
        .iter()
        .filter(|(_, r)| !r.consented.is_empty())
        .map(|(c, r)| format!("{} ({})", contact_label(c), channel_list(&r.consented)))
        .collect();
    checks.push(match (known.len(), consenting.len()) {
        (0, _) => check(rule::CONTACT_WITH_CONSENT, false, "the client has no contacts"),
        (n, 0) => check(
            rule::CONTACT_WITH_CONSENT,
            false,
            format!(
                "none of the client's {n} contact(s) has consent on a channel with the contact info for it \
                 (an email address for email, a phone for voice or SMS)"
            ),
        ),
        (_, k) => check(
            rule::CONTACT_WITH_CONSENT,
            true,
            format!("{k} contact(s) with consent and the contact info: {}", consenting.join("; ")),
        ),
    });
    let reachable = reaches.iter().filter(|(_, r)| !r.left.is_empty()).count();
    checks.push(match (consenting.len(), reachable) {
        (0, _) => check(rule::CONTACT_NOT_OPTED_OUT, false, "no contact with consent to check"),
        (_, 0) => check(
            rule::CONTACT_NOT_OPTED_OUT,
            false,
            format!("no channel left on any contact: {}", channels_left(&reaches)),
        ),
        (_, k) => check(
            rule::CONTACT_NOT_OPTED_OUT,
            true,
            format!("{k} contact(s) with a channel left: {}", channels_left(&reaches)),
        ),
    });

    // 7. Not disputed: by Stripe or the firm (the snapshot's flag), or by the client in a reply.
    let client_dispute = inv.client_dispute_evidence.as_deref().map(quote);
    checks.push(match (inv.disputed, &client_dispute) {
        (false, None) => check(rule::NOT_DISPUTED, true, "no dispute"),
        (true, None) => check(rule::NOT_DISPUTED, false, "the invoice is disputed"),
        (false, Some(words)) => check(rule::NOT_DISPUTED, false, format!("the client disputes the invoice: {words}")),
        (true, Some(words)) => {
            check(rule::NOT_DISPUTED, false, format!("the invoice is disputed; the client disputes it too: {words}"))
        }
    });

    // 8. No open escalation, and no reply waiting for a person.
    let waiting = inv.handoff_intent.as_deref().map(|intent| {
        format!("waiting for a person: {intent}: {}", quote(inv.handoff_evidence.as_deref().unwrap_or_default()))
    });
    let reasons = inv.case_reasons.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    // A person paused automation through a case: until its date, or indefinitely.
    let case_pause = match (inv.case_paused, inv.case_paused_until) {
        (true, None) => Some("automation paused by a person through an escalation case, indefinitely".to_string()),
        (true, Some(until)) if until > now => Some(format!(
            "automation paused by a person through an escalation case until {}",
            until.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z")
        )),
        _ => None,
    };
    let escalation = match (inv.cases_open, &waiting, &case_pause) {
        (0, None, None) => check(rule::NO_OPEN_ESCALATION, true, "no open escalation"),
        (0, None, Some(p)) => check(rule::NO_OPEN_ESCALATION, false, p.clone()),
        (0, Some(w), _) => check(rule::NO_OPEN_ESCALATION, false, w.clone()),
        (n, None, _) => check(rule::NO_OPEN_ESCALATION, false, format!("{n} escalation case(s) open{reasons}")),
        (n, Some(w), _) => check(rule::NO_OPEN_ESCALATION, false, format!("{n} escalation case(s) open{reasons}; {w}")),
    };
    checks.push(escalation);

    // 9. No unexpired payment promise or active plan.
    let paused_until = inv.paused_until.filter(|t| *t > now);
    checks.push(match paused_until {
        Some(until) => {
            let local = until.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z");
            check(rule::NO_ACTIVE_PROMISE_OR_PLAN, false, format!("outreach paused until {local}{}", pause_why(inv)))
        }
        None => match inv.broken_promise.as_ref() {
            Some(b) => check(
                rule::NO_ACTIVE_PROMISE_OR_PLAN,
                true,
                format!("no active payment promise or plan (a promise to pay {} was broken)", promised(&b.0)),
            ),
            None => check(rule::NO_ACTIVE_PROMISE_OR_PLAN, true, "no active payment promise or plan"),
        },
    });

    // 10. No reply waiting for a person's label: what the client meant is not known yet, so
    // nothing may go out on a guess.
    let review = (inv.reviews_pending > 0).then(|| {
        let words = quote(inv.review_evidence.as_deref().unwrap_or_default());
        match inv.reviews_pending {
            1 => format!("a reply awaits a person's review (not understood with confidence): {words}"),
            n => format!("{n} replies await a person's review (not understood with confidence); the latest: {words}"),
        }
    });
    checks.push(match &review {
        Some(detail) => check(rule::NO_REPLY_AWAITING_REVIEW, false, detail.clone()),
        None => check(rule::NO_REPLY_AWAITING_REVIEW, true, "no reply awaiting review"),
    });

    let eligible = checks.iter().all(|c| c.passed);
    let (is_past_due, flips_at) = past_due(inv.due_date, zone, now);
    // A dispute or a reply a person must answer (or label) is escalated, like an open case.
    let escalated = inv.cases_open > 0 || client_dispute.is_some() || waiting.is_some() || review.is_some();
    let automation_status = match inv.status.as_deref() {
        Some("paid") => AutomationStatus::HaltedPaid,
        Some("void" | "uncollectible") => AutomationStatus::Uncollectible,
        _ if escalated => AutomationStatus::Escalated,
        _ if !eligible => AutomationStatus::Paused,
        _ => AutomationStatus::Enabled,
    };

    // Contacts to try, each with its channels left: primary first; zone resolved contact ->
    // client -> firm.
    let contacts = reaches
        .into_iter()
        .filter(|(_, r)| !r.left.is_empty())
        .map(|(c, r)| ContactSnapshot {
            contact_id: c.contact_id,
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            // Only zones that exist: a call window in an unknown zone must not be guessed.
            timezone: [
                c.timezone.as_deref(),
                client.and_then(|cl| cl.timezone.as_deref()),
                firm.map(|f| f.timezone.as_str()),
            ]
            .into_iter()
            .flatten()
            .find(|z| parse_tz(z).is_ok())
            .map(str::to_string),
            // Calls and texts are read in the zone the person lives in: never the firm's guess.
            call_timezone: [c.timezone.as_deref(), client.and_then(|cl| cl.timezone.as_deref())]
                .into_iter()
                .flatten()
                .find(|z| parse_tz(z).is_ok())
                .map(str::to_string),
            channels: r.left,
        })
        .collect();

    // The next time-dependent flip, unless the invoice is finished for good.
    let terminal = matches!(inv.status.as_deref(), Some("paid" | "void"));
    let case_pause_ends = inv.case_paused_until.filter(|t| inv.case_paused && *t > now);
    let next_check_at =
        if terminal { None } else { [flips_at, paused_until, case_pause_ends].into_iter().flatten().min() };

    let payload = EligibilityChanged {
        invoice_id: inv.invoice_id,
        version: 0,
        eligible,
        past_due: is_past_due,
        automation_status,
        checks,
        paused_until,
        pause_reason: paused_until.and(inv.pause_reason.clone()),
        broken_promise: inv.broken_promise.as_ref().map(|b| b.0.clone()),
        invoice: InvoiceSnapshot {
            invoice_id: inv.invoice_id,
            stripe_invoice_id,
            number: inv.number.clone(),
            currency,
            amount_due,
            amount_remaining,
            due_date: inv.due_date,
            hosted_invoice_url: inv.hosted_invoice_url.clone(),
        },
        client: match client {
            Some(c) => ClientSnapshot { client_id: c.client_id, name: c.name.clone(), tier: parse_tier(&c.tier) },
            None => ClientSnapshot { client_id: inv.client_id, name: String::new(), tier: Tier::Standard },
        },
        contacts,
        firm: match firm {
            Some(f) => FirmSnapshot {
                name: f.name.clone(),
                sender_email: f.sender_email.clone(),
                timezone: f.timezone.clone(),
                email_window: f.email_window.0.clone(),
                call_window: f.call_window.as_ref().map(|w| w.0.clone()),
            },
            None => FirmSnapshot {
                name: String::new(),
                sender_email: String::new(),
                timezone: "UTC".into(),
                email_window: SendWindow::business_hours(),
                call_window: None,
            },
        },
        evaluated_at: DateTime::<Utc>::UNIX_EPOCH,
    };
    let hash = hash(&payload);
    Some(Decision { payload, hash, next_check_at })
}

/// Why outreach is paused, in words: the client's own when a reply paused it.
fn pause_why(inv: &InvoiceRow) -> String {
    let reason = inv.pause_reason.as_deref().unwrap_or("payment promise or plan");
    let Some(evidence) = inv.pause_evidence.as_deref() else { return format!(" ({reason})") };
    let words = quote(evidence);
    match reason {
        replies::ALREADY_PAID => format!(": client says it is already paid: {words}; awaiting Stripe"),
        replies::PROMISE_TO_PAY => match inv.promised_date {
            Some(d) => format!(": client promised to pay by {d}: {words}"),
            None => format!(": client promised to pay (no date given): {words}"),
        },
        other => format!(" ({other}): {words}"),
    }
}

fn promised(b: &PromiseBroken) -> String {
    match b.promised_date {
        Some(d) => format!("by {d}"),
        None => "(no date given)".into(),
    }
}

/// A payment promise whose pause has ended with the invoice still unpaid, not recorded yet:
/// recorded once per promise (`pause_version`), whether the promise came from a reply or from
/// `billing.invoice_paused` with reason `promise_to_pay`.
pub fn newly_broken(inv: &InvoiceRow, now: DateTime<Utc>) -> Option<PromiseBroken> {
    inv.version?;
    let version = inv.pause_version?;
    let until = inv.paused_until.filter(|t| *t <= now)?;
    let unpaid = !matches!(inv.status.as_deref(), Some("paid" | "void" | "uncollectible"));
    let promise = inv.pause_reason.as_deref() == Some(replies::PROMISE_TO_PAY);
    if !unpaid || !promise || inv.broken_pause_version == Some(version) {
        return None;
    }
    Some(PromiseBroken {
        invoice_id: inv.invoice_id,
        client_id: inv.client_id,
        promised_date: inv.promised_date,
        paused_until: until,
        evidence: inv.pause_evidence.clone().unwrap_or_default(),
        reply_id: inv.pause_reply_id,
    })
}

/// SHA-256 of the payload as JSON (struct fields serialize in a fixed order).
fn hash(payload: &EligibilityChanged) -> String {
    let bytes = serde_json::to_vec(payload).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use sqlx::types::Json;
    use uuid::Uuid;

    fn days(n: i64) -> Duration {
        Duration::days(n)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn firm() -> FirmRow {
        FirmRow {
            firm_id: Uuid::now_v7(),
            version: 1,
            name: "Acme CPA".into(),
            sender_email: "ar@acme.test".into(),
            stripe_connected: true,
            timezone: "America/New_York".into(),
            min_amounts: Json([(Currency::parse("USD").unwrap(), Decimal::new(5000, 2))].into_iter().collect()),
            email_window: Json(SendWindow::business_hours()),
            call_window: None,
        }
    }

    fn client(firm: &FirmRow) -> ClientRow {
        ClientRow {
            client_id: Uuid::now_v7(),
            firm_id: firm.firm_id,
            version: 1,
            name: "Globex".into(),
            tier: "long_standing".into(),
            timezone: Some("Pacific/Auckland".into()),
            excluded: false,
        }
    }

    fn contact(client: &ClientRow, name: &str, primary: bool) -> ContactRow {
        ContactRow {
            contact_id: Uuid::now_v7(),
            firm_id: client.firm_id,
            client_id: client.client_id,
            version: Some(1),
            name: name.into(),
            email: Some(format!("{name}@globex.test")),
            phone: None,
            timezone: None,
            is_primary: primary,
            consent_email: true,
            consent_voice: false,
            consent_sms: false,
            opted_out_email: false,
            opted_out_voice: false,
            opted_out_sms: false,
        }
    }

    fn invoice(client: &ClientRow) -> InvoiceRow {
        InvoiceRow {
            invoice_id: Uuid::now_v7(),
            firm_id: client.firm_id,
            client_id: client.client_id,
            version: Some(1),
            stripe_invoice_id: Some("in_1".into()),
            number: Some("INV-1".into()),
            currency: Some("USD".into()),
            amount_due: Some(Decimal::new(320000, 2)),
            amount_remaining: Some(Decimal::new(320000, 2)),
            due_date: NaiveDate::from_ymd_opt(2026, 3, 1),
            hosted_invoice_url: None,
            excluded: false,
            disputed: false,
            status: Some("open".into()),
            cases_open: 0,
            case_reasons: None,
            case_paused: false,
            case_paused_until: None,
            paused_until: None,
            pause_reason: None,
            pause_version: None,
            pause_evidence: None,
            pause_reply_id: None,
            promised_date: None,
            client_dispute_evidence: None,
            handoff_intent: None,
            handoff_evidence: None,
            reviews_pending: 0,
            review_evidence: None,
            broken_promise: None,
            broken_pause_version: None,
            decision_version: 0,
            decision_hash: None,
        }
    }

    fn failed(d: &Decision) -> Vec<&str> {
        d.payload.failed_rules()
    }

    #[test]
    fn all_pass_is_eligible_and_primary_comes_first() {
        let f = firm();
        let c = client(&f);
        let a = contact(&c, "zed", true);
        let b = contact(&c, "amy", false);
        let i = invoice(&c);
        let d =
            decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&b, &a] }, now()).unwrap();
        assert!(d.payload.eligible, "{:?}", d.payload.checks);
        assert!(d.payload.past_due);
        assert_eq!(d.payload.automation_status, AutomationStatus::Enabled);
        assert_eq!(d.payload.checks.len(), 10);
        assert_eq!(d.payload.contacts[0].name, "zed");
        assert_eq!(d.payload.contacts[0].timezone.as_deref(), Some("Pacific/Auckland"));
        let mut bad = contact(&c, "zoe", false);
        bad.timezone = Some("Mars/Olympus".into());
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&bad] }, now()).unwrap();
        assert_eq!(d.payload.contacts[0].timezone.as_deref(), Some("Pacific/Auckland"));
        assert_eq!(d.payload.client.tier, Tier::LongStanding);
        assert_eq!(d.next_check_at, None);
    }

    #[test]
    fn the_firms_call_window_is_in_the_snapshot_and_the_hash() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let i = invoice(&c);
        let before =
            decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now()).unwrap();
        assert_eq!(before.payload.firm.call_window, None);
        let w = SendWindow { start_hour: 9, end_hour: 12, days: vec![chrono::Weekday::Tue] };
        let narrowed = FirmRow { call_window: Some(Json(w.clone())), ..f.clone() };
        let after = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&narrowed), contacts: vec![&k] }, now())
            .unwrap();
        assert_eq!(after.payload.firm.call_window, Some(w));
        assert_ne!(before.hash, after.hash, "a new window is a new decision to publish");
    }

    #[test]
    fn missing_firm_fails_with_reason() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let i = invoice(&c);
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: None, contacts: vec![&k] }, now()).unwrap();
        assert_eq!(failed(&d), vec![rule::STRIPE_CONNECTED, rule::AMOUNT_ABOVE_MINIMUM]);
        assert!(d.payload.checks[0].detail.contains("not received"));
        assert_eq!(d.payload.automation_status, AutomationStatus::Paused);
    }

    #[test]
    fn minimum_and_statuses() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.amount_remaining = Some(Decimal::new(4000, 2));
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now()).unwrap();
        assert_eq!(failed(&d), vec![rule::AMOUNT_ABOVE_MINIMUM]);
        assert!(d.payload.checks[3].detail.contains("40.00 USD"), "{}", d.payload.checks[3].detail);
        i.status = Some("paid".into());
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now()).unwrap();
        assert_eq!(d.payload.automation_status, AutomationStatus::HaltedPaid);
        i.status = Some("void".into());
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now()).unwrap();
        assert_eq!(d.payload.automation_status, AutomationStatus::Uncollectible);
        assert!(d.payload.checks[1].detail.contains("void"));
    }

    #[test]
    fn past_due_follows_the_clients_zone() {
        let tz = parse_tz("Pacific/Auckland").unwrap();
        let due = NaiveDate::from_ymd_opt(2026, 3, 10);
        // 2026-03-10 10:00 UTC is 2026-03-10 23:00 in Auckland: not yet past due.
        let at = Utc.with_ymd_and_hms(2026, 3, 10, 10, 0, 0).unwrap();
        let (p, flip) = past_due(due, tz, at);
        assert!(!p);
        assert_eq!(flip, Some(Utc.with_ymd_and_hms(2026, 3, 10, 11, 0, 0).unwrap()));
        assert!(past_due(due, tz, flip.unwrap()).0);
        assert_eq!(past_due(None, tz, at), (false, None));
    }

    #[test]
    fn pause_fails_until_it_expires() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.paused_until = Some(now() + days(3));
        i.pause_reason = Some("promise_to_pay".into());
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now()).unwrap();
        assert_eq!(failed(&d), vec![rule::NO_ACTIVE_PROMISE_OR_PLAN]);
        assert!(d.payload.checks[8].detail.contains("2026-03-14"), "{}", d.payload.checks[8].detail);
        assert_eq!(d.next_check_at, i.paused_until);
        let later =
            decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now() + days(4))
                .unwrap();
        assert!(later.payload.eligible);
        assert_ne!(later.hash, d.hash);
    }

    #[test]
    fn opted_out_contacts_are_not_usable() {
        let f = firm();
        let c = client(&f);
        let mut k = contact(&c, "amy", true);
        k.opted_out_email = true;
        let i = invoice(&c);
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&k] }, now()).unwrap();
        assert_eq!(failed(&d), vec![rule::CONTACT_NOT_OPTED_OUT]);
        assert!(d.payload.contacts.is_empty());
        let mut n = contact(&c, "bob", false);
        n.consent_email = false;
        let d = decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&n] }, now()).unwrap();
        assert_eq!(failed(&d), vec![rule::CONTACT_WITH_CONSENT, rule::CONTACT_NOT_OPTED_OUT]);
    }

    /// `name` with an email address and a phone, consenting to `email`, `voice`, `sms`.
    fn reachable_by(c: &ClientRow, name: &str, consent: [bool; 3]) -> ContactRow {
        let mut k = contact(c, name, false);
        k.phone = Some("+15125550100".into());
        [k.consent_email, k.consent_voice, k.consent_sms] = consent;
        k
    }

    fn detail_of<'a>(d: &'a Decision, rule: &str) -> &'a str {
        d.payload.checks.iter().find(|c| c.rule == rule).map(|c| c.detail.as_str()).unwrap_or_default()
    }

    #[test]
    fn each_channel_is_judged_on_its_own() {
        let k = reachable_by(&client(&firm()), "amy", [true, true, false]);
        assert_eq!(
            reach(&k),
            Reach { consented: vec![Channel::Email, Channel::Voice], left: vec![Channel::Email, Channel::Voice] }
        );
        // A hard bounce suppresses email only.
        let bounced = ContactRow { opted_out_email: true, ..k.clone() };
        let r = reach(&bounced);
        assert_eq!((r.left.as_slice(), r.opted_out()), (&[Channel::Voice][..], vec![Channel::Email]));
        // An opt-out of every channel sets all three.
        let all = ContactRow { opted_out_voice: true, opted_out_sms: true, ..bounced.clone() };
        assert!(reach(&all).left.is_empty());
        // Consent without the contact info for it is no channel: voice needs a phone.
        let no_phone = ContactRow { phone: Some("  ".into()), ..k.clone() };
        assert_eq!(reach(&no_phone).consented, vec![Channel::Email]);
        // An opt-out of a channel never consented to changes nothing.
        let sms_out = ContactRow { opted_out_sms: true, ..k.clone() };
        assert_eq!(reach(&sms_out), reach(&k));
    }

    #[test]
    fn a_contact_with_email_suppressed_stays_reachable_by_phone() {
        let f = firm();
        let c = client(&f);
        let i = invoice(&c);
        let mut amy = reachable_by(&c, "amy", [true, true, true]);
        amy.opted_out_email = true;
        let d = decide_one(&i, &c, &f, &amy);
        assert!(d.payload.eligible, "{:?}", d.payload.checks);
        assert_eq!(d.payload.automation_status, AutomationStatus::Enabled);
        assert_eq!(d.payload.contacts.len(), 1);
        assert_eq!(d.payload.contacts[0].channels, vec![Channel::Voice, Channel::Sms]);
        assert_eq!(
            detail_of(&d, rule::CONTACT_WITH_CONSENT),
            "1 contact(s) with consent and the contact info: amy (email, voice, sms)"
        );
        assert_eq!(
            detail_of(&d, rule::CONTACT_NOT_OPTED_OUT),
            "1 contact(s) with a channel left: amy: voice, sms (opted out of email)"
        );
        // Every channel opted out: nothing is left, the check fails and names what was opted out.
        amy.opted_out_voice = true;
        amy.opted_out_sms = true;
        let d = decide_one(&i, &c, &f, &amy);
        assert_eq!(failed(&d), vec![rule::CONTACT_NOT_OPTED_OUT]);
        assert_eq!(
            detail_of(&d, rule::CONTACT_NOT_OPTED_OUT),
            "no channel left on any contact: amy: none (opted out of email, voice, sms)"
        );
        assert!(d.payload.contacts.is_empty());
    }

    #[test]
    fn the_details_name_the_channels_left_per_contact() {
        let f = firm();
        let c = client(&f);
        let i = invoice(&c);
        // Bob (primary) bounced and gave no phone consent; Cleo may be texted; Dan never consented.
        let mut bob = reachable_by(&c, "bob", [true, false, false]);
        bob.is_primary = true;
        bob.opted_out_email = true;
        let cleo = reachable_by(&c, "cleo", [false, false, true]);
        let dan = reachable_by(&c, "dan", [false, false, false]);
        let d =
            decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![&dan, &cleo, &bob] }, now())
                .unwrap();
        assert!(d.payload.eligible, "{:?}", d.payload.checks);
        assert_eq!(
            detail_of(&d, rule::CONTACT_WITH_CONSENT),
            "2 contact(s) with consent and the contact info: bob (email); cleo (sms)"
        );
        assert_eq!(
            detail_of(&d, rule::CONTACT_NOT_OPTED_OUT),
            "1 contact(s) with a channel left: bob: none (opted out of email); cleo: sms"
        );
        let left: Vec<(&str, &[Channel])> =
            d.payload.contacts.iter().map(|k| (k.name.as_str(), k.channels.as_slice())).collect();
        assert_eq!(left, vec![("cleo", &[Channel::Sms][..])]);
        // Nobody with consent at all: the consent check fails, nothing to opt out of.
        let d = decide_one(&i, &c, &f, &dan);
        assert_eq!(failed(&d), vec![rule::CONTACT_WITH_CONSENT, rule::CONTACT_NOT_OPTED_OUT]);
        assert!(detail_of(&d, rule::CONTACT_WITH_CONSENT).starts_with("none of the client's 1 contact(s) has consent"));
    }

    #[test]
    fn the_client_is_unreachable_only_when_no_channel_is_left_on_any_contact() {
        let c = client(&firm());
        let mut amy = reachable_by(&c, "amy", [true, true, false]);
        amy.opted_out_email = true;
        let mut bob = reachable_by(&c, "bob", [true, false, false]);
        bob.opted_out_email = true;
        // Every email suppressed, but Amy may be called.
        assert_eq!(client_reach([&amy, &bob]), ClientReach::Reachable);
        amy.opted_out_voice = true;
        assert_eq!(client_reach([&amy, &bob]), ClientReach::AllOptedOut);
        // A contact who never consented to anything is no channel left, and no opt-out either.
        let dan = reachable_by(&c, "dan", [false, false, false]);
        assert_eq!(client_reach([&amy, &bob, &dan]), ClientReach::AllOptedOut);
        assert_eq!(client_reach([&dan]), ClientReach::NoConsent);
        assert_eq!(client_reach([]), ClientReach::NoConsent);
        // Placeholders (consent before the record) are not contacts yet.
        let placeholder = ContactRow { version: None, ..reachable_by(&c, "eve", [true, true, true]) };
        assert_eq!(client_reach([&amy, &placeholder]), ClientReach::AllOptedOut);
    }

    #[test]
    fn placeholder_invoice_has_no_decision() {
        let f = firm();
        let c = client(&f);
        let mut i = invoice(&c);
        i.version = None;
        assert!(decide(&Inputs { invoice: &i, client: Some(&c), firm: Some(&f), contacts: vec![] }, now()).is_none());
    }

    fn decide_one(i: &InvoiceRow, c: &ClientRow, f: &FirmRow, k: &ContactRow) -> Decision {
        decide_at(i, c, f, k, now())
    }

    fn decide_at(i: &InvoiceRow, c: &ClientRow, f: &FirmRow, k: &ContactRow, at: DateTime<Utc>) -> Decision {
        decide(&Inputs { invoice: i, client: Some(c), firm: Some(f), contacts: vec![k] }, at).unwrap()
    }

    #[test]
    fn a_client_dispute_fails_not_disputed_with_the_clients_words_and_escalates() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.client_dispute_evidence = Some("we never approved the extra hours".into());
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(failed(&d), vec![rule::NOT_DISPUTED]);
        assert_eq!(
            d.payload.checks[6].detail,
            "the client disputes the invoice: \"we never approved the extra hours\""
        );
        assert_eq!(d.payload.automation_status, AutomationStatus::Escalated);
        i.disputed = true;
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(
            d.payload.checks[6].detail,
            "the invoice is disputed; the client disputes it too: \"we never approved the extra hours\""
        );
    }

    #[test]
    fn a_reply_a_person_must_answer_fails_no_open_escalation() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.handoff_intent = Some("question".into());
        i.handoff_evidence = Some("can you send a W-9?".into());
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(failed(&d), vec![rule::NO_OPEN_ESCALATION]);
        assert_eq!(d.payload.checks[7].detail, "waiting for a person: question: \"can you send a W-9?\"");
        assert_eq!(d.payload.automation_status, AutomationStatus::Escalated);
        i.cases_open = 2;
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(
            d.payload.checks[7].detail,
            "2 escalation case(s) open; waiting for a person: question: \"can you send a W-9?\""
        );
    }

    #[test]
    fn an_escalation_case_stops_or_pauses_automation() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.cases_open = 1;
        i.case_reasons = Some("days_past_due".into());
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(failed(&d), vec![rule::NO_OPEN_ESCALATION]);
        assert_eq!(d.payload.checks[7].detail, "1 escalation case(s) open (days_past_due)");
        assert_eq!(d.payload.automation_status, AutomationStatus::Escalated);
        // Paused by a person until a date: paused (not escalated), re-checked when it ends.
        i.cases_open = 0;
        i.case_reasons = None;
        i.case_paused = true;
        i.case_paused_until = Some(now() + days(10));
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(failed(&d), vec![rule::NO_OPEN_ESCALATION]);
        assert!(
            d.payload.checks[7].detail.starts_with("automation paused by a person"),
            "{}",
            d.payload.checks[7].detail
        );
        assert_eq!(d.payload.automation_status, AutomationStatus::Paused);
        assert_eq!(d.next_check_at, Some(now() + days(10)));
        // The date passed: automation resumes; indefinitely: it does not.
        let d = decide_at(&i, &c, &f, &k, now() + days(11));
        assert!(failed(&d).is_empty(), "{:?}", failed(&d));
        i.case_paused_until = None;
        let d = decide_at(&i, &c, &f, &k, now() + days(400));
        assert_eq!(failed(&d), vec![rule::NO_OPEN_ESCALATION]);
    }

    #[test]
    fn a_reply_awaiting_review_fails_its_own_check_and_stops_automation() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.reviews_pending = 1;
        i.review_evidence = Some("see the comments from my colleague below".into());
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(failed(&d), vec![rule::NO_REPLY_AWAITING_REVIEW]);
        assert_eq!(
            d.payload.checks[9].detail,
            "a reply awaits a person's review (not understood with confidence): \
             \"see the comments from my colleague below\""
        );
        assert_eq!(d.payload.automation_status, AutomationStatus::Escalated);
        assert_eq!(d.next_check_at, None, "no date ends it: only a person");
        i.reviews_pending = 2;
        let d = decide_one(&i, &c, &f, &k);
        assert!(
            d.payload.checks[9].detail.starts_with("2 replies await a person's review"),
            "{}",
            d.payload.checks[9].detail
        );
        i.reviews_pending = 0;
        let d = decide_one(&i, &c, &f, &k);
        assert!(d.payload.eligible);
        assert_eq!(d.payload.checks[9].detail, "no reply awaiting review");
    }

    #[test]
    fn a_pause_set_by_a_reply_quotes_the_client() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        i.paused_until = Some(now() + days(5));
        i.pause_reason = Some(replies::ALREADY_PAID.into());
        i.pause_evidence = Some("paid it on Monday".into());
        let d = decide_one(&i, &c, &f, &k);
        assert_eq!(failed(&d), vec![rule::NO_ACTIVE_PROMISE_OR_PLAN]);
        // In the client's zone (Auckland, NZDT).
        assert_eq!(
            d.payload.checks[8].detail,
            "outreach paused until 2026-03-16 01:00 NZDT: client says it is already paid: \"paid it on Monday\"; \
             awaiting Stripe"
        );
        assert_eq!(d.payload.pause_reason.as_deref(), Some("already_paid"));
        assert_eq!(d.payload.automation_status, AutomationStatus::Paused);
        i.pause_reason = Some(replies::PROMISE_TO_PAY.into());
        i.pause_evidence = Some("we will pay on Friday".into());
        i.promised_date = NaiveDate::from_ymd_opt(2026, 3, 13);
        let d = decide_one(&i, &c, &f, &k);
        assert!(
            d.payload.checks[8].detail.ends_with(": client promised to pay by 2026-03-13: \"we will pay on Friday\""),
            "{}",
            d.payload.checks[8].detail
        );
        i.promised_date = None;
        let d = decide_one(&i, &c, &f, &k);
        assert!(d.payload.checks[8].detail.contains("client promised to pay (no date given)"));
    }

    #[test]
    fn an_expired_promise_is_broken_once_and_only_while_unpaid() {
        let f = firm();
        let c = client(&f);
        let k = contact(&c, "amy", true);
        let mut i = invoice(&c);
        let reply = Uuid::now_v7();
        i.paused_until = Some(now() - Duration::hours(1));
        i.pause_reason = Some(replies::PROMISE_TO_PAY.into());
        i.pause_version = Some(2);
        i.pause_evidence = Some("we will pay on Friday".into());
        i.pause_reply_id = Some(reply);
        i.promised_date = NaiveDate::from_ymd_opt(2026, 3, 6);
        let b = newly_broken(&i, now()).unwrap();
        assert_eq!(b.promised_date, NaiveDate::from_ymd_opt(2026, 3, 6));
        assert_eq!(b.paused_until, now() - Duration::hours(1));
        assert_eq!((b.evidence.as_str(), b.reply_id), ("we will pay on Friday", Some(reply)));
        // Not before the pause ends.
        assert!(newly_broken(&i, now() - Duration::hours(2)).is_none());
        // Once per promise.
        i.broken_pause_version = Some(2);
        assert!(newly_broken(&i, now()).is_none());
        i.broken_pause_version = Some(1);
        assert!(newly_broken(&i, now()).is_some());
        // Not when paid, and not for a claimed payment awaiting Stripe.
        i.status = Some("paid".into());
        assert!(newly_broken(&i, now()).is_none());
        i.status = Some("open".into());
        i.pause_reason = Some(replies::ALREADY_PAID.into());
        assert!(newly_broken(&i, now()).is_none());
        // The decision carries the broken promise; the pause check passes and says so.
        i.broken_promise = Some(Json(b.clone()));
        let d = decide_one(&i, &c, &f, &k);
        assert!(d.payload.eligible);
        assert_eq!(d.payload.broken_promise, Some(b));
        assert_eq!(d.payload.paused_until, None);
        assert_eq!(
            d.payload.checks[8].detail,
            "no active payment promise or plan (a promise to pay by 2026-03-06 was broken)"
        );
    }
}
