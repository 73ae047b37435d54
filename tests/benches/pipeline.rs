//! `just bench`: arflow's performance figures, each reported as a ratio to a baseline
//! measured in the same run on the same machine.
//!
//! 1. Pipeline throughput: steps due -> emails accepted by the SMTP sink, over
//!    `ARFLOW_BENCH_INVOICES` invoices (default 20,000), vs. the same PostgreSQL's
//!    single-row commit rate. Target >= 0.5x.
//! 2. Payment webhook -> hold visible in the `holds` bucket, p50/p99, vs. a bare KV put
//!    round trip. Target p99 < 2 ms.
//! 3. Webhook response p99 under a steady load, vs. `/healthz` under the same load.
//!    Target p99 < 10 ms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_contracts::events::*;
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_tests::{TestApp, start_time};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use futures::StreamExt;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("ARFLOW_BENCH_INVOICES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let app = TestApp::spawn().await;
    println!(
        "arflow bench: {} cores, {n} invoices",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    // Baseline 1: single-row commits on the same PostgreSQL.
    sqlx::query("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, v int NOT NULL)")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let commits = 2_000;
    let t = Instant::now();
    for i in 0..commits {
        sqlx::query("INSERT INTO bench_commits (v) VALUES ($1)").bind(i).execute(&mut *conn).await.unwrap();
    }
    let commit_rate = commits as f64 / t.elapsed().as_secs_f64();
    drop(conn);

    // 1. Pipeline: plans for n invoices whose pre-due reminder is due at the same instant.
    let firm_id = Uuid::now_v7();
    let due = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let feed = Instant::now();
    let mut acks = futures::stream::iter(0..n)
        .map(|i| {
            let bus = app.bus.clone();
            async move {
                let ev = eligibility_event(i, due);
                let invoice_id = ev.invoice_id;
                let env =
                    Envelope::new(subjects::eligibility::CHANGED, "bench", start_time(), firm_id, invoice_id, None, ev);
                bus.publish_event(
                    &subjects::subject(subjects::eligibility::CHANGED, firm_id),
                    &msg_id::eligibility(invoice_id, 1),
                    &env,
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(256);
    while acks.next().await.is_some() {}
    app.process_until_idle().await;
    let planned = feed.elapsed();
    let due_at = Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).unwrap();
    let before = app.smtp.count();
    let t = Instant::now();
    if std::env::var("ARFLOW_BENCH_TRACE").is_ok() {
        let pool = app.pool.clone();
        let t0 = t;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let fired: (i64,) = sqlx::query_as("SELECT count(*) FROM scheduler.steps WHERE state <> 'pending'")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or((0,));
                let emails: (i64, i64) =
                    sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE state = 'sent') FROM email.emails")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or((0, 0));
                eprintln!(
                    "t={:>5.2}s steps_fired={} emails_queued={} emails_sent={}",
                    t0.elapsed().as_secs_f64(),
                    fired.0,
                    emails.0,
                    emails.1
                );
            }
        });
    }
    arflow_bus::clock::set(&app.bus, due_at).await.unwrap();
    let mails = app.smtp.wait_for(before + n, std::time::Duration::from_secs(1800)).await.len() - before;
    let pipeline_secs = t.elapsed().as_secs_f64();
    let throughput = mails as f64 / pipeline_secs;

    // 2. Payment webhook -> hold visible, vs. a bare KV put.
    let kv = app.bus.js.get_key_value("holds").await.unwrap();
    let mut bare = vec![];
    for i in 0..300 {
        let t = Instant::now();
        kv.put(format!("bench.{i}"), "x".into()).await.unwrap();
        bare.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let firm = app.create_firm().await;
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut watch = kv.watch("invoice.>").await.unwrap();
    let seen_w = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(e)) = watch.next().await {
            if std::str::from_utf8(&e.value).unwrap_or_default().contains("\"held\"") {
                seen_w.lock().unwrap().entry(e.key.clone()).or_insert_with(Instant::now);
            }
        }
    });
    // The invoices exist before they are paid, as in production (not measured).
    for i in 0..300 {
        let object = arflow_testkit::stripe::invoice(
            &format!("in_hold_{i}"),
            "cus_bench",
            "B-1",
            10_000,
            "usd",
            1_775_000_000,
            "open",
        );
        let event = arflow_testkit::stripe::event(
            &format!("evt_hold_open_{i}"),
            "invoice.finalized",
            Utc::now().timestamp(),
            object,
        );
        assert!(app.stripe(&firm, &event).await.status().is_success());
    }
    app.process_until_idle().await;
    let mut visible = vec![];
    for i in 0..300 {
        let mut object =
            arflow_testkit::stripe::invoice(&format!("in_hold_{i}"), "cus_bench", "B-1", 10_000, "usd", 0, "paid");
        object["amount_remaining"] = serde_json::json!(0);
        let event =
            arflow_testkit::stripe::event(&format!("evt_hold_{i}"), "invoice.paid", Utc::now().timestamp(), object);
        let t = Instant::now();
        let r = app.stripe(&firm, &event).await;
        let body: serde_json::Value = r.json().await.unwrap();
        let key = format!("invoice.{}", body["invoice_id"].as_str().unwrap());
        let at = loop {
            if let Some(at) = seen.lock().unwrap().get(&key) {
                break *at;
            }
            tokio::task::yield_now().await;
        };
        visible.push((at - t).as_secs_f64() * 1e3);
    }

    // 3. Webhook p99 under a steady load (200 requests/s for 5 s) vs. /healthz under the same load.
    let webhook = steady_load(&app, &firm, true).await;
    let health = steady_load(&app, &firm, false).await;

    let (bare, visible) = (sorted(bare), sorted(visible));
    println!("\n| measure | value | baseline (same run) | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| pipeline: steps due -> emails accepted | {throughput:.0} emails/s ({mails} in {pipeline_secs:.1} s) | {commit_rate:.0} single-row commits/s | {:.2}x | >= 0.5x |",
        throughput / commit_rate
    );
    println!(
        "| payment webhook -> hold visible | p50 {:.2} ms, p99 {:.2} ms | bare KV put p50 {:.2} ms, p99 {:.2} ms | p99 {:.1}x | p99 < 2 ms |",
        percentile(&visible, 0.5),
        percentile(&visible, 0.99),
        percentile(&bare, 0.5),
        percentile(&bare, 0.99),
        percentile(&visible, 0.99) / percentile(&bare, 0.99)
    );
    println!(
        "| webhook response at 200 req/s | p50 {:.2} ms, p99 {:.2} ms | /healthz p50 {:.2} ms, p99 {:.2} ms | p99 {:.1}x | p99 < 10 ms |",
        percentile(&webhook, 0.5),
        percentile(&webhook, 0.99),
        percentile(&health, 0.5),
        percentile(&health, 0.99),
        percentile(&webhook, 0.99) / percentile(&health, 0.99)
    );
    println!("(planning {n} invoices took {:.1} s, not counted)", planned.as_secs_f64());
}

