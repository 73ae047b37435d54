//! Throughput of `classify` on one core, against a baseline that does everything else the
//! `arflow classify` command does (parse the JSONL line, write the JSONL answer) but classifies
//! nothing. The development set is repeated `ARFLOW_BENCH_REPEAT` times (default 200).
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
    let repeat: usize = std::env::var("ARFLOW_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let data = include_str!("../tests/data/replies.jsonl");
    let lines: Vec<&str> = data.lines().filter(|l| !l.trim().is_empty()).collect();
    let input: Vec<&str> = std::iter::repeat_n(lines.iter().copied(), repeat).flatten().collect();
    let n = input.len() as f64;
    let mut out = Vec::with_capacity(input.len() * 64);

    // Warm up: compile the rules, fill caches.
    run(&lines, &mut out, true);

    let baseline = run(&input, &mut out, false);
    let classified = run(&input, &mut out, true);
    let base_rate = n / baseline.as_secs_f64();
    let rate = n / classified.as_secs_f64();
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let _ = writeln!(w, "replies: {} ({} dev lines x {repeat}), single thread", input.len(), lines.len());
    let _ = writeln!(w, "baseline (parse + serialize):        {base_rate:>12.0} replies/s  ({baseline:.2?})");
    let _ = writeln!(w, "with classification:                 {rate:>12.0} replies/s  ({classified:.2?})");
    let _ = writeln!(
        w,
        "ratio classified / baseline:         {:>12.3}  (classification alone: {:.1} us/reply)",
        rate / base_rate,
        (classified.as_secs_f64() - baseline.as_secs_f64()).max(0.0) * 1e6 / n
    );
}
