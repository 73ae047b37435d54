//! `just bench` (edge): the gateway under a flood of unauthenticated 25 MiB inbound posts.
//!
//! 1. Payment webhooks (`invoice.paid`, signed) one after another on an idle gateway: p50/p99,
//!    the baseline.
//! 2. The same while 50 clients post 25 MiB to the inbound route with a wrong token, over and
//!    over, from one address under the default limits: p50/p99 as a ratio to the baseline, what the posts were answered, and how much the
//!    process's resident memory grew (the gateway must not buffer what it refuses).
//!    Targets: payment webhook p99 < 10 ms under the flood; memory growth < 50 MB.
//! 3. A key over its rate is answered 429 with Retry-After.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use arflow_testkit::stripe::{customer, event, invoice, signed_webhook};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{SECRET, TestApp};

const FLOOD_CLIENTS: usize = 50;
const FLOOD_BYTES: usize = 25 * 1024 * 1024;
const PAYMENTS: usize = 400;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `n` signed `invoice.paid` deliveries one after another; their latencies in ms, sorted.
async fn payments(app: &TestApp, firm: uuid::Uuid, tag: &str, n: usize) -> Vec<f64> {
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("in_{tag}_{i}");
        let mut object = invoice(&id, "cus_edge", &format!("E-{tag}-{i}"), 10_000, "usd", 1_700_000_000, "paid");
        object["customer"] = serde_json::json!("cus_edge");
        let evt = event(&format!("evt_{tag}_{i}"), "invoice.paid", 1_700_000_000 + i as i64, object);
        let (sig, body) = signed_webhook(SECRET, &evt);
        let t = Instant::now();
        let r = app
            .http
            .post(app.url(&format!("/webhooks/stripe/{firm}")))
            .header("Stripe-Signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ms
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Default limits: the flood comes from one address, as an unauthenticated flood would, and the
    // per-address limit (the signed Stripe webhook is exempt) is part of what keeps it cheap.
    let app = support::spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let cus = customer("cus_edge", "Edge Client", "ap@edge.test");
    let (sig, body) = signed_webhook(SECRET, &event("evt_cus_edge", "customer.created", 1_600_000_000, cus));
    let r = app.http.post(app.url(&format!("/webhooks/stripe/{}", firm.id))).header("Stripe-Signature", sig).body(body);
    assert_eq!(r.send().await.unwrap().status(), 200);
    payments(&app, firm.id, "warm", 50).await;

    // 1. Baseline.
    let idle = payments(&app, firm.id, "idle", PAYMENTS).await;
    let (idle50, idle99) = (percentile(&idle, 0.5), percentile(&idle, 0.99));

    // 2. The flood: one shared 25 MiB body (the clients never copy it).
    let payload = bytes::Bytes::from(vec![b'x'; FLOOD_BYTES]);
    let rss_before = rss_kib();
    let peak = Arc::new(AtomicU64::new(rss_before));
    let stop = Arc::new(AtomicBool::new(false));
    let (answered_401, refused_early, other) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let url = app.url(&format!("/webhooks/email/inbound/{}", firm.id));
    let mut flood = Vec::new();
    for _ in 0..FLOOD_CLIENTS {
        let (payload, stop, url) = (payload.clone(), stop.clone(), url.clone());
        let (a, e, o) = (answered_401.clone(), refused_early.clone(), other.clone());
        let http = reqwest::Client::new();
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match http.post(&url).bearer_auth("afi_wrong").body(payload.clone()).send().await {
                    Ok(r) if r.status() == 401 || r.status() == 429 => a.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => o.fetch_add(1, Ordering::Relaxed),
                    // The gateway answered and closed before taking the body.
                    Err(_) => e.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = payments(&app, firm.id, "flood", PAYMENTS).await;
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    sampler.await.unwrap();
    let (load50, load99) = (percentile(&loaded, 0.5), percentile(&loaded, 0.99));
    let grown_mb = (peak.load(Ordering::Relaxed).saturating_sub(rss_before)) as f64 / 1024.0;

    // 3. A key over its rate.
    let mut limited = None;
    for _ in 0..2_000 {
        let r = app.get(&firm.key, "/v1/firm").await;
        if r.status() == 429 {
            limited = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            break;
        }
    }

    println!("edge bench: {FLOOD_CLIENTS} clients posting {} MiB with a wrong token", FLOOD_BYTES / (1024 * 1024));
    println!("  payment webhook, idle:        p50 {idle50:.2} ms  p99 {idle99:.2} ms  ({PAYMENTS} deliveries)");
    println!(
        "  payment webhook, under flood: p50 {load50:.2} ms  p99 {load99:.2} ms  = {:.2}x / {:.2}x idle (target p99 < 10 ms)",
        load50 / idle50,
        load99 / idle99
    );
    println!(
        "  flood posts: {} answered 401 or 429, {} cut off by the gateway before their body was sent, {} other",
        answered_401.load(Ordering::Relaxed),
        refused_early.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed)
    );
    println!(
        "  resident memory: {:.1} MB before, peak +{grown_mb:.1} MB during the flood (target < 50 MB)",
        rss_before as f64 / 1024.0
    );
    println!(
        "  a key over its rate: {}",
        limited.map_or("never limited".to_string(), |s| format!("429, Retry-After {s}"))
    );
}
