//! Stripe delivers events late, out of order and more than once. Random permutations with
//! duplications of an invoice's event stream must leave the gateway's invoice in the same final
//! state as the stream in order. The gateway's state logic (`ingest::apply_event`) works on the
//! database, so this drives the real gateway in-process (its own NATS and database) through
//! signed webhooks: 40 permuted streams in the smoke run, 1,000 with `CHAOS_LONG=1`.
use arflow_runtime::ServiceConfig;
use arflow_testkit::{TestDb, TestNats, stripe};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "props-admin-token";
const SECRET: &str = "whsec_props";

/// One event of a stream: its type and the invoice as Stripe had it then.
#[derive(Debug, Clone)]
struct Ev {
    kind: &'static str,
    status: &'static str,
    amount: i64,
    remaining: i64,
    due_days: i64,
}

/// A realistic lifecycle: created (draft), finalized, maybe updates and a failed payment, then
/// at most one end: paid (with `payment_succeeded`), voided, uncollectible, or uncollectible and
/// paid later.
fn lifecycle(rng: &mut StdRng) -> Vec<Ev> {
    let mut amount = rng.random_range(10_000..500_000);
    let mut due = rng.random_range(5..40);
    let mut evs = vec![Ev { kind: "invoice.created", status: "draft", amount, remaining: amount, due_days: due }];
    evs.push(Ev { kind: "invoice.finalized", status: "open", amount, remaining: amount, due_days: due });
    for _ in 0..rng.random_range(0..3) {
        if rng.random_bool(0.5) {
            amount = rng.random_range(10_000..500_000);
        } else {
            due += rng.random_range(1..10);
        }
        evs.push(Ev { kind: "invoice.updated", status: "open", amount, remaining: amount, due_days: due });
    }
    if rng.random_bool(0.3) {
        evs.push(Ev { kind: "invoice.payment_failed", status: "open", amount, remaining: amount, due_days: due });
    }
    let paid = |kind| Ev { kind, status: "paid", amount, remaining: 0, due_days: due };
    match rng.random_range(0..5) {
        0 => {}
        1 => {
            evs.push(paid("invoice.payment_succeeded"));
            evs.push(paid("invoice.paid"));
        }
        2 => evs.push(Ev { kind: "invoice.voided", status: "void", amount, remaining: 0, due_days: due }),
        3 => evs.push(Ev {
            kind: "invoice.marked_uncollectible",
            status: "uncollectible",
            amount,
            remaining: amount,
            due_days: due,
        }),
        _ => {
            evs.push(Ev {
                kind: "invoice.marked_uncollectible",
                status: "uncollectible",
                amount,
                remaining: amount,
                due_days: due,
            });
            evs.push(paid("invoice.paid"));
        }
    }
    evs
}

/// The Stripe events of `stream` for the invoice `stripe_id`, `created` increasing in order.
fn events(stream: &[Ev], case: usize, stripe_id: &str) -> Vec<Value> {
    let base = 1_760_000_000 + (case as i64) * 10_000;
    stream
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let due = base + e.due_days * 86_400;
            let mut obj =
                stripe::invoice(stripe_id, "cus_props", &format!("PR-{case:05}"), e.amount, "usd", due, e.status);
            obj["amount_remaining"] = json!(e.remaining);
            obj["amount_paid"] = json!(e.amount - e.remaining);
            stripe::event(&format!("evt_{stripe_id}_{i}"), e.kind, base + i as i64 * 60, obj)
        })
        .collect()
}

/// The invoice as the API shows it, without what names this copy (ids, URL, version counter).
async fn state(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Value {
    let mut v: Value =
        http.get(format!("{base}/v1/invoices/{id}")).bearer_auth(key).send().await.unwrap().json().await.unwrap();
    if let Some(o) = v.as_object_mut() {
        for k in ["id", "stripe_invoice_id", "hosted_invoice_url", "version"] {
            o.remove(k);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_event_streams_converge_under_permutation_and_duplication() {
    let seed = super::seed();
    let permutations = if super::long() { 1_000 } else { 40 };
    println!("CHAOS_SEED={seed}: {permutations} permuted and duplicated Stripe event streams");
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5781_9E00);

    let nats = TestNats::start();
    let db = TestDb::create().await;
    let mut config: arflow_gateway::Config =
        arflow_runtime::config::load_defaults(<arflow_gateway::Config as ServiceConfig>::DEFAULTS).unwrap();
    config.unsubscribe.secret = "chaos-unsubscribe-secret".to_string().into();
    config.nats.url = nats.url();
    config.database.url = Some(db.url().into());
    config.http.port = 0;
    config.gateway.admin_token = ADMIN.to_string().into();
    let token = CancellationToken::new();
    let app = Box::pin(arflow_gateway::Application::build(config, token.clone())).await.expect("gateway starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(async move { app.run().await.expect("gateway runs") });
    let http = reqwest::Client::new();
    let firm: Value = http
        .post(format!("{base}/v1/firms"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Props", "sender_email": "ar@props.test", "timezone": "UTC",
                      "stripe_webhook_secrets": [SECRET]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (firm_id, key) = (firm["firm"]["id"].as_str().unwrap(), firm["api_key"].as_str().unwrap());
    let deliver = |event: Value| {
        let (http, url) = (http.clone(), format!("{base}/webhooks/stripe/{firm_id}"));
        async move {
            let (sig, body) = stripe::signed_webhook(SECRET, &event);
            let r = http.post(url).header("Stripe-Signature", sig).body(body).send().await.unwrap();
            assert_eq!(r.status(), 200, "{event}: {}", r.text().await.unwrap_or_default());
            r.json::<Value>().await.unwrap()
        }
    };

    let mut failures = vec![];
    let (mut case, mut done) = (0, 0);
    while done < permutations {
        let stream = lifecycle(&mut rng);
        // The stream in order: the reference.
        let reference_id = format!("in_p{case:05}_ordered");
        let mut invoice = None;
        for e in events(&stream, case, &reference_id) {
            invoice = deliver(e).await["invoice_id"].as_str().map(str::to_string).or(invoice);
        }
        let want = state(&http, &base, key, &invoice.unwrap()).await;
        let last = stream.last().unwrap();
        assert_eq!(want["status"], last.status, "in order, the last event's status wins: {stream:?}");
        // Two permuted copies, each with some events delivered again.
        for copy in 0..2 {
            let id = format!("in_p{case:05}_perm{copy}");
            let mut evs = events(&stream, case, &id);
            for _ in 0..rng.random_range(1..=3) {
                let again = evs[rng.random_range(0..evs.len())].clone();
                evs.push(again);
            }
            evs.shuffle(&mut rng);
            let order: Vec<String> = evs.iter().map(|e| e["type"].as_str().unwrap_or_default().to_string()).collect();
            let mut invoice = None;
            for e in evs {
                invoice = deliver(e).await["invoice_id"].as_str().map(str::to_string).or(invoice);
            }
            let got = state(&http, &base, key, &invoice.unwrap()).await;
            if got != want {
                failures.push(format!(
                    "case {case} copy {copy}: delivered {order:?}\n  in order: {want}\n  permuted: {got}"
                ));
            }
            done += 1;
        }
        case += 1;
    }
    token.cancel();
    task.abort();
    println!("{done} permuted streams over {case} lifecycles: {} diverged", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {done} permuted streams did not converge (replay with CHAOS_SEED={seed}):\n{}",
        failures.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
