//! DKIM as receivers see it: messages built exactly as the service builds them (rendered
//! templates, `Mailer::build`), signed with the key of each firm's From domain, verified by
//! dkimpy, an independent implementation, with the public keys in its DNS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::{StepDue, Tone};
use arflow_core::Currency;
use arflow_email::config::Config;
use arflow_email::mail::Mailer;
use arflow_email::render::{self, Context};
use arflow_email::store::EmailRow;
use arflow_runtime::ServiceConfig;
use common::dkim::{TempDir, TestKey, assert_signed_for, assert_verified, dkimpy, signature};
use common::step;
use uuid::Uuid;

/// The email row the step consumer stores for `step`, rendered by the real templates.
fn row_for(step: &StepDue) -> EmailRow {
    let unsubscribe_url = format!("https://arflow.example.com/v1/unsubscribe/{}", "t0k3n".repeat(12));
    let rendered =
        render::render(render::template_for_step(step), &Context::from_step(step, unsubscribe_url.clone())).unwrap();
    EmailRow {
        id: Uuid::now_v7(),
        step_id: step.step_id,
        firm_id: Uuid::now_v7(),
        invoice_id: step.invoice_id,
        contact_id: step.contact.contact_id,
        step: step.step.clone(),
        tone: "firm".into(),
        cause_event_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        to_name: step.contact.name.clone(),
        to_address: step.contact.email.clone().unwrap(),
        from_name: step.firm.name.clone(),
        from_address: step.firm.sender_email.clone(),
        subject: rendered.subject,
        body_text: rendered.text,
        body_html: rendered.html,
        unsubscribe_url,
        template: rendered.template.into(),
        template_version: rendered.template_version,
        explanation: sqlx::types::Json(step.explanation.clone()),
        state: "sending".into(),
        attempts: 0,
        message_id: None,
        last_error: None,
        client_id: Some(step.client.client_id),
        reply_token: Some(format!("{:016x}", rand::random::<u64>())),
    }
}

/// A step of a firm sending from `sender`, with names and an invoice number that make long,
/// non-ASCII (RFC 2047 encoded, folded) headers and a non-ASCII body.
fn firm_step(tone: Tone, firm: &str, sender: &str, contact: &str) -> StepDue {
    let mut s = step(tone, 12, true);
    s.firm.name = firm.into();
    s.firm.sender_email = sender.into();
    s.contact.name = contact.into();
    s.invoice.currency = Currency::parse("EUR").unwrap();
    s.invoice.number = Some("RÉ-2026-000123/Überfällig-Zweite-Mahnung-Forderungsmanagement".into());
    s
}

fn mailer(keys: &[&TestKey]) -> Mailer {
    let mut c: Config = arflow_runtime::config::load_defaults(include_str!("../config/default.toml")).unwrap();
    c.unsubscribe.secret = common::UNSUB_SECRET.to_string().into();
    c.email.unsubscribe_mailto = Some("unsubscribe-requests@mail.arflow.example.com".into());
    c.email.reply_domain = Some("in.arflow.example.com".into());
    c.email.dkim = keys.iter().map(|k| k.settings.clone()).collect();
    c.validate().unwrap();
    Mailer::new(&c.smtp, &c.email).unwrap()
}

fn build(mailer: &Mailer, step: &StepDue) -> Vec<u8> {
    mailer.build(&row_for(step), chrono::Utc::now()).unwrap().0.formatted()
}

