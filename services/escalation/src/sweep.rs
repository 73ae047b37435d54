//! Time-driven work, on every change of a simulated clock or every `poll_interval_secs`:
//! invoices beyond their firm's days-past-due threshold open a case (once per invoice), and
//! cases paused until a date that has come resume automation.
use crate::cases::{self, ARFLOW, ActionInput, CaseError, Trigger};
use crate::handlers::Context;
use crate::store;
use arflow_contracts::events::{CaseActionKind, EscalationReason};
use arflow_runtime::Shutdown;
use chrono::Duration as Days;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Invoices or cases handled per transaction.
const BATCH: i64 = 200;

/// Runs until `shutdown`. A failed sweep is logged and tried again on the next tick.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) -> Result<(), String> {
    let mut changes = ctx.clock.changes();
    let poll = Duration::from_secs(ctx.settings.poll_interval_secs);
    loop {
        match sweep(&ctx).await {
            Ok((0, 0)) => {}
            Ok((opened, resumed)) => tracing::info!(opened, resumed, "escalation sweep"),
            Err(e) => tracing::warn!(error = %e, "escalation sweep failed; retrying on the next tick"),
        }
        match changes.as_mut() {
            Some(rx) => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = rx.changed() => if changed.is_err() { return Ok(()) },
                _ = tokio::time::sleep(poll) => {}
            },
            None => tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            },
        }
    }
}

/// One sweep: (cases opened for days past due, paused cases resumed).
pub async fn sweep(ctx: &Context) -> Result<(usize, usize), CaseError> {
    Ok((days_past_due(ctx).await?, expired_pauses(ctx).await?))
}

async fn days_past_due(ctx: &Context) -> Result<usize, CaseError> {
    let now = ctx.clock.now();
    // Coarse bound in UTC (a day of slack for zones ahead of UTC); each firm's calendar decides.
    let latest_due = (now + Days::days(1)).date_naive();
    let mut tx = ctx.pool.begin().await?;
    let candidates =
        store::past_due_candidates(&mut tx, latest_due, ctx.settings.default_days_past_due_threshold, BATCH).await?;
    let mut out = Vec::new();
    let mut opened = 0;
    for (invoice_id, firm_id, due, threshold, timezone) in candidates {
        let days = cases::days_past_due(Some(due), cases::zone(timezone.as_deref()), now);
        if days <= i64::from(threshold) {
            continue;
        }
        let Some(invoice) = store::invoice(&mut tx, firm_id, invoice_id).await? else { continue };
        let evidence = format!("{days} days past due (the firm's threshold is {threshold} days; due {due})");
        let t = Trigger {
            firm_id,
            client_id: invoice.client_id,
            invoice_id: Some(invoice_id),
            contact_id: None,
            review: None,
            reason: EscalationReason::DaysPastDue,
            evidence: evidence.clone(),
            actor: ARFLOW.into(),
            note: evidence,
            details: json!({ "days_past_due": days, "threshold": threshold }),
        };
        match cases::open_or_note(&mut tx, &ctx.links, t, now, None).await {
            Ok((outcome, messages)) => {
                store::mark_past_due_escalated(&mut tx, invoice_id, now).await?;
                if matches!(outcome, cases::Outcome::Opened(_)) {
                    opened += 1;
                }
                out.extend(messages);
            }
            // The records are not all here yet: the next sweep tries again.
            Err(CaseError::NotYetKnown(what)) => tracing::debug!(%invoice_id, %what, "not escalated yet"),
            Err(e) => return Err(e),
        }
    }
    store::enqueue(&mut tx, &out).await?;
    tx.commit().await?;
    if !out.is_empty() {
        ctx.outbox.notify();
        ctx.metrics.count("escalation_cases_opened", opened as u64);
    }
    Ok(opened)
}

async fn expired_pauses(ctx: &Context) -> Result<usize, CaseError> {
    let now = ctx.clock.now();
    let mut tx = ctx.pool.begin().await?;
    let cases = store::lock_expired_pauses(&mut tx, now, BATCH).await?;
    let mut out = Vec::new();
    let resumed = cases.len();
    for mut case in cases {
        let until = case.paused_until.map(|t| t.to_rfc3339()).unwrap_or_default();
        let note = format!("the pause until {until} ended; automation resumes");
        let input = ActionInput::new(CaseActionKind::ContinueAutomation, ARFLOW, &note);
        out.extend(cases::act(&mut tx, &ctx.links, &mut case, input, now, None).await?);
    }
    store::enqueue(&mut tx, &out).await?;
    tx.commit().await?;
    if !out.is_empty() {
        ctx.outbox.notify();
    }
    Ok(resumed)
}
