//! `outreach.voice.*.*` and `outreach.sms.*.*`: how a call or a text ended shapes what follows.
//!
//! - a call nobody answered (`no_answer`) or the provider could not place (`failed`), with
//!   attempts left: a retry at the call window's opening on the next business day, in the
//!   contact's call zone (`<base>_retry<n>`, attempt n + 1);
//! - the last attempt unanswered or failed, a voicemail, a call or text the channel service
//!   refused for a reason writing gets around (`email_may_follow`), a text that failed: one
//!   email in its place (`<base>_email`) at the email window's next opening;
//! - a completed call or a sent text: nothing more.
//!
//! Idempotent per event (the inbox) and per step name (`UNIQUE (invoice_id, name)`, inserted
//! with `DO NOTHING`). Outcomes of halted plans change nothing. The 7-in-7 call cap is the
//! voice service's (it refuses with `attempt_cap`, which falls back to email here).
//!
//! A call or text step does not exhaust the cadence when it fires (its outcome may still add a
//! step); its outcome does, when it leaves nothing pending and no later step has fired.
use super::{Apply, ApplyError, Context, Effects, same_firm};
use crate::outreach::{self, Cause};
use crate::policy::{self, PlannedStep};
use crate::store::{self, HALTED};
use crate::timer;
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{CallEnded, CallOutcome, ChannelStepSkipped, EligibilityChanged, SmsFailed, SmsSent};
use arflow_contracts::subjects::outreach as subj;
use arflow_core::Channel;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct OutcomeHandler {
    pub ctx: Context,
}

impl Handler for OutcomeHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        super::handle_batch(&self.ctx, self, batch).await
    }
}

/// One channel outcome, decoded by its subject.
#[derive(Debug)]
pub enum Outcome {
    Call(CallEnded),
    Skipped(ChannelStepSkipped),
    SmsSent(SmsSent),
    SmsFailed(SmsFailed),
}

/// What an outcome plans next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Call again on the next business day.
    Retry,
    /// One email instead.
    Email,
    Nothing,
}

impl Outcome {
    fn parse(m: &Incoming) -> Result<Self, ApplyError> {
        let is = |kind: &str| m.envelope.kind == kind || m.subject.starts_with(&format!("{kind}."));
        let env = &m.envelope;
        let bad = |e: arflow_contracts::envelope::EnvelopeError| ApplyError::Reject(e.to_string());
        if is(subj::VOICE_SKIPPED) || is(subj::SMS_SKIPPED) {
            Ok(Outcome::Skipped(env.data_as().map_err(bad)?))
        } else if is(subj::SMS_SENT) {
            Ok(Outcome::SmsSent(env.data_as().map_err(bad)?))
        } else if is(subj::SMS_FAILED) {
            Ok(Outcome::SmsFailed(env.data_as().map_err(bad)?))
        } else if CallOutcome::ALL.iter().any(|o| is(o.subject())) {
            Ok(Outcome::Call(env.data_as().map_err(bad)?))
        } else {
            Err(ApplyError::Reject(format!("unexpected event type {} on {}", env.kind, m.subject)))
        }
    }

    /// The step, invoice and contact it is about.
    pub fn ids(&self) -> (Uuid, Uuid, Uuid) {
        match self {
            Outcome::Call(c) => (c.step_id, c.invoice_id, c.contact_id),
            Outcome::Skipped(s) => (s.step_id, s.invoice_id, s.contact_id),
            Outcome::SmsSent(s) => (s.step_id, s.invoice_id, s.contact_id),
            Outcome::SmsFailed(s) => (s.step_id, s.invoice_id, s.contact_id),
        }
    }

    /// e.g. `voice_no_answer`, `sms_skipped: timezone_unknown`.
    pub fn label(&self) -> String {
        match self {
            Outcome::Call(c) => format!("voice_{}", c.outcome.as_str()),
            Outcome::Skipped(s) => format!("{}_skipped: {}", s.channel, s.reason),
            Outcome::SmsSent(_) => "sms_sent".into(),
            Outcome::SmsFailed(f) => format!("sms_failed: {}", f.reason),
        }
    }

