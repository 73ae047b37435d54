//! The durable timers: pending steps in PostgreSQL, fired when the clock reaches them.
//!
//! Nothing is held in memory: each pass selects what is due, decides it, and commits the
//! outcome and its events in one transaction per batch, so a restart loses nothing and
//! replicas never fire the same step (`FOR UPDATE SKIP LOCKED` on the plans).
use crate::config::SchedulerSettings;
use crate::handlers::Context;
use crate::outreach::{self, Cause, OutreachError};
use crate::policy::{self, DEFAULT_POLICY, Followed, OptOuts, PlannedStep};
use crate::store::{self, HALTED, PlanRow, StepChange, StepRow};
use arflow_contracts::events::{ContactSnapshot, EligibilityChanged, Explanation, StepDue, Tone};
use arflow_contracts::{msg_id, subjects};
use arflow_core::{Channel, window::parse_tz};
use arflow_runtime::{Metrics, Shutdown};
use arflow_store::{OutboxMessage, outbox};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// The eligibility rule a pause fails (`paused_until`).
const NO_ACTIVE_PROMISE_OR_PLAN: &str = "no_active_promise_or_plan";

/// How long steps wait for the decision that follows the end of a pause before looking again.
const AWAIT_DECISION: chrono::Duration = chrono::Duration::minutes(1);

/// Skip reasons of an eligible step nobody can be reached on its channel for (an email step
/// when every contact's email is suppressed, a call with no phone to call): the cadence goes
/// on with the channels left, and such a step ends it like a sent email when it is the last.
const CONTACT_OPTED_OUT: &str = "contact_opted_out";
const NO_USABLE_CONTACT: &str = "no_usable_contact";
const NO_CONSENTED_CONTACT: &str = "no_consented_contact";
const NO_RECIPIENT: [&str; 3] = [CONTACT_OPTED_OUT, NO_USABLE_CONTACT, NO_CONSENTED_CONTACT];

pub struct Timer {
    pub ctx: Context,
    pub settings: SchedulerSettings,
    pub metrics: Metrics,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub invoices: usize,
    pub fired: usize,
    pub skipped: usize,
    pub moved: usize,
}

impl Timer {
    /// Fires what is due on every clock change, wake-up or tick, until shutdown.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), String> {
        let mut changes = self.ctx.clock.changes();
        let tick = Duration::from_millis(self.settings.tick_ms);
        tracing::info!(tick_ms = self.settings.tick_ms, simulated = self.ctx.clock.is_simulated(), "timer started");
        loop {
            if let Err(e) = self.fire_due().await {
                tracing::warn!(error = %e, "timer pass failed; retrying on the next tick");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = clock_moved(&mut changes) => {}
                _ = self.ctx.timer.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
        tracing::info!("timer stopped");
        Ok(())
    }

    /// Fires batches until nothing more is due now.
    pub async fn fire_due(&self) -> Result<Pass, OutreachError> {
        let mut total = Pass::default();
        loop {
            let pass = self.fire_batch().await?;
            total.invoices += pass.invoices;
            total.fired += pass.fired;
            total.skipped += pass.skipped;
            total.moved += pass.moved;
            if pass.invoices < usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX) {
                break;
            }
        }
        if total.invoices > 0 {
            tracing::info!(?total, "timer pass done");
        }
        Ok(total)
    }

