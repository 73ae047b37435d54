//! The learned intent model: a linear softmax over hashed features ([`crate::features`]), with a
//! temperature for calibrated probabilities and the decision thresholds chosen on held-out folds.
//! Trained by `just train-replies` (crate `arflow-replies-train`), written to
//! `shared/replies/model/intent.bin` and compiled into the binary, so inference is offline,
//! in-process and needs no file at run time.
//!
//! File format (little-endian):
//! `ARFLOWM5`, u32 buckets (a power of two), u32 classes (9), f32 temperature, f32 scale,
//! f32 opt-out act threshold, f32 opt-out act threshold when the rules agree, f32 opt-out signal
//! threshold, f32 caution, 9 x f32 per-intent act thresholds,
//! 9 x f32 bias, buckets x 9 x i16 weights (value = i16 x scale), u32 n + n bytes of JSON metadata.

use crate::Intent;

const MAGIC: &[u8; 8] = b"ARFLOWM5";
pub const CLASSES: usize = Intent::ALL.len();

/// The model shipped with the crate.
pub static EMBEDDED: &[u8] = include_bytes!("../model/intent.bin");

/// The decision thresholds, all on calibrated probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// `P(opt_out)` at or above which the reply is an opt-out (acted on at once).
    pub opt_out_act: f32,
    /// The same when the pattern rules also read an opt-out (they are precise there: 98.5% on
    /// replies their authors never saw), so a mixed "we paid, stop emailing us" is not outvoted.
    pub opt_out_act_with_rules: f32,
    /// `P(opt_out)` of the reply or of any one segment (a sentence, a window of a transcript) at or
    /// above which a reply that is not an opt-out still goes to a person. A segment alone never
    /// makes an opt-out: read without its context ("Remove it please" about a late fee) it was
    /// wrong too often (cross-validated: false opt-outs 1.1% with it, 0.5% without).
    pub opt_out_signal: f32,
    /// When the likeliest intent lets the cadence go on (promise, acknowledged, auto-reply), the
    /// summed probability of the intents that must stop it (opt-out, dispute, already paid, plan,
    /// wrong contact, question) at or above which the reply goes to a person.
    pub caution: f32,
    /// Per intent: the top probability below which the reply goes to a person.
    pub act: [f32; CLASSES],
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            opt_out_act: 0.5,
            opt_out_act_with_rules: 0.2,
            opt_out_signal: 0.2,
            caution: 0.5,
            act: [0.5; CLASSES],
        }
    }
}

