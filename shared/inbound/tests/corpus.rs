//! Every message in tests/data/mime yields what its index.jsonl line says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{CLASSIFIER_FIELDS, PARSING_FIELDS, data_dir, index, mismatches_in};

#[test]
fn corpus_parsing_matches_index() {
    let dir = data_dir("mime");
    let index = index(&dir);
    assert_eq!(index.len(), 30);
    let failures: Vec<String> = index.iter().flat_map(|e| mismatches_in(&dir, e, PARSING_FIELDS)).collect();
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// Intent and promised date come from arflow-replies; this checks them end to end (classified text,
/// reference date from the sender's Date header). Every file must match.
#[test]
fn corpus_classification_matches_index() {
    let dir = data_dir("mime");
    let index = index(&dir);
    let failures: Vec<String> = index.iter().flat_map(|e| mismatches_in(&dir, e, CLASSIFIER_FIELDS)).collect();
    for failure in &failures {
        eprintln!("classifier miss: {failure}");
    }
    assert!(failures.is_empty(), "{} classifier mismatches:\n{}", failures.len(), failures.join("\n"));
}