#[tokio::test]
async fn rsa_and_ed25519_signatures_verify_for_each_firms_own_domain() {
    let dir = TempDir::new();
    let acme = TestKey::rsa(&dir.0, "acme.example", "arflow2026");
    let bright = TestKey::ed25519(&dir.0, "brightpath.example", "ed1");
    let mailer = mailer(&[&acme, &bright]);

    let acme_firm = firm_step(
        Tone::Firm,
        "Ångström & Søn Rechnungswesen GmbH — Forderungsmanagement",
        "billing@acme.example",
        "Zoë Müller-Lüdenscheidt von und zu Großbritannien",
    );
    let mut acme_friendly = firm_step(Tone::Friendly, "Acme Accounting", "Billing@ACME.example", "Jane Doe");
    acme_friendly.invoice.number = Some("INV-0042".into());
    let bright_firm =
        firm_step(Tone::Final, "Bright Path Bookkeeping — Cobros", "ar@brightpath.example", "José Ñúñez-Øster");
    let bright_plain = firm_step(Tone::Friendly, "Bright Path", "ar@brightpath.example", "Sam Lee");

    let messages = [
        ("acme-firm", build(&mailer, &acme_firm)),
        ("acme-friendly", build(&mailer, &acme_friendly)),
        ("bright-final", build(&mailer, &bright_firm)),
        ("bright-friendly", build(&mailer, &bright_plain)),
    ];
    // The headers really are the hard kind: encoded words and folded lines.
    let first = String::from_utf8(messages[0].1.clone()).unwrap();
    assert!(first.contains("Subject: =?utf-8?") || first.contains("=?utf-8?b?"), "{first}");
    assert!(first.contains(",\r\n <mailto:unsubscribe-requests@mail.arflow.example.com"), "folded: {first}");
    assert!(first.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{first}");

    let refs: Vec<(&str, &[u8])> = messages.iter().map(|(n, m)| (*n, m.as_slice())).collect();
    let verdicts = assert_verified(&[&acme, &bright], &refs);
    for (i, (name, raw)) in messages.iter().enumerate() {
        let (domain, algorithm, selector) = if name.starts_with("acme") {
            ("acme.example", "rsa-sha256", "arflow2026")
        } else {
            ("brightpath.example", "ed25519-sha256", "ed1")
        };
        assert_signed_for(raw, domain);
        assert!(verdicts[i].contains(&format!(" d={domain} s={selector} a={algorithm} ")), "{}", verdicts[i]);
    }

    // dkimpy is no rubber stamp: a changed List-Unsubscribe, or another key published for the
    // domain, fails.
    let tampered = String::from_utf8(messages[0].1.clone()).unwrap().replace("/v1/unsubscribe/", "/v1/unsub/");
    let lines = dkimpy(&[&acme], &[("tampered", tampered.as_bytes())]);
    assert!(lines[0].starts_with("FAIL tampered.eml"), "{lines:?}");
    let other = TestKey::ed25519(&dir.0, "brightpath.example", "ed1");
    let lines = dkimpy(&[&other], &[("other-key", messages[2].1.as_slice())]);
    assert!(lines[0].starts_with("FAIL other-key.eml"), "{lines:?}");
}

#[tokio::test]
async fn a_from_domain_without_a_key_goes_out_unsigned() {
    let dir = TempDir::new();
    let bright = TestKey::ed25519(&dir.0, "brightpath.example", "ed1");
    let mailer = mailer(&[&bright]);
    for sender in ["billing@acme.example", "ar@mail.brightpath.example"] {
        let raw = build(&mailer, &firm_step(Tone::Firm, "Acme", sender, "Jane Doe"));
        assert_eq!(signature(&raw), None, "{sender}: never a d= that does not align");
    }
    let raw = build(&mailer, &firm_step(Tone::Firm, "Bright", "ar@brightpath.example", "Jane Doe"));
    assert_signed_for(&raw, "brightpath.example");
}

/// lettre's relaxed canonicalization recurses per header character: headers past the limit fail
/// the email (permanent) instead of overflowing the stack; without a key the limit does not apply.
#[tokio::test]
async fn headers_too_long_to_sign_fail_the_email_instead_of_the_process() {
    let dir = TempDir::new();
    let bright = TestKey::ed25519(&dir.0, "brightpath.example", "ed1");
    let mailer = mailer(&[&bright]);
    let mut s = firm_step(Tone::Firm, "Bright", "ar@brightpath.example", "Jane Doe");
    s.contact.name = "Jane Doe ".repeat(6_000);
    let err = mailer.build(&row_for(&s), chrono::Utc::now()).unwrap_err().to_string();
    assert!(err.contains("more than the 8192 that DKIM signing takes"), "{err}");
    s.firm.sender_email = "billing@unsigned.example".into();
    assert!(mailer.build(&row_for(&s), chrono::Utc::now()).is_ok());
    // Just under the limit: signed, and valid.
    let mut s = firm_step(Tone::Firm, "Bright", "ar@brightpath.example", "Jane Doe");
    s.contact.name = "Jane Doe ".repeat(600);
    let raw = build(&mailer, &s);
    assert!(raw.len() > 5_000);
    assert_verified(&[&bright], &[("long", &raw)]);
}