    /// What follows, given the attempt that ended and how many the step allows.
    pub fn next(&self, attempt: u32, max_attempts: u32) -> Next {
        match self {
            Outcome::Call(c) => match c.outcome {
                CallOutcome::Completed => Next::Nothing,
                CallOutcome::NoAnswer | CallOutcome::Failed if attempt < max_attempts => Next::Retry,
                CallOutcome::NoAnswer | CallOutcome::Failed | CallOutcome::Voicemail => Next::Email,
            },
            // A hold (paid, opted out) stops every channel instead.
            Outcome::Skipped(s) if s.email_may_follow() => Next::Email,
            Outcome::Skipped(_) | Outcome::SmsSent(_) => Next::Nothing,
            // The link did not reach the phone: it goes by email.
            Outcome::SmsFailed(_) => Next::Email,
        }
    }

    /// Whether the outcome ends its step (a refusal for a hold does not end the cadence: the
    /// hold's own event halts it).
    fn ends_step(&self) -> bool {
        !matches!(self, Outcome::Skipped(s) if !s.email_may_follow())
    }
}

/// The follow-up step for `next`, if any: a retry in the call zone of the contact called (else
/// the one a call would reach now); without a usable zone, the email stands in.
pub fn follow_up(
    next: Next,
    step: &store::StepRow,
    d: &EligibilityChanged,
    contact_id: Uuid,
    opted_out: &policy::OptOuts,
    now: DateTime<Utc>,
) -> Option<PlannedStep> {
    let followed = timer::followed(step);
    let email = || policy::email_fallback(followed, d, &opted_out.email, now);
    match next {
        Next::Nothing => None,
        Next::Email => Some(email()),
        Next::Retry => {
            let contact = d
                .contacts
                .iter()
                .find(|c| c.contact_id == contact_id)
                .or_else(|| policy::recipient(d, Channel::Voice, opted_out));
            match contact.map(policy::call_zone) {
                Some(Ok(tz)) => Some(policy::call_retry(followed, d, tz, now)),
                _ => Some(email()),
            }
        }
    }
}

impl Apply for OutcomeHandler {
    const CONSUMER: &'static str = "scheduler-voice-outcomes";