    /// One transaction: lock up to `batch_size` invoices with due steps and decide them all.
    async fn fire_batch(&self) -> Result<Pass, OutreachError> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.pool.begin().await?;
        let plans = store::lock_due_plans(&mut tx, now, self.settings.batch_size).await?;
        if plans.is_empty() {
            return Ok(Pass::default());
        }
        let ids: Vec<Uuid> = plans.iter().map(|p| p.invoice_id).collect();
        let mut by_invoice: HashMap<Uuid, Vec<StepRow>> = HashMap::new();
        for s in store::due_steps(&mut tx, &ids, now).await? {
            by_invoice.entry(s.invoice_id).or_default().push(s);
        }
        let decisions: HashMap<Uuid, EligibilityChanged> = plans
            .iter()
            .filter_map(|p| {
                let d = p.decision.clone()?;
                match serde_json::from_value(d) {
                    Ok(d) => Some((p.invoice_id, d)),
                    Err(e) => {
                        tracing::error!(invoice_id = %p.invoice_id, error = %e, "stored decision does not parse");
                        None
                    }
                }
            })
            .collect();
        let contacts: Vec<Uuid> = decisions
            .values()
            .flat_map(|d| d.contacts.iter().map(|c| c.contact_id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let opted_out = store::opted_out(&mut tx, &contacts).await?;
        let mut pass = Pass { invoices: plans.len(), ..Pass::default() };
        let mut changes = Vec::new();
        let mut messages = Vec::new();
        let mut touched = Vec::new();
        let mut fallbacks: Vec<(&PlanRow, PlannedStep)> = Vec::new();
        // The last step per invoice this pass that the cadence is done with: an email that
        // fired, or a step nobody could be reached for on its channel. If nothing is pending
        // after it, the cadence is exhausted.
        let mut done_last: HashMap<Uuid, (&PlanRow, StepRow)> = HashMap::new();
        // Invoices with a call or text fired this pass: its outcome decides what follows.
        let mut awaiting_outcome: HashSet<Uuid> = HashSet::new();
        for plan in &plans {
            let steps = by_invoice.remove(&plan.invoice_id).unwrap_or_default();
            let span = tracing::info_span!("timer", firm_id = %plan.firm_id, invoice_id = %plan.invoice_id,
                correlation_id = ?plan.correlation_id);
            let _g = span.enter();
            let outcome = decide(plan, decisions.get(&plan.invoice_id), &steps, now, &opted_out);
            let cause = Cause::of_plan(plan);
            let mut reason = String::new();
            for (step, verdict) in steps.iter().zip(outcome) {
                let mut change = StepChange {
                    step_id: step.step_id,
                    state: "pending",
                    reason: None,
                    detail: None,
                    fired_at: None,
                    scheduled_for: step.scheduled_for,
                };
                match verdict {
                    Verdict::Fire(due) => {
                        change.state = "fired";
                        change.fired_at = Some(now);
                        tracing::debug!(step = %step.name, step_id = %step.step_id, "step due");
                        reason = format!("step_fired: {}", step.name);
                        // A call or text ends later: its outcome may still plan a retry or an email,
                        // so the outcome, not the firing, can exhaust the cadence.
                        if due.channel == Channel::Email {
                            done_last.insert(plan.invoice_id, (plan, step.clone()));
                        } else {
                            awaiting_outcome.insert(plan.invoice_id);
                        }
                        messages.push(step_due_message(plan, *due, now, cause)?);
                        pass.fired += 1;
                    }
                    Verdict::Fallback { reason: why, detail, email } => {
                        tracing::info!(step = %step.name, step_id = %step.step_id, reason = %why, fallback = %email.name,
                            at = %email.scheduled_for, "step skipped; email planned instead");
                        messages.push(outreach::step_skipped(step, &why, &detail, now, cause)?);
                        if reason.is_empty() {
                            reason = format!("step_skipped: {}", step.name);
                        }
                        change.state = "skipped";
                        change.reason = Some(why);
                        change.detail = Some(detail);
                        fallbacks.push((plan, *email));
                        pass.skipped += 1;
                    }
                    Verdict::Skip { state, reason: why, detail } => {
                        tracing::debug!(step = %step.name, step_id = %step.step_id, reason = %why, %detail, "step skipped");
                        if NO_RECIPIENT.contains(&why.as_str()) {
                            done_last.insert(plan.invoice_id, (plan, step.clone()));
                        }
                        messages.push(outreach::step_skipped(step, &why, &detail, now, cause)?);
                        if reason.is_empty() {
                            reason = format!("step_skipped: {}", step.name);
                        }
                        change.state = state;
                        change.reason = Some(why);
                        change.detail = Some(detail);
                        pass.skipped += 1;
                    }
                    Verdict::Move { to, why } => {
                        tracing::debug!(step = %step.name, step_id = %step.step_id, %to, why, "step moved");
                        if reason.is_empty() {
                            reason = format!("step_moved: {why}");
                        }
                        change.scheduled_for = to;
                        pass.moved += 1;
                    }
                }
                changes.push(change);
            }
            touched.push((plan.invoice_id, reason, cause));
        }
        store::apply_changes(&mut tx, &changes).await?;
        let mut planned = 0;
        for (plan, email) in &fallbacks {
            planned +=
                store::insert_followups(&mut tx, plan.firm_id, plan.invoice_id, std::slice::from_ref(email)).await?;
        }
        done_last.retain(|id, _| !awaiting_outcome.contains(id));
        messages.extend(cadence_exhausted(&mut tx, &done_last, now).await?);
        messages.extend(outreach::plan_updates(&mut tx, &touched, now).await?);
        outbox::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        self.ctx.outbox.notify();
        if planned > 0 {
            // A fallback may be due at once (the email window is open): look again now.
            self.ctx.timer.notify_one();
        }
        self.metrics.count("steps_fired", pass.fired as u64);
        self.metrics.count("steps_skipped", pass.skipped as u64);
        self.metrics.count("steps_moved", pass.moved as u64);
        Ok(pass)
    }
}

/// `outreach.cadence_exhausted` for every invoice whose step this pass was done with (an email
/// fired, or a step skipped because nobody can be reached on its channel) with nothing left
/// pending: the cadence ran its course and the invoice is still open (either verdict means it
/// was eligible), so the escalation service opens a case for a person.
async fn cadence_exhausted(
    conn: &mut sqlx::PgConnection,
    done_last: &HashMap<Uuid, (&PlanRow, StepRow)>,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, OutreachError> {
    if done_last.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = done_last.keys().copied().collect();
    let pending = store::next_pending(conn, &ids).await?;
    let done: Vec<Uuid> = ids.into_iter().filter(|id| !pending.contains_key(id)).collect();
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let counts = store::fired_counts(conn, &done).await?;
    let mut out = Vec::with_capacity(done.len());
    for id in done {
        let Some((plan, step)) = done_last.get(&id) else { continue };
        let steps_fired = counts.get(&id).copied().unwrap_or(0);
        tracing::info!(invoice_id = %id, last_step = %step.name, steps_fired, "cadence exhausted");
        out.push(outreach::cadence_exhausted(plan, step, steps_fired, now, Cause::of_plan(plan))?);
    }
    Ok(out)
}

async fn clock_moved(changes: &mut Option<tokio::sync::watch::Receiver<DateTime<Utc>>>) {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// What happens to one due step.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Fire(Box<StepDue>),
    /// `state` is `skipped` or `cancelled`.
    Skip {
        state: &'static str,
        reason: String,
        detail: String,
    },
    /// Skipped (a call or text that cannot be placed, e.g. `timezone_unknown`), with an email
    /// planned in its place.
    Fallback {
        reason: String,
        detail: String,
        email: Box<PlannedStep>,
    },
    /// Not now: the step stays pending at `to`.
    Move {
        to: DateTime<Utc>,
        why: &'static str,
    },
}

fn skip(reason: &str, detail: impl Into<String>) -> Verdict {
    Verdict::Skip { state: "skipped", reason: reason.to_string(), detail: detail.into() }
}

/// What one due step could do now, before the no-flood rule picks among them.
enum Ready<'a> {
    /// Eligible, with a recipient, inside its window: the contact and the zone it is read in.
    Fire(&'a ContactSnapshot, Tz),
    /// Cannot be placed on its channel; an email stands in for it.
    Fallback {
        reason: &'static str,
        detail: String,
    },
    /// Outside its own window: it opens at `to`.
    Wait(DateTime<Utc>, &'static str),
    Skip(Verdict),
}

/// Decides every due step of one invoice (`steps` in scheduled order); one verdict per step.
///
/// Each step is judged on its own channel: an email in the firm's email window in the
/// recipient's zone, a call or a text in the call window (08:00-21:00, narrowed by the firm)
/// in the zone of the contact it reaches (`call_timezone`). Of the steps that can go out now
/// (or fall back to email), only the latest does; the others are `superseded`, and so is a
/// step still waiting for its window that is older than the one that went out.
pub fn decide(
    plan: &PlanRow,
    decision: Option<&EligibilityChanged>,
    steps: &[StepRow],
    now: DateTime<Utc>,
    opted_out: &OptOuts,
) -> Vec<Verdict> {
    if plan.status == HALTED {
        let reason = plan.halt_reason.clone().unwrap_or_else(|| "invoice_halted".into());
        return steps
            .iter()
            .map(|_| Verdict::Skip { state: "cancelled", reason: reason.clone(), detail: "plan halted".into() })
            .collect();
    }
    let Some(d) = decision else {
        return steps.iter().map(|_| skip("no_decision", "no readable eligibility decision for the invoice")).collect();
    };
    let (window, tz) = policy::window_and_zone(d, &opted_out.email);
    if let Some(until) = d.paused_until {
        if until > now {
            let to = window.next_open(until, tz);
            return steps.iter().map(|_| Verdict::Move { to, why: "paused" }).collect();
        }
        // The decision still holds the steps for a pause that has ended: eligibility re-decides
        // at that very moment (and records a broken promise, which adds a firmer step). Acting
        // on the stale verdict would skip the resumed steps as ineligible, or send a friendly
        // one just before the firm one; wait briefly for the new decision instead.
        if d.failed_rules().contains(&NO_ACTIVE_PROMISE_OR_PLAN) {
            let to = now + AWAIT_DECISION;
            return steps.iter().map(|_| Verdict::Move { to, why: "awaiting_eligibility" }).collect();
        }
    }
    // The decision's flag can lag the calendar (it was evaluated before the due date passed);
    // the due date itself, in the contact's zone, is authoritative.
    let past_due = d.past_due || d.invoice.due_date.is_some_and(|due| now.with_timezone(&tz).date_naive() > due);
    let failed = |needs_past_due: bool| {
        let mut rules: Vec<&str> = d.failed_rules();
        if needs_past_due && !past_due && !rules.contains(&"past_due") {
            rules.push("past_due");
        }
        if rules.is_empty() { "not eligible".to_string() } else { rules.join(", ") }
    };
    let passes = |s: &StepRow| d.eligible && (s.offset_days <= 0 || past_due);
    let ineligible = |s: &StepRow| Ready::Skip(skip("ineligible", failed(s.offset_days > 0)));
    let email_contact = policy::email_recipient(d, &opted_out.email);
    let no_contact_reason = if d.contacts.iter().any(|c| opted_out.email.contains(&c.contact_id)) {
        CONTACT_OPTED_OUT
    } else {
        NO_USABLE_CONTACT
    };
    let nobody =
        |reason: &str, channel: Channel| Ready::Skip(skip(reason, policy::no_recipient(d, channel, opted_out)));
    let calls = policy::call_window(d);
    let ready: Vec<Ready<'_>> = steps
        .iter()
        .map(|s| match s.channel() {
            Channel::Email => match (email_contact, passes(s)) {
                // Nobody to email: skipped as soon as it is due, even outside the window, so it
                // neither waits nor holds back (no flood) a call or text that can go now.
                (None, true) => nobody(no_contact_reason, Channel::Email),
                // Never outside the window, whatever the clock: a step whose window closed (the
                // scheduler was down, the plan was created late, or a simulated clock jumped
                // past it) waits for the next opening instead of going out at night or on a
                // weekend.
                _ if !window.contains(now, tz) => Ready::Wait(window.next_open(now, tz), "outside_send_window"),
                (Some(c), true) => Ready::Fire(c, c.timezone.as_deref().and_then(|z| parse_tz(z).ok()).unwrap_or(tz)),
                (_, false) => ineligible(s),
            },
            _ if !passes(s) => ineligible(s),
            channel => match policy::recipient(d, channel, opted_out) {
                None => nobody(NO_CONSENTED_CONTACT, channel),
                // Fence 4: no call or text when the contact's zone is unknown.
                Some(c) => match policy::call_zone(c) {
                    Err(e) => {
                        Ready::Fallback { reason: e.reason(), detail: format!("{e}; an email is planned instead") }
                    }
                    Ok(zone) if !calls.contains(now, zone) => {
                        Ready::Wait(calls.next_open(now, zone), "outside_call_window")
                    }
                    Ok(zone) => Ready::Fire(c, zone),
                },
            },
        })
        .collect();
    // No flood after downtime: only the latest step that will act does (of a policy step and a
    // broken-promise step due at the same time and offset, the firmer broken-promise one). A
    // latest step waiting for its own window (a text's 08:00 opening after the email window
    // closed) supersedes the older ones too: they would reach the client hours before it.
    let key = |s: &StepRow| (s.scheduled_for, s.offset_days, policy::is_broken_promise_step(&s.name));
    let latest = ready
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Ready::Fire(..) | Ready::Fallback { .. } | Ready::Wait(..)))
        .max_by_key(|(i, _)| steps.get(*i).map(key))
        .map(|(i, _)| i);
    // When the latest waits for its window, the others wait for the same instant, so that they
    // are decided together again (each step's own opening would let an older one out first).
    let latest_opens = latest.and_then(|l| match ready.get(l) {
        Some(Ready::Wait(to, _)) => Some(*to),
        _ => None,
    });
    let latest_waits = latest_opens.is_some();
    let superseded = |l: usize| skip("superseded", format!("superseded by {}", steps[l].name));
    steps
        .iter()
        .zip(ready)
        .enumerate()
        .map(|(i, (s, r))| match (r, latest) {
            (Ready::Skip(v), _) => v,
            // Waiting steps all move when the latest waits too (the opening decides again).
            (Ready::Wait(_, _), Some(l)) if !latest_waits && key(s) < key(&steps[l]) => superseded(l),
            (Ready::Wait(to, why), _) => Verdict::Move { to: latest_opens.unwrap_or(to), why },
            (Ready::Fire(..) | Ready::Fallback { .. }, Some(l)) if l != i => superseded(l),
            (Ready::Fire(contact, zone), _) => Verdict::Fire(Box::new(step_due(plan, d, s, contact, zone))),
            (Ready::Fallback { reason, detail }, _) => Verdict::Fallback {
                reason: reason.to_string(),
                detail,
                email: Box::new(policy::email_fallback(followed(s), d, &opted_out.email, now)),
            },
        })
        .collect()
}

/// The step as the base of its follow-ups (a retry carries its base step's id in `retry_of`
/// and the base's name with `_retry<n>` appended).
pub fn followed(s: &StepRow) -> Followed<'_> {
    let base_name = match s.retry_of {
        Some(_) => s.name.strip_suffix(&format!("_retry{}", s.attempt - 1)).unwrap_or(&s.name),
        None => &s.name,
    };
    Followed {
        base_name,
        base_id: s.retry_of.unwrap_or(s.step_id),
        tone: policy::parse_tone(&s.tone).unwrap_or(Tone::Friendly),
        pay_link: s.pay_link,
        attempt: u32::try_from(s.attempt).unwrap_or(1),
        max_attempts: u32::try_from(s.max_attempts).unwrap_or(1),
    }
}

