//! Measuring the classifier on labelled replies (the corpus JSONL format).
//!
//! Figures:
//! - accuracy: predicted intent == labelled intent, over all lines;
//! - per intent: support (labelled), predicted, correct, precision, recall;
//! - the 9×9 confusion matrix (rows: labelled, columns: predicted, precedence order);
//! - opt-out recall;
//! - promised-date exact match: over the lines labelled `promise_to_pay` with a non-null
//!   `promised_date`, the share whose predicted `promised_date` is exactly that date (a line
//!   predicted as another intent has no date, so it counts as a miss);
//! - promised-date agreement over all `promise_to_pay` lines: predicted date == labelled date,
//!   `null` included;
//! - the review rate: lines the classifier sends to a person (`needs_review`);
//! - false opt-outs: lines read as `opt_out` whose label is another intent, over all lines;
//! - unsafe outcomes: a line whose label must stop the cadence (opt_out, dispute, wrong_contact,
//!   already_paid, payment_plan, question) that got a cadence-continuing intent (promise_to_pay,
//!   acknowledged, auto_reply) without `needs_review`.

use std::fmt;

use serde::Deserialize;

use crate::{CONTINUES, Date, Intent, MUST_STOP, Source, classify};

/// One labelled reply.
#[derive(Clone, Debug, Deserialize)]
pub struct Labelled {
    pub id: String,
    pub channel: Source,
    pub reference_date: Date,
    pub text: String,
    pub intent: Intent,
    #[serde(default)]
    pub promised_date: Option<Date>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("line {line}: {source}")]
    Parse { line: usize, source: serde_json::Error },
}

/// Parse a JSONL file of labelled replies (blank lines are skipped).
pub fn parse_jsonl(text: &str) -> Result<Vec<Labelled>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|source| EvalError::Parse { line: i + 1, source }))
        .collect()
}

