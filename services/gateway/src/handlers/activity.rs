//! The activity projection: `eligibility.*`, `outreach.*` (emails, calls, texts) and
//! `reply.classified` become per-invoice history entries that say why, plus the invoice's
//! automation status and next action.
use crate::store::{self, ActivityDetail, NewActivity, to_text};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::EnvelopeError;
use arflow_contracts::events::{
    AllContactsOptedOut, CallEnded, CallOutcome, ChannelStepSkipped, EligibilityChanged, EmailFailed, EmailSent,
    EmailSuppressed, PlanUpdated, PromiseBroken, ReplyClassified, ReplyKind, SmsFailed, SmsSent, Speaker, StepDue,
    StepSkipped,
};
use arflow_contracts::subjects::{eligibility, outreach, reply};
use arflow_core::Channel;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;
use uuid::Uuid;

pub struct ActivityHandler {
    pool: PgPool,
}

impl ActivityHandler {
    pub fn new(pool: PgPool) -> Self {
        ActivityHandler { pool }
    }
}

#[derive(Debug, thiserror::Error)]
enum ProjectError {
    #[error(transparent)]
    Data(#[from] EnvelopeError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl Handler for ActivityHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(arflow_store::handler_error)?;
        let ids: Vec<Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let fresh = arflow_store::inbox::record_new(&mut tx, crate::startup::ACTIVITY_CONSUMER, &ids)
            .await
            .map_err(arflow_store::handler_error)?;
        let mut rejections = Vec::new();
        for (index, m) in batch.iter().enumerate() {
            if !fresh.contains(&m.envelope.id) {
                continue;
            }
            match project(&mut tx, m).instrument(m.span()).await {
                Ok(()) => {}
                Err(ProjectError::Data(e)) => {
                    tracing::warn!(parent: &m.span(), error = %e, "event does not match its contract; dead-lettering");
                    rejections.push(Rejection { index, reason: e.to_string() });
                }
                Err(ProjectError::Db(e)) => return Err(arflow_store::handler_error(e)),
            }
        }
        tx.commit().await.map_err(arflow_store::handler_error)?;
        Ok(rejections)
    }
}

fn entry(m: &Incoming, invoice_id: Uuid, kind: &str, summary: String, detail: ActivityDetail) -> NewActivity {
    NewActivity {
        firm_id: m.envelope.firm_id,
        invoice_id,
        at: m.envelope.time,
        kind: kind.to_string(),
        summary,
        detail,
        event_id: m.envelope.id.to_string(),
    }
}

/// Only invoices of the event's own firm are touched (tenant isolation even on the bus).
async fn known(tx: &mut PgConnection, m: &Incoming, invoice_id: Uuid) -> Result<bool, sqlx::Error> {
    let firm = store::invoice_firm(tx, invoice_id).await?;
    if firm != Some(m.envelope.firm_id) {
        tracing::warn!(%invoice_id, "event for an invoice the gateway does not know under this firm; not projected");
        return Ok(false);
    }
    Ok(true)
}

