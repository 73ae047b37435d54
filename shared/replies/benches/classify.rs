//! Throughput of `classify` on one core, against a baseline that does everything else the
//! `arflow classify` command does (parse the JSONL line, write the JSONL answer) but classifies
//! nothing. The development set is repeated `ARFLOW_BENCH_REPEAT` times (default 100) per round,
//! `ARFLOW_BENCH_ROUNDS` rounds (default 5); best and median rounds are reported.
//!
//! `cargo bench -p arflow-replies --bench classify`

use std::io::Write;
use std::time::{Duration, Instant};

use arflow_replies::{Date, Intent, Source, classify};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Line {
    id: String,
    channel: Source,
    reference_date: Date,
    text: String,
}

#[derive(Serialize)]
struct Out<'a> {
    id: &'a str,
    intent: Intent,
    promised_date: Option<Date>,
}

fn run(input: &[&str], out: &mut Vec<u8>, with_classification: bool) -> Duration {
    out.clear();
    let start = Instant::now();
    for raw in input {
        let Ok(line) = serde_json::from_str::<Line>(raw) else { continue };
        let (intent, promised_date) = if with_classification {
            let c = classify(line.channel, &line.text, line.reference_date);
            (c.intent, c.promised_date)
        } else {
            (Intent::Acknowledged, None)
        };
        let _ = serde_json::to_writer(&mut *out, &Out { id: &line.id, intent, promised_date });
        out.push(b'\n');
    }
    start.elapsed()
}

fn main() {
    let repeat: usize = std::env::var("ARFLOW_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let rounds: usize = std::env::var("ARFLOW_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let data = include_str!("../tests/data/replies.jsonl");
    let lines: Vec<&str> = data.lines().filter(|l| !l.trim().is_empty()).collect();
    let input: Vec<&str> = std::iter::repeat_n(lines.iter().copied(), repeat).flatten().collect();
    let n = input.len() as f64;
    let mut out = Vec::with_capacity(input.len() * 64);

    // Warm up: compile the rules, fill caches.
    run(&lines, &mut out, true);

    // Alternate the two runs; the machine may be shared, so keep every round and report the best
    // (least disturbed) and the median.
    let mut baseline = Vec::with_capacity(rounds);
    let mut classified = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        baseline.push(run(&input, &mut out, false));
        classified.push(run(&input, &mut out, true));
    }
    baseline.sort();
    classified.sort();
    let rate = |d: Duration| n / d.as_secs_f64().max(1e-9);
    let (base_best, base_median) = (baseline[0], baseline[rounds / 2]);
    let (best, median) = (classified[0], classified[rounds / 2]);
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let _ = writeln!(
        w,
        "replies: {} ({} dev lines x {repeat}) per round, {rounds} rounds, single thread",
        input.len(),
        lines.len()
    );
    let _ = writeln!(
        w,
        "baseline (parse + serialize):  best {:>10.0} replies/s  median {:>10.0} replies/s",
        rate(base_best),
        rate(base_median)
    );
    let _ = writeln!(
        w,
        "with classification:           best {:>10.0} replies/s  median {:>10.0} replies/s",
        rate(best),
        rate(median)
    );
    let _ = writeln!(
        w,
        "ratio classified / baseline:   best {:>10.3}  median {:.3}  (classification alone: {:.1} us/reply at best)",
        rate(best) / rate(base_best),
        rate(median) / rate(base_median),
        (best.as_secs_f64() - base_best.as_secs_f64()).max(0.0) * 1e6 / n
    );
}
