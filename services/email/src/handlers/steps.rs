//! `outreach.step_due.email.<firm>`: renders each step's email and records it in the
//! `emails` outbox under its step id, in the same transaction as the inbox (fence 3).
//! The sender picks it up after commit.
use crate::events;
use crate::mail::valid_address;
use crate::render::{self, Context};
use crate::store::{self, EmailRow, NewEmail, state};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::{StepDue, Tone};
use arflow_core::{Channel, Clock, mask};
use arflow_store::{Outbox, OutboxMessage, handler_error, inbox};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// The durable consumer's name (also its inbox key).
pub const DURABLE: &str = "email-steps";

pub struct StepsHandler {
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    /// Wakes the sender after commit.
    pub sender: Arc<Notify>,
    pub unsubscribe_base_url: String,
    pub unsubscribe_secret: SecretString,
}

/// What one message turned into.
enum Intake {
    Email(Box<NewEmail>),
    Reject(String),
}

impl StepsHandler {
    fn unsubscribe_url(&self, firm_id: uuid::Uuid, contact_id: uuid::Uuid) -> String {
        let token =
            arflow_runtime::signature::unsubscribe_token(self.unsubscribe_secret.expose_secret(), firm_id, contact_id);
        format!("{}/v1/unsubscribe/{token}", self.unsubscribe_base_url.trim_end_matches('/'))
    }

    /// Decodes and renders one step. Rendering problems become a `failed` email (the step is
    /// answered with `outreach.email.failed`); only an undecodable message is rejected.
    fn intake(&self, m: &Incoming) -> Intake {
        let step: StepDue = match m.envelope.data_as() {
            Ok(s) => s,
            Err(e) => return Intake::Reject(e.to_string()),
        };
        if step.channel != Channel::Email {
            return Intake::Reject(format!("step {} is for channel {}, not email", step.step_id, step.channel));
        }
        let firm_id = m.envelope.firm_id;
        let unsubscribe_url = self.unsubscribe_url(firm_id, step.contact.contact_id);
        let template = render::template_for_step(&step);
        let to_address = step.contact.email.clone().unwrap_or_default();
        let mut email = NewEmail {
            id: arflow_core::new_id(),
            step_id: step.step_id,
            firm_id,
            invoice_id: step.invoice_id,
            contact_id: step.contact.contact_id,
            client_id: step.client.client_id,
            step: step.step.clone(),
            tone: tone_name(step.tone).to_string(),
            cause_event_id: m.envelope.id,
            correlation_id: m.envelope.correlation_id,
            to_name: step.contact.name.clone(),
            to_address: to_address.clone(),
            from_name: step.firm.name.clone(),
            from_address: step.firm.sender_email.clone(),
            subject: String::new(),
            body_text: String::new(),
            body_html: String::new(),
            unsubscribe_url: unsubscribe_url.clone(),
            template: template.name.to_string(),
            template_version: template.version,
            explanation: step.explanation.clone(),
            reply_token: new_reply_token(),
            state: state::PENDING,
            last_error: None,
        };
        let problem = if to_address.is_empty() {
            Some("the contact has no email address".to_string())
        } else if !valid_address(&to_address) {
            Some(format!("the contact's email address {} is invalid", mask::email(&to_address)))
        } else if !valid_address(&step.firm.sender_email) {
            Some(format!("the firm's sender address {:?} is invalid", step.firm.sender_email))
        } else {
            match render::render(template, &Context::from_step(&step, unsubscribe_url)) {
                Ok(r) => {
                    email.subject = r.subject;
                    email.body_text = r.text;
                    email.body_html = r.html;
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        };
        if let Some(reason) = problem {
            tracing::error!(step_id = %step.step_id, %reason, "email cannot be prepared; the step fails");
            email.state = state::FAILED;
            email.last_error = Some(reason);
        }
        Intake::Email(Box::new(email))
    }
}

/// 64 random bits, hex: unguessable, so a forged reply cannot opt someone else out.
fn new_reply_token() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

fn tone_name(tone: Tone) -> &'static str {
    match tone {
        Tone::Friendly => "friendly",
        Tone::Firm => "firm",
        Tone::Final => "final",
    }
}

impl Handler for StepsHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(handler_error)?;
        let ids: Vec<uuid::Uuid> = batch.iter().map(|m| m.envelope.id).collect();
        let fresh = inbox::record_new(&mut tx, DURABLE, &ids).await.map_err(handler_error)?;
        let now = self.clock.now();
        let mut rejections = Vec::new();
        let mut failures: Vec<OutboxMessage> = Vec::new();
        let mut queued = 0usize;
        for (index, m) in batch.iter().enumerate() {
            if !fresh.contains(&m.envelope.id) {
                continue; // seen before: a redelivery
            }
            let span = m.span();
            let email = match span.in_scope(|| self.intake(m)) {
                Intake::Email(e) => e,
                Intake::Reject(reason) => {
                    span.in_scope(
                        || tracing::error!(%reason, subject = %m.subject, "undecodable step; dead-lettering"),
                    );
                    rejections.push(Rejection { index, reason });
                    continue;
                }
            };
            let inserted =
                store::insert_email(&mut tx, &email).instrument(span.clone()).await.map_err(handler_error)?;
            if !inserted {
                span.in_scope(|| tracing::info!(step_id = %email.step_id, "step already has its email; nothing to do"));
                continue;
            }
            if email.state == state::FAILED {
                let row = failed_row(&email);
                let reason = email.last_error.clone().unwrap_or_default();
                failures.push(events::failed(&row, &reason, true, now).map_err(handler_error)?);
            } else {
                queued += 1;
                span.in_scope(|| {
                    tracing::info!(step_id = %email.step_id, to = %mask::email(&email.to_address), template = %email.template, "email queued")
                });
            }
        }
        arflow_store::outbox::enqueue(&mut tx, &failures).await.map_err(handler_error)?;
        tx.commit().await.map_err(handler_error)?;
        if queued > 0 {
            self.sender.notify_one();
        }
        if !failures.is_empty() {
            self.outbox.notify();
        }
        Ok(rejections)
    }
}

/// The row view of an email that never reached the sender (for its `failed` event).
fn failed_row(e: &NewEmail) -> EmailRow {
    EmailRow {
        id: e.id,
        step_id: e.step_id,
        firm_id: e.firm_id,
        invoice_id: e.invoice_id,
        contact_id: e.contact_id,
        step: e.step.clone(),
        tone: e.tone.clone(),
        cause_event_id: e.cause_event_id,
        correlation_id: e.correlation_id,
        to_name: e.to_name.clone(),
        to_address: e.to_address.clone(),
        from_name: e.from_name.clone(),
        from_address: e.from_address.clone(),
        subject: e.subject.clone(),
        body_text: e.body_text.clone(),
        body_html: e.body_html.clone(),
        unsubscribe_url: e.unsubscribe_url.clone(),
        template: e.template.clone(),
        template_version: e.template_version,
        explanation: sqlx::types::Json(e.explanation.clone()),
        state: e.state.to_string(),
        attempts: 0,
        message_id: None,
        last_error: e.last_error.clone(),
        client_id: Some(e.client_id),
        reply_token: Some(e.reply_token.clone()),
    }
}