/// The `StepDue` for `s`, to `contact`; `tz` is the zone its days overdue are counted in (the
/// contact's, for a call or text the call zone).
fn step_due(plan: &PlanRow, d: &EligibilityChanged, s: &StepRow, contact: &ContactSnapshot, tz: Tz) -> StepDue {
    StepDue {
        step_id: s.step_id,
        invoice_id: s.invoice_id,
        step: s.name.clone(),
        channel: s.channel(),
        tone: policy::parse_tone(&s.tone).unwrap_or(Tone::Friendly),
        pay_link: s.pay_link,
        scheduled_for: s.scheduled_for,
        contact: contact.clone(),
        invoice: d.invoice.clone(),
        client: d.client.clone(),
        firm: d.firm.clone(),
        days_overdue: d.invoice.due_date.map(|due| policy::days_overdue(s.scheduled_for, tz, due)).unwrap_or(0),
        explanation: Explanation {
            rule: format!("{DEFAULT_POLICY}/{}", s.name),
            policy_id: plan.policy_id.unwrap_or_default(),
            policy_version: plan.policy_version.unwrap_or(1),
            eligibility_version: d.version,
            checks: d.checks.clone(),
        },
        // The follow-up of a broken promise recalls it (its own template in the email service).
        after_broken_promise: policy::is_broken_promise_step(&s.name),
        promised_date: d
            .broken_promise
            .as_ref()
            .filter(|_| policy::is_broken_promise_step(&s.name))
            .and_then(|b| b.promised_date),
        attempt: u32::try_from(s.attempt).unwrap_or(1),
    }
}

