//! Calibration (one temperature fitted on out-of-fold scores) and the decision thresholds,
//! chosen on out-of-fold probabilities by the very function the classifier uses
//! ([`arflow_replies::choose`]), and the figures that judge them.

use arflow_replies::model::{CLASSES, Thresholds, softmax};
use arflow_replies::{CONTINUES, Intent, MUST_STOP, Signals, choose};

use crate::data::Example;

/// The most replies the thresholds may read as opt-outs wrongly (the ceiling is 1%).
pub const MAX_FALSE_OPT_OUTS: f64 = 0.008;

/// The highest `P(opt_out)` the tuner may require before a reply goes to a person as a sign of
/// opt-out.
pub const MAX_SIGNAL: f32 = 0.30;

/// The temperature minimising the log-loss of `logits` on their labels.
pub fn temperature(logits: &[[f32; CLASSES]], labels: &[usize]) -> f32 {
    let nll = |t: f32| -> f64 {
        logits.iter().zip(labels).map(|(l, &y)| -f64::from(softmax(l, t)[y].max(1e-9)).ln()).sum::<f64>()
    };
    (5..=400).map(|i| i as f32 * 0.01 * 2.0).min_by(|a, b| nll(*a).total_cmp(&nll(*b))).unwrap_or(1.0)
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Figures {
    pub n: usize,
    pub accuracy: f64,
    pub opt_out_recall: f64,
    pub false_opt_out_rate: f64,
    pub unsafe_outcomes: usize,
    pub review_rate: f64,
    /// Wrong intents acted on without review, per reply.
    pub acted_error_rate: f64,
    pub log_loss: f64,
    /// Expected calibration error of the top probability (10 bins).
    pub ece: f64,
    /// Per intent: (precision, recall, support).
    pub per_intent: Vec<(String, f64, f64, usize)>,
}

/// What the classifier decides for each example, given calibrated probabilities.
pub fn decisions(ex: &[&Example], probs: &[Signals], th: &Thresholds) -> Vec<(Intent, bool)> {
    ex.iter()
        .zip(probs)
        .map(|(e, p)| match &e.analysis.precise {
            Some(c) => (c.intent, c.needs_review),
            None => choose(p, th),
        })
        .collect()
}

pub fn figures(ex: &[&Example], signals: &[Signals], th: &Thresholds) -> Figures {
    let probs: Vec<[f32; CLASSES]> = signals.iter().map(|s| s.probs).collect();
    let probs = &probs[..];
    let d = decisions(ex, signals, th);
    let n = ex.len().max(1);
    let mut f = Figures { n: ex.len(), ..Figures::default() };
    let (mut correct, mut opt, mut opt_hit, mut false_opt, mut reviews, mut acted_wrong) = (0, 0, 0, 0, 0, 0);
    for (e, &(intent, review)) in ex.iter().zip(&d) {
        correct += usize::from(intent == e.intent);
        if e.intent == Intent::OptOut {
            opt += 1;
            opt_hit += usize::from(intent == Intent::OptOut);
        } else if intent == Intent::OptOut {
            false_opt += 1;
        }
        reviews += usize::from(review);
        acted_wrong += usize::from(!review && intent != e.intent);
        if MUST_STOP.contains(&e.intent) && CONTINUES.contains(&intent) && !review {
            f.unsafe_outcomes += 1;
        }
    }
    f.accuracy = correct as f64 / n as f64;
    f.opt_out_recall = if opt == 0 { 1.0 } else { opt_hit as f64 / opt as f64 };
    f.false_opt_out_rate = false_opt as f64 / n as f64;
    f.review_rate = reviews as f64 / n as f64;
    f.acted_error_rate = acted_wrong as f64 / n as f64;
    f.log_loss = ex.iter().zip(probs).map(|(e, p)| -f64::from(p[e.label()].max(1e-9)).ln()).sum::<f64>() / n as f64;
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (e, p) in ex.iter().zip(probs) {
        let (k, top) =
            p.iter().enumerate().fold((0, 0.0f32), |(bk, bv), (k, &v)| if v > bv { (k, v) } else { (bk, bv) });
        let b = ((top * 10.0) as usize).min(9);
        bins[b].0 += f64::from(top);
        bins[b].1 += f64::from(u8::from(k == e.label()));
        bins[b].2 += 1;
    }
    f.ece = bins.iter().map(|(c, a, _)| (c - a).abs()).sum::<f64>() / n as f64;
    for intent in Intent::ALL {
        let tp = ex.iter().zip(&d).filter(|(e, x)| e.intent == intent && x.0 == intent).count();
        let predicted = d.iter().filter(|x| x.0 == intent).count();
        let support = ex.iter().filter(|e| e.intent == intent).count();
        let p = if predicted == 0 { 1.0 } else { tp as f64 / predicted as f64 };
        let r = if support == 0 { 1.0 } else { tp as f64 / support as f64 };
        f.per_intent.push((intent.as_str().to_string(), p, r, support));
    }
    f
}

/// What a set of thresholds costs on out-of-fold decisions: a missed opt-out or an unsafe outcome
/// costs most, a false opt-out next, a wrong intent acted on one, and a review a little.
fn cost(ex: &[&Example], probs: &[Signals], th: &Thresholds, budget: f64) -> f64 {
    let d = decisions(ex, probs, th);
    let mut c = 0.0;
    let mut reviews = 0usize;
    let mut false_opt_outs = 0usize;
    for (e, &(intent, review)) in ex.iter().zip(&d) {
        reviews += usize::from(review);
        if e.intent == Intent::OptOut && intent != Intent::OptOut {
            c += if review { 8.0 } else { 30.0 };
        } else if e.intent != Intent::OptOut && intent == Intent::OptOut {
            c += 6.0;
            false_opt_outs += 1;
        } else if !review && intent != e.intent {
            c += if MUST_STOP.contains(&e.intent) && CONTINUES.contains(&intent) { 20.0 } else { 1.0 };
        }
        if review {
            c += 0.35;
        }
    }
    // Two ceilings no saving elsewhere may buy: the review rate and the false opt-out rate (a
    // reply read as an opt-out is never reviewed, so lowering the opt-out threshold must not be a
    // way to empty the review queue).
    let n = ex.len().max(1) as f64;
    let over = (reviews as f64 / n - budget).max(0.0) + (false_opt_outs as f64 / n - MAX_FALSE_OPT_OUTS).max(0.0);
    c + 1e6 * over
}

/// Coordinate descent over the thresholds, on out-of-fold probabilities, keeping the review rate
/// and the false opt-out rate under their ceilings; started from a neutral point and from seeded
/// random points (two ceilings make single-coordinate moves stall in local minima), best kept.
pub fn thresholds(ex: &[&Example], probs: &[Signals], budget: f64) -> Thresholds {
    use rand::{Rng, SeedableRng};
    let grid: Vec<f32> = [0.005, 0.01, 0.015].into_iter().chain((1..=39).map(|i| i as f32 * 0.025)).collect();
    let neutral = Thresholds {
        opt_out_act: 0.5,
        opt_out_act_with_rules: 0.5,
        opt_out_signal: MAX_SIGNAL,
        caution: 0.95,
        act: [0.0; CLASSES],
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut starts = vec![neutral];
    for _ in 0..24 {
        let mut pick = || grid[rng.random_range(0..grid.len())];
        let mut act = [0.0; CLASSES];
        for a in &mut act {
            *a = pick() * 0.8;
        }
        starts.push(Thresholds {
            opt_out_act: pick().max(0.05),
            opt_out_act_with_rules: pick().max(0.01),
            opt_out_signal: pick().clamp(0.005, MAX_SIGNAL),
            caution: pick().max(0.01),
            act,
        });
    }
    let mut best: Option<(f64, Thresholds)> = None;
    for start in starts {
        let found = descend(ex, probs, budget, &grid, start);
        if best.as_ref().is_none_or(|(c, _)| found.0 < *c) {
            best = Some(found);
        }
    }
    best.map(|(_, t)| t).unwrap_or_default()
}

fn descend(ex: &[&Example], probs: &[Signals], budget: f64, grid: &[f32], start: Thresholds) -> (f64, Thresholds) {
    let mut th = start;
    let mut best = cost(ex, probs, &th, budget);
    for _round in 0..4 {
        let before = best;
        // 0: opt_out_act, 1: opt_out_signal, 2: caution, 3: opt_out_act_with_rules, 4..: act[c]
        for param in 0..(4 + CLASSES) {
            for &v in grid {
                let mut t = th.clone();
                match param {
                    0 => t.opt_out_act = v.max(0.05),
                    // A sign of opt-out is a small probability, never a likely one.
                    1 => t.opt_out_signal = v.clamp(0.005, MAX_SIGNAL),
                    2 => t.caution = v.max(0.01),
                    3 => t.opt_out_act_with_rules = v.max(0.01),
                    k => t.act[k - 4] = v,
                }
                let c = cost(ex, probs, &t, budget);
                if c < best {
                    best = c;
                    th = t;
                }
            }
        }
        if best >= before {
            break;
        }
    }
    (best, th)
}