async fn project(tx: &mut PgConnection, m: &Incoming) -> Result<(), ProjectError> {
    let env = &m.envelope;
    let kind = env.kind.as_str();
    match kind {
        eligibility::CHANGED => {
            let d: EligibilityChanged = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let mut failed: Vec<String> = d.failed_rules().into_iter().map(str::to_string).collect();
            failed.sort();
            let status = to_text(&d.automation_status);
            let Some(previous) = store::apply_eligibility(tx, d.invoice_id, d.version, &failed, &status).await? else {
                return Ok(()); // an older decision
            };
            // History records a decision only when the set of failed rules changes.
            if previous.as_ref() == Some(&failed) {
                return Ok(());
            }
            let summary = if failed.is_empty() {
                "Eligible for outreach: every check passed".to_string()
            } else {
                let reasons: Vec<String> =
                    d.checks.iter().filter(|c| !c.passed).map(|c| format!("{} ({})", c.rule, c.detail)).collect();
                format!("Not eligible: {}", reasons.join("; "))
            };
            let detail = ActivityDetail {
                checks: Some(d.checks.clone()),
                reason: (!failed.is_empty()).then(|| failed.join(",")),
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, "eligibility_changed", summary, detail)).await?;
        }
        eligibility::ALL_CONTACTS_OPTED_OUT => {
            let d: AllContactsOptedOut = env.data_as()?;
            for invoice_id in d.invoice_ids {
                if known(tx, m, invoice_id).await? {
                    let summary =
                        format!("Every contact of {} opted out: automation stopped, firm warned", d.client_name);
                    let detail = ActivityDetail { reason: Some("all_contacts_opted_out".into()), ..Default::default() };
                    store::add_activity(tx, &entry(m, invoice_id, "all_contacts_opted_out", summary, detail)).await?;
                }
            }
        }
        outreach::PLAN_UPDATED => {
            let d: PlanUpdated = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let status = to_text(&d.automation_status);
            if store::apply_plan(tx, d.invoice_id, d.version, &status, d.next.as_ref()).await? {
                let next = match &d.next {
                    Some(n) => format!("; next: {} by {} at {}", n.step, n.channel, n.at.to_rfc3339()),
                    None => "; nothing scheduled".into(),
                };
                let summary = format!("Automation {}: {}{next}", status.replace('_', " "), d.reason);
                let detail = ActivityDetail {
                    reason: Some(d.reason.clone()),
                    step: d.next.as_ref().map(|n| n.step.clone()),
                    ..Default::default()
                };
                store::add_activity(tx, &entry(m, d.invoice_id, "plan_updated", summary, detail)).await?;
            }
        }
        k if k.starts_with("outreach.step_due.") => {
            let d: StepDue = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let attempt = if d.attempt > 1 { format!(", attempt {}", d.attempt) } else { String::new() };
            let summary = format!(
                "Scheduled step {} fired ({}{attempt}, rule {}, policy v{})",
                d.step, d.channel, d.explanation.rule, d.explanation.policy_version
            );
            let detail = ActivityDetail {
                rule: Some(d.explanation.rule.clone()),
                policy_version: Some(d.explanation.policy_version),
                checks: Some(d.explanation.checks.clone()),
                step: Some(d.step.clone()),
                channel: Some(d.channel.to_string()),
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, "step_due", summary, detail)).await?;
        }
        outreach::STEP_SKIPPED => {
            let d: StepSkipped = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let summary = format!("Step {} skipped: {} ({})", d.step, d.reason, d.detail);
            let detail =
                ActivityDetail { reason: Some(d.reason.clone()), step: Some(d.step.clone()), ..Default::default() };
            store::add_activity(tx, &entry(m, d.invoice_id, "step_skipped", summary, detail)).await?;
        }
        outreach::EMAIL_SENT => {
            let d: EmailSent = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let summary = format!(
                "Sent {} email to {} (rule {}, policy v{}, template {} v{})",
                d.step,
                arflow_core::mask::email(&d.to),
                d.explanation.rule,
                d.explanation.policy_version,
                d.template,
                d.template_version
            );
            let detail = ActivityDetail {
                rule: Some(d.explanation.rule.clone()),
                policy_version: Some(d.explanation.policy_version),
                checks: Some(d.explanation.checks.clone()),
                template: Some(d.template.clone()),
                subject: Some(d.subject.clone()),
                body: Some(d.body_text.clone()),
                step: Some(d.step.clone()),
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, "email_sent", summary, detail)).await?;
        }
        outreach::EMAIL_FAILED => {
            let d: EmailFailed = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let how = if d.permanent { "permanently" } else { "temporarily" };
            let summary = format!("Email for step {} failed {how}: {}", d.step, d.reason);
            let detail =
                ActivityDetail { reason: Some(d.reason.clone()), step: Some(d.step.clone()), ..Default::default() };
            store::add_activity(tx, &entry(m, d.invoice_id, "email_failed", summary, detail)).await?;
        }
        outreach::EMAIL_SUPPRESSED => {
            let d: EmailSuppressed = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let summary = format!("Email for step {} suppressed at the last check: {}", d.step, d.reason);
            let detail =
                ActivityDetail { reason: Some(d.reason.clone()), step: Some(d.step.clone()), ..Default::default() };
            store::add_activity(tx, &entry(m, d.invoice_id, "email_suppressed", summary, detail)).await?;
        }
        outreach::VOICE_COMPLETED | outreach::VOICE_NO_ANSWER | outreach::VOICE_VOICEMAIL | outreach::VOICE_FAILED => {
            let d: CallEnded = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let (kind, summary, detail) = call_entry(&d);
            store::add_activity(tx, &entry(m, d.invoice_id, kind, summary, detail)).await?;
        }
        outreach::VOICE_SKIPPED | outreach::SMS_SKIPPED => {
            let d: ChannelStepSkipped = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let (what, kind) = if kind == outreach::VOICE_SKIPPED {
                (format!("Call (attempt {})", d.attempt), "call_skipped")
            } else {
                ("Text".to_string(), "sms_skipped")
            };
            let summary =
                format!("{what} for step {} not placed at the last check: {} ({})", d.step, d.reason, d.detail);
            let detail = ActivityDetail {
                reason: Some(d.reason.clone()),
                step: Some(d.step.clone()),
                channel: Some(d.channel.to_string()),
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, kind, summary, detail)).await?;
        }
        outreach::SMS_SENT => {
            let d: SmsSent = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let to = arflow_core::mask::phone(&d.to);
            let summary = format!(
                "Texted {to} for step {} (rule {}, policy v{}, template {} v{}): \"{}\"",
                d.step, d.explanation.rule, d.explanation.policy_version, d.template, d.template_version, d.body
            );
            let detail = ActivityDetail {
                rule: Some(d.explanation.rule.clone()),
                policy_version: Some(d.explanation.policy_version),
                checks: Some(d.explanation.checks.clone()),
                template: Some(d.template.clone()),
                body: Some(d.body.clone()),
                step: Some(d.step.clone()),
                channel: Some(Channel::Sms.to_string()),
                to: Some(to),
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, "sms_sent", summary, detail)).await?;
        }
        outreach::SMS_FAILED => {
            let d: SmsFailed = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let how = if d.permanent { "permanently" } else { "temporarily" };
            let summary = format!("Text for step {} failed {how}: {}", d.step, d.reason);
            let detail = ActivityDetail {
                reason: Some(d.reason.clone()),
                step: Some(d.step.clone()),
                channel: Some(Channel::Sms.to_string()),
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, "sms_failed", summary, detail)).await?;
        }
        reply::CLASSIFIED => {
            let d: ReplyClassified = env.data_as()?;
            // Every reply goes to the firm's inbox, matched or not.
            let kind_text = to_text(&d.kind);
            let row = store::ReplyRow {
                reply_id: d.reply_id,
                received_at: d.received_at,
                channel: d.channel.to_string(),
                kind: kind_text,
                intent: d.intent.map(|i| i.as_str().to_string()),
                promised_date: d.promised_date,
                evidence: d.evidence.clone(),
                client_text: d.client_text.clone(),
                invoice_id: d.invoice_id,
                contact_id: d.contact_id,
                matched_by: d.matched_by.clone(),
                from_address: d.from.clone(),
                subject: d.subject.clone(),
                action: d.action.clone(),
                needs_review: d.awaits_review(),
                labelled_by: d.labelled_by.clone(),
            };
            store::add_reply(tx, env.firm_id, &row).await?;
            let Some(invoice_id) = d.invoice_id else {
                tracing::info!(reply_id = %d.reply_id, "reply not matched to an invoice; not projected");
                return Ok(());
            };
            if !known(tx, m, invoice_id).await? {
                return Ok(());
            }
            let from = match (d.channel, d.from.as_deref()) {
                (_, None) => "unknown sender".to_string(),
                (Channel::Voice | Channel::Sms, Some(number)) => arflow_core::mask::phone(number),
                (_, Some(address)) => arflow_core::mask::email(address),
            };
            let summary = match (&d.kind, &d.bounce) {
                (ReplyKind::Bounce, Some(b)) => format!(
                    "Email to {} bounced ({}, {}): {}",
                    arflow_core::mask::email(&b.recipient),
                    b.status,
                    if b.hard { "hard" } else { "soft" },
                    d.action
                ),
                (ReplyKind::Complaint, _) => format!("{from} marked our email as spam: {}", d.action),
                _ => reply_summary(&d, &from),
            };
            let review = d.awaits_review();
            let detail = ActivityDetail {
                reason: Some(d.action.clone()),
                step: d.step.clone(),
                // What arflow acts on: nothing for a reply awaiting review (its guess is in `scores`).
                intent: d.actionable_intent().map(|i| i.as_str().to_string()),
                evidence: Some(d.evidence.clone()).filter(|e| !e.is_empty()),
                client_text: Some(d.client_text.clone()),
                promised_date: d.promised_date.filter(|_| !review),
                channel: Some(d.channel.to_string()),
                scores: review.then(|| d.scores.clone()),
                labelled_by: d.labelled_by.clone(),
                ..Default::default()
            };
            let kind = match (review, &d.labelled_by) {
                (true, _) => "reply_needs_review",
                (false, Some(_)) => "reply_labelled",
                (false, None) => "reply_received",
            };
            store::add_activity(tx, &entry(m, invoice_id, kind, summary, detail)).await?;
        }
        eligibility::PROMISE_BROKEN => {
            let d: PromiseBroken = env.data_as()?;
            if !known(tx, m, d.invoice_id).await? {
                return Ok(());
            }
            let promised = d.promised_date.map(|p| format!("for {p} ")).unwrap_or_default();
            let summary = format!(
                "Payment promise {promised}broken: Stripe reported no payment by {}; reminders resume, firmer",
                d.paused_until.to_rfc3339()
            );
            let detail = ActivityDetail {
                reason: Some("promise_broken".into()),
                evidence: Some(d.evidence.clone()).filter(|e| !e.is_empty()),
                promised_date: d.promised_date,
                ..Default::default()
            };
            store::add_activity(tx, &entry(m, d.invoice_id, "promise_broken", summary, detail)).await?;
        }
        other => {
            // Not part of the projection (yet): acknowledged, visible in the log.
            tracing::debug!(kind = other, "event not projected into activity");
        }
    }
    Ok(())
}

