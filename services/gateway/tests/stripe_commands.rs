//! `command.stripe.mark_uncollectible` from the escalation service: the gateway calls Stripe
//! (the simulator) with the firm's key and ingests the answer, or reports Stripe's refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

use arflow_bus::HoldValue;
use arflow_contracts::events::{InvoiceHalted, MarkUncollectible, StripeCommandFailed};
use arflow_contracts::streams::invoice_hold_key;
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_testkit::stripe::{StripeSim, event, invoice};
use serde_json::Value;
use support::{SECRET, eventually, spawn_app_with};
use uuid::Uuid;

const DUE: i64 = 1_767_225_600; // 2026-01-01

async fn command(app: &support::TestApp, firm: Uuid, invoice_id: Uuid, stripe_id: &str) -> Uuid {
    let request_id = Uuid::now_v7();
    let data = MarkUncollectible {
        request_id,
        case_id: Uuid::now_v7(),
        invoice_id,
        stripe_invoice_id: stripe_id.into(),
        actor: "pat@acme.test".into(),
        note: "the agency gave up".into(),
    };
    let kind = subjects::command::STRIPE_MARK_UNCOLLECTIBLE;
    let env = Envelope::new(kind, "escalation", chrono::Utc::now(), firm, invoice_id, None, data);
    app.bus.publish_event(&subjects::subject(kind, firm), &msg_id::command(request_id), &env).await.unwrap();
    request_id
}

#[tokio::test]
async fn mark_uncollectible_reaches_stripe_and_a_refusal_is_reported() {
    let sim = StripeSim::start().await;
    let base = sim.base_url();
    let app = spawn_app_with(|c| c.gateway.stripe_api_base = base).await;
    let firm = app.create_firm(&[SECRET]).await;
    let mut ids = vec![];
    for id in ["in_unc", "in_paid"] {
        let object = invoice(id, "cus_u", "INV-U", 50_000, "usd", DUE, "open");
        let r = app.deliver(firm.id, SECRET, &event(&format!("evt_{id}"), "invoice.finalized", 1, object)).await;
        let ack: Value = r.json().await.unwrap();
        ids.push(ack["invoice_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    sim.add_invoice(invoice("in_unc", "cus_u", "INV-U", 50_000, "usd", DUE, "open"));
    // Stripe has the second paid already: it refuses to mark it.
    sim.add_invoice(invoice("in_paid", "cus_u", "INV-U", 50_000, "usd", DUE, "paid"));

    command(&app, firm.id, ids[0], "in_unc").await;
    let hold = eventually("the invoice is held", || async {
        app.bus.holds().get(&invoice_hold_key(ids[0])).await.unwrap().map(|(v, _)| v)
    })
    .await;
    assert!(matches!(hold, HoldValue::Held { .. }), "{hold:?}");
    assert!(sim.requests().iter().any(|r| r == "POST /v1/invoices/in_unc/mark_uncollectible"));
    assert_eq!(sim.invoice("in_unc").unwrap()["status"], "uncollectible");
    let halted = eventually("billing.invoice_uncollectible is published", || async {
        app.stream("BILLING")
            .await
            .into_iter()
            .find(|(s, _)| s.starts_with(&format!("{}.", subjects::billing::INVOICE_UNCOLLECTIBLE)))
    })
    .await;
    let h: InvoiceHalted = halted.1.data_as().unwrap();
    assert_eq!((h.invoice_id, h.stripe_invoice_id.as_str()), (ids[0], "in_unc"));

    let refused_request = command(&app, firm.id, ids[1], "in_paid").await;
    let failed = eventually("billing.stripe_command_failed is published", || async {
        app.stream("BILLING")
            .await
            .into_iter()
            .find(|(s, _)| s.starts_with(&format!("{}.", subjects::billing::STRIPE_COMMAND_FAILED)))
    })
    .await;
    let f: StripeCommandFailed = failed.1.data_as().unwrap();
    assert_eq!((f.request_id, f.invoice_id, f.status), (refused_request, ids[1], Some(400)));
    assert!(f.message.contains("only mark an open invoice"), "{}", f.message);
    assert!(app.bus.holds().get(&invoice_hold_key(ids[1])).await.unwrap().is_none());
}
