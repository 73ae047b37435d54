//! The floors the classifier must keep on the development set (tests/data/replies.jsonl).

use arflow_replies::eval::{evaluate, parse_jsonl};

#[test]
fn dev_set_floors() {
    let lines = parse_jsonl(include_str!("data/replies.jsonl")).expect("dev set parses");
    assert_eq!(lines.len(), 240);
    let report = evaluate(&lines);
    println!("{report}");
    assert!(report.accuracy >= 0.97, "intent accuracy {:.3} < 0.97\n{report}", report.accuracy);
    assert_eq!(report.opt_out_recall, 1.0, "opt_out recall must be 100%\n{report}");
    assert!(report.date_accuracy >= 0.95, "promised-date exact match {:.3} < 0.95\n{report}", report.date_accuracy);
}

/// 104 replies written by another engineer without looking at the rules (English, French, German,
/// Spanish, Italian, Portuguese, Dutch; email and voice). 98/100 of the first 100 passed on first
/// sight; the two misses (a French "ne suis plus dans l'entreprise", a Portuguese "não reconhecemos
/// esta cobrança") were fixed as general rules, so now all must.
#[test]
fn team_checks_all_pass() {
    let lines = parse_jsonl(include_str!("data/team_checks.jsonl")).expect("team checks parse");
    assert_eq!(lines.len(), 104);
    let report = evaluate(&lines);
    assert_eq!(report.accuracy, 1.0, "{report}");
    assert_eq!(report.date_accuracy, 1.0, "{report}");
}
