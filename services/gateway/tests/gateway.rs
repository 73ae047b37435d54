//! The gateway on the real stack: nats-server + PostgreSQL + the Application in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

use arflow_bus::HoldValue;
use arflow_contracts::streams::{contact_hold_key, invoice_hold_key};
use arflow_testkit::stripe::{StripeSim, customer, event, invoice, signed_webhook, signed_webhook_at};
use serde_json::{Value, json};
use support::{SECRET, eventually, spawn_app, spawn_app_with};
use uuid::Uuid;

const DUE: i64 = 1_767_225_600; // 2026-01-01

fn open_invoice(id: &str, cus: &str, amount: i64) -> Value {
    invoice(id, cus, "INV-0001", amount, "usd", DUE, "open")
}

async fn problem(r: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert!(body["type"].as_str().unwrap().ends_with(kind), "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

#[tokio::test]
async fn webhook_signatures_are_checked_and_failures_record_nothing() {
    let app = spawn_app().await;
    let firm = app.create_firm(&["whsec_old", SECRET]).await;
    let evt = event("evt_sig", "invoice.created", 1_000, open_invoice("in_sig", "cus_sig", 5_000));

    // Bad signature, missing header, stale timestamp, malformed body, unknown firm.
    let (_, body) = signed_webhook("whsec_wrong", &evt);
    let (bad_sig, _) = signed_webhook("whsec_wrong", &evt);
    problem(app.post_webhook(&firm.id.to_string(), Some(&bad_sig), body.clone()).await, 400, "invalid-signature").await;
    problem(app.post_webhook(&firm.id.to_string(), None, body.clone()).await, 400, "invalid-signature").await;
    let (stale, stale_body) = signed_webhook_at(SECRET, &evt, chrono::Utc::now().timestamp() - 301);
    problem(app.post_webhook(&firm.id.to_string(), Some(&stale), stale_body).await, 400, "stale-timestamp").await;
    let junk = b"not json".to_vec();
    let sig = arflow_runtime::signature::stripe_signature_header(SECRET, &junk, chrono::Utc::now().timestamp());
    problem(app.post_webhook(&firm.id.to_string(), Some(&sig), junk).await, 400, "malformed-payload").await;
    let not_event = serde_json::to_vec(&json!({"hello": "world"})).unwrap();
    let sig = arflow_runtime::signature::stripe_signature_header(SECRET, &not_event, chrono::Utc::now().timestamp());
    problem(app.post_webhook(&firm.id.to_string(), Some(&sig), not_event).await, 400, "malformed-payload").await;
    problem(app.deliver(Uuid::now_v7(), SECRET, &evt).await, 404, "unknown-firm").await;
    problem(app.post_webhook("not-a-uuid", Some(&bad_sig), body).await, 404, "unknown-firm").await;

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.webhook_events().await, 0);
    assert!(app.billing_record_subjects().await.is_empty());

    // The current secret and the rotated (old) one both work.
    let r = app.deliver(firm.id, SECRET, &evt).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let evt2 = event("evt_sig2", "customer.created", 1_001, customer("cus_sig", "Globex", "ap@globex.test"));
    assert_eq!(app.deliver(firm.id, "whsec_old", &evt2).await.status(), 200);
    assert_eq!(app.webhook_events().await, 2);
    // Unknown types are recorded and ignored.
    let other = event("evt_other", "charge.refunded", 1_002, json!({"id": "ch_1"}));
    let body: Value = app.deliver(firm.id, SECRET, &other).await.json().await.unwrap();
    assert_eq!(body["ignored"], true);
    assert_eq!(app.webhook_events().await, 3);
}

#[tokio::test]
async fn a_payment_delivered_three_times_halts_once_and_the_hold_is_there_first() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let created = event("evt_c", "invoice.created", 1_000, open_invoice("in_1", "cus_1", 320_000));
    assert_eq!(app.deliver(firm.id, SECRET, &created).await.status(), 200);
    let mut paid_obj = invoice("in_1", "cus_1", "INV-0001", 320_000, "usd", DUE, "paid");
    paid_obj["amount_remaining"] = json!(0);
    let paid = event("evt_paid", "invoice.paid", 2_000, paid_obj);

    let first: Value = app.deliver(firm.id, SECRET, &paid).await.json().await.unwrap();
    let invoice_id: Uuid = first["invoice_id"].as_str().unwrap().parse().unwrap();
    // Read right after the 200: the hold is already in the bucket, and the halt on the stream.
    let (hold, revision) = app.bus.holds().get(&invoice_hold_key(invoice_id)).await.unwrap().expect("hold");
    assert!(matches!(hold, HoldValue::Held { ref reason, ref source_event, .. }
        if reason == "paid" && source_event == "stripe:evt_paid"));
    let halts: Vec<_> =
        app.stream("BILLING").await.into_iter().filter(|(s, _)| s.starts_with("billing.invoice_paid.")).collect();
    assert_eq!(halts.len(), 1);
    assert_eq!(halts[0].0, format!("billing.invoice_paid.{}", firm.id));
    assert_eq!(halts[0].1.data["hold_revision"], revision);
    assert_eq!(halts[0].1.data["reason"], "paid");

    for _ in 0..2 {
        let again: Value = app.deliver(firm.id, SECRET, &paid).await.json().await.unwrap();
        assert_eq!(again["duplicate"], true);
    }
    app.outbox_drained().await;
    let halts = app.stream("BILLING").await.into_iter().filter(|(s, _)| s.starts_with("billing.invoice_paid.")).count();
    assert_eq!(halts, 1, "one halt event on the stream");
    assert_eq!(app.webhook_events().await, 2);
    let (_, rev_after) = app.bus.holds().get(&invoice_hold_key(invoice_id)).await.unwrap().unwrap();
    assert_eq!(rev_after, revision, "a duplicate re-does nothing");

    let inv: Value = app.get(&firm.key, &format!("/v1/invoices/{invoice_id}")).await.json().await.unwrap();
    assert_eq!(inv["status"], "paid");
    assert_eq!(inv["amount_remaining"], "0.00");
    let activity: Value =
        app.get(&firm.key, &format!("/v1/invoices/{invoice_id}/activity")).await.json().await.unwrap();
    let kinds: Vec<&str> =
        activity["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["invoice_created", "halted"]);
    assert_eq!(activity["history"][1]["hold_revision"], revision);
    assert_eq!(activity["automation_status"], "halted_paid");
}

async fn invoice_state(app: &support::TestApp, key: &str) -> Value {
    let list: Value = app.get(key, "/v1/invoices").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let mut i = list["data"][0].clone();
    for k in ["id", "client_id", "version"] {
        i.as_object_mut().unwrap().remove(k);
    }
    i
}

#[tokio::test]
async fn events_out_of_order_converge() {
    let app = spawn_app().await;
    let a = app.create_firm(&[SECRET]).await;
    let b = app.create_firm(&[SECRET]).await;
    let created = event("evt_1", "invoice.created", 1_000, open_invoice("in_9", "cus_9", 10_000));
    let mut newer_obj = open_invoice("in_9", "cus_9", 10_000);
    newer_obj["amount_remaining"] = json!(4_000);
    let updated_new = event("evt_3", "invoice.updated", 3_000, newer_obj);
    let mut older_obj = open_invoice("in_9", "cus_9", 10_000);
    older_obj["amount_remaining"] = json!(7_000);
    let updated_old = event("evt_2", "invoice.updated", 2_000, older_obj);
    let mut paid_obj = invoice("in_9", "cus_9", "INV-0001", 10_000, "usd", DUE, "paid");
    paid_obj["amount_remaining"] = json!(0);
    let paid = event("evt_4", "invoice.paid", 4_000, paid_obj);

    // Firm A in order; firm B paid first, then everything else in reverse.
    for e in [&created, &updated_old, &updated_new, &paid] {
        assert_eq!(app.deliver(a.id, SECRET, e).await.status(), 200);
    }
    for e in [&paid, &updated_new, &updated_old, &created] {
        assert_eq!(app.deliver(b.id, SECRET, e).await.status(), 200);
    }
    let sa = invoice_state(&app, &a.key).await;
    let sb = invoice_state(&app, &b.key).await;
    assert_eq!(sa["status"], "paid");
    assert_eq!(sa, sb);

    // Without the payment: an older update after a newer one does not win.
    let c = app.create_firm(&[SECRET]).await;
    for e in [&created, &updated_new, &updated_old] {
        assert_eq!(app.deliver(c.id, SECRET, e).await.status(), 200);
    }
    let sc = invoice_state(&app, &c.key).await;
    assert_eq!(sc["amount_remaining"], "40.00");
    assert_eq!(sc["status"], "open");
    // The unknown customer was created from the invoice so nothing is lost.
    let clients: Value = app.get(&c.key, "/v1/clients").await.json().await.unwrap();
    assert_eq!(clients["data"][0]["stripe_customer_id"], "cus_9");
}

#[tokio::test]
async fn tenants_are_isolated() {
    let app = spawn_app().await;
    let a = app.create_firm(&[SECRET]).await;
    let b = app.create_firm(&[SECRET]).await;
    app.deliver(b.id, SECRET, &event("evt_b", "invoice.created", 1, open_invoice("in_b", "cus_b", 100))).await;
    let b_inv: Value = app.get(&b.key, "/v1/invoices").await.json().await.unwrap();
    let b_inv = b_inv["data"][0]["id"].as_str().unwrap().to_string();
    let b_client: Value = app.get(&b.key, "/v1/clients").await.json().await.unwrap();
    let b_client = b_client["data"][0]["id"].as_str().unwrap().to_string();

    for path in
        [format!("/v1/invoices/{b_inv}"), format!("/v1/invoices/{b_inv}/activity"), format!("/v1/clients/{b_client}")]
    {
        problem(app.get(&a.key, &path).await, 404, "not-found").await;
    }
    let r = app
        .http
        .patch(app.url(&format!("/v1/clients/{b_client}")))
        .bearer_auth(&a.key)
        .json(&json!({"excluded": true}))
        .send()
        .await
        .unwrap();
    problem(r, 404, "not-found").await;
    let r = app
        .http
        .patch(app.url(&format!("/v1/invoices/{b_inv}")))
        .bearer_auth(&a.key)
        .json(&json!({"disputed": true}))
        .send()
        .await
        .unwrap();
    problem(r, 404, "not-found").await;
    let r = app
        .http
        .post(app.url(&format!("/v1/clients/{b_client}/contacts")))
        .bearer_auth(&a.key)
        .json(&json!({"name": "Mallory"}))
        .send()
        .await
        .unwrap();
    problem(r, 404, "not-found").await;
    let a_list: Value = app.get(&a.key, "/v1/invoices").await.json().await.unwrap();
    assert!(a_list["data"].as_array().unwrap().is_empty());
    // B's records are untouched.
    let inv: Value = app.get(&b.key, &format!("/v1/invoices/{b_inv}")).await.json().await.unwrap();
    assert_eq!(inv["disputed"], false);
    // No key, a wrong key, the operator token on firm routes: 401.
    problem(app.http.get(app.url("/v1/firm")).send().await.unwrap(), 401, "unauthorized").await;
    problem(app.get("afk_wrong", "/v1/firm").await, 401, "unauthorized").await;
    problem(app.get(support::ADMIN, "/v1/firm").await, 401, "unauthorized").await;
    let r = app.http.post(app.url("/v1/firms")).bearer_auth(&a.key).json(&json!({})).send().await.unwrap();
    problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn records_rest_validates_publishes_and_replays_idempotent_posts() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let post = |key: &str| {
        app.http
            .post(app.url("/v1/clients"))
            .bearer_auth(&firm.key)
            .header("Idempotency-Key", key.to_string())
            .json(&json!({"name": "Initech", "tier": "key", "timezone": "Europe/London"}))
    };
    let first = post("k1").send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post("k1").send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other: Value = post("k2").send().await.unwrap().json().await.unwrap();
    assert_ne!(other["id"], first["id"]);
    let list: Value = app.get(&firm.key, "/v1/clients?limit=1").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let cursor = list["next_cursor"].as_str().unwrap();
    let rest: Value = app.get(&firm.key, &format!("/v1/clients?limit=1&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    let client = first["id"].as_str().unwrap();
    let contact = |body: Value| {
        app.http.post(app.url(&format!("/v1/clients/{client}/contacts"))).bearer_auth(&firm.key).json(&body).send()
    };
    problem(contact(json!({"name": "Bob", "email": "not an email"})).await.unwrap(), 422, "validation").await;
    problem(contact(json!({"name": "Bob", "phone": "12"})).await.unwrap(), 422, "validation").await;
    problem(contact(json!({"name": "Bob", "timezone": "Mars/Base"})).await.unwrap(), 422, "validation").await;
    let c: Value = contact(json!({"name": "Bob", "email": "bob@initech.test", "phone": "+1 415 555 2671",
        "primary": true, "consent": {"email": true}}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(c["phone"], "+14155552671");
    let r = app
        .http
        .patch(app.url(&format!("/v1/contacts/{}", c["id"].as_str().unwrap())))
        .bearer_auth(&firm.key)
        .json(&json!({"consent": {"email": true, "voice": true}, "timezone": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["consent"]["voice"], true);
    assert_eq!(patched["version"], 2);
    let r = app
        .http
        .patch(app.url(&format!("/v1/clients/{client}")))
        .bearer_auth(&firm.key)
        .json(&json!({"excluded": true, "tier": "long_standing"}))
        .send()
        .await
        .unwrap();
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["excluded"], true);
    assert_eq!(patched["version"], 2);

    let r = app
        .http
        .patch(app.url("/v1/firm"))
        .bearer_auth(&firm.key)
        .json(&json!({"min_amounts": {"USD": "25.00"}, "timezone": "Nowhere/City"}))
        .send()
        .await
        .unwrap();
    problem(r, 422, "validation").await;
    let r = app
        .http
        .patch(app.url("/v1/firm"))
        .bearer_auth(&firm.key)
        .json(&json!({"min_amounts": {"USD": "25.00"}, "stripe_webhook_secrets": ["whsec_new"]}))
        .send()
        .await
        .unwrap();
    let f: Value = r.json().await.unwrap();
    assert_eq!(f["version"], 2);
    assert_eq!(f["min_amounts"]["USD"], "25.00");
    assert!(f.get("stripe_webhook_secrets").is_none());
    assert!(!f.to_string().contains("whsec_new"));

    app.outbox_drained().await;
    let subjects: Vec<String> = app.stream("BILLING").await.into_iter().map(|(s, _)| s).collect();
    let count = |p: &str| subjects.iter().filter(|s| s.starts_with(p)).count();
    assert_eq!(count("billing.client_upserted."), 3, "two creates and one patch");
    assert_eq!(count("billing.contact_upserted."), 2);
    assert_eq!(count("billing.firm_updated."), 2);
    let (_, last_firm) =
        app.stream("BILLING").await.into_iter().rfind(|(s, _)| s.starts_with("billing.firm_updated")).unwrap();
    assert_eq!(last_firm.data["version"], 2);
    assert_eq!(last_firm.data["min_amounts"]["USD"], "25.00");
}

#[tokio::test]
async fn one_click_unsubscribe_holds_the_contact_and_commands_the_opt_out() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    app.deliver(
        firm.id,
        SECRET,
        &event("evt_cus", "customer.created", 1, customer("cus_u", "Umbrella", "ap@umbrella.test")),
    )
    .await;
    let clients: Value = app.get(&firm.key, "/v1/clients").await.json().await.unwrap();
    let client_id = clients["data"][0]["id"].as_str().unwrap();
    let client: Value = app.get(&firm.key, &format!("/v1/clients/{client_id}")).await.json().await.unwrap();
    let contact = &client["contacts"][0];
    assert_eq!(contact["email"], "ap@umbrella.test");
    assert_eq!(contact["consent"]["email"], true, "Stripe's billing contact consents to email");
    let contact_id: Uuid = contact["id"].as_str().unwrap().parse().unwrap();

    let token = arflow_runtime::signature::unsubscribe_token(support::UNSUB_SECRET, firm.id, contact_id);
    let page = app.http.get(app.url(&format!("/v1/unsubscribe/{token}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    assert!(app.bus.holds().get(&contact_hold_key(contact_id)).await.unwrap().is_none(), "GET changes nothing");

    let mut revisions = vec![];
    for _ in 0..2 {
        let r = app
            .http
            .post(app.url(&format!("/v1/unsubscribe/{token}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (hold, revision) = app.bus.holds().get(&contact_hold_key(contact_id)).await.unwrap().expect("contact hold");
        assert!(matches!(hold, HoldValue::Held { ref reason, .. } if reason == "opted_out"));
        revisions.push(revision);
    }
    // The opt-out service owns consent: the gateway asks it (once) and publishes no consent event.
    let commands: Vec<_> = app.stream("COMMAND").await;
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].0, format!("command.consent.opt_out.{}", firm.id));
    let data = &commands[0].1.data;
    assert_eq!(data["source"], "unsubscribe_link");
    assert!(data["channel"].is_null());
    assert_eq!(data["contact_id"], contact_id.to_string());
    assert_eq!(data["hold_revision"], revisions[0], "the hold written before the command");
    assert!(data["reason"].as_str().unwrap().starts_with("token sha256 "));
    assert!(app.stream("CONSENT").await.is_empty());

    let bad =
        app.http.post(app.url("/v1/unsubscribe/forged.token")).body("List-Unsubscribe=One-Click").send().await.unwrap();
    problem(bad, 400, "invalid-token").await;
}

#[tokio::test]
async fn backfill_imports_customers_and_open_invoices_from_stripe() {
    let sim = StripeSim::start().await;
    for n in 0..3 {
        sim.add_customer(customer(&format!("cus_{n}"), &format!("Client {n}"), &format!("ap{n}@client.test")));
    }
    sim.add_invoice(open_invoice("in_a", "cus_0", 12_345));
    sim.add_invoice(open_invoice("in_b", "cus_1", 500));
    sim.add_invoice(invoice("in_c", "cus_2", "INV-3", 900, "usd", DUE, "paid"));
    let base = sim.base_url();
    let app = spawn_app_with(|c| c.gateway.stripe_api_base = base).await;
    let firm = app.create_firm(&[SECRET]).await;
    let r = app.http.post(app.url("/v1/firm/stripe/backfill")).bearer_auth(&firm.key).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let result: Value = r.json().await.unwrap();
    assert_eq!(result, json!({"customers": 3, "invoices": 2}));
    assert!(sim.requests().iter().any(|r| r.starts_with("GET /v1/invoices?") && r.contains("status=open")));
    // Through async-stripe: it pins the API version the builders' shapes follow.
    assert!(sim.stripe_versions().iter().all(|v| v.as_deref() == Some(arflow_testkit::stripe::API_VERSION)));
    let clients: Value = app.get(&firm.key, "/v1/clients").await.json().await.unwrap();
    assert_eq!(clients["data"].as_array().unwrap().len(), 3);
    let invoices: Value = app.get(&firm.key, "/v1/invoices").await.json().await.unwrap();
    let amounts: Vec<&str> =
        invoices["data"].as_array().unwrap().iter().map(|i| i["amount_remaining"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["123.45", "5.00"]);
    assert_eq!(invoices["data"][0]["due_date"], "2026-01-01");
    app.outbox_drained().await;
    let subjects = app.billing_record_subjects().await;
    assert_eq!(subjects.iter().filter(|s| s.starts_with("billing.invoice_upserted.")).count(), 2);
    assert_eq!(subjects.iter().filter(|s| s.starts_with("billing.client_upserted.")).count(), 3);
    // A second run converges on the same records.
    let r = app.http.post(app.url("/v1/firm/stripe/backfill")).bearer_auth(&firm.key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let clients: Value = app.get(&firm.key, "/v1/clients").await.json().await.unwrap();
    assert_eq!(clients["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn activity_explains_every_step_and_the_portfolio_sums_it_up() {
    use arflow_contracts::events::*;
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let r: Value = app
        .deliver(firm.id, SECRET, &event("evt_i", "invoice.created", 1, open_invoice("in_x", "cus_x", 9_900)))
        .await
        .json()
        .await
        .unwrap();
    let invoice_id: Uuid = r["invoice_id"].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now();
    let checks = vec![
        Check { rule: "invoice_past_due".into(), passed: true, detail: "3 days overdue".into() },
        Check { rule: "amount_above_minimum".into(), passed: true, detail: "99.00 USD >= 25.00 USD".into() },
    ];
    let explanation = Explanation {
        rule: "default-email/overdue_3".into(),
        policy_id: Uuid::now_v7(),
        policy_version: 4,
        eligibility_version: 1,
        checks: checks.clone(),
    };
    let publish = |kind: &'static str, data: Value| {
        let env = arflow_contracts::Envelope::new(kind, "test", now, firm.id, invoice_id, None, data);
        let subject = arflow_contracts::subjects::subject(kind, firm.id);
        let bus = app.bus.clone();
        async move { bus.publish_event(&subject, &env.id.to_string(), &env).await.unwrap() }
    };
    let plan = PlanUpdated {
        invoice_id,
        automation_status: AutomationStatus::Enabled,
        next: Some(NextAction { step: "overdue_3".into(), channel: arflow_core::Channel::Email, at: now }),
        reason: "eligible".into(),
        version: 1,
    };
    publish("outreach.plan_updated", serde_json::to_value(&plan).unwrap()).await;
    let sent = EmailSent {
        step_id: Uuid::now_v7(),
        invoice_id,
        contact_id: Uuid::now_v7(),
        step: "overdue_3".into(),
        to: "ap@x.test".into(),
        message_id: "<m1@arflow>".into(),
        template: "overdue_friendly".into(),
        template_version: 2,
        subject: "Invoice INV-0001 is 3 days overdue".into(),
        body_text: "Hello...".into(),
        explanation,
    };
    publish("outreach.email.sent", serde_json::to_value(&sent).unwrap()).await;
    publish("outreach.email.sent", json!({"garbage": true})).await; // dead-lettered, not projected

    let path = format!("/v1/invoices/{invoice_id}/activity");
    let activity: Value = eventually("the email in the history", || async {
        let a: Value = app.get(&firm.key, &path).await.json().await.unwrap();
        (a["history"].as_array().unwrap().len() == 3).then_some(a)
    })
    .await;
    assert_eq!(activity["automation_status"], "enabled");
    assert_eq!(activity["next_action"]["step"], "overdue_3");
    assert_eq!(activity["invoice"]["amount_remaining"], "99.00");
    let email = &activity["history"][2];
    assert_eq!(email["kind"], "email_sent");
    assert_eq!(email["rule"], "default-email/overdue_3");
    assert_eq!(email["policy_version"], 4);
    assert_eq!(email["template"], "overdue_friendly");
    assert_eq!(email["subject"], "Invoice INV-0001 is 3 days overdue");
    assert_eq!(email["checks"].as_array().unwrap().len(), 2);
    let portfolio: Value = app.get(&firm.key, "/v1/portfolio").await.json().await.unwrap();
    assert_eq!(portfolio["emails_sent_by_step"]["overdue_3"], 1);
    assert_eq!(portfolio["invoices_by_automation_status"]["enabled"], 1);
    let dlq = eventually("the dead letter", || async {
        let d = app.stream("DLQ").await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(dlq[0].0, "dlq.gateway");
}

#[tokio::test]
async fn openapi_document_lists_the_paths() {
    let app = spawn_app().await;
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/v1/firms",
        "/v1/firm",
        "/v1/clients",
        "/v1/clients/{id}",
        "/v1/invoices/{id}/activity",
        "/v1/portfolio",
        "/webhooks/stripe/{firm_id}",
        "/v1/unsubscribe/{token}",
        "/v1/firm/stripe/backfill",
    ] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
}

#[tokio::test]
async fn eligibility_is_recorded_only_when_the_failed_rules_change() {
    use arflow_contracts::events::*;
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let r: Value = app
        .deliver(firm.id, SECRET, &event("evt_e", "invoice.created", 1, open_invoice("in_e", "cus_e", 2_000)))
        .await
        .json()
        .await
        .unwrap();
    let invoice_id: Uuid = r["invoice_id"].as_str().unwrap().parse().unwrap();
    let decision = |version: i64, disputed: bool| {
        let mut d = arflow_contracts::fixtures::decision(None, "UTC", Tier::Standard);
        d.invoice_id = invoice_id;
        d.invoice.invoice_id = invoice_id;
        d.version = version;
        d.eligible = !disputed;
        d.past_due = true;
        d.automation_status = if disputed { AutomationStatus::Paused } else { AutomationStatus::Enabled };
        d.checks = vec![
            Check { rule: "invoice_past_due".into(), passed: true, detail: "2 days".into() },
            Check { rule: "not_disputed".into(), passed: !disputed, detail: "firm marked it disputed".into() },
        ];
        d.contacts = vec![];
        arflow_contracts::Envelope::new("eligibility.changed", "test", chrono::Utc::now(), firm.id, invoice_id, None, d)
    };
    let subject = arflow_contracts::subjects::subject("eligibility.changed", firm.id);
    // v1 eligible, v2 eligible again (same failed set: not recorded), v3 disputed.
    for (v, disputed) in [(1, false), (2, false), (3, true)] {
        let env = decision(v, disputed);
        app.bus.publish_event(&subject, &env.id.to_string(), &env).await.unwrap();
    }
    let path = format!("/v1/invoices/{invoice_id}/activity");
    let a: Value = eventually("two eligibility entries", || async {
        let a: Value = app.get(&firm.key, &path).await.json().await.unwrap();
        (a["automation_status"] == "paused").then_some(a)
    })
    .await;
    let entries: Vec<&Value> =
        a["history"].as_array().unwrap().iter().filter(|h| h["kind"] == "eligibility_changed").collect();
    assert_eq!(entries.len(), 2, "{a}");
    assert!(entries[1]["summary"].as_str().unwrap().contains("not_disputed"));
    assert_eq!(entries[1]["reason"], "not_disputed");
    assert_eq!(entries[1]["checks"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_for_a_new_customer_create_it_once() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let mut deliveries = vec![];
    for i in 0..20 {
        let object = invoice(&format!("in_conc_{i}"), "cus_new", "C-1", 10_000, "usd", 1_775_000_000, "open");
        let event = event(&format!("evt_conc_{i}"), "invoice.finalized", 1_775_000_000, object);
        let (sig, body) = signed_webhook(SECRET, &event);
        let http = app.http.clone();
        let url = app.url(&format!("/webhooks/stripe/{}", firm.id));
        deliveries.push(tokio::spawn(async move {
            http.post(url).header("Stripe-Signature", sig).body(body).send().await.unwrap().status()
        }));
    }
    for d in deliveries {
        assert_eq!(d.await.unwrap(), 200, "every concurrent delivery is accepted");
    }
    let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM clients WHERE stripe_customer_id = 'cus_new'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clients, 1);
}

#[tokio::test]
async fn inbound_email_is_authenticated_stored_once_and_published() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let other = app.create_firm(&[SECRET]).await;
    let raw = b"From: Ann <ann@client.test>\r\nTo: reply+0123456789abcdef@in.acme.test\r\nSubject: Re: invoice\r\n\r\nPlease stop emailing me.\r\n";
    let path = format!("/webhooks/email/inbound/{}", firm.id);
    let post = |auth: Option<String>, body: Vec<u8>| {
        let mut r = app.http.post(app.url(&path)).header("content-type", "message/rfc822").body(body);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    problem(post(None, raw.to_vec()).await.unwrap(), 401, "unauthorized").await;
    // Another firm's token, or an API key, is not this firm's inbound token.
    problem(post(Some(format!("Bearer {}", other.inbound_token)), raw.to_vec()).await.unwrap(), 401, "unauthorized")
        .await;
    problem(post(Some(format!("Bearer {}", firm.key)), raw.to_vec()).await.unwrap(), 401, "unauthorized").await;
    problem(post(Some(format!("Bearer {}", firm.inbound_token)), b"  \r\n".to_vec()).await.unwrap(), 422, "validation")
        .await;
    // The token also works as a Basic password (how mail providers put it in a URL).
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("inbound:{}", firm.inbound_token));
    let first = post(Some(format!("Basic {basic}")), raw.to_vec()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again: Value =
        post(Some(format!("Bearer {}", firm.inbound_token)), raw.to_vec()).await.unwrap().json().await.unwrap();
    assert_eq!(again["reply_id"], first["reply_id"]);
    assert_eq!(again["duplicate"], true, "a provider retry is the same message");

    app.outbox_drained().await;
    let received = app.stream("REPLY").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, format!("reply.received.{}", firm.id));
    let object = received[0].1.data["object"].as_str().unwrap().to_string();
    assert!(object.starts_with(&format!("{}/", firm.id)));
    assert_eq!(app.bus.get_inbound(&object).await.unwrap(), raw.to_vec(), "the raw bytes are kept as received");
}

/// Raw inbound mail is purged after the firm's retention (default 90 days, a firm setting);
/// its row stays (it dedupes provider retries), marked purged. Webhook and idempotency records
/// go after 30 days.
#[tokio::test]
async fn raw_inbound_mail_is_purged_after_the_firms_retention() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let patched = app
        .http
        .patch(app.url("/v1/firm"))
        .bearer_auth(&firm.key)
        .json(&json!({"raw_mail_retention_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 422, "at least one day");
    let patched: Value = app
        .http
        .patch(app.url("/v1/firm"))
        .bearer_auth(&firm.key)
        .json(&json!({"raw_mail_retention_days": 30}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["raw_mail_retention_days"], 30);
    let raw = b"From: Ann <ann@client.test>\r\nTo: billing@acme.test\r\nSubject: Re: invoice\r\n\r\nPaid today.\r\n";
    let posted = app
        .http
        .post(app.url(&format!("/webhooks/email/inbound/{}", firm.id)))
        .bearer_auth(&firm.inbound_token)
        .header("content-type", "message/rfc822")
        .body(raw.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    app.outbox_drained().await;
    let object = app.stream("REPLY").await[0].1.data["object"].as_str().unwrap().to_string();
    sqlx::query(
        "INSERT INTO idempotency_keys (firm_id, key, path, status, body, created_at) \
         VALUES ($1, 'k1', '/v1/clients', 201, '{}', now())",
    )
    .bind(firm.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let clock = arflow_core::Clock::simulated(chrono::Utc::now() + chrono::Duration::days(29));
    let (purged, pruned) = arflow_gateway::retention::purge(&app.pool, &app.bus, &clock).await.unwrap();
    assert_eq!(purged, 0, "kept 29 days");
    assert_eq!(pruned, 1, "the idempotency record is past its 24 hours");
    assert!(app.bus.get_inbound(&object).await.is_ok());
    let clock = arflow_core::Clock::simulated(chrono::Utc::now() + chrono::Duration::days(31));
    let (purged, pruned) = arflow_gateway::retention::purge(&app.pool, &app.bus, &clock).await.unwrap();
    assert_eq!((purged, pruned), (1, 0));
    assert!(app.bus.get_inbound(&object).await.is_err(), "the raw bytes are gone");
    let marked: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_messages WHERE purged_at IS NOT NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(marked, 1);
    // Purging again finds nothing; a retry of the same message is still recognised.
    assert_eq!(arflow_gateway::retention::purge(&app.pool, &app.bus, &clock).await.unwrap().0, 0);
}

/// What the email service publishes when a client writes "we already paid this".
fn paid_reply(invoice_id: Uuid) -> arflow_contracts::events::ReplyClassified {
    use arflow_contracts::events::{ReplyClassified, ReplyIntent, ReplyKind};
    ReplyClassified {
        reply_id: Uuid::now_v7(),
        channel: arflow_core::Channel::Email,
        kind: ReplyKind::Reply,
        intent: Some(ReplyIntent::AlreadyPaid),
        promised_date: None,
        evidence: "paid this by ACH last Tuesday".into(),
        sure: true,
        confidence: 1.0,
        needs_review: false,
        scores: vec![],
        labelled_by: None,
        client_text: "We paid this by ACH last Tuesday.".into(),
        invoice_id: Some(invoice_id),
        contact_id: None,
        client_id: None,
        matched_by: Some("reply_token".into()),
        answered_message_id: None,
        step: Some("overdue_7".into()),
        from: Some("ap@client.test".into()),
        subject: Some("Re: reminder".into()),
        received_at: chrono::Utc::now(),
        reference_date: chrono::Utc::now().date_naive(),
        bounce: None,
        action: "client says it is paid: outreach paused pending reconciliation with Stripe".into(),
    }
}

async fn client_says_paid(app: &support::TestApp, firm: Uuid, invoice_id: Uuid) -> Uuid {
    let data = paid_reply(invoice_id);
    let reply_id = data.reply_id;
    let kind = arflow_contracts::subjects::reply::CLASSIFIED;
    let env = arflow_contracts::Envelope::new(kind, "email", chrono::Utc::now(), firm, invoice_id, None, data);
    let subject = arflow_contracts::subjects::subject(kind, firm);
    app.bus.publish_event(&subject, &format!("reply:{reply_id}:classified"), &env).await.unwrap();
    reply_id
}

#[tokio::test]
async fn a_client_saying_paid_is_checked_with_stripe_at_once() {
    let sim = StripeSim::start().await;
    let base = sim.base_url();
    let app = spawn_app_with(|c| c.gateway.stripe_api_base = base).await;
    let firm = app.create_firm(&[SECRET]).await;
    let mut ids = vec![];
    for (id, number) in [("in_paid", "INV-P"), ("in_open", "INV-O")] {
        let object = invoice(id, "cus_r", number, 50_000, "usd", DUE, "open");
        let r = app.deliver(firm.id, SECRET, &event(&format!("evt_{id}"), "invoice.finalized", 1, object)).await;
        let ack: Value = r.json().await.unwrap();
        ids.push(ack["invoice_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    // Stripe has the first paid (the webhook is late or lost), the second still open.
    let mut paid = invoice("in_paid", "cus_r", "INV-P", 50_000, "usd", DUE, "paid");
    paid["amount_paid"] = json!(50_000);
    paid["amount_remaining"] = json!(0);
    sim.add_invoice(paid);
    sim.add_invoice(open_invoice("in_open", "cus_r", 50_000));

    client_says_paid(&app, firm.id, ids[0]).await;
    client_says_paid(&app, firm.id, ids[1]).await;
    let hold = eventually("the paid invoice is held", || async {
        app.bus.holds().get(&invoice_hold_key(ids[0])).await.unwrap().map(|(v, _)| v)
    })
    .await;
    assert!(matches!(hold, HoldValue::Held { ref reason, .. } if reason == "paid"), "{hold:?}");
    let status = eventually("the paid invoice is paid", || async {
        let v: Value = app.get(&firm.key, &format!("/v1/invoices/{}", ids[0])).await.json().await.unwrap();
        (v["status"] == "paid").then_some(v)
    })
    .await;
    assert_eq!(status["status"], "paid");
    // The two replies are reconciled independently: the open one may be asked after the paid one halted.
    eventually("Stripe is asked about the open invoice", || async {
        sim.requests().iter().any(|r| r == "GET /v1/invoices/in_open").then_some(())
    })
    .await;
    app.outbox_drained().await;
    let halts = app.billing_record_subjects().await;
    assert_eq!(halts.iter().filter(|s| s.starts_with("billing.invoice_paid.")).count(), 1, "{halts:?}");
    // Stripe says the other is open: nothing halts it, the pause eligibility applied stands.
    assert!(app.bus.holds().get(&invoice_hold_key(ids[1])).await.unwrap().is_none());
}

/// A reply not understood with confidence: in the history and the reply inbox as awaiting a
/// person's label, with the classifier's likeliest intents, and never reconciled with Stripe on
/// the guess; the firm user's label then replaces it in the inbox and is its own history entry
/// (and an `already_paid` label is checked with Stripe like a classified one).
#[tokio::test]
async fn a_reply_awaiting_review_and_its_label_are_in_the_history_and_the_inbox() {
    use arflow_contracts::events::{IntentScore, ReplyClassified, ReplyIntent};
    let sim = StripeSim::start().await;
    let base = sim.base_url();
    let app = spawn_app_with(|c| c.gateway.stripe_api_base = base).await;
    let firm = app.create_firm(&[SECRET]).await;
    let object = invoice("in_rv", "cus_rv", "INV-RV", 50_000, "usd", DUE, "open");
    let ack: Value =
        app.deliver(firm.id, SECRET, &event("evt_rv", "invoice.finalized", 1, object)).await.json().await.unwrap();
    let invoice_id: Uuid = ack["invoice_id"].as_str().unwrap().parse().unwrap();
    sim.add_invoice(open_invoice("in_rv", "cus_rv", 50_000));
    let unsure = ReplyClassified {
        intent: Some(ReplyIntent::AlreadyPaid),
        evidence: String::new(),
        sure: false,
        confidence: 0.42,
        needs_review: true,
        scores: vec![
            IntentScore { intent: ReplyIntent::AlreadyPaid, score: 0.42 },
            IntentScore { intent: ReplyIntent::Question, score: 0.3 },
        ],
        client_text: "see the remittance from my colleague below".into(),
        action: "not understood with confidence: outreach paused until a person labels it (needs_review case)".into(),
        ..paid_reply(invoice_id)
    };
    let kind = arflow_contracts::subjects::reply::CLASSIFIED;
    let publish = |data: &ReplyClassified, source: &str| {
        let env =
            arflow_contracts::Envelope::new(kind, source, chrono::Utc::now(), firm.id, invoice_id, None, data.clone());
        let subject = arflow_contracts::subjects::subject(kind, firm.id);
        let bus = app.bus.clone();
        async move { bus.publish_event(&subject, &env.id.to_string(), &env).await.unwrap() }
    };
    publish(&unsure, "email").await;
    let path = format!("/v1/invoices/{invoice_id}/activity");
    let entry = |kind: &'static str| {
        let (app, path, key) = (&app, &path, &firm.key);
        eventually(kind, move || async move {
            let a: Value = app.get(key, path).await.json().await.unwrap();
            a["history"].as_array().unwrap().iter().find(|e| e["kind"] == kind).cloned()
        })
    };
    let waiting = entry("reply_needs_review").await;
    let summary = waiting["summary"].as_str().unwrap();
    assert!(
        summary.contains("not understood with confidence (likeliest: already_paid 0.42, question 0.30)"),
        "{summary}"
    );
    assert!(summary.contains("see the remittance from my colleague below"), "{summary}");
    assert!(waiting["intent"].is_null(), "nothing is acted on: {waiting}");
    assert_eq!(waiting["scores"][0]["intent"], "already_paid");
    let inbox: Value = app.get(&firm.key, "/v1/replies?intent=needs_review").await.json().await.unwrap();
    assert_eq!(inbox["data"].as_array().unwrap().len(), 1, "{inbox}");
    assert_eq!(
        (inbox["data"][0]["needs_review"].as_bool(), inbox["data"][0]["labelled_by"].as_str()),
        (Some(true), None)
    );
    // The guess "already paid" is not reconciled with Stripe.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!sim.requests().iter().any(|r| r == "GET /v1/invoices/in_rv"), "{:?}", sim.requests());

    // The firm user labels it already_paid (the escalation service republishes the reply).
    let labelled = unsure.labelled(ReplyIntent::AlreadyPaid, None, "maria@firm.test");
    publish(&labelled, "escalation").await;
    let label = entry("reply_labelled").await;
    let summary = label["summary"].as_str().unwrap();
    assert_eq!(
        summary,
        "maria@firm.test labelled what a***@client.test replied by email: already_paid \
         (\"see the remittance from my colleague below\")"
    );
    assert_eq!(
        (label["intent"].as_str(), label["labelled_by"].as_str()),
        (Some("already_paid"), Some("maria@firm.test"))
    );
    let inbox: Value = app.get(&firm.key, "/v1/replies").await.json().await.unwrap();
    let row = &inbox["data"][0];
    assert_eq!(inbox["data"].as_array().unwrap().len(), 1, "one reply, labelled: {inbox}");
    assert_eq!(
        (row["intent"].as_str(), row["needs_review"].as_bool(), row["labelled_by"].as_str()),
        (Some("already_paid"), Some(false), Some("maria@firm.test"))
    );
    eventually("the labelled claim is checked with Stripe", || async {
        sim.requests().iter().any(|r| r == "GET /v1/invoices/in_rv").then_some(())
    })
    .await;
}

/// The firm's call window: accepted only inside 08:00-21:00, stored, shown, cleared with `null`,
/// and published in `billing.firm_updated` for eligibility, the scheduler and the voice service.
#[tokio::test]
async fn the_firms_call_window_is_validated_stored_and_published() {
    let app = spawn_app().await;
    let firm = app.create_firm(&["whsec_x"]).await;
    let f: Value = app.get(&firm.key, "/v1/firm").await.json().await.unwrap();
    assert_eq!(f["call_window"], Value::Null, "the default until the firm sets one");

    let patch = |body: Value| app.http.patch(app.url("/v1/firm")).bearer_auth(&firm.key).json(&body).send();
    for (window, says) in [
        (json!({"start_hour": 7, "end_hour": 18, "days": ["Mon"]}), "between 08:00 and 21:00"),
        (json!({"start_hour": 9, "end_hour": 22, "days": ["Mon"]}), "end_hour at most 21"),
        (json!({"start_hour": 12, "end_hour": 10, "days": ["Mon"]}), "call_window"),
        (json!({"start_hour": 9, "end_hour": 17, "days": []}), "call_window"),
    ] {
        let body = problem(patch(json!({"call_window": window})).await.unwrap(), 422, "validation").await;
        assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
    }

    let window = json!({"start_hour": 10, "end_hour": 18, "days": ["Mon", "Tue", "Wed", "Thu", "Fri"]});
    let r = patch(json!({"call_window": window})).await.unwrap();
    assert_eq!(r.status(), 200);
    let f: Value = r.json().await.unwrap();
    assert_eq!(f["call_window"], window);
    assert_eq!(app.get(&firm.key, "/v1/firm").await.json::<Value>().await.unwrap()["call_window"], window);
    // A patch that does not name it leaves it alone; `null` clears it.
    let f: Value = patch(json!({"name": "Acme & Co"})).await.unwrap().json().await.unwrap();
    assert_eq!(f["call_window"], window);
    let f: Value = patch(json!({"call_window": null})).await.unwrap().json().await.unwrap();
    assert_eq!(f["call_window"], Value::Null);

    app.outbox_drained().await;
    let updates: Vec<Value> = app
        .stream("BILLING")
        .await
        .into_iter()
        .filter(|(s, _)| s.starts_with("billing.firm_updated"))
        .map(|(_, e)| e.data)
        .collect();
    let windows: Vec<&Value> = updates.iter().map(|d| &d["call_window"]).collect();
    assert_eq!(windows, [&Value::Null, &window, &window, &Value::Null], "{updates:?}");

    // At creation too.
    let r = app
        .http
        .post(app.url("/v1/firms"))
        .bearer_auth(support::ADMIN)
        .json(&json!({"name": "Night Owls", "sender_email": "a@b.test", "timezone": "UTC",
            "stripe_webhook_secrets": [], "call_window": {"start_hour": 20, "end_hour": 23, "days": ["Sat"]}}))
        .send()
        .await
        .unwrap();
    problem(r, 422, "validation").await;
    let r = app
        .http
        .post(app.url("/v1/firms"))
        .bearer_auth(support::ADMIN)
        .json(&json!({"name": "Early Birds", "sender_email": "a@b.test", "timezone": "UTC",
            "stripe_webhook_secrets": [], "call_window": {"start_hour": 8, "end_hour": 12, "days": ["Sat"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["firm"]["call_window"]["end_hour"], 12);
}

/// Calls and texts in an invoice's history: the outcome, the number (masked), the attempt, the
/// conversation with what the client meant, the recording and the script; texts with their body;
/// skips with their reason; replies on the call or by text. The portfolio counts them apart
/// from emails.
#[tokio::test]
async fn calls_and_texts_are_in_the_activity_and_the_portfolio() {
    use arflow_contracts::events::*;
    use arflow_core::Channel;
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let r: Value = app
        .deliver(firm.id, SECRET, &event("evt_i", "invoice.created", 1, open_invoice("in_v", "cus_v", 9_900)))
        .await
        .json()
        .await
        .unwrap();
    let invoice_id: Uuid = r["invoice_id"].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now();
    let explanation = Explanation {
        rule: "standard/call_21".into(),
        policy_id: Uuid::now_v7(),
        policy_version: 3,
        eligibility_version: 2,
        checks: vec![Check { rule: "contact_with_consent".into(), passed: true, detail: "voice".into() }],
    };
    let publish = |kind: &'static str, data: Value| {
        let env = arflow_contracts::Envelope::new(kind, "test", now, firm.id, invoice_id, None, data);
        let subject = arflow_contracts::subjects::subject(kind, firm.id);
        let bus = app.bus.clone();
        async move { bus.publish_event(&subject, &env.id.to_string(), &env).await.unwrap() }
    };
    let (step_id, contact_id, client_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let call = |outcome: CallOutcome, attempt: u32| CallEnded {
        call_id: Uuid::now_v7(),
        step_id,
        invoice_id,
        contact_id,
        client_id,
        step: "call_21".into(),
        attempt,
        outcome,
        provider_status: "no-answer".into(),
        answered_by: None,
        provider_call_sid: Some(format!("CA{attempt:032}")),
        to: "+14155550123".into(),
        duration_secs: None,
        placed_at: now,
        ended_at: now,
        transcript: vec![],
        intents: vec![],
        promised_date: None,
        recording_url: None,
        script: "call-standard@1".into(),
        detail: "no answer".into(),
        explanation: explanation.clone(),
    };
    publish("outreach.voice.no_answer", serde_json::to_value(call(CallOutcome::NoAnswer, 1)).unwrap()).await;
    let promised = chrono::NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
    let answered = CallEnded {
        provider_status: "completed".into(),
        answered_by: Some("human".into()),
        duration_secs: Some(74),
        transcript: vec![
            TranscriptTurn {
                speaker: Speaker::Agent,
                text: "Hello, this is Acme Accounting about invoice INV-0001.".into(),
                intent: None,
                at: now,
            },
            TranscriptTurn {
                speaker: Speaker::Client,
                text: "I can pay on the twentieth".into(),
                intent: Some(ReplyIntent::PromiseToPay),
                at: now,
            },
            TranscriptTurn {
                speaker: Speaker::Agent,
                text: "Thank you, we have noted March 20.".into(),
                intent: None,
                at: now,
            },
        ],
        intents: vec![ReplyIntent::PromiseToPay],
        promised_date: Some(promised),
        recording_url: Some("https://api.twilio.com/recordings/RE1".into()),
        detail: "promise to pay on 2026-03-20 confirmed".into(),
        ..call(CallOutcome::Completed, 2)
    };
    publish("outreach.voice.completed", serde_json::to_value(&answered).unwrap()).await;
    let skipped = ChannelStepSkipped {
        step_id,
        invoice_id,
        contact_id,
        step: "call_21".into(),
        channel: Channel::Voice,
        attempt: 3,
        reason: "timezone_unknown".into(),
        detail: "the contact's time zone is unknown (none)".into(),
    };
    publish("outreach.voice.skipped", serde_json::to_value(&skipped).unwrap()).await;
    let text = SmsSent {
        step_id: Uuid::now_v7(),
        invoice_id,
        contact_id,
        step: "sms_10".into(),
        to: "+14155550123".into(),
        message_sid: "SM01".into(),
        template: "sms_pay_link".into(),
        template_version: 1,
        body: "Acme Accounting: invoice INV-0001 (99.00 USD) is overdue. Pay: https://pay.test/x Reply STOP to opt out"
            .into(),
        explanation: explanation.clone(),
    };
    publish("outreach.sms.sent", serde_json::to_value(&text).unwrap()).await;
    let failed = SmsFailed {
        step_id: Uuid::now_v7(),
        invoice_id,
        contact_id,
        step: "sms_10".into(),
        reason: "21211 invalid To number".into(),
        permanent: true,
    };
    publish("outreach.sms.failed", serde_json::to_value(&failed).unwrap()).await;
    let sms_skip = ChannelStepSkipped { channel: Channel::Sms, attempt: 1, reason: "no_consent".into(), ..skipped };
    publish("outreach.sms.skipped", serde_json::to_value(&sms_skip).unwrap()).await;
    let reply = |channel: Channel, intent: ReplyIntent, text: &str| ReplyClassified {
        reply_id: Uuid::now_v7(),
        channel,
        kind: ReplyKind::Reply,
        intent: Some(intent),
        promised_date: None,
        evidence: text.into(),
        sure: true,
        confidence: 1.0,
        needs_review: false,
        scores: vec![],
        labelled_by: None,
        client_text: text.into(),
        invoice_id: Some(invoice_id),
        contact_id: Some(contact_id),
        client_id: Some(client_id),
        matched_by: Some("call".into()),
        answered_message_id: None,
        step: Some("call_21".into()),
        from: Some("+14155550123".into()),
        subject: None,
        received_at: now,
        reference_date: now.date_naive(),
        bounce: None,
        action: "contact opted out on every channel".into(),
    };
    publish(
        "reply.classified",
        serde_json::to_value(reply(Channel::Voice, ReplyIntent::OptOut, "stop calling me")).unwrap(),
    )
    .await;
    publish("reply.classified", serde_json::to_value(reply(Channel::Sms, ReplyIntent::OptOut, "STOP")).unwrap()).await;

    let path = format!("/v1/invoices/{invoice_id}/activity");
    let activity: Value = eventually("calls and texts in the history", || async {
        let a: Value = app.get(&firm.key, &path).await.json().await.unwrap();
        (a["history"].as_array().unwrap().len() == 9).then_some(a)
    })
    .await;
    let history = activity["history"].as_array().unwrap();
    let of = |kind: &str| history.iter().find(|e| e["kind"] == kind).unwrap_or_else(|| panic!("{kind}: {history:?}"));

    let missed = of("call_no_answer");
    assert_eq!(missed["call"]["attempt"], 1);
    assert!(missed["summary"].as_str().unwrap().starts_with("Called +1******0123: no answer"), "{missed}");

    let done = of("call_completed");
    let summary = done["summary"].as_str().unwrap();
    assert!(summary.contains("+1******0123") && summary.contains("attempt 2"), "{summary}");
    assert!(summary.contains("promise_to_pay") && summary.contains("2026-03-20 confirmed"), "{summary}");
    assert!(!done.to_string().contains("4155550123"), "the number is masked everywhere: {done}");
    assert_eq!(done["channel"], "voice");
    assert_eq!(done["to"], "+1******0123");
    assert_eq!(done["rule"], "standard/call_21");
    assert_eq!(done["template"], "call-standard@1");
    assert_eq!(done["promised_date"], "2026-03-20");
    assert_eq!(done["call"]["outcome"], "completed");
    assert_eq!(done["call"]["script"], "call-standard@1");
    assert_eq!(done["call"]["recording_url"], "https://api.twilio.com/recordings/RE1");
    assert_eq!(done["call"]["duration_secs"], 74);
    assert_eq!(done["call"]["transcript"][1]["speaker"], "client");
    assert_eq!(done["call"]["transcript"][1]["intent"], "promise_to_pay");
    let body = done["body"].as_str().unwrap();
    assert!(
        body.contains("Agent: Hello, this is Acme")
            && body.contains("Client: I can pay on the twentieth [promise_to_pay]")
    );

    let skip = of("call_skipped");
    assert_eq!(skip["reason"], "timezone_unknown");
    assert!(skip["summary"].as_str().unwrap().contains("time zone is unknown"));
    let sms = of("sms_sent");
    assert_eq!(sms["body"], text.body);
    assert_eq!(sms["to"], "+1******0123");
    assert!(sms["summary"].as_str().unwrap().contains("Pay: https://pay.test/x"));
    assert_eq!(of("sms_failed")["reason"], "21211 invalid To number");
    assert_eq!(of("sms_skipped")["reason"], "no_consent");
    let replies: Vec<&Value> = history.iter().filter(|e| e["kind"] == "reply_received").collect();
    assert_eq!(replies.len(), 2);
    let by = |channel: &str| replies.iter().find(|e| e["channel"] == channel).unwrap()["summary"].as_str().unwrap();
    assert!(by("voice").starts_with("+1******0123 said on the call: opt_out (\"stop calling me\")"), "{replies:?}");
    assert!(by("sms").starts_with("+1******0123 replied by text: opt_out (\"STOP\")"), "{replies:?}");

    let portfolio: Value = app.get(&firm.key, "/v1/portfolio").await.json().await.unwrap();
    assert_eq!(portfolio["emails_sent_by_step"], json!({}), "calls and texts are not emails");
    assert_eq!(portfolio["calls_by_outcome"], json!({"completed": 1, "no_answer": 1}));
    assert_eq!(portfolio["texts_sent_by_step"], json!({"sms_10": 1}));
    assert_eq!(portfolio["suppressed_sends_by_reason"], json!({"timezone_unknown": 1, "no_consent": 1}));
    assert_eq!(portfolio["suppressed_sends"], 2);
}
