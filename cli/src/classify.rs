//! `arflow classify`: classify client replies read as JSONL on stdin, or evaluate a labelled file.
//!
//! Input lines: `{"id", "channel": "email"|"voice"|"sms", "reference_date": "YYYY-MM-DD", "text"}`.
//! Output: one line per input line, in order: `{"id", "intent", "promised_date", "confidence",
//! "needs_review"}` (`confidence`: the calibrated probability of `intent`, 0-1; `needs_review`: a
//! person must label it before automation acts), or `{"id", "error"}` for a line that cannot be
//! classified (then the next line is read).

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use arflow_replies::{Classification, Date, Intent, Source, classify, eval};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
struct Classified<'a> {
    id: &'a Value,
    intent: Intent,
    promised_date: Option<Date>,
    confidence: f32,
    needs_review: bool,
}

#[derive(Serialize)]
struct Failed<'a> {
    id: &'a Value,
    error: String,
}

/// `--eval FILE` prints the evaluation report; otherwise stdin -> stdout.
pub fn run(eval_file: Option<&Path>) -> anyhow::Result<()> {
    match eval_file {
        Some(path) => evaluate(path),
        None => classify_stream(std::io::stdin().lock(), std::io::stdout().lock()),
    }
}

fn evaluate(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let lines = eval::parse_jsonl(&text).with_context(|| format!("{} is not labelled JSONL", path.display()))?;
    print!("{}", eval::evaluate(&lines));
    Ok(())
}

fn classify_stream(mut input: impl BufRead, output: impl Write) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(output);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw).context("reading stdin")? == 0 {
            break;
        }
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (id, answer) = classify_line(line);
        match answer {
            Ok(c) => serde_json::to_writer(
                &mut out,
                &Classified {
                    id: &id,
                    intent: c.intent,
                    promised_date: c.promised_date,
                    // Two decimals: a probability, not a measurement to the last bit.
                    confidence: (c.confidence * 100.0).round() / 100.0,
                    needs_review: c.needs_review,
                },
            ),
            Err(error) => serde_json::to_writer(&mut out, &Failed { id: &id, error }),
        }
        .context("writing stdout")?;
        out.write_all(b"\n").context("writing stdout")?;
    }
    out.flush().context("writing stdout")?;
    Ok(())
}

/// The line's id (null when there is none) and its classification or a readable error.
fn classify_line(line: &[u8]) -> (Value, Result<Classification, String>) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return (Value::Null, Err("empty line".to_string()));
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return (Value::Null, Err(format!("invalid JSON: {e}"))),
    };
    let Value::Object(fields) = value else {
        return (Value::Null, Err("expected a JSON object".to_string()));
    };
    let id = match fields.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    let text_field = |name: &str| match fields.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(format!("field \"{name}\" must be a string")),
        None => Err(format!("missing field \"{name}\"")),
    };
    let answer = (|| {
        if id.is_null() {
            return Err(if fields.contains_key("id") {
                "field \"id\" must be a string or a number".to_string()
            } else {
                "missing field \"id\"".to_string()
            });
        }
        let channel: Source = text_field("channel")?.parse().map_err(|e| format!("{e}"))?;
        let reference = text_field("reference_date")?;
        let reference: Date =
            reference.parse().map_err(|_| format!("reference_date {reference:?} is not a YYYY-MM-DD date"))?;
        let text = text_field("text")?;
        Ok(classify(channel, text, reference))
    })();
    (id, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_errors_are_readable() {
        let err = |l: &str| classify_line(l.as_bytes()).1.err().unwrap_or_default();
        assert_eq!(err(""), "empty line");
        assert!(err("{").starts_with("invalid JSON"));
        assert_eq!(err(r#"{"channel":"email"}"#), "missing field \"id\"");
        assert_eq!(
            err(r#"{"id":"a","channel":"fax","reference_date":"2026-03-04","text":"x"}"#),
            "unknown channel \"fax\" (expected \"email\", \"voice\" or \"sms\")"
        );
        assert_eq!(
            err(r#"{"id":"a","channel":"email","reference_date":"2026-13-04","text":"x"}"#),
            "reference_date \"2026-13-04\" is not a YYYY-MM-DD date"
        );
        assert_eq!(err(r#"{"id":"a","channel":"email","reference_date":"2026-03-04"}"#), "missing field \"text\"");
    }

    #[test]
    fn every_answer_carries_confidence_and_review() {
        let input = concat!(
            r#"{"id":"a","channel":"sms","reference_date":"2026-03-04","text":"STOP"}"#,
            "\n",
            r#"{"id":7,"channel":"email","reference_date":"2026-03-04","text":"We will pay on Friday."}"#,
            "\n"
        );
        let mut out = Vec::new();
        classify_stream(input.as_bytes(), &mut out).unwrap();
        let lines: Vec<Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["intent"], "opt_out");
        assert_eq!(lines[0]["confidence"], 1.0);
        assert_eq!(lines[0]["needs_review"], false);
        assert_eq!(lines[1]["id"], 7);
        assert_eq!(lines[1]["intent"], "promise_to_pay");
        assert_eq!(lines[1]["promised_date"], "2026-03-06");
        let c = lines[1]["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c), "{c}");
        assert!(lines[1]["needs_review"].is_boolean());
    }
}