    async fn apply(
        &self,
        conn: &mut PgConnection,
        m: &Incoming,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<(), ApplyError> {
        let env = &m.envelope;
        let outcome = Outcome::parse(m)?;
        let (step_id, invoice_id, contact_id) = outcome.ids();
        let Some(plan) = store::lock_existing_plan(conn, invoice_id).await? else {
            tracing::warn!(%invoice_id, %step_id, "outcome for an invoice without a plan; ignored");
            return Ok(());
        };
        same_firm(plan.firm_id, env.firm_id)?;
        if plan.status == HALTED {
            tracing::info!(%invoice_id, %step_id, outcome = %outcome.label(), "plan halted; outcome changes nothing");
            return Ok(());
        }
        let Some(step) = store::step(conn, step_id).await?.filter(|s| s.invoice_id == invoice_id) else {
            // Not a cadence step: the payment-link text the voice service sends when a caller
            // promises to pay. Nothing follows from it here.
            tracing::info!(%invoice_id, %step_id, outcome = %outcome.label(), "outcome of a step the scheduler did not plan; nothing to plan");
            return Ok(());
        };
        let decision: Option<EligibilityChanged> = match plan.decision.clone().map(serde_json::from_value) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                tracing::error!(%invoice_id, error = %e, "stored decision does not parse");
                None
            }
            None => None,
        };
        let Some(d) = decision else {
            tracing::warn!(%invoice_id, %step_id, "no decision to plan from; outcome recorded only");
            return Ok(());
        };
        let cause = Cause { correlation_id: Some(env.correlation_id), causation_id: Some(env.id) };
        let attempt = u32::try_from(step.attempt).unwrap_or(1);
        let next = outcome.next(attempt, u32::try_from(step.max_attempts).unwrap_or(1));
        let contacts: Vec<Uuid> = d.contacts.iter().map(|c| c.contact_id).collect();
        let opted_out = store::opted_out(conn, &contacts).await?;
        let label = outcome.label();
        if let Some(planned) = follow_up(next, &step, &d, contact_id, &opted_out, now) {
            let added = store::insert_followups(conn, plan.firm_id, invoice_id, std::slice::from_ref(&planned)).await?;
            if added > 0 {
                tracing::info!(%invoice_id, step = %step.name, outcome = %label, planned = %planned.name,
                    channel = %planned.channel, attempt = planned.attempt, at = %planned.scheduled_for, "follow-up planned");
                fx.touched.push((invoice_id, format!("{label}: {} planned", planned.name), cause));
            } else {
                tracing::debug!(%invoice_id, planned = %planned.name, "follow-up already planned");
            }
        } else {
            tracing::info!(%invoice_id, step = %step.name, outcome = %label, "nothing to follow up");
        }
        if outcome.ends_step()
            && step.state == "fired"
            && let Some(fired_at) = step.fired_at
        {
            let pending = store::next_pending(conn, &[invoice_id]).await?;
            if pending.is_empty() && !store::fired_since(conn, invoice_id, step.step_id, fired_at).await? {
                let steps_fired =
                    store::fired_counts(conn, &[invoice_id]).await?.get(&invoice_id).copied().unwrap_or(1);
                tracing::info!(%invoice_id, last_step = %step.name, steps_fired, "cadence exhausted");
                fx.messages.push(outreach::cadence_exhausted(&plan, &step, steps_fired, now, cause)?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arflow_contracts::events::{Explanation, ReplyIntent};

    fn call(outcome: CallOutcome) -> Outcome {
        let now = Utc::now();
        Outcome::Call(CallEnded {
            call_id: Uuid::now_v7(),
            step_id: Uuid::now_v7(),
            invoice_id: Uuid::now_v7(),
            contact_id: Uuid::now_v7(),
            client_id: Uuid::now_v7(),
            step: "call_overdue_21".into(),
            attempt: 1,
            outcome,
            provider_status: "completed".into(),
            answered_by: None,
            provider_call_sid: None,
            to: "+15125550100".into(),
            duration_secs: None,
            placed_at: now,
            ended_at: now,
            transcript: vec![],
            intents: Vec::<ReplyIntent>::new(),
            promised_date: None,
            recording_url: None,
            script: "call-firm@1".into(),
            detail: String::new(),
            explanation: Explanation {
                rule: "default-email/call_overdue_21".into(),
                policy_id: Uuid::now_v7(),
                policy_version: 1,
                eligibility_version: 1,
                checks: vec![],
            },
        })
    }

    fn skipped(channel: Channel, reason: &str) -> Outcome {
        Outcome::Skipped(ChannelStepSkipped {
            step_id: Uuid::now_v7(),
            invoice_id: Uuid::now_v7(),
            contact_id: Uuid::now_v7(),
            step: "text_overdue_10".into(),
            channel,
            attempt: 1,
            reason: reason.into(),
            detail: String::new(),
        })
    }

    #[test]
    fn what_each_outcome_plans_next() {
        use CallOutcome::*;
        for o in [NoAnswer, Failed] {
            assert_eq!(call(o).next(1, 3), Next::Retry, "{o:?}");
            assert_eq!(call(o).next(2, 3), Next::Retry, "{o:?}");
            assert_eq!(call(o).next(3, 3), Next::Email, "{o:?}");
            // A policy that allows one attempt falls back at once.
            assert_eq!(call(o).next(1, 1), Next::Email, "{o:?}");
        }
        assert_eq!(call(Voicemail).next(1, 3), Next::Email);
        assert_eq!(call(Completed).next(1, 3), Next::Nothing);
        for reason in ["timezone_unknown", "no_consent", "no_phone", "attempt_cap"] {
            for ch in [Channel::Voice, Channel::Sms] {
                assert_eq!(skipped(ch, reason).next(1, 3), Next::Email, "{reason}");
            }
        }
        // A hold stops every channel: nothing in writing either, and the cadence is not over.
        for reason in ["invoice_held", "contact_held"] {
            let o = skipped(Channel::Voice, reason);
            assert_eq!(o.next(1, 3), Next::Nothing, "{reason}");
            assert!(!o.ends_step());
        }
        assert_eq!(call(Voicemail).label(), "voice_voicemail");
        assert_eq!(skipped(Channel::Sms, "no_phone").label(), "sms_skipped: no_phone");
    }
}
