//! The compared learning methods. Each learns from hashed features ([`arflow_replies::features`]):
//! - `softmax`: multinomial logistic regression over every hashed feature (sparse, AdaGrad, L2);
//! - `embedding-bag`: static embeddings, one vector per hashed feature, averaged, then a softmax
//!   layer, trained together (fastText's supervised model);
//! - `linfa-logistic`: linfa's multinomial logistic regression (L-BFGS) over the most frequent
//!   features (linfa takes dense matrices, so the vocabulary is capped).
//!
//! The two linear methods export into [`arflow_replies::model::LinearModel`].

use arflow_replies::model::{CLASSES, softmax};
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::data::Example;

#[derive(Clone, Debug)]
pub enum Method {
    /// `bags` models trained on different orders, weights averaged (still one linear model).
    Softmax {
        buckets: usize,
        epochs: usize,
        lr: f32,
        l2: f32,
        bags: usize,
    },
    EmbeddingBag {
        buckets: usize,
        dim: usize,
        epochs: usize,
        lr: f32,
    },
    Linfa {
        vocabulary: usize,
        alpha: f64,
        iterations: u64,
    },
}

pub trait Trained {
    /// Scores before calibration.
    fn logits(&self, features: &[u32]) -> [f32; CLASSES];
    /// `(buckets, weights bucket-major, bias)` for a linear model.
    fn linear(&self) -> Option<(usize, Vec<f32>, [f32; CLASSES])>;
}

impl Method {
    pub fn name(&self) -> String {
        match self {
            Method::Softmax { buckets, epochs, lr, l2, bags } => format!(
                "softmax (2^{} buckets, {epochs} epochs, lr {lr}, l2 {l2}, {bags} bags averaged)",
                buckets.trailing_zeros()
            ),
            Method::EmbeddingBag { buckets, dim, epochs, lr } => {
                format!("embedding-bag (2^{} buckets x {dim} dims, {epochs} epochs, lr {lr})", buckets.trailing_zeros())
            }
            Method::Linfa { vocabulary, alpha, iterations } => {
                format!("linfa-logistic ({vocabulary} features, alpha {alpha}, {iterations} L-BFGS iterations)")
            }
        }
    }

    pub fn fit(&self, train: &[&Example], seed: u64) -> anyhow::Result<Box<dyn Trained>> {
        Ok(match *self {
            Method::Softmax { buckets, epochs, lr, l2, bags } => {
                let mut avg = fit_softmax(train, buckets, epochs, lr, l2, seed);
                for b in 1..bags {
                    let other = fit_softmax(train, buckets, epochs, lr, l2, seed.wrapping_add(b as u64));
                    for (w, o) in avg.weights.iter_mut().zip(&other.weights) {
                        *w += o;
                    }
                    for (w, o) in avg.bias.iter_mut().zip(&other.bias) {
                        *w += o;
                    }
                }
                let k = bags.max(1) as f32;
                avg.weights.iter_mut().for_each(|w| *w /= k);
                avg.bias.iter_mut().for_each(|w| *w /= k);
                Box::new(avg)
            }
            Method::EmbeddingBag { buckets, dim, epochs, lr } => {
                Box::new(fit_embedding_bag(train, buckets, dim, epochs, lr, seed))
            }
            Method::Linfa { vocabulary, alpha, iterations } => {
                Box::new(fit_linfa(train, vocabulary, alpha, iterations)?)
            }
        })
    }
}

fn norm(n: usize) -> f32 {
    if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() }
}

// ---------- softmax over hashed features ----------

pub struct Linear {
    mask: usize,
    weights: Vec<f32>,
    bias: [f32; CLASSES],
}

impl Trained for Linear {
    fn logits(&self, features: &[u32]) -> [f32; CLASSES] {
        let v = norm(features.len());
        let mut out = self.bias;
        for &f in features {
            let row = (f as usize & self.mask) * CLASSES;
            for (o, w) in out.iter_mut().zip(&self.weights[row..row + CLASSES]) {
                *o += w * v;
            }
        }
        out
    }
    fn linear(&self) -> Option<(usize, Vec<f32>, [f32; CLASSES])> {
        Some((self.mask + 1, self.weights.clone(), self.bias))
    }
}

// The kernels walk weights, gradients and accumulators by class and dimension in lockstep.
#[allow(clippy::needless_range_loop)]
fn fit_softmax(train: &[&Example], buckets: usize, epochs: usize, lr: f32, l2: f32, seed: u64) -> Linear {
    let mask = buckets - 1;
    let mut m = Linear { mask, weights: vec![0.0; buckets * CLASSES], bias: [0.0; CLASSES] };
    let mut g2 = vec![0.0f32; buckets * CLASSES];
    let mut gb2 = [0.0f32; CLASSES];
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for &i in &order {
            let ex = train[i];
            let f = &ex.analysis.features;
            let v = norm(f.len());
            let p = softmax(&m.logits(f), 1.0);
            let mut g = p;
            g[ex.label()] -= 1.0;
            for c in 0..CLASSES {
                gb2[c] += g[c] * g[c];
                m.bias[c] -= lr * g[c] / (gb2[c].sqrt() + 1e-6);
            }
            for &feat in f {
                let row = (feat as usize & mask) * CLASSES;
                for c in 0..CLASSES {
                    let k = row + c;
                    let grad = g[c] * v + l2 * m.weights[k];
                    g2[k] += grad * grad;
                    m.weights[k] -= lr * grad / (g2[k].sqrt() + 1e-6);
                }
            }
        }
    }
    m
}

