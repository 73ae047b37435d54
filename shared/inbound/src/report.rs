//! Delivery reports (RFC 3464 DSN and the free-text bounces some servers still send) and abuse reports
//! (RFC 5965 ARF).

use regex::Regex;
use std::sync::LazyLock;

use crate::{Bounce, BounceType};

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// One recipient block of a `message/delivery-status` part.
#[derive(Debug, Default)]
struct RecipientStatus {
    recipient: Option<String>,
    action: String,
    status: Option<String>,
    diagnostic: String,
}

/// Header-style fields of a block (`Name: value`, folded lines continued), names lowercased.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

/// "rfc822; a@b.example" -> "a@b.example".
fn address_field(value: &str) -> Option<String> {
    let addr = value.split_once(';').map_or(value, |(_, a)| a).trim().trim_matches(['<', '>']).trim();
    (addr.contains('@')).then(|| addr.to_string())
}

/// The first enhanced status code (RFC 3463, 4.x.x or 5.x.x) in `text`.
pub fn enhanced_status(text: &str) -> Option<String> {
    static CODE: LazyLock<Option<Regex>> =
        LazyLock::new(|| re(r"(?:^|[^\d.])([45]\.\d{1,3}\.\d{1,3})(?:[^\d.]|\.(?:\D|$)|$)"));
    CODE.as_ref()?.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str().to_string())
}

/// A basic SMTP reply code (550, 452...) given as the server's answer, as an enhanced class ("5.0.0").
fn basic_status(text: &str) -> Option<String> {
    static CODE: LazyLock<Option<Regex>> = LazyLock::new(|| {
        re(
            r"(?im)(?:said|error|response|reply|replied|code|status|smtp|rejected|failed)\b[^\n\d]{0,40}\b([45])[0-5]\d\b",
        )
    });
    CODE.as_ref()?.captures(text).and_then(|c| c.get(1)).map(|m| format!("{}.0.0", m.as_str()))
}

fn bounce_type(status: &str) -> Option<BounceType> {
    match status.chars().next() {
        Some('5') => Some(BounceType::Hard),
        Some('4') => Some(BounceType::Soft),
        _ => None,
    }
}

/// Reads a `message/delivery-status` body. `None` when no recipient failed or was delayed.
pub fn parse_delivery_status(body: &str) -> Option<Bounce> {
    let normalised = body.replace("\r\n", "\n");
    let mut recipients = Vec::new();
    for block in normalised.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut status = RecipientStatus::default();
        let mut is_recipient = false;
        for (name, value) in fields(block) {
            match name.as_str() {
                "final-recipient" => {
                    is_recipient = true;
                    status.recipient = address_field(&value).or(status.recipient);
                }
                "original-recipient" => {
                    is_recipient = true;
                    if status.recipient.is_none() {
                        status.recipient = address_field(&value);
                    }
                }
                "action" => status.action = value.to_ascii_lowercase(),
                "status" => status.status = enhanced_status(&value),
                "diagnostic-code" => status.diagnostic = value,
                _ => {}
            }
        }
        if is_recipient {
            recipients.push(status);
        }
    }
    let failed = |r: &&RecipientStatus| r.action.starts_with("failed");
    let delayed = |r: &&RecipientStatus| r.action.starts_with("delayed");
    let chosen = recipients
        .iter()
        .find(failed)
        .or_else(|| recipients.iter().find(delayed))
        .or_else(|| recipients.iter().find(|r| r.status.as_deref().and_then(bounce_type).is_some()))?;
    let status = chosen
        .status
        .clone()
        .filter(|s| bounce_type(s).is_some())
        .or_else(|| enhanced_status(&chosen.diagnostic))
        .or_else(|| basic_status(&chosen.diagnostic))
        .unwrap_or_else(|| if chosen.action.starts_with("delayed") { "4.0.0" } else { "5.0.0" }.to_string());
    let kind = bounce_type(&status)?;
    Some(Bounce { recipient: chosen.recipient.clone().unwrap_or_default(), kind, status })
}

