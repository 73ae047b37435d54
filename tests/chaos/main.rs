//! The fault suite (issue 14, `just chaos`): every service as its own OS process, NATS behind a
//! TCP proxy that delays and resets, a PostgreSQL cluster of its own that it stops and starts.
//! A seeded portfolio runs on the simulated clock twice, fault-free and under faults (kill -9 of
//! random services at random points, a NATS restart, a PostgreSQL outage, a slow and resetting
//! network), and the two must agree: the same final state for every invoice, nothing lost,
//! nothing sent twice, nothing sent after a payment or an opt-out, an empty DLQ.
//!
//! `cargo nextest run -p arflow-tests --test chaos` runs the bounded smoke run; `CHAOS_LONG=1`
//! the long one (2,000 invoices, 24 kill rounds, a 5-minute outage) with a fresh seed. `CHAOS_SEED`
//! replays a seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg;
mod portfolio;
mod props;
mod proxy;
mod run;
mod stack;

use run::{Outcome, Params};
use std::time::Duration;

fn long() -> bool {
    std::env::var("CHAOS_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The smoke run (in `just test`, so in CI) keeps one seed, the one that found the clock watch
/// missing a time set during a NATS restart, so that CI judges the code, not the draw; the long
/// run (`just chaos`) draws a new one each time to look for new faults.
const SMOKE_SEED: u64 = 7_482_516_586_935_700_036;

fn seed() -> u64 {
    match std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => seed,
        None if long() => rand::random(),
        None => SMOKE_SEED,
    }
}

fn params(seed: u64) -> Params {
    if long() {
        Params {
            seed,
            invoices: 2_000,
            days: 45,
            kill_rounds: 24,
            proxy_rounds: 6,
            pg_outage: Duration::from_secs(300),
            settle_timeout: Duration::from_secs(900),
        }
    } else {
        Params {
            seed,
            invoices: 100,
            days: 18,
            kill_rounds: 6,
            proxy_rounds: 2,
            pg_outage: Duration::from_secs(20),
            settle_timeout: Duration::from_secs(180),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_suite() {
    let seed = seed();
    let p = params(seed);
    println!(
        "CHAOS_SEED={seed} ({} run: {} invoices over {} simulated days)",
        if long() { "long" } else { "smoke" },
        p.invoices,
        p.days
    );
    let dir = std::env::temp_dir().join(format!("arflow-chaos-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("service logs and the PostgreSQL cluster: {}", dir.display());
    let pg = std::sync::Arc::new(pg::PgCluster::start(&dir));
    let world = portfolio::Portfolio::generate(seed, p.invoices, p.days);
    let plan = run::plan_faults(&p);
    for (day, faults) in &plan {
        for f in faults {
            println!("planned fault on day {day}: {f:?}");
        }
    }

    let reference = run::run(&p, &world, &pg, "chaos_reference", &dir.join("reference"), Default::default()).await;
    println!("reference run: {:?}", reference.wall);
    let faulted = run::run(&p, &world, &pg, "chaos_faulted", &dir.join("faulted"), plan).await;
    println!("faulted run: {:?}", faulted.wall);

    let verdict = compare(&reference, &faulted);
    print_summary(&p, &reference, &faulted, &verdict);
    verdict.assert_clean(seed, &reference, &faulted);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Debug, Default)]
struct Verdict {
    /// Invoices whose final state differs, not explained by an uncertain email.
    mismatched: Vec<String>,
    /// Differences on invoices with an uncertain email (reported, not counted).
    explained: Vec<String>,
    /// Sends of the reference run missing from the faulted run (not uncertain).
    lost: Vec<String>,
}

impl Verdict {
    /// Every figure the issue requires to be 0, for both runs (the reference too: a defect
    /// that needs no fault is still a defect). Each message names the seed to replay it.
    fn assert_clean(&self, seed: u64, r: &Outcome, f: &Outcome) {
        let replay = format!("replay with CHAOS_SEED={seed}");
        for (run, o) in [("reference", r), ("faulted", f)] {
            assert!(o.duplicates.is_empty(), "{run} run: sends duplicated ({replay}): {:?}", o.duplicates);
            assert!(
                o.after_hold.is_empty(),
                "{run} run: sends after a payment or an opt-out ({replay}): {:?}",
                o.after_hold
            );
            assert!(o.dlq.is_empty(), "{run} run: DLQ not empty ({replay}): {:?}", o.dlq);
            assert!(
                o.dropped_by_server.is_empty(),
                "{run} run: messages dropped by the server ({replay}): {:?}",
                o.dropped_by_server
            );
        }
        assert!(self.lost.is_empty(), "sends lost under faults ({replay}): {:?}", self.lost);
        assert!(
            self.mismatched.is_empty(),
            "invoices in another final state under faults ({replay}):\n{}",
            self.mismatched.join("\n")
        );
    }
}

/// What an invoice's state says it sent: `name=email:sent` etc.
fn sends(state: &str) -> Vec<String> {
    state
        .split(' ')
        .filter_map(|s| {
            let (name, rest) = s.split_once('=')?;
            let inner = rest.split_once('[')?.1.trim_end_matches(']');
            Some(
                inner
                    .split(',')
                    .filter(|x| x.ends_with(":sent") || x.starts_with("call:ended") || x.contains(":placed"))
                    .map(|x| format!("{name}={x}"))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect()
}

fn compare(reference: &Outcome, faulted: &Outcome) -> Verdict {
    let mut v = Verdict::default();
    for (inv, want) in &reference.invoices {
        let got = faulted.invoices.get(inv).map(String::as_str).unwrap_or("<missing>");
        if got == want {
            continue;
        }
        let line = format!("{inv}\n    reference: {want}\n    faulted:   {got}");
        if faulted.uncertain_invoices.contains(inv) {
            v.explained.push(line);
            continue;
        }
        let have = sends(got);
        for s in sends(want) {
            if !have.contains(&s) {
                v.lost.push(format!("{inv}: {s}"));
            }
        }
        v.mismatched.push(line);
    }
    for inv in faulted.invoices.keys().filter(|k| !reference.invoices.contains_key(*k)) {
        v.mismatched.push(format!("{inv}: only in the faulted run"));
    }
    v
}

fn print_summary(p: &Params, r: &Outcome, f: &Outcome, v: &Verdict) {
    let kinds = ["kill -9", "NATS restart", "PostgreSQL outage", "proxy slow", "proxy reset"];
    let faults: usize = f.faults.values().sum();
    let row = |k: &str, a: String, b: String| println!("| {k:<34} | {a:>12} | {b:>12} |");
    println!("\n=== fault suite, seed {} ===", p.seed);
    row("", "reference".into(), "faulted".into());
    row("invoices", r.invoices.len().to_string(), f.invoices.len().to_string());
    row("rounds (faults injected)", "0".into(), faults.to_string());
    for k in kinds {
        row(&format!("  {k}"), "-".into(), f.faults.get(k).copied().unwrap_or(0).to_string());
    }
    row("PostgreSQL outage", "-".into(), format!("{:.1} s", f.pg_outage.as_secs_f64()));
    row("events (all streams)", r.events.to_string(), f.events.to_string());
    row(
        "payments / unsubscribes / replies",
        format!("{}/{}/{}", r.payments, r.unsubscribes, r.replies),
        format!("{}/{}/{}", f.payments, f.unsubscribes, f.replies),
    );
    row("emails sent (reminders)", r.emails.to_string(), f.emails.to_string());
    row("notification emails", r.notifications.to_string(), f.notifications.to_string());
    row("calls", r.calls.to_string(), f.calls.to_string());
    row("texts", r.texts.to_string(), f.texts.to_string());
    row("duplicates (per step)", r.duplicates.len().to_string(), f.duplicates.len().to_string());
    row("sends after a payment/opt-out", r.after_hold.len().to_string(), f.after_hold.len().to_string());
    row("lost (sends missing vs reference)", "-".into(), v.lost.len().to_string());
    row(
        "lost (server gave up: max deliveries)",
        r.dropped_by_server.len().to_string(),
        f.dropped_by_server.len().to_string(),
    );
    row("invoices in another final state", "-".into(), v.mismatched.len().to_string());
    row("uncertain emails (reported)", r.uncertain_emails.to_string(), f.uncertain_emails.to_string());
    row("  invoices differing by them", "-".into(), v.explained.len().to_string());
    row("DLQ entries", r.dlq.len().to_string(), f.dlq.len().to_string());
    row(
        "unexpected process exits",
        r.unexpected_exits.values().sum::<u32>().to_string(),
        f.unexpected_exits.values().sum::<u32>().to_string(),
    );
    row("wall time", format!("{:.0} s", r.wall.as_secs_f64()), format!("{:.0} s", f.wall.as_secs_f64()));
    if !f.unexpected_exits.is_empty() {
        println!("unexpected exits (restarted by the supervisor): {:?}", f.unexpected_exits);
    }
    let mut types: Vec<_> = r.events_by_type.keys().chain(f.events_by_type.keys()).collect();
    types.sort();
    types.dedup();
    for t in types {
        let (a, b) = (r.events_by_type.get(t).copied().unwrap_or(0), f.events_by_type.get(t).copied().unwrap_or(0));
        if a != b {
            println!("event count differs: {t}: reference {a}, faulted {b}");
        }
    }
    let show = |what: &str, items: &[String]| {
        for i in items.iter().take(20) {
            println!("{what}: {i}");
        }
        if items.len() > 20 {
            println!("{what}: ... {} more", items.len() - 20);
        }
    };
    show("uncertain (explained)", &v.explained);
    show("MISMATCH", &v.mismatched);
    show("LOST", &v.lost);
    show("DUPLICATE (reference)", &r.duplicates);
    show("DUPLICATE (faulted)", &f.duplicates);
    show("AFTER HOLD (reference)", &r.after_hold);
    show("AFTER HOLD (faulted)", &f.after_hold);
    show("DLQ (reference)", &r.dlq);
    show("DLQ (faulted)", &f.dlq);
    show("DROPPED (faulted)", &f.dropped_by_server);
}