/// A client's reply in words: what it meant (or that it awaits a person's label, with the
/// classifier's likeliest intents), and what arflow does about it.
fn reply_summary(d: &ReplyClassified, from: &str) -> String {
    let how = match d.channel {
        Channel::Voice => "said on the call".to_string(),
        Channel::Sms => "replied by text".to_string(),
        other => format!("replied by {other}"),
    };
    let evidence = if d.evidence.is_empty() { String::new() } else { format!(" (\"{}\")", d.evidence) };
    if d.awaits_review() {
        let likeliest: Vec<String> = d.scores.iter().map(|s| format!("{} {:.2}", s.intent.as_str(), s.score)).collect();
        let guess =
            if likeliest.is_empty() { String::new() } else { format!(" (likeliest: {})", likeliest.join(", ")) };
        return format!("{from} {how}: not understood with confidence{guess}: \"{}\": {}", d.client_text, d.action);
    }
    let intent = d.intent.map(|i| i.as_str()).unwrap_or("unknown");
    let promised = d.promised_date.map(|p| format!(" for {p}")).unwrap_or_default();
    match &d.labelled_by {
        Some(by) => format!("{by} labelled what {from} {how}: {intent}{promised} (\"{}\")", d.client_text),
        None => format!("{from} {how}: {intent}{promised}{evidence}: {}", d.action),
    }
}

