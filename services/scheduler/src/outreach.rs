//! The events the scheduler publishes, built as outbox rows (written in the caller's transaction).
use crate::SERVICE;
use crate::store::{self, PlanRow, StepRow};
use arflow_contracts::events::{CadenceExhausted, NextAction, PlanUpdated, StepSkipped};
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_store::OutboxMessage;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum OutreachError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<OutreachError> for arflow_bus::HandlerError {
    fn from(e: OutreachError) -> Self {
        arflow_store::handler_error(e)
    }
}

/// Where an event sits in its chain: the event that caused it and the chain's correlation id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause {
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
}

impl Cause {
    /// The chain of the plan's latest eligibility decision.
    pub fn of_plan(plan: &PlanRow) -> Self {
        Cause { correlation_id: plan.correlation_id, causation_id: plan.decision_event_id }
    }
}

/// An envelope about `invoice_id`, continuing `cause`'s chain when there is one.
pub fn envelope<T: Serialize>(
    kind: &str,
    firm_id: Uuid,
    invoice_id: Uuid,
    now: DateTime<Utc>,
    cause: Cause,
    data: T,
) -> Envelope<T> {
    let mut env = Envelope::new(kind, SERVICE, now, firm_id, invoice_id, None, data);
    if let Some(c) = cause.correlation_id {
        env.correlation_id = c;
    }
    env.causation_id = cause.causation_id;
    env
}

/// `outreach.step_skipped.<firm>` for a skipped or cancelled step.
pub fn step_skipped(
    step: &StepRow,
    reason: &str,
    detail: &str,
    now: DateTime<Utc>,
    cause: Cause,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = StepSkipped {
        step_id: step.step_id,
        invoice_id: step.invoice_id,
        step: step.name.clone(),
        scheduled_for: step.scheduled_for,
        reason: reason.to_string(),
        detail: detail.to_string(),
    };
    let kind = subjects::outreach::STEP_SKIPPED;
    OutboxMessage::new(
        subjects::subject(kind, step.firm_id),
        msg_id::step(step.step_id, "skipped"),
        envelope(kind, step.firm_id, step.invoice_id, now, cause, data),
    )
}

/// `outreach.cadence_exhausted.<firm>` after `step`, the last step of the plan, fired (an
/// email step), or ended (a call or text, once its outcome arrived and planned nothing more)
/// (`Nats-Msg-Id` `step:<id>:cadence_exhausted`: once per last step).
pub fn cadence_exhausted(
    plan: &PlanRow,
    step: &StepRow,
    steps_fired: i64,
    now: DateTime<Utc>,
    cause: Cause,
) -> Result<OutboxMessage, serde_json::Error> {
    let data = CadenceExhausted {
        invoice_id: plan.invoice_id,
        last_step: step.name.clone(),
        last_step_id: step.step_id,
        fired_at: now,
        steps_fired,
        policy_id: plan.policy_id.unwrap_or_default(),
        policy_version: plan.policy_version.unwrap_or_default(),
    };
    let kind = subjects::outreach::CADENCE_EXHAUSTED;
    OutboxMessage::new(
        subjects::subject(kind, plan.firm_id),
        msg_id::step(step.step_id, "cadence_exhausted"),
        envelope(kind, plan.firm_id, plan.invoice_id, now, cause, data),
    )
}

/// Bumps the plan version of every touched invoice and builds its `outreach.plan_updated.<firm>`:
/// automation status and the earliest pending step. `touched` keeps the last reason per invoice.
pub async fn plan_updates(
    conn: &mut PgConnection,
    touched: &[(Uuid, String, Cause)],
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, OutreachError> {
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let mut why: HashMap<Uuid, (&str, Cause)> = HashMap::new();
    for (id, reason, cause) in touched {
        why.insert(*id, (reason.as_str(), *cause));
    }
    let ids: Vec<Uuid> = why.keys().copied().collect();
    let next = store::next_pending(conn, &ids).await?;
    let mut plans = store::bump_plans(conn, &ids).await?;
    // Stable order keeps the outbox (and so the stream) deterministic for a batch.
    plans.sort_by_key(|p| p.invoice_id);
    let kind = subjects::outreach::PLAN_UPDATED;
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        let (reason, cause) = why.get(&plan.invoice_id).copied().unwrap_or(("updated", Cause::of_plan(&plan)));
        let data = PlanUpdated {
            invoice_id: plan.invoice_id,
            automation_status: store::parse_status(&plan.automation_status),
            next: next.get(&plan.invoice_id).map(|n| NextAction { step: n.name.clone(), channel: n.channel, at: n.at }),
            reason: reason.to_string(),
            version: plan.plan_version,
        };
        out.push(OutboxMessage::new(
            subjects::subject(kind, plan.firm_id),
            msg_id::plan(plan.invoice_id, plan.plan_version),
            envelope(kind, plan.firm_id, plan.invoice_id, now, cause, data),
        )?);
    }
    Ok(out)
}
