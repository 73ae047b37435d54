//! `arflow classify` end to end: the built binary on stdin, and `--eval` on the dev set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

fn arflow(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arflow"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arflow runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("arflow exits");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn classifies_each_line_and_reports_bad_ones() {
    let input = [
        r#"{"id":"a","channel":"email","reference_date":"2026-03-04","text":"We'll pay it on Friday.\n\nOn Mon, Mar 2, 2026 at 9:00 AM AR <ar@x.example> wrote:\n> Reply STOP to unsubscribe."}"#,
        r#"{"id":"b","channel":"voice","reference_date":"2026-03-04","text":"stop calling me"}"#,
        r#"{"id":"c","channel":"fax","reference_date":"2026-03-04","text":"hi"}"#,
        "not json",
        "",
        r#"{"id":"d","channel":"email","reference_date":"03/04/2026","text":"Thanks"}"#,
        r#"{"id":"e","channel":"email","reference_date":"2026-03-04"}"#,
        r#"{"id":7,"channel":"email","reference_date":"2026-03-04","text":"Can you resend the invoice?"}"#,
    ]
    .join("\n");
    let (code, stdout, stderr) = arflow(&["classify"], &format!("{input}\n"));
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert_eq!(lines.len(), 8, "{stdout}");
    // Every answer carries the calibrated confidence and whether a person must review it.
    let fields = |l: &serde_json::Value| {
        (l["id"].clone(), l["intent"].clone(), l["promised_date"].clone(), l["needs_review"].clone())
    };
    let confident = |l: &serde_json::Value| l["confidence"].as_f64().is_some_and(|c| (0.5..=1.0).contains(&c));
    assert_eq!(fields(&lines[0]), ("a".into(), "promise_to_pay".into(), "2026-03-06".into(), false.into()));
    assert!(confident(&lines[0]), "{}", lines[0]);
    assert_eq!(fields(&lines[1]), ("b".into(), "opt_out".into(), serde_json::Value::Null, false.into()));
    assert!(confident(&lines[1]), "{}", lines[1]);
    assert_eq!(lines[2]["id"], "c");
    assert!(lines[2]["error"].as_str().unwrap().contains("unknown channel \"fax\""));
    assert!(lines[3]["id"].is_null() && lines[3]["error"].as_str().unwrap().starts_with("invalid JSON"));
    assert_eq!(lines[4], serde_json::json!({"id": null, "error": "empty line"}));
    assert!(lines[5]["error"].as_str().unwrap().contains("reference_date"));
    assert_eq!(lines[6], serde_json::json!({"id": "e", "error": "missing field \"text\""}));
    assert_eq!(fields(&lines[7]), (7.into(), "question".into(), serde_json::Value::Null, false.into()));
    assert!(confident(&lines[7]), "{}", lines[7]);
}

#[test]
fn eval_prints_the_report() {
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/replies/tests/data/replies.jsonl");
    let (code, stdout, stderr) = arflow(&["classify", "--eval", dev], "");
    assert_eq!(code, 0, "{stderr}");
    for part in ["intent accuracy", "opt_out recall", "promised date exact", "confusion", "payment_plan"] {
        assert!(stdout.contains(part), "{part} missing from:\n{stdout}");
    }
    let (code, _, stderr) = arflow(&["classify", "--eval", "/nonexistent/replies.jsonl"], "");
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read"), "{stderr}");
}