/// A line whose predicted intent or promised date differs from its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Miss {
    pub id: String,
    pub expected: Intent,
    pub got: Intent,
    pub expected_date: Option<Date>,
    pub got_date: Option<Date>,
    pub evidence: String,
    pub needs_review: bool,
    pub confidence: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IntentStats {
    pub intent: Intent,
    pub support: usize,
    pub predicted: usize,
    pub correct: usize,
    pub precision: f64,
    pub recall: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub total: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub per_intent: Vec<IntentStats>,
    /// `confusion[labelled][predicted]`, indices in precedence order.
    pub confusion: [[usize; 9]; 9],
    pub opt_out_recall: f64,
    /// Promise lines with a labelled date.
    pub dated_promises: usize,
    pub dated_promises_exact: usize,
    pub date_accuracy: f64,
    /// All promise lines (date or null).
    pub promises: usize,
    pub promises_date_agree: usize,
    pub promise_date_agreement: f64,
    /// Wrong intent.
    pub misclassified: Vec<Miss>,
    /// Right intent (`promise_to_pay`), wrong date.
    pub wrong_dates: Vec<Miss>,
    /// Lines sent to a person.
    pub reviews: usize,
    pub review_rate: f64,
    /// Lines read as `opt_out` whose label is another intent.
    pub false_opt_outs: usize,
    pub false_opt_out_rate: f64,
    /// A must-stop label that got a cadence-continuing intent without review.
    pub unsafe_outcomes: Vec<Miss>,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

/// Classify every line and compare with its labels.
pub fn evaluate(lines: &[Labelled]) -> Report {
    let mut confusion = [[0usize; 9]; 9];
    let mut misclassified = Vec::new();
    let mut wrong_dates = Vec::new();
    let (mut dated, mut dated_exact, mut promises, mut agree) = (0, 0, 0, 0);
    let (mut reviews, mut false_opt_outs) = (0, 0);
    let mut unsafe_outcomes = Vec::new();
    for line in lines {
        let got = classify(line.channel, &line.text, line.reference_date);
        confusion[line.intent.index()][got.intent.index()] += 1;
        let miss = || Miss {
            id: line.id.clone(),
            expected: line.intent,
            got: got.intent,
            expected_date: line.promised_date,
            got_date: got.promised_date,
            evidence: got.evidence.clone(),
            needs_review: got.needs_review,
            confidence: got.confidence,
        };
        if got.intent != line.intent {
            misclassified.push(miss());
        }
        reviews += usize::from(got.needs_review);
        false_opt_outs += usize::from(got.intent == Intent::OptOut && line.intent != Intent::OptOut);
        if MUST_STOP.contains(&line.intent) && CONTINUES.contains(&got.intent) && !got.needs_review {
            unsafe_outcomes.push(miss());
        }
        if line.intent == Intent::PromiseToPay {
            promises += 1;
            if got.promised_date == line.promised_date {
                agree += 1;
            } else if got.intent == Intent::PromiseToPay {
                wrong_dates.push(miss());
            }
            if line.promised_date.is_some() {
                dated += 1;
                if got.promised_date == line.promised_date {
                    dated_exact += 1;
                }
            }
        }
    }
    let per_intent: Vec<IntentStats> = Intent::ALL
        .iter()
        .map(|&intent| {
            let i = intent.index();
            let support: usize = confusion[i].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[i]).sum();
            let correct = confusion[i][i];
            IntentStats {
                intent,
                support,
                predicted,
                correct,
                precision: ratio(correct, predicted),
                recall: ratio(correct, support),
            }
        })
        .collect();
    let correct: usize = (0..9).map(|i| confusion[i][i]).sum();
    let opt = Intent::OptOut.index();
    Report {
        total: lines.len(),
        correct,
        accuracy: ratio(correct, lines.len()),
        opt_out_recall: per_intent[opt].recall,
        per_intent,
        confusion,
        dated_promises: dated,
        dated_promises_exact: dated_exact,
        date_accuracy: ratio(dated_exact, dated),
        promises,
        promises_date_agree: agree,
        promise_date_agreement: ratio(agree, promises),
        misclassified,
        wrong_dates,
        reviews,
        review_rate: ratio(reviews, lines.len()),
        false_opt_outs,
        false_opt_out_rate: if lines.is_empty() { 0.0 } else { false_opt_outs as f64 / lines.len() as f64 },
        unsafe_outcomes,
    }
}

const SHORT: [&str; 9] = ["opt", "disp", "paid", "plan", "prom", "wrong", "quest", "ack", "auto"];

impl Report {
    /// Off-diagonal confusion cells, largest first: (labelled, predicted, count).
    pub fn largest_confusions(&self, n: usize) -> Vec<(Intent, Intent, usize)> {
        let mut cells: Vec<(Intent, Intent, usize)> = Vec::new();
        for (i, row) in self.confusion.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                if i != j && count > 0 {
                    cells.push((Intent::ALL[i], Intent::ALL[j], count));
                }
            }
        }
        cells.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        cells.truncate(n);
        cells
    }
}

