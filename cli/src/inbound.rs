//! `arflow inbound FILE...`: parses raw inbound emails and prints one JSON line per file with what arflow
//! reads from it (kind, intent, promised date, confidence, needs_review, the reminder it answers, reply
//! token, bounce). Bounces and complaints carry no intent: `confidence` and `needs_review` are null.
use anyhow::bail;
use arflow_inbound::{Date, Kind};
use chrono::Datelike;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One output line, fields in the order of the corpus index.
#[derive(Serialize)]
struct Line<'a> {
    file: String,
    kind: Kind,
    intent: Option<arflow_inbound::Intent>,
    promised_date: Option<String>,
    confidence: Option<f32>,
    needs_review: Option<bool>,
    in_reply_to: Option<&'a str>,
    reply_token: Option<&'a str>,
    bounce: Option<&'a arflow_inbound::Bounce>,
}

#[derive(Serialize)]
struct Failure {
    file: String,
    error: String,
}

/// Prints a line per file; fails (exit status 1) after all files when any could not be read or parsed.
pub fn run(files: &[PathBuf]) -> anyhow::Result<()> {
    let today = chrono::Local::now().date_naive();
    let fallback = Date::new(
        i16::try_from(today.year()).unwrap_or(2026),
        i8::try_from(today.month()).unwrap_or(1),
        i8::try_from(today.day()).unwrap_or(1),
    )?;
    let mut failed = 0;
    for path in files {
        match describe(path, fallback) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                let failure = Failure { file: path.display().to_string(), error: format!("{e:#}") };
                println!("{}", serde_json::to_string(&failure)?);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be read or parsed", files.len());
    }
    Ok(())
}

/// Reads and parses one file into its JSON line.
fn describe(path: &Path, fallback: Date) -> anyhow::Result<String> {
    let raw = std::fs::read(path)?;
    let inbound = arflow_inbound::parse(&raw, fallback)?;
    let classification =
        inbound.classification.as_ref().filter(|_| matches!(inbound.kind, Kind::Reply | Kind::AutoReply));
    let line = Line {
        file: path.display().to_string(),
        kind: inbound.kind,
        intent: classification.map(|c| c.intent),
        promised_date: classification.and_then(|c| c.promised_date).map(|d| d.to_string()),
        confidence: classification.map(|c| (c.confidence * 100.0).round() / 100.0),
        needs_review: classification.map(|c| c.needs_review),
        in_reply_to: inbound.in_reply_to.as_deref(),
        reply_token: inbound.reply_token.as_deref(),
        bounce: inbound.bounce.as_ref(),
    };
    Ok(serde_json::to_string(&line)?)
}
