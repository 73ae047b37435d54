//! Hold latency (fence 2's target: the hold visible to every channel within 1 s of the request).
//!
//! Starts a real nats-server, a fresh database and the opt-out service, then fires N opt-outs
//! one after another through (a) the firm-user API and (b) a `reply.classified` event (a hard
//! bounce), and measures from the request to the hold being readable in the `holds` bucket, seen
//! by a key-value watch (what a channel service would see). The baseline is a bare key-value put
//! observed by the same watch, in the same run: the ratios say what the service adds.
//!
//! `cargo bench -p arflow-optout --bench hold_latency` (`BENCH_N` opt-outs per path, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::events::{BounceInfo, Consent, ContactUpserted, ReplyClassified, ReplyKind};
use arflow_contracts::streams::{self, contact_channel_hold_key, contact_hold_key};
use arflow_contracts::subjects::{self, subject};
use arflow_contracts::{Envelope, msg_id};
use arflow_core::Channel;
use arflow_optout::{Application, Config};
use arflow_runtime::{Metrics, NatsSettings};
use arflow_service::api::{ACTOR_HEADER, FIRM_HEADER, INTERNAL_TOKEN_HEADER};
use arflow_testkit::{TestDb, TestNats};
use async_nats::jetstream::kv;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOKEN: &str = "internal-token-for-the-bench";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run());
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Stats { p50: at(0.50), p99: at(0.99), max: *v.last().unwrap() }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Waits until the watch reports a put on `key`; returns when it was seen.
async fn seen(rx: &mut mpsc::UnboundedReceiver<(String, Instant)>, key: &str) -> Instant {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, rx.recv()).await.expect("hold seen within 10 s").unwrap();
        if next.0 == key {
            return next.1;
        }
    }
}

async fn run() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let nats = TestNats::start();
    let db = TestDb::create().await;
    let mut config: Config = arflow_runtime::config::load_defaults(include_str!("../config/default.toml")).unwrap();
    config.nats.url = nats.url();
    config.database.url = Some(db.url().into());
    config.http.port = 0;
    config.internal.token = TOKEN.to_string().into();
    config.log.level = "warn".into();
    let shutdown = CancellationToken::new();
    let app = Application::build(config, shutdown.clone()).await.unwrap();
    let port = app.port();
    let task = tokio::spawn(app.run());
    let settings = NatsSettings::at(nats.url());
    let bus = Bus::connect(&settings, "bench", Metrics::new("bench")).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let http = reqwest::Client::new();
    let firm = Uuid::now_v7();

    // 2N contacts, known to the service before anything is timed.
    let mut contacts = Vec::with_capacity(2 * n);
    for i in 0..2 * n {
        let (contact, client) = (Uuid::now_v7(), Uuid::now_v7());
        let data = ContactUpserted {
            contact_id: contact,
            client_id: client,
            name: format!("Contact {i}"),
            email: Some(format!("c{i}@client.test")),
            phone: None,
            timezone: None,
            primary: true,
            consent: Consent { email: true, voice: false, sms: false },
            version: 1,
        };
        let kind = subjects::billing::CONTACT_UPSERTED;
        let env = Envelope::new(kind, "bench", chrono::Utc::now(), firm, contact, None, data);
        bus.publish_event(&subject(kind, firm), &format!("bench:{}", env.id), &env).await.unwrap();
        contacts.push((contact, client));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (known,): (i64,) = sqlx::query_as("SELECT count(*) FROM optout.contacts").fetch_one(&pool).await.unwrap();
        if known as usize == 2 * n {
            break;
        }
        assert!(Instant::now() < deadline, "{known} of {} contacts known", 2 * n);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One watch on the whole bucket, as a channel service would follow it.
    let kv = bus.js.get_key_value(streams::HOLDS_BUCKET).await.unwrap();
    let mut watch = kv.watch(">").await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(entry)) = watch.next().await {
            if entry.operation == kv::Operation::Put && tx.send((entry.key.clone(), Instant::now())).is_err() {
                break;
            }
        }
    });

    let mut baseline = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("bench.baseline.{i}");
        let t0 = Instant::now();
        kv.put(&key, "held".into()).await.unwrap();
        baseline.push(seen(&mut rx, &key).await - t0);
    }

    let mut api = Vec::with_capacity(n);
    for (contact, _) in &contacts[..n] {
        let t0 = Instant::now();
        let r = http
            .post(format!("http://127.0.0.1:{port}/v1/consent/opt-outs"))
            .header(FIRM_HEADER, firm.to_string())
            .header(ACTOR_HEADER, "bench")
            .header(INTERNAL_TOKEN_HEADER, TOKEN)
            .json(&serde_json::json!({"contact_id": contact, "reason": "bench"}))
            .send();
        let key = contact_hold_key(*contact);
        let (r, at) = tokio::join!(r, seen(&mut rx, &key));
        assert_eq!(r.unwrap().status(), 201);
        api.push(at - t0);
    }

    let mut replies = Vec::with_capacity(n);
    for (contact, client) in &contacts[n..] {
        let reply_id = Uuid::now_v7();
        let data = ReplyClassified {
            reply_id,
            channel: Channel::Email,
            kind: ReplyKind::Bounce,
            intent: None,
            promised_date: None,
            evidence: String::new(),
            sure: true,
            confidence: 1.0,
            needs_review: false,
            scores: vec![],
            labelled_by: None,
            client_text: String::new(),
            invoice_id: None,
            contact_id: Some(*contact),
            client_id: Some(*client),
            matched_by: Some("in_reply_to".into()),
            answered_message_id: None,
            step: None,
            from: None,
            subject: None,
            received_at: chrono::Utc::now(),
            reference_date: chrono::Utc::now().date_naive(),
            bounce: Some(BounceInfo { recipient: "x@client.test".into(), hard: true, status: "5.1.1".into() }),
            action: "bench".into(),
        };
        let kind = subjects::reply::CLASSIFIED;
        let env = Envelope::new(kind, "email", chrono::Utc::now(), firm, reply_id, None, data);
        let t0 = Instant::now();
        bus.publish_event(&subject(kind, firm), &msg_id::reply(reply_id, "classified"), &env).await.unwrap();
        replies.push(seen(&mut rx, &contact_channel_hold_key(*contact, Channel::Email)).await - t0);
    }

    let base = stats(baseline);
    println!(
        "\nhold latency: request -> hold readable in the holds bucket (KV watch), {n} sequential opt-outs per path"
    );
    println!("{:<34} {:>10} {:>10} {:>10} {:>9} {:>9}", "path", "p50", "p99", "max", "p50/base", "p99/base");
    let row = |name: &str, s: &Stats| {
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>8.1}x {:>8.1}x",
            name,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            s.p50.as_secs_f64() / base.p50.as_secs_f64(),
            s.p99.as_secs_f64() / base.p99.as_secs_f64()
        )
    };
    row("baseline: bare KV put", &base);
    let api = stats(api);
    row("(a) firm-user API (POST opt-outs)", &api);
    let replies = stats(replies);
    row("(b) reply.classified (hard bounce)", &replies);
    let worst = api.max.max(replies.max);
    let verdict = if worst < Duration::from_secs(1) { "met" } else { "MISSED" };
    println!("target (every hold within 1 s): {verdict}, worst {}", ms(worst));

    shutdown.cancel();
    let _ = task.await;
}
