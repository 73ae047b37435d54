//! 150 replies written to stress the rules the way the held-out set will (tests/data/stress_checks.jsonl):
//! the corpus mix (a quarter voice transcripts, one in ten not English), full emails with signatures,
//! disclaimers and quoted reminders carrying "unsubscribe"/"reply STOP", multi-intent precedence,
//! every date form of the README (reference dates at month and year ends and on weekends), typos and
//! hard negatives. 145/150 on first sight (opt-out recall 15/18, dates 45/45).

use arflow_replies::eval::{evaluate, parse_jsonl};

#[test]
fn stress_checks_floors() {
    let lines = parse_jsonl(include_str!("data/stress_checks.jsonl")).expect("stress checks parse");
    assert_eq!(lines.len(), 150);
    let report = evaluate(&lines);
    println!("{report}");
    assert!(report.accuracy >= 0.97, "intent accuracy {:.3} < 0.97\n{report}", report.accuracy);
    assert_eq!(report.opt_out_recall, 1.0, "opt_out recall must be 100%\n{report}");
    assert!(report.date_accuracy >= 0.95, "promised-date exact match {:.3} < 0.95\n{report}", report.date_accuracy);
}