/// `outreach.step_due.{email,voice,sms}.<firm>` by the step's channel.
fn step_due_message(
    plan: &PlanRow,
    due: StepDue,
    now: DateTime<Utc>,
    cause: Cause,
) -> Result<OutboxMessage, serde_json::Error> {
    let kind = match due.channel {
        Channel::Email => subjects::outreach::STEP_DUE_EMAIL,
        Channel::Voice => subjects::outreach::STEP_DUE_VOICE,
        Channel::Sms => subjects::outreach::STEP_DUE_SMS,
    };
    let id = msg_id::step(due.step_id, "due");
    OutboxMessage::new(
        subjects::subject(kind, plan.firm_id),
        id,
        outreach::envelope(kind, plan.firm_id, plan.invoice_id, now, cause, due),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_contracts::events::{Check, Tier};
    use arflow_core::SendWindow;
    use chrono::{NaiveDate, TimeZone};

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
    }

    fn plan() -> PlanRow {
        PlanRow {
            invoice_id: Uuid::now_v7(),
            firm_id: Uuid::now_v7(),
            policy_id: Some(Uuid::now_v7()),
            policy_version: Some(1),
            status: "active".into(),
            halt_reason: None,
            automation_status: "enabled".into(),
            decision_version: 3,
            decision: None,
            decision_event_id: None,
            correlation_id: None,
            due_date: None,
            plan_version: 1,
        }
    }

    fn decision(plan: &PlanRow) -> EligibilityChanged {
        let mut d = arflow_contracts::fixtures::decision(NaiveDate::from_ymd_opt(2026, 3, 9), "UTC", Tier::Standard);
        d.invoice_id = plan.invoice_id;
        d.invoice.invoice_id = plan.invoice_id;
        d.version = 3;
        d.checks = vec![Check { rule: "invoice_open".into(), passed: true, detail: String::new() }];
        d.evaluated_at = at(1, 0);
        d
    }

    fn step(plan: &PlanRow, name: &str, offset: i32, when: DateTime<Utc>) -> StepRow {
        StepRow {
            step_id: Uuid::now_v7(),
            invoice_id: plan.invoice_id,
            firm_id: plan.firm_id,
            name: name.into(),
            offset_days: offset,
            tone: "friendly".into(),
            pay_link: offset > 0,
            scheduled_for: when,
            state: "pending".into(),
            reason: None,
            detail: None,
            fired_at: None,
            channel: "email".into(),
            attempt: 1,
            max_attempts: 1,
            retry_of: None,
        }
    }

    fn steps(p: &PlanRow) -> Vec<StepRow> {
        vec![step(p, "pre_due", -7, at(2, 9)), step(p, "due_today", 0, at(9, 9)), step(p, "overdue_3", 3, at(12, 9))]
    }

    #[test]
    fn only_the_latest_due_step_fires() {
        let p = plan();
        let d = decision(&p);
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &OptOuts::default());
        assert!(
            matches!(&v[0], Verdict::Skip { reason, detail, .. } if reason == "superseded" && detail.contains("overdue_3"))
        );
        assert!(matches!(&v[1], Verdict::Skip { reason, .. } if reason == "superseded"));
        let Verdict::Fire(due) = &v[2] else { panic!("{v:?}") };
        assert_eq!(due.step, "overdue_3");
        assert_eq!(due.days_overdue, 3);
        assert_eq!(due.explanation.rule, "default-email/overdue_3");
        assert_eq!(due.explanation.eligibility_version, 3);
    }

    #[test]
    fn a_closed_window_with_the_system_clock_waits_for_the_next_opening() {
        let p = plan();
        let d = decision(&p);
        // Friday 13 March 20:00 UTC: outside 09-17; next opening Monday 16 March 09:00.
        let v = decide(&p, Some(&d), &steps(&p), at(13, 20), &OptOuts::default());
        assert!(v.iter().all(|x| *x == Verdict::Move { to: at(16, 9), why: "outside_send_window" }), "{v:?}");
        // Inside the window it fires.
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &OptOuts::default());
        assert!(matches!(v[2], Verdict::Fire(_)));
    }

    #[test]
    fn a_pause_moves_the_steps_and_a_halt_cancels_them() {
        let mut p = plan();
        let mut d = decision(&p);
        d.paused_until = Some(at(20, 12));
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &OptOuts::default());
        assert!(v.iter().all(|x| *x == Verdict::Move { to: at(20, 12), why: "paused" }), "{v:?}");
        p.status = HALTED.into();
        p.halt_reason = Some("invoice_halted: paid".into());
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &OptOuts::default());
        assert!(v.iter().all(
            |x| matches!(x, Verdict::Skip { state: "cancelled", reason, .. } if reason == "invoice_halted: paid")
        ));
    }

    #[test]
    fn ineligible_and_opted_out_steps_are_skipped_with_the_reason() {
        let p = plan();
        let mut d = decision(&p);
        d.eligible = false;
        d.checks.push(Check { rule: "not_disputed".into(), passed: false, detail: "disputed".into() });
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &OptOuts::default());
        assert!(v.iter().all(
            |x| matches!(x, Verdict::Skip { reason, detail, .. } if reason == "ineligible" && detail == "not_disputed")
        ));
        // Before the due date an overdue step needs past_due; a pre-due step does not.
        let d = decision(&p);
        let early = vec![step(&p, "pre_due", -7, at(2, 9)), step(&p, "overdue_3", 3, at(3, 9))];
        let v = decide(&p, Some(&d), &early, at(3, 10), &OptOuts::default());
        assert!(matches!(v[0], Verdict::Fire(_)), "{v:?}");
        assert!(
            matches!(&v[1], Verdict::Skip { reason, detail, .. } if reason == "ineligible" && detail == "past_due")
        );
        let out = OptOuts { email: d.contacts.iter().map(|c| c.contact_id).collect(), ..OptOuts::default() };
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &out);
        assert!(v.iter().all(|x| matches!(x, Verdict::Skip { reason, .. } if reason == "contact_opted_out")));
    }

    #[test]
    fn the_window_is_read_in_the_zone_of_the_contact_who_gets_the_email() {
        let p = plan();
        let mut d = decision(&p);
        let mut london = d.contacts[0].clone();
        london.contact_id = Uuid::now_v7();
        london.timezone = Some("Europe/London".into());
        let mut la = d.contacts[0].clone();
        la.contact_id = Uuid::now_v7();
        la.timezone = Some("America/Los_Angeles".into());
        d.contacts = vec![london.clone(), la];
        // Friday 13 March 10:00 UTC: inside London's window, 03:00 in Los Angeles.
        let out = OptOuts { email: [london.contact_id].into(), ..OptOuts::default() };
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &out);
        assert!(v.iter().all(|x| matches!(x, Verdict::Move { why: "outside_send_window", .. })), "{v:?}");
        // With London reachable, London's window applies and the step fires.
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &OptOuts::default());
        assert!(v.iter().any(|x| matches!(x, Verdict::Fire(_))), "{v:?}");
    }

    #[test]
    fn a_decision_still_holding_an_ended_pause_waits_for_the_next_one() {
        let p = plan();
        let mut d = decision(&p);
        d.paused_until = Some(at(13, 9));
        d.eligible = false;
        d.checks.push(Check { rule: NO_ACTIVE_PROMISE_OR_PLAN.into(), passed: false, detail: "paused".into() });
        let now = at(13, 10);
        let v = decide(&p, Some(&d), &steps(&p), now, &OptOuts::default());
        let held = Verdict::Move { to: now + AWAIT_DECISION, why: "awaiting_eligibility" };
        assert!(v.iter().all(|x| *x == held), "{v:?}");
        // The decision that follows the pause lets them go.
        d.paused_until = None;
        d.eligible = true;
        d.checks.pop();
        let v = decide(&p, Some(&d), &steps(&p), now, &OptOuts::default());
        assert!(matches!(v[2], Verdict::Fire(_)), "{v:?}");
    }

    #[test]
    fn a_broken_promise_step_wins_a_tie_with_a_policy_step() {
        let p = plan();
        let d = decision(&p);
        let mut broken = step(&p, "broken_promise_2026-03-20", 14, at(23, 9));
        broken.tone = "firm".into();
        let both = vec![step(&p, "overdue_7", 7, at(16, 9)), broken, step(&p, "overdue_14", 14, at(23, 9))];
        let v = decide(&p, Some(&d), &both, at(23, 10), &OptOuts::default());
        let Verdict::Fire(due) = &v[1] else { panic!("{v:?}") };
        assert_eq!((due.step.as_str(), due.tone, due.pay_link), ("broken_promise_2026-03-20", Tone::Firm, true));
        assert_eq!(due.days_overdue, 14);
        for i in [0, 2] {
            assert!(
                matches!(&v[i], Verdict::Skip { reason, detail, .. } if reason == "superseded" && detail.contains("broken_promise")),
                "{v:?}"
            );
        }
    }

    fn phone_contact(call_zone: Option<&str>) -> ContactSnapshot {
        ContactSnapshot {
            contact_id: Uuid::now_v7(),
            name: "Sam Payables".into(),
            email: None,
            phone: Some("+15125550100".into()),
            // The resolved zone falls back to the firm's; calls never read it.
            timezone: Some("UTC".into()),
            channels: vec![Channel::Voice, Channel::Sms],
            call_timezone: call_zone.map(Into::into),
        }
    }

    fn on(channel: Channel, mut s: StepRow) -> StepRow {
        s.channel = channel.as_str().into();
        if channel == Channel::Voice {
            s.max_attempts = 3;
        }
        s
    }

    /// A decision whose primary contact has email only and whose second has a phone in `zone`.
    fn phone_decision(p: &PlanRow, zone: Option<&str>) -> (EligibilityChanged, ContactSnapshot) {
        let mut d = decision(p);
        d.past_due = true;
        let phone = phone_contact(zone);
        d.contacts.push(phone.clone());
        (d, phone)
    }

    #[test]
    fn calls_and_texts_go_to_the_first_contact_with_that_channel_in_its_call_zone() {
        let p = plan();
        let (mut d, phone) = phone_decision(&p, Some("America/Chicago"));
        // Thursday 12 March 13:30 UTC: 08:30 in Chicago (CDT), 13:30 for the email contact (UTC).
        let now = Utc.with_ymd_and_hms(2026, 3, 12, 13, 30, 0).unwrap();
        let text = on(Channel::Sms, step(&p, "text_overdue_10", 10, now));
        let v = decide(&p, Some(&d), std::slice::from_ref(&text), now, &OptOuts::default());
        let Verdict::Fire(due) = &v[0] else { panic!("{v:?}") };
        assert_eq!((due.channel, due.attempt, due.contact.contact_id), (Channel::Sms, 1, phone.contact_id));
        let msg = step_due_message(&p, (**due).clone(), now, Cause::default()).unwrap();
        assert_eq!(msg.subject, format!("outreach.step_due.sms.{}", p.firm_id));
        // A retried call carries its attempt, and goes to the voice subject.
        let mut retry = on(Channel::Voice, step(&p, "call_overdue_21_retry1", 22, now));
        retry.attempt = 2;
        retry.retry_of = Some(Uuid::now_v7());
        let v = decide(&p, Some(&d), std::slice::from_ref(&retry), now, &OptOuts::default());
        let Verdict::Fire(due) = &v[0] else { panic!("{v:?}") };
        assert_eq!((due.channel, due.attempt, due.step.as_str()), (Channel::Voice, 2, "call_overdue_21_retry1"));
        let msg = step_due_message(&p, (**due).clone(), now, Cause::default()).unwrap();
        assert_eq!(msg.subject, format!("outreach.step_due.voice.{}", p.firm_id));
        // 07:30 in Chicago: the call waits for 08:00 there (an email would have gone out).
        let early = now - chrono::Duration::hours(1);
        let v = decide(&p, Some(&d), std::slice::from_ref(&retry), early, &OptOuts::default());
        assert_eq!(v[0], Verdict::Move { to: now - chrono::Duration::minutes(30), why: "outside_call_window" });
        // Opted out of calls (texts still allowed): the next contact with a phone and consent.
        let second = phone_contact(Some("America/New_York"));
        d.contacts.push(second.clone());
        let out = OptOuts { voice: [phone.contact_id].into(), ..OptOuts::default() };
        let v = decide(&p, Some(&d), std::slice::from_ref(&retry), now, &out);
        let Verdict::Fire(due) = &v[0] else { panic!("{v:?}") };
        assert_eq!(due.contact.contact_id, second.contact_id);
        let v = decide(&p, Some(&d), std::slice::from_ref(&text), now, &out);
        assert!(matches!(&v[0], Verdict::Fire(due) if due.contact.contact_id == phone.contact_id), "{v:?}");
        // Nobody left for calls: skipped, no fallback planned by the scheduler.
        let out = OptOuts::everywhere([phone.contact_id, second.contact_id].into());
        let v = decide(&p, Some(&d), std::slice::from_ref(&retry), now, &out);
        assert!(matches!(&v[0], Verdict::Skip { reason, .. } if reason == "no_consented_contact"), "{v:?}");
        // A contact without a phone number is no recipient either.
        let (mut d, _) = phone_decision(&p, Some("America/Chicago"));
        d.contacts[1].phone = None;
        let v = decide(&p, Some(&d), std::slice::from_ref(&text), now, &OptOuts::default());
        assert!(matches!(&v[0], Verdict::Skip { reason, .. } if reason == "no_consented_contact"), "{v:?}");
    }

    /// One contact with an email address and a phone in Chicago who agreed to email and calls;
    /// a hard bounce suppressed the email (eligibility drops it from the channels left, the
    /// scheduler has the opt-out of email).
    fn bounced_caller(p: &PlanRow) -> (EligibilityChanged, ContactSnapshot, OptOuts) {
        let mut d = decision(p);
        d.past_due = true;
        let mut k = phone_contact(Some("America/Chicago"));
        k.email = Some("ap@client.test".into());
        k.channels = vec![Channel::Voice];
        d.contacts = vec![k.clone()];
        let out = OptOuts { email: [k.contact_id].into(), ..OptOuts::default() };
        (d, k, out)
    }

    #[test]
    fn an_email_step_with_email_suppressed_everywhere_is_skipped_and_the_call_still_goes() {
        let p = plan();
        let (d, k, out) = bounced_caller(&p);
        // Thursday 12 March 20:00 UTC: the email window (the firm's zone: nobody to email) has
        // closed; 15:00 in Chicago, inside the call window.
        let now = at(12, 20);
        let call = on(Channel::Voice, step(&p, "call_overdue_21", 21, at(12, 13)));
        let email = step(&p, "overdue_30", 30, at(12, 19));
        let v = decide(&p, Some(&d), &[call.clone(), email.clone()], now, &out);
        // The email does not wait for its window (where it would supersede the call as the
        // latest step) but is skipped at once with the reason; the call goes.
        let Verdict::Fire(due) = &v[0] else { panic!("{v:?}") };
        assert_eq!((due.channel, due.contact.contact_id), (Channel::Voice, k.contact_id));
        let Verdict::Skip { state, reason, detail } = &v[1] else { panic!("{v:?}") };
        assert_eq!((*state, reason.as_str()), ("skipped", "contact_opted_out"));
        assert_eq!(
            detail,
            "no contact with email consent, an email address and no opt-out of email; channels left: voice"
        );
        // Alone, outside its window, the email step is skipped too, not moved.
        let v = decide(&p, Some(&d), std::slice::from_ref(&email), now, &out);
        assert!(matches!(&v[0], Verdict::Skip { reason, .. } if reason == "contact_opted_out"), "{v:?}");
        // A text has nobody either (no SMS consent); the detail says what is left.
        let text = on(Channel::Sms, step(&p, "text_overdue_10", 10, at(12, 13)));
        let v = decide(&p, Some(&d), std::slice::from_ref(&text), now, &out);
        let Verdict::Skip { reason, detail, .. } = &v[0] else { panic!("{v:?}") };
        assert_eq!(reason, "no_consented_contact");
        assert!(detail.ends_with("channels left: voice"), "{detail}");
        // An ineligible email step still waits for its window (eligibility may change by then).
        let mut stale = d.clone();
        stale.eligible = false;
        stale.checks.push(Check { rule: "not_disputed".into(), passed: false, detail: "disputed".into() });
        let v = decide(&p, Some(&stale), std::slice::from_ref(&email), now, &out);
        assert!(matches!(&v[0], Verdict::Move { why: "outside_send_window", .. }), "{v:?}");
    }

    #[test]
    fn an_unknown_call_zone_skips_the_call_and_plans_an_email() {
        let p = plan();
        // Monday 16 March 12:00 UTC (inside the email window of the UTC email contact).
        let now = at(16, 12);
        for zone in [None, Some(""), Some("Mars/Olympus_Mons")] {
            let (d, _) = phone_decision(&p, zone);
            let mut call = on(Channel::Voice, step(&p, "call_overdue_21", 21, now));
            call.tone = "firm".into();
            call.pay_link = false;
            let v = decide(&p, Some(&d), std::slice::from_ref(&call), now, &OptOuts::default());
            let Verdict::Fallback { reason, detail, email } = &v[0] else { panic!("{zone:?}: {v:?}") };
            assert_eq!(reason, "timezone_unknown");
            assert!(detail.contains("email"), "{detail}");
            assert_eq!(email.name, "call_overdue_21_email");
            assert_eq!((email.channel, email.tone, email.pay_link), (Channel::Email, Tone::Firm, true));
            assert_eq!((email.scheduled_for, email.retry_of), (now, Some(call.step_id)));
            // Outside the email window, the email waits for its opening.
            let v = decide(&p, Some(&d), std::slice::from_ref(&call), at(16, 20), &OptOuts::default());
            let Verdict::Fallback { email, .. } = &v[0] else { panic!("{v:?}") };
            assert_eq!(email.scheduled_for, at(17, 9));
        }
    }

    #[test]
    fn the_no_flood_rule_picks_among_the_steps_that_can_act_now() {
        let p = plan();
        // Tuesday 17 March 12:00 UTC: 07:00 in Chicago, the email window (UTC) is open.
        let now = at(17, 12);
        let (d, _) = phone_decision(&p, Some("America/Chicago"));
        let steps = vec![
            step(&p, "overdue_7", 7, at(16, 9)),
            on(Channel::Sms, step(&p, "text_overdue_10", 10, at(16, 13))),
            step(&p, "overdue_3_again", 3, at(16, 9)),
        ];
        // The text (the latest) is outside its window: it waits, and the older emails are
        // superseded now rather than reach the client an hour before it.
        let v = decide(&p, Some(&d), &steps, now, &OptOuts::default());
        assert!(
            matches!(&v[0], Verdict::Skip { reason, detail, .. } if reason == "superseded" && detail.contains("text_overdue_10")),
            "{v:?}"
        );
        assert_eq!(v[1], Verdict::Move { to: at(17, 13), why: "outside_call_window" });
        assert!(matches!(&v[2], Verdict::Skip { reason, .. } if reason == "superseded"), "{v:?}");
        // An hour later both windows are open: only the text goes, the email is superseded.
        let v = decide(&p, Some(&d), &steps, at(17, 13), &OptOuts::default());
        assert!(matches!(&v[1], Verdict::Fire(due) if due.step == "text_overdue_10"), "{v:?}");
        assert!(
            matches!(&v[0], Verdict::Skip { reason, detail, .. } if reason == "superseded" && detail.contains("text_overdue_10"))
        );
        // A call that is older than an email going out is superseded, even outside its window.
        let late = vec![
            on(Channel::Voice, step(&p, "call_overdue_21", 21, at(16, 13))),
            step(&p, "overdue_30", 30, at(17, 9)),
        ];
        let v = decide(&p, Some(&d), &late, now, &OptOuts::default());
        assert!(matches!(&v[0], Verdict::Skip { reason, .. } if reason == "superseded"), "{v:?}");
        assert!(matches!(&v[1], Verdict::Fire(_)), "{v:?}");
        // A call falling back to email is the latest that acts: it supersedes the older email,
        // so the client gets one email, not two.
        let (d, _) = phone_decision(&p, None);
        let late = vec![
            step(&p, "overdue_14", 14, at(16, 9)),
            on(Channel::Voice, step(&p, "call_overdue_21", 21, at(16, 13))),
        ];
        let v = decide(&p, Some(&d), &late, now, &OptOuts::default());
        assert!(
            matches!(&v[0], Verdict::Skip { reason, detail, .. } if reason == "superseded" && detail.contains("call_overdue_21")),
            "{v:?}"
        );
        assert!(matches!(&v[1], Verdict::Fallback { .. }), "{v:?}");
    }

    /// Fence 4 as a property: over every IANA zone, around every 2026 daylight-saving change
    /// (both hemispheres), a call or text is never decided outside 08:00-21:00 (Monday to
    /// Saturday) in the contact's call zone, a firm's narrower window is kept, a step outside the
    /// window moves to an instant inside it, and retries land inside it on a business day.
    #[test]
    fn calls_never_fire_outside_the_call_window_in_the_contacts_zone() {
        use chrono::{Datelike, Timelike};
        let p = plan();
        let edges = [(3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1)];
        let narrow =
            SendWindow { start_hour: 10, end_hour: 16, days: vec![chrono::Weekday::Tue, chrono::Weekday::Sat] };
        let mut fired = 0;
        for tz in chrono_tz::TZ_VARIANTS {
            let (mut d, _) = phone_decision(&p, Some(tz.name()));
            for (m, day) in edges {
                let edge = Utc.with_ymd_and_hms(2026, m, day, 0, 0, 0).unwrap();
                for half_hours in (-60..60).step_by(3) {
                    let now = edge + chrono::Duration::minutes(30 * half_hours);
                    for firm_window in [None, Some(narrow.clone())] {
                        d.firm.call_window = firm_window.clone();
                        let window = arflow_core::calls::window(firm_window.as_ref());
                        for channel in [Channel::Voice, Channel::Sms] {
                            let s = on(channel, step(&p, "call", 21, now));
                            let v = decide(&p, Some(&d), std::slice::from_ref(&s), now, &OptOuts::default());
                            match &v[0] {
                                Verdict::Fire(due) => {
                                    let local = now.with_timezone(&tz);
                                    assert!((8..21).contains(&local.hour()), "{} fired at {local}", tz.name());
                                    assert!(window.contains(now, tz), "{} fired at {local}", tz.name());
                                    assert_eq!(due.channel, channel);
                                    fired += 1;
                                }
                                Verdict::Move { to, why } => {
                                    assert_eq!(*why, "outside_call_window");
                                    assert!(*to > now && window.contains(*to, tz), "{} moved to {to}", tz.name());
                                    let again =
                                        decide(&p, Some(&d), std::slice::from_ref(&s), *to, &OptOuts::default());
                                    assert!(matches!(again[0], Verdict::Fire(_)), "{}: {again:?}", tz.name());
                                }
                                other => panic!("{}: {other:?}", tz.name()),
                            }
                        }
                        let retry = policy::next_business_day_opening(&window, now, tz);
                        let local = retry.with_timezone(&tz);
                        assert!(window.contains(retry, tz), "{} retry at {local}", tz.name());
                        assert!(
                            local.date_naive() > now.with_timezone(&tz).date_naive(),
                            "{} retry {local}",
                            tz.name()
                        );
                        if firm_window.is_none() {
                            assert!(local.weekday().number_from_monday() <= 5, "{} retry on {local}", tz.name());
                        }
                    }
                }
            }
        }
        assert!(fired > 10_000, "{fired}");
    }
}