/// A call attempt as a history entry: the outcome, who was called (masked), the attempt, what
/// was said (turn by turn, with what the client meant), the recording and the script.
fn call_entry(d: &CallEnded) -> (&'static str, String, ActivityDetail) {
    let to = arflow_core::mask::phone(&d.to);
    let (kind, what) = match d.outcome {
        CallOutcome::Completed => ("call_completed", format!("Called {to}")),
        CallOutcome::NoAnswer => ("call_no_answer", format!("Called {to}: no answer")),
        CallOutcome::Voicemail => ("call_voicemail", format!("Called {to}: left a voicemail")),
        CallOutcome::Failed => ("call_failed", format!("Call to {to} failed")),
    };
    let duration = d.duration_secs.map(|s| format!(", {s} s")).unwrap_or_default();
    let intents: Vec<&str> = d.intents.iter().map(|i| i.as_str()).collect();
    let said = if intents.is_empty() { String::new() } else { format!("; the client: {}", intents.join(", ")) };
    let summary = format!(
        "{what} for step {} (attempt {}{duration}, script {}){said}: {}",
        d.step, d.attempt, d.script, d.detail
    );
    let lines: Vec<String> = d
        .transcript
        .iter()
        .map(|t| {
            let who = match t.speaker {
                Speaker::Agent => "Agent",
                Speaker::Client => "Client",
            };
            let meant = t.intent.map(|i| format!(" [{}]", i.as_str())).unwrap_or_default();
            format!("{who}: {}{meant}", t.text)
        })
        .collect();
    let detail = ActivityDetail {
        rule: Some(d.explanation.rule.clone()),
        policy_version: Some(d.explanation.policy_version),
        checks: Some(d.explanation.checks.clone()),
        template: Some(d.script.clone()),
        body: (!lines.is_empty()).then(|| lines.join("\n")),
        reason: Some(d.detail.clone()),
        step: Some(d.step.clone()),
        intent: d.intents.last().map(|i| i.as_str().to_string()),
        promised_date: d.promised_date,
        channel: Some(Channel::Voice.to_string()),
        to: Some(to),
        call: Some(store::CallActivity {
            outcome: store::to_text(&d.outcome),
            attempt: d.attempt,
            provider_status: d.provider_status.clone(),
            answered_by: d.answered_by.clone(),
            duration_secs: d.duration_secs,
            transcript: d.transcript.clone(),
            intents: intents.iter().map(|i| i.to_string()).collect(),
            recording_url: d.recording_url.clone(),
            script: d.script.clone(),
            provider_call_sid: d.provider_call_sid.clone(),
        }),
        ..Default::default()
    };
    (kind, summary, detail)
}