/// Does this message look like a bounce that does not follow RFC 3464 (free-text notice from a mail server)?
pub fn looks_like_bounce(from: Option<&str>, from_name: Option<&str>, subject: Option<&str>) -> bool {
    static SUBJECT: LazyLock<Option<Regex>> = LazyLock::new(|| {
        re(r"(?ix)^\s*(?:
            undeliver(?:ed|able)\b
          | delivery\s+(?:status\s+notification\s+\((?:failure|delay)\)|failure|has\s+failed|failed|incomplete|delayed|problem|notification:\s*delivery\s+has\s+failed)
          | mail\s+delivery\s+(?:failed|failure|problem|error)
          | returned\s+mail\b
          | failure\s+notice\b
          | delayed\s+mail\b
          | warning:\s+(?:could\s+not\s+send|delayed)
          | message\s+(?:not\s+delivered|delivery\s+failure)
          | non[-\s]?delivery\b
          | (?:unzustellbar|nicht\s+zustellbar)\b
          | (?:non\s+remis|non\s+distribuable|échec\s+de\s+(?:la\s+)?(?:remise|distribution))\b
          | (?:no\s+se\s+puede\s+entregar|no\s+entregado|mensaje\s+no\s+entregado)\b
        )")
    });
    let local = from.and_then(|f| f.split('@').next()).unwrap_or_default().to_ascii_lowercase();
    let system_sender =
        matches!(local.as_str(), "mailer-daemon" | "mailer_daemon" | "postmaster" | "mail-daemon" | "mailerdaemon")
            || from_name.is_some_and(|n| n.to_ascii_lowercase().contains("mail delivery"));
    let bounce_subject = subject.is_some_and(|s| SUBJECT.as_ref().is_some_and(|r| r.is_match(s)));
    system_sender || bounce_subject
}

/// A free-text bounce: status code and recipient found by scanning the notice. `subject` decides hard/soft
/// when no code is given.
pub fn scan_bounce(text: &str, subject: Option<&str>, candidates: &[String]) -> Bounce {
    let lower_subject = subject.unwrap_or_default().to_lowercase();
    let delayed = ["delay", "warning", "retry", "retried", "still trying"].iter().any(|w| lower_subject.contains(w));
    let status = enhanced_status(text)
        .or_else(|| basic_status(text))
        .unwrap_or_else(|| if delayed { "4.0.0" } else { "5.0.0" }.to_string());
    let kind = bounce_type(&status).unwrap_or(BounceType::Hard);
    let recipient = scan_recipient(text).or_else(|| candidates.first().cloned()).unwrap_or_default();
    Bounce { recipient, kind, status }
}

/// The failed address in a free-text notice.
fn scan_recipient(text: &str) -> Option<String> {
    const ADDR: &str = r"([^\s<>@:;,()\x22\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)";
    static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
        [
            r"(?im)^\s*(?:final-recipient|original-recipient|x-failed-recipients)\s*:\s*(?:rfc822\s*;)?\s*<?ADDR",
            r"(?m)^\s*<ADDR>\s*:",
            r"(?i)(?:wasn't|was\s+not|couldn't\s+be|could\s+not\s+be|cannot\s+be|can't\s+be)\s+delivered\s+to\s+<?ADDR",
            r"(?i)(?:following\s+(?:recipients?|addresses?|address\(es\))(?:\s+failed)?|failed\s+recipients?|recipient\s+address(?:es)?|message\s+to)\s*:?\s*<?ADDR",
            r"(?m)^\s*<?ADDR>?\s*$",
        ]
        .iter()
        .filter_map(|p| re(&p.replace("ADDR", ADDR)))
        .collect()
    });
    let cleaned = |s: &str| s.trim_end_matches(['.', ',', ';', ':']).to_string();
    PATTERNS.iter().find_map(|p| p.captures(text).and_then(|c| c.get(1)).map(|m| cleaned(m.as_str())))
}

