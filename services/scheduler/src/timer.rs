//! The durable timers: pending steps in PostgreSQL, fired when the clock reaches them.
//!
//! Nothing is held in memory: each pass selects what is due, decides it, and commits the
//! outcome and its events in one transaction per batch, so a restart loses nothing and
//! replicas never fire the same step (`FOR UPDATE SKIP LOCKED` on the plans).
use crate::config::SchedulerSettings;
use crate::handlers::Context;
use crate::outreach::{self, Cause, OutreachError};
use crate::policy::{self, DEFAULT_POLICY};
use crate::store::{self, HALTED, PlanRow, StepChange, StepRow};
use arflow_contracts::events::{ContactSnapshot, EligibilityChanged, Explanation, StepDue, Tone};
use arflow_contracts::{msg_id, subjects};
use arflow_core::{Channel, window::parse_tz};
use arflow_runtime::{Metrics, Shutdown};
use arflow_store::{OutboxMessage, outbox};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// The eligibility rule a pause fails (`paused_until`).
const NO_ACTIVE_PROMISE_OR_PLAN: &str = "no_active_promise_or_plan";

/// How long steps wait for the decision that follows the end of a pause before looking again.
const AWAIT_DECISION: chrono::Duration = chrono::Duration::minutes(1);

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
        let opted_out = store::opted_out(&mut tx, &contacts, Channel::Email.as_str()).await?;
        let mut pass = Pass { invoices: plans.len(), ..Pass::default() };
        let mut changes = Vec::new();
        let mut messages = Vec::new();
        let mut touched = Vec::new();
        // The last step fired per invoice this pass: if nothing is pending after it, the cadence is done.
        let mut fired_last: HashMap<Uuid, (&PlanRow, StepRow)> = HashMap::new();
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
                        messages.push(step_due_message(plan, *due, now, cause)?);
                        fired_last.insert(plan.invoice_id, (plan, step.clone()));
                        pass.fired += 1;
                    }
                    Verdict::Skip { state, reason: why, detail } => {
                        tracing::debug!(step = %step.name, step_id = %step.step_id, reason = %why, %detail, "step skipped");
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
        messages.extend(cadence_exhausted(&mut tx, &fired_last, now).await?);
        messages.extend(outreach::plan_updates(&mut tx, &touched, now).await?);
        outbox::enqueue(&mut tx, &messages).await?;
        tx.commit().await?;
        self.ctx.outbox.notify();
        self.metrics.count("steps_fired", pass.fired as u64);
        self.metrics.count("steps_skipped", pass.skipped as u64);
        self.metrics.count("steps_moved", pass.moved as u64);
        Ok(pass)
    }
}

