//! `just train-replies`: trains the reply classifier's model from the labelled replies in
//! `shared/replies/data/train/` and writes `shared/replies/model/intent.bin` and
//! `shared/replies/model/REPORT.md`.
//!
//! Every method is measured by leave-one-writer-out cross-validation (each file of the training
//! folder is one writer; a fold holds out a whole writer, so the figures say how the model does on
//! phrasings nobody in the training set wrote). On the out-of-fold scores: one temperature is fitted
//! (calibration), then the thresholds (act on an opt-out, send to a person) are chosen with the
//! review rate capped. The best linear method is refitted on everything and written. The blind
//! split (`shared/replies/data/blind.jsonl`) is never read here.

mod data;
mod methods;
mod tune;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use arflow_replies::Signals;
use arflow_replies::model::{CLASSES, LinearModel, softmax};

use data::Example;
use methods::Method;

/// The most replies the thresholds may send to a person (the firm must not drown; the issue's
/// ceiling is 10%, kept under it with room for unseen data).
const REVIEW_BUDGET: f64 = 0.07;
const SEED: u64 = 20261207;

struct Measured {
    method: Method,
    temperature: f32,
    thresholds: arflow_replies::model::Thresholds,
    overall: tune::Figures,
    per_group: Vec<(String, tune::Figures)>,
    train_secs: f64,
    model_replies_per_sec: f64,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = PathBuf::from("shared/replies/data/train");
    let mut out = PathBuf::from("shared/replies/model/intent.bin");
    let mut report_path = PathBuf::from("shared/replies/model/REPORT.md");
    let mut compare = true;
    let mut dump: Option<PathBuf> = None;
    let (mut lr, mut epochs, mut l2, mut bits, mut bags) = (0.25f32, 12usize, 1e-5f32, 18u32, 3usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data_dir = args.next().context("--data needs a folder")?.into(),
            "--out" => out = args.next().context("--out needs a file")?.into(),
            "--report" => report_path = args.next().context("--report needs a file")?.into(),
            "--no-compare" => compare = false,
            "--lr" => lr = args.next().context("--lr needs a number")?.parse()?,
            "--epochs" => epochs = args.next().context("--epochs needs a number")?.parse()?,
            "--l2" => l2 = args.next().context("--l2 needs a number")?.parse()?,
            "--bags" => bags = args.next().context("--bags needs a number")?.parse()?,
            "--bits" => bits = args.next().context("--bits needs a number")?.parse()?,
            "--dump-oof" => dump = Some(args.next().context("--dump-oof needs a file")?.into()),
            other => anyhow::bail!(
                "unknown argument {other:?} (expected --data DIR, --out FILE, --report FILE, --no-compare)"
            ),
        }
    }
    let examples = data::load(&data_dir)?;
    let mut groups: Vec<String> = examples.iter().map(|e| e.group.clone()).collect();
    groups.sort();
    groups.dedup();
    eprintln!("{} labelled replies from {} writers: {}", examples.len(), groups.len(), groups.join(", "));

    let softmax_method = Method::Softmax { buckets: 1 << bits, epochs, lr, l2, bags };
    let methods = if compare {
        vec![
            softmax_method,
            Method::EmbeddingBag { buckets: 1 << 18, dim: 48, epochs: 12, lr: 0.4 },
            Method::Linfa { vocabulary: 6000, alpha: 0.02, iterations: 150 },
        ]
    } else {
        vec![softmax_method]
    };
    let mut measured = Vec::new();
    for m in methods {
        eprintln!("cross-validating {} ...", m.name());
        let (result, probs) = cross_validate(&m, &examples, &groups)?;
        if let Some(path) = &dump {
            dump_oof(path, &examples, &probs, &result.thresholds)?;
        }
        measured.push(result);
    }
    // The shipped model: the best linear method (fewest unsafe outcomes, then fewest missed
    // opt-outs, then fewest wrong intents acted on).
    let rank = |x: &Measured| {
        (
            x.overall.unsafe_outcomes,
            ((1.0 - x.overall.opt_out_recall) * 1e6) as u64,
            ((x.overall.acted_error_rate + x.overall.review_rate * 0.3) * 1e6) as u64,
        )
    };
    let best = measured
        .iter()
        .filter(|x| !matches!(x.method, Method::EmbeddingBag { .. }))
        .min_by_key(|x| rank(x))
        .context("no linear method measured")?;
    eprintln!("refitting {} on all {} replies ...", best.method.name(), examples.len());
    let all: Vec<&Example> = examples.iter().collect();
    let fitted = best.method.fit(&all, SEED)?;
    let (buckets, weights, bias) = fitted.linear().context("the chosen method is not linear")?;
    let metadata = serde_json::json!({
        "method": best.method.name(),
        "trained_on": examples.len(),
        "writers": groups,
        "temperature": best.temperature,
        "review_budget": REVIEW_BUDGET,
        "cross_validated": best.overall,
    })
    .to_string();
    let model = LinearModel::new(buckets as u32, bias, &weights, best.temperature, best.thresholds.clone(), metadata)?;
    let bytes = model.to_bytes();
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    let report = report(&measured, best, examples.len(), &groups, bytes.len());
    std::fs::write(&report_path, &report).with_context(|| format!("cannot write {}", report_path.display()))?;
    println!("{report}");
    eprintln!("wrote {} ({} bytes) and {}", out.display(), bytes.len(), report_path.display());
    Ok(())
}