/// A `Message-ID:` line inside a text part (the returned message's headers pasted into a free-text bounce), or
/// the `X-Original-Message-ID:` / `Original-Message-ID:` field some servers put in the delivery report.
pub fn scan_message_id(text: &str) -> Option<String> {
    static ID: LazyLock<Option<Regex>> =
        LazyLock::new(|| re(r"(?im)^\s*(?:x-)?(?:original-)?message-id\s*:\s*(<[^<>\s]+>)"));
    ID.as_ref()?.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str().to_string())
}

/// A text notice carrying ARF fields although not sent as `multipart/report`.
pub fn has_feedback_fields(text: &str) -> bool {
    static FIELD: LazyLock<Option<Regex>> =
        LazyLock::new(|| re(r"(?im)^feedback-type\s*:\s*(?:abuse|fraud|virus|other|not-spam|auth-failure)\b"));
    FIELD.as_ref().is_some_and(|r| r.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_picks_failed_recipient() {
        let dsn = "Reporting-MTA: dns; mta\n\nFinal-Recipient: rfc822; ok@x.example\nAction: delivered\nStatus: 2.0.0\n\nFinal-Recipient: rfc822; j@x.example\nAction: failed\nStatus: 5.1.1 (user unknown)\n";
        let b = parse_delivery_status(dsn).unwrap();
        assert_eq!((b.recipient.as_str(), b.kind, b.status.as_str()), ("j@x.example", BounceType::Hard, "5.1.1"));
        let delayed =
            "Final-Recipient: rfc822;a@y.example\r\nAction: delayed\r\nDiagnostic-Code: smtp; 452 4.2.2 full\r\n";
        let b = parse_delivery_status(delayed).unwrap();
        assert_eq!((b.kind, b.status.as_str()), (BounceType::Soft, "4.2.2"));
        assert!(parse_delivery_status("Final-Recipient: rfc822; a@b\nAction: delivered\nStatus: 2.0.0").is_none());
    }

    #[test]
    fn status_codes_ignore_ip_addresses() {
        assert_eq!(enhanced_status("host [10.4.2.17] said: 550 5.7.1 denied"), Some("5.7.1".into()));
        assert_eq!(enhanced_status("version 4.2.2."), Some("4.2.2".into()));
        assert_eq!(enhanced_status("198.51.100.24"), None);
    }

    #[test]
    fn message_id_in_report_fields() {
        let report = "Reporting-MTA: dns; mx.example\nX-Original-Message-ID: <rem-1@firm.example>\n\nFinal-Recipient: rfc822; a@b";
        assert_eq!(scan_message_id(report).as_deref(), Some("<rem-1@firm.example>"));
        assert_eq!(scan_message_id("Message-ID:\n <rem-2@firm.example>").as_deref(), Some("<rem-2@firm.example>"));
    }

    #[test]
    fn free_text_bounces() {
        let exim = "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  bob@client.example\n    host mx.client.example said: 550 No such user\n";
        let b = scan_bounce(exim, Some("Mail delivery failed: returning message to sender"), &[]);
        assert_eq!(
            (b.recipient.as_str(), b.kind, b.status.as_str()),
            ("bob@client.example", BounceType::Hard, "5.0.0")
        );
        let gmail = "Your message wasn't delivered to amy@client.example because the address couldn't be found.";
        assert_eq!(scan_bounce(gmail, None, &[]).recipient, "amy@client.example");
        assert!(looks_like_bounce(Some("postmaster@x"), None, Some("hello")));
        assert!(looks_like_bounce(None, None, Some("Undeliverable: Invoice 12")));
        assert!(!looks_like_bounce(Some("amy@x"), Some("Amy"), Some("Re: Invoice")));
    }
}