/// `outreach.cadence_exhausted` for every invoice whose step fired this pass with nothing left
/// pending: the cadence ran its course and the invoice is still open (a fired step means it was
/// eligible), so the escalation service opens a case for a person.
async fn cadence_exhausted(
    conn: &mut sqlx::PgConnection,
    fired_last: &HashMap<Uuid, (&PlanRow, StepRow)>,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, OutreachError> {
    if fired_last.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = fired_last.keys().copied().collect();
    let pending = store::next_pending(conn, &ids).await?;
    let done: Vec<Uuid> = ids.into_iter().filter(|id| !pending.contains_key(id)).collect();
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let counts = store::fired_counts(conn, &done).await?;
    let mut out = Vec::with_capacity(done.len());
    for id in done {
        let Some((plan, step)) = fired_last.get(&id) else { continue };
        let steps_fired = counts.get(&id).copied().unwrap_or(1);
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
    /// Not now: the step stays pending at `to`.
    Move {
        to: DateTime<Utc>,
        why: &'static str,
    },
}

fn skip(reason: &str, detail: impl Into<String>) -> Verdict {
    Verdict::Skip { state: "skipped", reason: reason.to_string(), detail: detail.into() }
}

/// Decides every due step of one invoice (`steps` in scheduled order); one verdict per step.
pub fn decide(
    plan: &PlanRow,
    decision: Option<&EligibilityChanged>,
    steps: &[StepRow],
    now: DateTime<Utc>,
    opted_out: &HashSet<Uuid>,
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
    let (window, tz) = policy::window_and_zone(d, opted_out);
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
    // Never outside the window, whatever the clock: a step whose window closed (the scheduler
    // was down, the plan was created late, or a simulated clock jumped past it) waits for the
    // next opening instead of going out at night or on a weekend.
    if !window.contains(now, tz) {
        let to = window.next_open(now, tz);
        return steps.iter().map(|_| Verdict::Move { to, why: "outside_send_window" }).collect();
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
    // No flood after downtime: only the latest due step goes out (of a policy step and a
    // broken-promise step due at the same time and offset, the firmer broken-promise one).
    let latest = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| passes(s))
        .max_by_key(|(_, s)| (s.scheduled_for, s.offset_days, policy::is_broken_promise_step(&s.name)))
        .map(|(i, _)| i);
    let contact = policy::email_recipient(d, opted_out);
    let no_contact_reason = if d.contacts.iter().any(|c| opted_out.contains(&c.contact_id)) {
        "contact_opted_out"
    } else {
        "no_usable_contact"
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if !passes(s) {
                return skip("ineligible", failed(s.offset_days > 0));
            }
            let Some(contact) = contact else {
                return skip(no_contact_reason, "no contact with email consent who has not opted out");
            };
            match latest {
                Some(l) if l == i => Verdict::Fire(Box::new(step_due(plan, d, s, contact, tz))),
                Some(l) => skip("superseded", format!("superseded by {}", steps[l].name)),
                None => skip("ineligible", failed(s.offset_days > 0)),
            }
        })
        .collect()
}

fn step_due(
    plan: &PlanRow,
    d: &EligibilityChanged,
    s: &StepRow,
    contact: &ContactSnapshot,
    fallback_tz: chrono_tz::Tz,
) -> StepDue {
    let tz = contact.timezone.as_deref().and_then(|z| parse_tz(z).ok()).unwrap_or(fallback_tz);
    StepDue {
        step_id: s.step_id,
        invoice_id: s.invoice_id,
        step: s.name.clone(),
        channel: Channel::Email,
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
        attempt: 1,
    }
}

fn step_due_message(
    plan: &PlanRow,
    due: StepDue,
    now: DateTime<Utc>,
    cause: Cause,
) -> Result<OutboxMessage, serde_json::Error> {
    let kind = subjects::outreach::STEP_DUE_EMAIL;
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
        }
    }

    fn steps(p: &PlanRow) -> Vec<StepRow> {
        vec![step(p, "pre_due", -7, at(2, 9)), step(p, "due_today", 0, at(9, 9)), step(p, "overdue_3", 3, at(12, 9))]
    }

    #[test]
    fn only_the_latest_due_step_fires() {
        let p = plan();
        let d = decision(&p);
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &HashSet::new());
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
        let v = decide(&p, Some(&d), &steps(&p), at(13, 20), &HashSet::new());
        assert!(v.iter().all(|x| *x == Verdict::Move { to: at(16, 9), why: "outside_send_window" }), "{v:?}");
        // Inside the window it fires.
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &HashSet::new());
        assert!(matches!(v[2], Verdict::Fire(_)));
    }

    #[test]
    fn a_pause_moves_the_steps_and_a_halt_cancels_them() {
        let mut p = plan();
        let mut d = decision(&p);
        d.paused_until = Some(at(20, 12));
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &HashSet::new());
        assert!(v.iter().all(|x| *x == Verdict::Move { to: at(20, 12), why: "paused" }), "{v:?}");
        p.status = HALTED.into();
        p.halt_reason = Some("invoice_halted: paid".into());
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &HashSet::new());
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
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &HashSet::new());
        assert!(v.iter().all(
            |x| matches!(x, Verdict::Skip { reason, detail, .. } if reason == "ineligible" && detail == "not_disputed")
        ));
        // Before the due date an overdue step needs past_due; a pre-due step does not.
        let d = decision(&p);
        let early = vec![step(&p, "pre_due", -7, at(2, 9)), step(&p, "overdue_3", 3, at(3, 9))];
        let v = decide(&p, Some(&d), &early, at(3, 10), &HashSet::new());
        assert!(matches!(v[0], Verdict::Fire(_)), "{v:?}");
        assert!(
            matches!(&v[1], Verdict::Skip { reason, detail, .. } if reason == "ineligible" && detail == "past_due")
        );
        let out: HashSet<Uuid> = d.contacts.iter().map(|c| c.contact_id).collect();
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
        let out: HashSet<Uuid> = [london.contact_id].into();
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &out);
        assert!(v.iter().all(|x| matches!(x, Verdict::Move { why: "outside_send_window", .. })), "{v:?}");
        // With London reachable, London's window applies and the step fires.
        let v = decide(&p, Some(&d), &steps(&p), at(13, 10), &HashSet::new());
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
        let v = decide(&p, Some(&d), &steps(&p), now, &HashSet::new());
        let held = Verdict::Move { to: now + AWAIT_DECISION, why: "awaiting_eligibility" };
        assert!(v.iter().all(|x| *x == held), "{v:?}");
        // The decision that follows the pause lets them go.
        d.paused_until = None;
        d.eligible = true;
        d.checks.pop();
        let v = decide(&p, Some(&d), &steps(&p), now, &HashSet::new());
        assert!(matches!(v[2], Verdict::Fire(_)), "{v:?}");
    }

    #[test]
    fn a_broken_promise_step_wins_a_tie_with_a_policy_step() {
        let p = plan();
        let d = decision(&p);
        let mut broken = step(&p, "broken_promise_2026-03-20", 14, at(23, 9));
        broken.tone = "firm".into();
        let both = vec![step(&p, "overdue_7", 7, at(16, 9)), broken, step(&p, "overdue_14", 14, at(23, 9))];
        let v = decide(&p, Some(&d), &both, at(23, 10), &HashSet::new());
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
}
