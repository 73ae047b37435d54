//! `arflow inbound` on the MIME corpus prints what index.jsonl says, one line per file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/inbound/tests/data/mime")
}

const FIELDS: &[&str] = &["file", "kind", "in_reply_to", "reply_token", "bounce"];
/// Decided by the arflow-replies classifier: every file must match too.
const CLASSIFIER_FIELDS: &[&str] = &["intent", "promised_date"];

#[test]
fn prints_the_index_for_the_corpus() {
    let dir = corpus_dir();
    let index: Vec<Value> = std::fs::read_to_string(dir.join("index.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let files: Vec<&str> = index.iter().map(|v| v["file"].as_str().unwrap()).collect();
    let output =
        Command::new(env!("CARGO_BIN_EXE_arflow")).arg("inbound").args(&files).current_dir(&dir).output().unwrap();
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), index.len());
    let diff = |fields: &[&str]| -> Vec<String> {
        let mut out = Vec::new();
        for (got, want) in lines.iter().zip(&index) {
            for field in fields {
                if got[field] != want[field] {
                    out.push(format!("{} {field}: expected {}, got {}", want["file"], want[field], got[field]));
                }
            }
        }
        out
    };
    let mismatches = diff(FIELDS);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    let misses = diff(CLASSIFIER_FIELDS);
    for miss in &misses {
        eprintln!("classifier miss: {miss}");
    }
    assert!(misses.is_empty(), "{}", misses.join("\n"));
    // Lines keep the index's field order.
    assert!(stdout.lines().all(|l| l.starts_with(r#"{"file":"#)), "{stdout}");
}

#[test]
fn unreadable_files_are_reported_and_fail_the_run() {
    let dir = corpus_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_arflow"))
        .args(["inbound", "missing.eml", "m01.eml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["file"], "missing.eml");
    assert!(lines[0]["error"].is_string());
    assert_eq!(lines[1]["kind"], "reply");
}
