//! Message shapes beyond the corpus: other servers' bounces, other auto-responders, other clients' quotes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_inbound::{BounceType, Date, Kind, parse};

fn parse_str(raw: &str) -> arflow_inbound::Inbound {
    parse(raw.replace('\n', "\r\n").as_bytes(), Date::new(2026, 3, 1).unwrap()).unwrap()
}

#[test]
fn exim_free_text_bounce_with_pasted_headers() {
    let raw = "From: Mail Delivery System <Mailer-Daemon@mx.example>
To: bounces@in.harborvale.example
Subject: Mail delivery failed: returning message to sender
Date: Mon, 16 Mar 2026 09:14:06 +0000
Message-Id: <E1abc@mx.example>
X-Failed-Recipients: ghost@client.example
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  ghost@client.example
    host mx.client.example [203.0.113.9]
    SMTP error from remote mail server after RCPT TO:<ghost@client.example>:
    550 5.1.1 User unknown

------ This is a copy of the message, including all the headers. ------

From: Harbor & Vale AR <ar@harborvale.example>
To: ghost@client.example
Subject: Invoice INV-2026-0001 is overdue
Message-ID: <rem-INV-2026-0001-1@harborvale.example>

Hi,
";
    let got = parse_str(raw);
    assert_eq!(got.kind, Kind::Bounce);
    let bounce = got.bounce.unwrap();
    assert_eq!(
        (bounce.recipient.as_str(), bounce.kind, bounce.status.as_str()),
        ("ghost@client.example", BounceType::Hard, "5.1.1")
    );
    assert_eq!(got.in_reply_to.as_deref(), Some("<rem-INV-2026-0001-1@harborvale.example>"));
    assert!(got.classification.is_none());
}

#[test]
fn gmail_style_dsn_with_attached_message() {
    let raw = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces@in.harborvale.example
Subject: Delivery Status Notification (Delay)
Date: Tue, 17 Mar 2026 10:00:00 -0700
MIME-Version: 1.0
Content-Type: multipart/report; boundary=\"xyz\"; report-type=delivery-status

--xyz
Content-Type: text/plain; charset=UTF-8

Delivery incomplete: there was a temporary problem delivering your message to sam@client.example.

--xyz
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com

Final-Recipient: rfc822; sam@client.example
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; The recipient server did not accept our requests

--xyz
Content-Type: message/rfc822

From: Harbor & Vale AR <ar@harborvale.example>
To: sam@client.example
Subject: Invoice
Message-ID: <rem-INV-2026-0002-2@harborvale.example>

Hi Sam
--xyz--
";
    let got = parse_str(raw);
    assert_eq!(got.kind, Kind::Bounce);
    let bounce = got.bounce.unwrap();
    assert_eq!(
        (bounce.recipient.as_str(), bounce.kind, bounce.status.as_str()),
        ("sam@client.example", BounceType::Soft, "4.4.1")
    );
    assert_eq!(got.in_reply_to.as_deref(), Some("<rem-INV-2026-0002-2@harborvale.example>"));
}

#[test]
fn arf_with_rfc822_headers_part() {
    let raw = "From: fbl@isp.example
To: fbl@in.harborvale.example
Subject: FW: Invoice
Date: Wed, 22 Apr 2026 15:02:10 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"

--arf
Content-Type: text/plain

A complaint.
--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
Version: 1
--arf
Content-Type: text/rfc822-headers

From: ar@harborvale.example
Message-ID: <rem-INV-2026-0003-1@harborvale.example>
--arf--
";
    let got = parse_str(raw);
    assert_eq!(got.kind, Kind::Complaint);
    assert_eq!(got.in_reply_to.as_deref(), Some("<rem-INV-2026-0003-1@harborvale.example>"));
    assert!(got.bounce.is_none() && got.classification.is_none());
}

fn auto_reply(headers: &str, subject: &str, body: &str) -> Kind {
    let raw = format!(
        "From: Pat <pat@client.example>\nTo: <reply+00aa11bb22cc33dd@in.harborvale.example>\nSubject: {subject}\nDate: Tue, 7 Apr 2026 15:14:07 +0000\nIn-Reply-To: <rem-INV-2026-0004-1@harborvale.example>\n{headers}Content-Type: text/plain; charset=utf-8\n\n{body}\n"
    );
    let got = parse_str(&raw);
    assert_eq!(got.reply_token.as_deref(), Some("00aa11bb22cc33dd"));
    assert_eq!(got.in_reply_to.as_deref(), Some("<rem-INV-2026-0004-1@harborvale.example>"));
    got.kind
}

