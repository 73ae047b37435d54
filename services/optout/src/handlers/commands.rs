//! `command.consent.{opt_out,opt_in}.>` from the gateway: the one-click unsubscribe link (its
//! hold already written), and firm users or imports going through the gateway.
use super::{Context, Request, process};
use crate::ledger::{Action, Source};
use arflow_bus::{Handler, HandlerError, Incoming, Rejection};
use arflow_contracts::events::ConsentCommand;
use arflow_contracts::subjects::command;
use std::sync::Arc;

/// The durable consumer's name (and its inbox key).
pub const CONSUMER: &str = "optout-commands";

pub struct CommandsHandler {
    ctx: Arc<Context>,
}

impl CommandsHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        CommandsHandler { ctx }
    }
}

impl Handler for CommandsHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Rejection>, HandlerError> {
        process(&self.ctx, CONSUMER, batch, decode).await
    }
}

pub fn decode(m: &Incoming) -> Result<Option<Request>, String> {
    let action = match m.envelope.kind.as_str() {
        command::CONSENT_OPT_OUT => Action::OptOut,
        command::CONSENT_OPT_IN => Action::OptIn,
        other => {
            tracing::debug!(kind = other, "not a consent command; skipped");
            return Ok(None);
        }
    };
    let c: ConsentCommand = m.envelope.data_as().map_err(|e| e.to_string())?;
    let source =
        Source::from_command(&c.source).ok_or_else(|| format!("unknown consent command source {}", c.source))?;
    if action == Action::OptIn && (source != Source::FirmUser || c.reason.trim().is_empty()) {
        return Err("an opt-in comes only from a firm user with a reason".into());
    }
    let evidence = match source {
        Source::UnsubscribeLink => format!("one-click unsubscribe link used ({})", c.reason),
        _ => c.reason.clone(),
    };
    Ok(Some(Request {
        contact_id: c.contact_id,
        client_id: None,
        channel: c.channel,
        action,
        source,
        actor: c.actor,
        evidence,
        already_held: c.hold_revision.is_some() && c.channel.is_none(),
    }))
}
