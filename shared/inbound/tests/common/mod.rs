//! What the corpus and shape tests share: read a data folder's index.jsonl and compare what
//! `parse` yields for each file with its line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use arflow_inbound::{Date, Kind, parse};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Fields this crate decides (MIME, threading, reports, text extraction).
pub const PARSING_FIELDS: &[&str] = &["kind", "in_reply_to", "reply_token", "bounce", "client_text", "language"];
/// Fields decided by the arflow-replies classifier on the text this crate extracts.
pub const CLASSIFIER_FIELDS: &[&str] = &["intent", "promised_date"];

/// `tests/data/<name>`.
pub fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn index(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("index.jsonl")).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// (field, message) for each field that differs from the index line `expected`.
pub fn mismatches(dir: &Path, expected: &Value) -> Vec<(&'static str, String)> {
    let file = expected["file"].as_str().unwrap();
    let raw = std::fs::read(dir.join(file)).unwrap();
    let got = parse(&raw, Date::new(2026, 1, 1).unwrap()).unwrap();
    let intent = got.classification.as_ref().filter(|_| matches!(got.kind, Kind::Reply | Kind::AutoReply));
    let actual = [
        ("kind", Value::from(got.kind.as_str())),
        ("intent", intent.map_or(Value::Null, |c| Value::from(c.intent.as_str()))),
        ("promised_date", intent.and_then(|c| c.promised_date).map_or(Value::Null, |d| Value::from(d.to_string()))),
        ("in_reply_to", got.in_reply_to.clone().map_or(Value::Null, Value::from)),
        ("reply_token", got.reply_token.clone().map_or(Value::Null, Value::from)),
        ("bounce", serde_json::to_value(&got.bounce).unwrap()),
        (
            "client_text",
            if matches!(got.kind, Kind::Bounce | Kind::Complaint) {
                Value::Null
            } else {
                Value::from(squash(&got.client_text))
            },
        ),
        ("language", got.language.clone().map_or(Value::Null, Value::from)),
    ];
    let mut out = Vec::new();
    for (field, value) in actual {
        let want = match (field, &expected[field]) {
            ("client_text", Value::String(s)) => Value::from(squash(s)),
            (_, v) => v.clone(),
        };
        if want != value {
            out.push((field, format!("{file} {field}: expected {want}, got {value}")));
        }
    }
    out
}

/// The messages of the mismatches among `fields`.
pub fn mismatches_in(dir: &Path, expected: &Value, fields: &[&str]) -> Vec<String> {
    mismatches(dir, expected).into_iter().filter(|(f, _)| fields.contains(f)).map(|(_, m)| m).collect()
}
