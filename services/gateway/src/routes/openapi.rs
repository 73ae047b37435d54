//! The OpenAPI 3.1 document, generated from the handlers and wire types.
use super::{activity, backfill, firms, inbound, keys, records, replies, telephony, unsubscribe, webhooks};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "arflow gateway", description = "Firm API, Stripe, inbound email and telephony webhooks, unsubscribe, activity."),
    paths(
        firms::create_firm, firms::get_firm, firms::patch_firm,
        keys::list_api_keys, keys::create_api_key, keys::revoke_api_key, keys::rotate_api_key,
        keys::list_inbound_tokens, keys::create_inbound_token, keys::revoke_inbound_token, keys::audit_log,
        backfill::backfill,
        records::create_client, records::list_clients, records::get_client, records::patch_client,
        records::create_contact, records::patch_contact,
        records::list_invoices, records::get_invoice, records::patch_invoice,
        activity::invoice_activity, activity::portfolio, replies::list_replies,
        webhooks::stripe_webhook, inbound::email_inbound, telephony::callback,
        unsubscribe::page, unsubscribe::unsubscribe,
    ),
    components(schemas(crate::error::ProblemBody)),
    modifiers(&Security),
    tags((name = "firms"), (name = "keys"), (name = "records"), (name = "activity"), (name = "webhooks"), (name = "unsubscribe"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("operator", bearer());
        components.add_security_scheme("inbound_token", bearer());
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
