//! Every message in tests/data/mime yields what its index.jsonl line says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_inbound::{Date, Kind, parse};
use serde_json::Value;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mime")
}

fn index() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("index.jsonl")).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Fields this crate decides (MIME, threading, reports, text extraction).
const PARSING_FIELDS: &[&str] = &["kind", "in_reply_to", "reply_token", "bounce", "client_text", "language"];
/// Fields decided by the arflow-replies classifier on the text this crate extracts.
const CLASSIFIER_FIELDS: &[&str] = &["intent", "promised_date"];

/// One line per field (among `fields`) that differs from the index.
fn mismatches(expected: &Value, fields: &[&str]) -> Vec<String> {
    let file = expected["file"].as_str().unwrap();
    let raw = std::fs::read(data_dir().join(file)).unwrap();
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
    for (field, value) in actual.into_iter().filter(|(f, _)| fields.contains(f)) {
        let want = match (field, &expected[field]) {
            ("client_text", Value::String(s)) => Value::from(squash(s)),
            (_, v) => v.clone(),
        };
        if want != value {
            out.push(format!("{file} {field}: expected {want}, got {value}"));
        }
    }
    out
}

#[test]
fn corpus_parsing_matches_index() {
    let index = index();
    assert_eq!(index.len(), 30);
    let failures: Vec<String> = index.iter().flat_map(|e| mismatches(e, PARSING_FIELDS)).collect();
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// Intent and promised date come from arflow-replies; this checks them end to end (classified text,
/// reference date from the sender's Date header). Every file must match.
#[test]
fn corpus_classification_matches_index() {
    let index = index();
    let failures: Vec<String> = index.iter().flat_map(|e| mismatches(e, CLASSIFIER_FIELDS)).collect();
    for failure in &failures {
        eprintln!("classifier miss: {failure}");
    }
    assert!(failures.is_empty(), "{} classifier mismatches:\n{}", failures.len(), failures.join("\n"));
}
