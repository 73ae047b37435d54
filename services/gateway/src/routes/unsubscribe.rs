//! One-click unsubscribe (RFC 8058): the contact hold is written FIRST (fence 2, the fastest
//! path), then `command.consent.opt_out` goes to the opt-out service (which owns consent: it
//! records the ledger entry and publishes `consent.opted_out`) and the activity is recorded.
//! Idempotent.
use super::ApiPath;
use crate::SERVICE;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{self, ActivityDetail, NewActivity};
use arflow_contracts::events::ConsentCommand;
use arflow_contracts::streams::contact_hold_key;
use arflow_contracts::subjects::{command, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_runtime::signature::verify_unsubscribe_token;
use arflow_store::OutboxMessage;
use axum::extract::State;
use axum::response::Html;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

fn verify(state: &AppState, token: &str) -> Result<(Uuid, Uuid), ApiError> {
    // Start-up refuses a gateway without the secret (`UnsubscribeSettings::validate`).
    let secret = state.unsubscribe.secret.expose_secret();
    if secret.is_empty() {
        return Err(ApiError::Unavailable("unsubscribe links are not configured on this gateway".into()));
    }
    verify_unsubscribe_token(secret, token)
        .map_err(|e| ApiError::BadToken(format!("this unsubscribe link is not valid: {e}")))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The confirmation page with a POST form (a GET never unsubscribes: mail scanners follow links).
#[utoipa::path(get, path = "/v1/unsubscribe/{token}", tag = "unsubscribe", params(("token" = String, Path)),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 400, body = crate::error::ProblemBody)))]
pub async fn page(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> Result<Html<String>, ApiError> {
    verify(&state, &token)?;
    let action = format!("{}/v1/unsubscribe/{}", state.config.public_base_url.trim_end_matches('/'), escape(&token));
    Ok(Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>\
         <body><h1>Stop payment reminders?</h1>\
         <p>Confirm to stop all reminders about your invoices from this sender, on every channel.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form></body></html>"
    )))
}

/// One-click (`List-Unsubscribe=One-Click`) or the form's POST.
#[utoipa::path(post, path = "/v1/unsubscribe/{token}", tag = "unsubscribe", params(("token" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "List-Unsubscribe=One-Click"),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 400, body = crate::error::ProblemBody), (status = 404, body = crate::error::ProblemBody)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Html<String>, ApiError> {
    let (firm_id, contact_id) = verify(&state, &token)?;
    let span = tracing::info_span!("unsubscribe", %firm_id, %contact_id);
    opt_out(state, firm_id, contact_id, token).instrument(span).await?;
    Ok(Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
         <body><h1>You are unsubscribed</h1><p>You will not receive further payment reminders from this sender.</p>\
         </body></html>"
            .to_string(),
    ))
}

async fn opt_out(state: AppState, firm_id: Uuid, contact_id: Uuid, token: String) -> Result<(), ApiError> {
    let token_hash = hex::encode(Sha256::digest(token.as_bytes()));
    let source = format!("unsubscribe:{token_hash}");
    let now = state.base.clock.now();
    // Fence 2: the hold first (the signed token is enough), so no send can claim the
    // contact after this moment, whatever happens next.
    let revision = state.base.bus.holds().hold(&contact_hold_key(contact_id), "opted_out", &source, now).await?;
    tracing::info!(revision, "contact hold written");
    let mut conn = state.base.pool.acquire().await?;
    let contact = store::contact(&mut conn, firm_id, contact_id).await?;
    drop(conn);
    let Some(contact) = contact else {
        tracing::warn!("unsubscribe for a contact the gateway does not know; hold written, no event");
        return Ok(());
    };

    let mut tx = state.base.pool.begin().await?;
    if !store::record_unsubscribe(&mut tx, &token_hash, firm_id, contact_id, now).await? {
        tracing::info!("repeated unsubscribe; already recorded");
        return Ok(());
    }
    let data = ConsentCommand {
        contact_id,
        channel: None,
        source: "unsubscribe_link".into(),
        actor: "client".into(),
        reason: format!("token sha256 {token_hash}, used at {}", now.to_rfc3339()),
        hold_revision: Some(revision),
    };
    let env = Envelope::new(command::CONSENT_OPT_OUT, SERVICE, now, firm_id, contact_id, None, data);
    let request_id = env.id;
    let msg = OutboxMessage::new(subject(command::CONSENT_OPT_OUT, firm_id), msg_id::command(request_id), env)?;
    for invoice_id in store::open_invoices_of_client(&mut tx, firm_id, contact.client_id).await? {
        store::add_activity(
            &mut tx,
            &NewActivity {
                firm_id,
                invoice_id,
                at: now,
                kind: "opted_out".into(),
                summary: format!("{} unsubscribed with the one-click link: no more outreach to them", contact.name),
                detail: ActivityDetail {
                    reason: Some("one_click_unsubscribe".into()),
                    hold_revision: Some(revision),
                    ..Default::default()
                },
                event_id: source.clone(),
            },
        )
        .await?;
    }
    arflow_store::outbox::enqueue(&mut tx, std::slice::from_ref(&msg)).await?;
    tx.commit().await?;
    state.base.outbox.notify();
    // Published now as well (same Nats-Msg-Id), so the command is on the stream when we answer.
    let bytes = serde_json::to_vec(&msg.payload)?;
    state.base.bus.publish(&msg.subject, &msg.msg_id, bytes.into()).await?;
    Ok(())
}
