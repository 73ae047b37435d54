//! The phrase shown as the reason for a model decision: the segment of the client's text (a
//! sentence, or a window of a transcript) that the model finds most typical of the intent it chose.

use crate::model::CLASSES;
use crate::{Analysis, Intent};

/// Longest evidence kept (characters).
const MAX_CHARS: usize = 200;

/// `probs`: each segment's probabilities, in `a.segments` order.
pub fn best_segment(a: &Analysis, probs: &[[f32; CLASSES]], intent: Intent) -> String {
    let best = a
        .segments
        .iter()
        .zip(probs)
        .max_by(|x, y| x.1[intent.index()].total_cmp(&y.1[intent.index()]))
        .and_then(|(s, _)| a.own.get(s.start..s.end));
    cut(best.unwrap_or(a.own.trim()))
}

fn cut(s: &str) -> String {
    // Evidence stays a substring of the client's text (the activity history quotes it).
    match s.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => s[..at].trim_end().to_string(),
        None => s.trim().to_string(),
    }
}