#[test]
fn auto_replies_by_header_and_subject() {
    let away = "Je suis absente jusqu'au 20 avril.";
    assert_eq!(auto_reply("", "Réponse automatique : Invoice INV-2026-0004", away), Kind::AutoReply);
    assert_eq!(auto_reply("", "Automatische Antwort: Invoice", away), Kind::AutoReply);
    assert_eq!(auto_reply("", "Respuesta automática: Invoice", away), Kind::AutoReply);
    assert_eq!(auto_reply("X-Autoreply: yes\n", "Re: Invoice", away), Kind::AutoReply);
    assert_eq!(auto_reply("X-Autorespond: Invoice\n", "Re: Invoice", away), Kind::AutoReply);
    assert_eq!(auto_reply("Precedence: auto_reply\n", "Re: Invoice", away), Kind::AutoReply);
    assert_eq!(auto_reply("Precedence: bulk\n", "Out of Office: Invoice", away), Kind::AutoReply);
    assert_eq!(auto_reply("Auto-Submitted: auto-replied (vacation)\n", "Re: Invoice", away), Kind::AutoReply);
    assert_eq!(
        auto_reply(
            "",
            "[Ticket #5521] Re: Invoice",
            "Thank you for contacting Acme billing. A member of our team will reply."
        ),
        Kind::AutoReply
    );
    assert_eq!(auto_reply("", "We have received your request", "Ref 5521."), Kind::AutoReply);
    assert_eq!(auto_reply("Auto-Submitted: no\nPrecedence: bulk\n", "Re: Invoice", "We paid on Monday."), Kind::Reply);
}

#[test]
fn outlook_french_reply_and_html_only_outlook() {
    let raw = "From: \"Martin, Claire\" <claire@client.example>
To: <reply+1111222233334444@in.harborvale.example>
Subject: RE: Facture
Date: Mon, 2 Mar 2026 10:00:00 +0100
In-Reply-To: <rem-INV-2026-0005-1@harborvale.example>
Content-Type: text/plain; charset=\"iso-8859-1\"
Content-Transfer-Encoding: quoted-printable

Bonjour,

Le paiement a =E9t=E9 effectu=E9 hier.

Cordialement,
Claire

Claire Martin
Comptable

De : Harbor & Vale AR <ar@harborvale.example>
Envoy=E9 : lundi 2 mars 2026 09:14
=C0 : Claire Martin <claire@client.example>
Objet : Facture

Pour vous d=E9sabonner...
";
    let got = parse_str(raw);
    assert_eq!(got.kind, Kind::Reply);
    assert_eq!(got.client_text, "Bonjour,\n\nLe paiement a été effectué hier.\n\nCordialement,\nClaire");
    assert_eq!(got.language.as_deref(), Some("fr"));
    assert_eq!(got.reference_date.map(|d| d.to_string()).as_deref(), Some("2026-03-02"));

    let html = "From: Joe <joe@client.example>
To: reply+5555666677778888@in.harborvale.example
Subject: RE: Invoice
Date: Mon, 2 Mar 2026 23:30:00 -0800
References: <older@x.example> <rem-INV-2026-0006-1@harborvale.example>
Content-Type: text/html; charset=utf-8

<html><body><div>We&rsquo;ll pay on Friday.</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> AR</div><div>Reply STOP to unsubscribe</div></body></html>
";
    let got = parse_str(html);
    assert_eq!(got.client_text, "We\u{2019}ll pay on Friday.");
    assert_eq!(got.in_reply_to.as_deref(), Some("<rem-INV-2026-0006-1@harborvale.example>"));
    assert_eq!(got.references, vec!["<rem-INV-2026-0006-1@harborvale.example>", "<older@x.example>"]);
    // The sender's own calendar day, not UTC's.
    assert_eq!(got.reference_date.map(|d| d.to_string()).as_deref(), Some("2026-03-02"));
}

#[test]
fn subject_only_stop_counts_as_text() {
    let raw = "From: a@client.example\nTo: reply+abcdefabcdefabcd@in.harborvale.example\nSubject: RE: STOP\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n\n\n";
    assert_eq!(parse_str(raw).client_text, "STOP");
}

#[test]
fn missing_date_uses_fallback_for_classification_only() {
    let raw = "From: a@client.example\nTo: reply+abcdefabcdefabcd@in.harborvale.example\nSubject: Re: Invoice\n\nWe will pay tomorrow.\n";
    let got = parse_str(raw);
    assert!(got.date.is_none() && got.reference_date.is_none());
    assert_eq!(got.kind, Kind::Reply);
}

#[test]
fn forward_as_attachment_names_the_reminder() {
    let raw = "From: Neil <neil@client.example>
To: ap@client.example
Cc: reply+0f0f0f0f0f0f0f0f@in.harborvale.example
Subject: FW: Invoice
Date: Tue, 24 Feb 2026 15:40:22 -0500
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"m\"

--m
Content-Type: text/plain

Josie, please pay this one. Harbor & Vale: I am not the right contact, use ap@client.example.
--m
Content-Type: message/rfc822
Content-Disposition: attachment; filename=\"Invoice.eml\"

From: ar@harborvale.example
Message-ID: <rem-INV-2026-0007-1@harborvale.example>
Subject: Invoice

Reply STOP to unsubscribe.
--m--
";
    let got = parse_str(raw);
    assert_eq!(got.kind, Kind::Reply);
    assert_eq!(got.in_reply_to.as_deref(), Some("<rem-INV-2026-0007-1@harborvale.example>"));
    assert_eq!(got.reply_token.as_deref(), Some("0f0f0f0f0f0f0f0f"));
    assert!(!got.client_text.contains("STOP"));
}
