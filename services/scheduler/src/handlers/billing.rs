//! `billing.invoice_paid.*`, `billing.invoice_voided.*`, `billing.invoice_uncollectible.*`:
//! cancel every pending step of the invoice at once and halt its plan.
use super::{Apply, ApplyError, Context, Effects, same_firm};
use crate::outreach::{self, Cause};
use crate::store::{self, HALTED};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{AutomationStatus, HaltReason, InvoiceHalted};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub struct BillingHandler {
    pub ctx: Context,
}

impl Handler for BillingHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        super::handle_batch(&self.ctx, self, batch).await
    }
}

/// `paid`, `voided` or `uncollectible`, and the automation status it leaves.
pub fn halt_kind(reason: HaltReason) -> (&'static str, AutomationStatus) {
    match reason {
        HaltReason::Paid | HaltReason::PaymentSucceeded | HaltReason::PaidOutOfBand => {
            ("paid", AutomationStatus::HaltedPaid)
        }
        // There is no `voided` automation status: a void invoice is as closed as a written-off one.
        HaltReason::Voided => ("voided", AutomationStatus::Uncollectible),
        HaltReason::Uncollectible => ("uncollectible", AutomationStatus::Uncollectible),
    }
}

impl Apply for BillingHandler {
    const CONSUMER: &'static str = "scheduler-billing";

    async fn apply(
        &self,
        conn: &mut PgConnection,
        m: &Incoming,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let h: InvoiceHalted = env.data_as().map_err(|e| ApplyError::Reject(e.to_string()))?;
        let plan = store::lock_plan(conn, env.firm_id, h.invoice_id, now).await?;
        same_firm(plan.firm_id, env.firm_id)?;
        if plan.status == HALTED {
            tracing::debug!(invoice_id = %h.invoice_id, "plan already halted");
            return Ok(());
        }
        let (kind, status) = halt_kind(h.reason);
        let reason = format!("invoice_halted: {kind}");
        let detail = format!("Stripe event {}", h.stripe_event_id);
        store::halt_plan(conn, h.invoice_id, &reason, status, now).await?;
        let cause = Cause { correlation_id: Some(env.correlation_id), causation_id: Some(env.id) };
        let cancelled = store::cancel_pending(conn, h.invoice_id, &reason, &detail).await?;
        tracing::info!(invoice_id = %h.invoice_id, cancelled = cancelled.len(), %reason, "outreach halted");
        for step in &cancelled {
            fx.messages.push(outreach::step_skipped(step, &reason, &detail, now, cause)?);
        }
        fx.touched.push((h.invoice_id, reason, cause));
        Ok(())
    }
}