fn date_str(d: Option<Date>) -> String {
    d.map_or_else(|| "null".to_string(), |d| d.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "replies: {}   intent accuracy: {:.1}% ({}/{})",
            self.total,
            100.0 * self.accuracy,
            self.correct,
            self.total
        )?;
        writeln!(f, "opt_out recall: {:.1}%", 100.0 * self.opt_out_recall)?;
        writeln!(
            f,
            "false opt-outs: {:.1}% ({}/{})   unsafe outcomes: {}   review rate: {:.1}% ({}/{})",
            100.0 * self.false_opt_out_rate,
            self.false_opt_outs,
            self.total,
            self.unsafe_outcomes.len(),
            100.0 * self.review_rate,
            self.reviews,
            self.total
        )?;
        writeln!(
            f,
            "promised date exact (promise lines with a labelled date): {:.1}% ({}/{})",
            100.0 * self.date_accuracy,
            self.dated_promises_exact,
            self.dated_promises
        )?;
        writeln!(
            f,
            "promised date agreement (all promise lines, null included): {:.1}% ({}/{})",
            100.0 * self.promise_date_agreement,
            self.promises_date_agree,
            self.promises
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<15} {:>7} {:>9} {:>7} {:>9} {:>7}",
            "intent", "support", "predicted", "correct", "precision", "recall"
        )?;
        for s in &self.per_intent {
            writeln!(
                f,
                "{:<15} {:>7} {:>9} {:>7} {:>8.1}% {:>6.1}%",
                s.intent.as_str(),
                s.support,
                s.predicted,
                s.correct,
                100.0 * s.precision,
                100.0 * s.recall
            )?;
        }
        writeln!(f)?;
        writeln!(f, "confusion (rows: labelled, columns: predicted)")?;
        write!(f, "{:<6}", "")?;
        for s in SHORT {
            write!(f, "{s:>6}")?;
        }
        writeln!(f)?;
        for (i, row) in self.confusion.iter().enumerate() {
            write!(f, "{:<6}", SHORT[i])?;
            for &c in row {
                if c == 0 { write!(f, "{:>6}", ".")? } else { write!(f, "{c:>6}")? }
            }
            writeln!(f)?;
        }
        let largest = self.largest_confusions(5);
        if !largest.is_empty() {
            writeln!(f)?;
            writeln!(f, "largest confusions:")?;
            for (e, g, n) in largest {
                writeln!(f, "  {e} -> {g}: {n}")?;
            }
        }
        if !self.misclassified.is_empty() {
            writeln!(f)?;
            writeln!(f, "misclassified ({}):", self.misclassified.len())?;
            for m in &self.misclassified {
                writeln!(
                    f,
                    "  {:<8} expected {:<15} got {:<15} {:>4.2}{} evidence {:?}",
                    m.id,
                    m.expected.as_str(),
                    m.got.as_str(),
                    m.confidence,
                    if m.needs_review { " review" } else { "       " },
                    m.evidence
                )?;
            }
        }
        if !self.unsafe_outcomes.is_empty() {
            writeln!(f)?;
            writeln!(f, "unsafe outcomes ({}):", self.unsafe_outcomes.len())?;
            for m in &self.unsafe_outcomes {
                writeln!(f, "  {:<8} expected {:<15} got {:<15}", m.id, m.expected.as_str(), m.got.as_str())?;
            }
        }
        if !self.wrong_dates.is_empty() {
            writeln!(f)?;
            writeln!(f, "wrong promised dates ({}):", self.wrong_dates.len())?;
            for m in &self.wrong_dates {
                writeln!(
                    f,
                    "  {:<8} expected {:<10} got {:<10} evidence {:?}",
                    m.id,
                    date_str(m.expected_date),
                    date_str(m.got_date),
                    m.evidence
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts() {
        let lines = parse_jsonl(
            r#"{"id":"a","channel":"email","reference_date":"2026-03-04","text":"Unsubscribe","intent":"opt_out","promised_date":null}
{"id":"b","channel":"voice","reference_date":"2026-03-04","text":"we'll pay it tomorrow","intent":"promise_to_pay","promised_date":"2026-03-05"}

{"id":"c","channel":"email","reference_date":"2026-03-04","text":"Thanks","intent":"question","promised_date":null}"#,
        )
        .unwrap();
        let r = evaluate(&lines);
        assert_eq!((r.total, r.correct), (3, 2));
        assert_eq!(r.opt_out_recall, 1.0);
        assert_eq!((r.dated_promises, r.dated_promises_exact), (1, 1));
        assert_eq!(r.misclassified.len(), 1);
        assert_eq!(r.largest_confusions(3), vec![(Intent::Question, Intent::Acknowledged, 1)]);
        let text = r.to_string();
        assert!(text.contains("misclassified (1)"), "{text}");
        assert!(parse_jsonl("{not json").is_err());
    }
}
