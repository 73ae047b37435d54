//! `eligibility.changed.*`: create or re-plan the invoice's outreach plan from the firm's policy
//! (plus one firmer step when the decision carries a broken payment promise).
use super::{Apply, ApplyError, Context, Effects, same_firm};
use crate::outreach::{self, Cause};
use crate::policy;
use crate::store::{self, DecisionUpdate, HALTED};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{AutomationStatus, EligibilityChanged};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub struct EligibilityHandler {
    pub ctx: Context,
}

impl Handler for EligibilityHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        super::handle_batch(&self.ctx, self, batch).await
    }
}

impl Apply for EligibilityHandler {
    const CONSUMER: &'static str = "scheduler-eligibility";

    async fn apply(
        &self,
        conn: &mut PgConnection,
        m: &Incoming,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let d: EligibilityChanged = env.data_as().map_err(|e| ApplyError::Reject(e.to_string()))?;
        let raw = env.data.clone();
        let plan = store::lock_plan(conn, env.firm_id, d.invoice_id, now).await?;
        same_firm(plan.firm_id, env.firm_id)?;
        if plan.decision.is_some() && d.version <= plan.decision_version {
            tracing::info!(invoice_id = %d.invoice_id, version = d.version, latest = plan.decision_version, "older eligibility decision ignored");
            return Ok(());
        }
        let cause = Cause { correlation_id: Some(env.correlation_id), causation_id: Some(env.id) };
        let halted = plan.status == HALTED;
        // Eligibility may learn of a payment or write-off before (or instead of) our billing consumer.
        let halt = match d.automation_status {
            AutomationStatus::HaltedPaid => Some("invoice_halted: paid"),
            AutomationStatus::Uncollectible => Some("invoice_halted: uncollectible"),
            _ => None,
        };
        let policy = if halted || halt.is_some() {
            None
        } else if let Some(p) = fx.policies.get(&env.firm_id) {
            Some(p.clone())
        } else {
            let p = store::ensure_policy(conn, env.firm_id, now).await?;
            fx.policies.insert(env.firm_id, p.clone());
            Some(p)
        };
        store::save_decision(
            conn,
            DecisionUpdate {
                invoice_id: d.invoice_id,
                version: d.version,
                decision: &raw,
                event_id: env.id,
                correlation_id: env.correlation_id,
                due_date: d.invoice.due_date,
                automation_status: d.automation_status,
                policy: policy.as_ref(),
                now,
            },
        )
        .await?;
        if halted {
            // A halt is terminal: keep the decision for the record, plan nothing.
            return Ok(());
        }
        if let Some(reason) = halt {
            store::halt_plan(conn, d.invoice_id, reason, d.automation_status, now).await?;
            let detail = format!("eligibility decision v{}", d.version);
            for step in store::cancel_pending(conn, d.invoice_id, reason, &detail).await? {
                fx.messages.push(outreach::step_skipped(&step, reason, &detail, now, cause)?);
            }
            fx.touched.push((d.invoice_id, reason.to_string(), cause));
            return Ok(());
        }
        if let Some(policy) = &policy {
            let mut planned = policy::plan(policy, &d);
            // A broken payment promise: resume with a firmer step (one per promise, by name).
            if let Some(broken) = d.broken_promise.as_ref().filter(|b| b.paused_until <= now)
                && let Some(step) = policy::broken_promise_step(policy, &d, broken)
            {
                tracing::info!(invoice_id = %d.invoice_id, step = %step.name, at = %step.scheduled_for, "promise broken; firmer step planned");
                planned.push(step);
            }
            // A pause (payment promise or plan) holds the steps until its end, so `next` is honest.
            if let Some(until) = d.paused_until.filter(|u| *u > now) {
                let (window, tz) = policy::window_and_zone(&d, &std::collections::HashSet::new());
                let resume = window.next_open(until, tz);
                for step in planned.iter_mut().filter(|s| s.scheduled_for < resume) {
                    step.scheduled_for = resume;
                }
            }
            if planned.is_empty() {
                tracing::warn!(invoice_id = %d.invoice_id, "invoice has no due date; no steps planned");
            }
            let changed = store::upsert_steps(conn, env.firm_id, d.invoice_id, &planned).await?;
            tracing::debug!(invoice_id = %d.invoice_id, changed, "plan updated");
        }
        fx.touched.push((d.invoice_id, format!("eligibility_changed: v{}", d.version), cause));
        Ok(())
    }
}