/// Out-of-fold decisions, one JSON line per reply, for reading the misses.
fn dump_oof(
    path: &std::path::Path,
    examples: &[Example],
    probs: &[Signals],
    th: &arflow_replies::model::Thresholds,
) -> anyhow::Result<()> {
    let all: Vec<&Example> = examples.iter().collect();
    let d = tune::decisions(&all, probs, th);
    let mut out = String::new();
    for ((e, p), (intent, review)) in examples.iter().zip(probs).zip(d) {
        let line = serde_json::json!({
            "id": e.id, "group": e.group, "truth": e.intent.as_str(), "got": intent.as_str(), "review": review,
            "segment_opt_out": p.segment_opt_out,
            "probs": arflow_replies::Intent::ALL.iter().zip(&p.probs).map(|(i, v)| format!("{}={:.2}", i.as_str(), v)).collect::<Vec<_>>(),
            "rules_opt_out": e.analysis.rules_opt_out, "own": e.analysis.own,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

fn cross_validate(
    method: &Method,
    examples: &[Example],
    groups: &[String],
) -> anyhow::Result<(Measured, Vec<Signals>)> {
    let mut logits = vec![[0.0f32; CLASSES]; examples.len()];
    let mut segment_logits: Vec<Vec<[f32; CLASSES]>> = vec![Vec::new(); examples.len()];
    let started = Instant::now();
    let mut scoring = 0.0;
    for g in groups {
        let train: Vec<&Example> = examples.iter().filter(|e| &e.group != g).collect();
        let fitted = method.fit(&train, SEED)?;
        let t = Instant::now();
        for (i, e) in examples.iter().enumerate().filter(|(_, e)| &e.group == g) {
            logits[i] = fitted.logits(&e.analysis.features);
            segment_logits[i] = e.analysis.segments.iter().map(|s| fitted.logits(&s.features)).collect();
        }
        scoring += t.elapsed().as_secs_f64();
    }
    let train_secs = (started.elapsed().as_secs_f64() - scoring) / groups.len() as f64;
    let labels: Vec<usize> = examples.iter().map(Example::label).collect();
    let temperature = tune::temperature(&logits, &labels);
    let opt = arflow_replies::Intent::OptOut.index();
    let probs: Vec<Signals> = examples
        .iter()
        .zip(&logits)
        .zip(&segment_logits)
        .map(|((e, l), segs)| Signals {
            probs: softmax(l, temperature),
            segment_opt_out: segs.iter().map(|s| softmax(s, temperature)[opt]).fold(0.0, f32::max),
            segment_probs: Vec::new(),
            wordless: e.wordless,
            rules_opt_out: e.analysis.rules_opt_out.is_some(),
        })
        .collect();
    let all: Vec<&Example> = examples.iter().collect();
    let thresholds = tune::thresholds(&all, &probs, REVIEW_BUDGET);
    let overall = tune::figures(&all, &probs, &thresholds);
    let per_group = groups
        .iter()
        .map(|g| {
            let idx: Vec<usize> = (0..examples.len()).filter(|&i| &examples[i].group == g).collect();
            let ex: Vec<&Example> = idx.iter().map(|&i| &examples[i]).collect();
            let p: Vec<Signals> = idx.iter().map(|&i| probs[i].clone()).collect();
            (g.clone(), tune::figures(&ex, &p, &thresholds))
        })
        .collect();
    let measured = Measured {
        method: method.clone(),
        temperature,
        thresholds,
        overall,
        per_group,
        train_secs,
        model_replies_per_sec: examples.len() as f64 / scoring.max(1e-9),
    };
    Ok((measured, probs))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn report(measured: &[Measured], best: &Measured, n: usize, groups: &[String], size: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Reply model: training report\n");
    let _ = writeln!(
        s,
        "Written by `just train-replies`. {n} labelled replies from {} writers ({}); leave-one-writer-out \
         cross-validation; thresholds chosen on the out-of-fold probabilities with the review rate capped at {}.\n",
        groups.len(),
        groups.join(", "),
        pct(REVIEW_BUDGET)
    );
    let _ = writeln!(s, "## Methods compared (out-of-fold)\n");
    let _ = writeln!(
        s,
        "| method | intent | opt-out recall | false opt-outs | unsafe | review rate | wrong & acted on | log-loss | ECE | train s/fold | model replies/s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for m in measured {
        let f = &m.overall;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.1} | {:.0} |",
            m.method.name(),
            pct(f.accuracy),
            pct(f.opt_out_recall),
            pct(f.false_opt_out_rate),
            f.unsafe_outcomes,
            pct(f.review_rate),
            pct(f.acted_error_rate),
            f.log_loss,
            f.ece,
            m.train_secs,
            m.model_replies_per_sec
        );
    }
    let _ = writeln!(s, "\n## Shipped: {}\n", best.method.name());
    let t = &best.thresholds;
    let _ = writeln!(
        s,
        "Temperature {:.2}. Opt-out acted on at P(opt_out) >= {:.3} (>= {:.3} when the opt-out rules read one too); any other reply whose P(opt_out), or one segment's, reaches {:.3} goes to a person (unless its intent opens a case anyway), and so does a promise, acknowledgement or auto-reply while the intents that must stop the cadence sum to {:.3} or more. Model file {size} bytes.\n",
        best.temperature, t.opt_out_act, t.opt_out_act_with_rules, t.opt_out_signal, t.caution
    );
    let _ = writeln!(s, "| intent | act threshold | precision | recall | support |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (i, (name, p, r, support)) in best.overall.per_intent.iter().enumerate() {
        let _ = writeln!(s, "| {name} | {:.3} | {} | {} | {support} |", t.act[i], pct(*p), pct(*r));
    }
    let _ = writeln!(s, "\n### By held-out writer\n");
    let _ = writeln!(s, "| writer | n | intent | opt-out recall | false opt-outs | unsafe | review rate |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (g, f) in &best.per_group {
        let _ = writeln!(
            s,
            "| {g} | {} | {} | {} | {} | {} | {} |",
            f.n,
            pct(f.accuracy),
            pct(f.opt_out_recall),
            pct(f.false_opt_out_rate),
            f.unsafe_outcomes,
            pct(f.review_rate)
        );
    }
    s
}