/// 1,000 requests paced at 200/s; returns sorted latencies in ms.
async fn steady_load(app: &TestApp, firm: &arflow_tests::Firm, webhook: bool) -> Vec<f64> {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
    let mut tasks = vec![];
    for i in 0..1_000 {
        tick.tick().await;
        let http = app.http.clone();
        let req = if webhook {
            let object = arflow_testkit::stripe::invoice(
                &format!("in_load_{i}"),
                // A firm's webhooks spread over its customers.
                &format!("cus_load_{}", i % 50),
                "L-1",
                25_000,
                "usd",
                1_775_000_000,
                "open",
            );
            let event = arflow_testkit::stripe::event(
                &format!("evt_load_{i}"),
                "invoice.updated",
                Utc::now().timestamp(),
                object,
            );
            let (sig, body) = arflow_testkit::stripe::signed_webhook(&firm.secret, &event);
            http.post(app.url(&format!("/webhooks/stripe/{}", firm.id))).header("Stripe-Signature", sig).body(body)
        } else {
            http.get(app.url("/healthz"))
        };
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = req.send().await.unwrap();
            assert!(r.status().is_success());
            t.elapsed().as_secs_f64() * 1e3
        }));
    }
    let mut out = vec![];
    for t in tasks {
        out.push(t.await.unwrap());
    }
    sorted(out)
}

fn eligibility_event(i: usize, due: NaiveDate) -> EligibilityChanged {
    let passed = |rule: &str| Check { rule: rule.into(), passed: true, detail: "ok".into() };
    let mut d = arflow_contracts::fixtures::decision(Some(due), "UTC", Tier::Standard);
    d.checks = ["stripe_connected", "invoice_open", "not_excluded", "amount_above_minimum"].map(passed).to_vec();
    d.invoice.stripe_invoice_id = format!("in_bench_{i}");
    d.invoice.number = Some(format!("B-{i}"));
    d.invoice.amount_due = Decimal::new(120_000, 2);
    d.invoice.amount_remaining = Decimal::new(120_000, 2);
    d.invoice.hosted_invoice_url = Some(format!("https://invoice.stripe.com/i/bench_{i}"));
    d.client.name = format!("Client {i}");
    d.contacts[0].name = "Billing".into();
    d.contacts[0].email = Some(format!("billing{i}@client.test"));
    d.firm.name = "Bench Firm".into();
    d.firm.sender_email = "ar@bench.test".into();
    d.evaluated_at = start_time() + Duration::zero();
    d
}