// ---------- embedding bag (fastText-style static embeddings) ----------

pub struct EmbeddingBag {
    mask: usize,
    dim: usize,
    embeddings: Vec<f32>,
    out: Vec<f32>,
    bias: [f32; CLASSES],
}

impl EmbeddingBag {
    fn hidden(&self, features: &[u32]) -> Vec<f32> {
        let mut h = vec![0.0; self.dim];
        for &f in features {
            let row = (f as usize & self.mask) * self.dim;
            for (x, e) in h.iter_mut().zip(&self.embeddings[row..row + self.dim]) {
                *x += e;
            }
        }
        let n = features.len().max(1) as f32;
        h.iter_mut().for_each(|x| *x /= n);
        h
    }
    fn logits_of(&self, h: &[f32]) -> [f32; CLASSES] {
        let mut out = self.bias;
        for (c, o) in out.iter_mut().enumerate() {
            *o += self.out[c * self.dim..(c + 1) * self.dim].iter().zip(h).map(|(w, x)| w * x).sum::<f32>();
        }
        out
    }
}

impl Trained for EmbeddingBag {
    fn logits(&self, features: &[u32]) -> [f32; CLASSES] {
        self.logits_of(&self.hidden(features))
    }
    fn linear(&self) -> Option<(usize, Vec<f32>, [f32; CLASSES])> {
        None
    }
}

#[allow(clippy::needless_range_loop)]
fn fit_embedding_bag(
    train: &[&Example],
    buckets: usize,
    dim: usize,
    epochs: usize,
    lr: f32,
    seed: u64,
) -> EmbeddingBag {
    let mut rng = StdRng::seed_from_u64(seed);
    let bound = 1.0 / dim as f32;
    let embeddings = (0..buckets * dim).map(|_| rng.random_range(-bound..bound)).collect();
    let mut m =
        EmbeddingBag { mask: buckets - 1, dim, embeddings, out: vec![0.0; CLASSES * dim], bias: [0.0; CLASSES] };
    let mut order: Vec<usize> = (0..train.len()).collect();
    let total = (epochs * train.len()).max(1) as f32;
    let mut step = 0usize;
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for &i in &order {
            let rate = lr * (1.0 - step as f32 / total);
            step += 1;
            let ex = train[i];
            let f = &ex.analysis.features;
            let h = m.hidden(f);
            let mut g = softmax(&m.logits_of(&h), 1.0);
            g[ex.label()] -= 1.0;
            let mut dh = vec![0.0; dim];
            for c in 0..CLASSES {
                let w = &mut m.out[c * dim..(c + 1) * dim];
                for d in 0..dim {
                    dh[d] += g[c] * w[d];
                    w[d] -= rate * g[c] * h[d];
                }
                m.bias[c] -= rate * g[c];
            }
            let n = f.len().max(1) as f32;
            for &feat in f {
                let row = (feat as usize & m.mask) * dim;
                for d in 0..dim {
                    m.embeddings[row + d] -= rate * dh[d] / n;
                }
            }
        }
    }
    m
}

// ---------- linfa multinomial logistic regression ----------

/// The vocabulary's buckets (features hashed into 2^18 buckets, as the linear model).
const LINFA_BUCKETS: usize = 1 << 18;

fn fit_linfa(train: &[&Example], vocabulary: usize, alpha: f64, iterations: u64) -> anyhow::Result<Linear> {
    let mask = LINFA_BUCKETS - 1;
    // The most frequent buckets by document frequency.
    let mut df = vec![0u32; LINFA_BUCKETS];
    for ex in train {
        let mut seen: Vec<usize> = ex.analysis.features.iter().map(|&f| f as usize & mask).collect();
        seen.sort_unstable();
        seen.dedup();
        for b in seen {
            df[b] += 1;
        }
    }
    let mut ranked: Vec<usize> = (0..LINFA_BUCKETS).filter(|&b| df[b] >= 2).collect();
    ranked.sort_by_key(|&b| std::cmp::Reverse(df[b]));
    ranked.truncate(vocabulary);
    let mut column = vec![usize::MAX; LINFA_BUCKETS];
    for (c, &b) in ranked.iter().enumerate() {
        column[b] = c;
    }
    let mut x = Array2::<f64>::zeros((train.len(), ranked.len()));
    for (i, ex) in train.iter().enumerate() {
        let v = f64::from(norm(ex.analysis.features.len()));
        for &f in &ex.analysis.features {
            let c = column[f as usize & mask];
            if c != usize::MAX {
                x[[i, c]] += v;
            }
        }
    }
    let y = Array1::from_iter(train.iter().map(|e| e.label()));
    let ds = Dataset::new(x, y);
    let fitted = MultiLogisticRegression::default().alpha(alpha).max_iterations(iterations).fit(&ds)?;
    let params = fitted.params();
    let intercept = fitted.intercept();
    let mut weights = vec![0.0f32; LINFA_BUCKETS * CLASSES];
    let mut bias = [-30.0f32; CLASSES];
    for (k, &class) in fitted.classes().iter().enumerate() {
        bias[class] = intercept[k] as f32;
        for (c, &b) in ranked.iter().enumerate() {
            weights[b * CLASSES + class] = params[[c, k]] as f32;
        }
    }
    Ok(Linear { mask, weights, bias })
}