#[derive(Clone, Debug)]
pub struct LinearModel {
    mask: u32,
    pub temperature: f32,
    pub thresholds: Thresholds,
    bias: [f32; CLASSES],
    scale: f32,
    weights: Vec<i16>,
    /// Training metadata (method, data, date), as written by the trainer.
    pub metadata: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("not an arflow intent model (bad magic)")]
    Magic,
    #[error("model file is truncated at byte {0}")]
    Truncated(usize),
    #[error("model has {0} buckets; expected a power of two")]
    Buckets(u32),
    #[error("model has {0} classes; expected {CLASSES}")]
    Classes(u32),
    #[error("model metadata is not UTF-8")]
    Metadata,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(ModelError::Truncated(self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn f32s(&mut self) -> Result<[f32; CLASSES], ModelError> {
        let mut out = [0.0; CLASSES];
        for v in &mut out {
            *v = self.f32()?;
        }
        Ok(out)
    }
}

impl LinearModel {
    /// A model from its weights (the trainer builds one, then [`LinearModel::to_bytes`]).
    pub fn new(
        buckets: u32,
        bias: [f32; CLASSES],
        weights: &[f32],
        temperature: f32,
        thresholds: Thresholds,
        metadata: String,
    ) -> Result<Self, ModelError> {
        if !buckets.is_power_of_two() {
            return Err(ModelError::Buckets(buckets));
        }
        if weights.len() != buckets as usize * CLASSES {
            return Err(ModelError::Truncated(weights.len()));
        }
        let max = weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 { max / f32::from(i16::MAX) } else { 1.0 };
        let weights = weights.iter().map(|w| (w / scale).round() as i16).collect();
        Ok(LinearModel { mask: buckets - 1, temperature, thresholds, bias, scale, weights, metadata })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return Err(ModelError::Magic);
        }
        let buckets = r.u32()?;
        if !buckets.is_power_of_two() {
            return Err(ModelError::Buckets(buckets));
        }
        let classes = r.u32()?;
        if classes as usize != CLASSES {
            return Err(ModelError::Classes(classes));
        }
        let temperature = r.f32()?;
        let scale = r.f32()?;
        let opt_out_act = r.f32()?;
        let opt_out_act_with_rules = r.f32()?;
        let opt_out_signal = r.f32()?;
        let caution = r.f32()?;
        let act = r.f32s()?;
        let bias = r.f32s()?;
        let raw = r.take(buckets as usize * CLASSES * 2)?;
        let weights = raw.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        let n = r.u32()? as usize;
        let metadata = std::str::from_utf8(r.take(n)?).map_err(|_| ModelError::Metadata)?.to_string();
        Ok(LinearModel {
            mask: buckets - 1,
            temperature,
            thresholds: Thresholds { opt_out_act, opt_out_act_with_rules, opt_out_signal, caution, act },
            bias,
            scale,
            weights,
            metadata,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weights.len() * 2 + 256);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.mask + 1).to_le_bytes());
        out.extend_from_slice(&(CLASSES as u32).to_le_bytes());
        for v in [
            self.temperature,
            self.scale,
            self.thresholds.opt_out_act,
            self.thresholds.opt_out_act_with_rules,
            self.thresholds.opt_out_signal,
            self.thresholds.caution,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.thresholds.act.iter().chain(self.bias.iter()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&(self.metadata.len() as u32).to_le_bytes());
        out.extend_from_slice(self.metadata.as_bytes());
        out
    }

    pub fn buckets(&self) -> usize {
        self.mask as usize + 1
    }

    /// Raw scores (before the temperature) for hashed features; each occurrence weighs
    /// `1 / sqrt(n)` so long and short replies score on one scale.
    pub fn logits(&self, features: &[u32]) -> [f32; CLASSES] {
        let mut acc = [0i32; CLASSES];
        for &f in features {
            let row = ((f & self.mask) as usize) * CLASSES;
            if let Some(w) = self.weights.get(row..row + CLASSES) {
                for (a, &v) in acc.iter_mut().zip(w) {
                    *a += i32::from(v);
                }
            }
        }
        let norm = if features.is_empty() { 0.0 } else { self.scale / (features.len() as f32).sqrt() };
        let mut out = self.bias;
        for (o, a) in out.iter_mut().zip(acc) {
            *o += a as f32 * norm;
        }
        out
    }

    /// Calibrated probabilities, in [`Intent::ALL`] order.
    pub fn probabilities(&self, features: &[u32]) -> [f32; CLASSES] {
        softmax(&self.logits(features), self.temperature)
    }
}

/// Softmax of `logits / temperature`.
pub fn softmax(logits: &[f32; CLASSES], temperature: f32) -> [f32; CLASSES] {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut out = [0.0; CLASSES];
    let mut sum = 0.0;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = ((l - max) / t).exp();
        sum += *o;
    }
    for o in &mut out {
        *o /= sum;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let mut w = vec![0.0f32; 16 * CLASSES];
        w[3 * CLASSES + 1] = 2.5;
        w[7 * CLASSES] = -1.0;
        let m = LinearModel::new(16, [0.1; CLASSES], &w, 1.5, Thresholds::default(), "{\"m\":1}".into()).unwrap();
        let bytes = m.to_bytes();
        let back = LinearModel::from_bytes(&bytes).unwrap();
        assert_eq!(back.logits(&[3, 7, 19]), m.logits(&[3, 7, 19]));
        assert_eq!(back.metadata, "{\"m\":1}");
        assert_eq!(
            LinearModel::from_bytes(&bytes[..bytes.len() - 3]).unwrap_err(),
            ModelError::Truncated(bytes.len() - 7)
        );
        assert_eq!(LinearModel::from_bytes(b"nope").unwrap_err(), ModelError::Truncated(0));
        assert_eq!(LinearModel::from_bytes(b"NOTMODEL________").unwrap_err(), ModelError::Magic);
        let p = back.probabilities(&[3]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p[1] > p[0]);
    }

    #[test]
    fn the_embedded_model_loads() {
        let m = LinearModel::from_bytes(EMBEDDED).unwrap();
        assert!(m.buckets() >= 1 << 12);
        assert!(m.temperature > 0.0);
    }
}
