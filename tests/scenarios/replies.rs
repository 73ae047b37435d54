//! Clients answer: a real MIME reply goes through the gateway's inbound webhook, the email
//! service parses, matches and classifies it, and the other services act on it.
use arflow_contracts::streams::contact_hold_key;
use arflow_tests::{REPLY_DOMAIN, TestApp};
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

async fn next_pending_step(app: &TestApp, invoice: Uuid) -> (String, DateTime<Utc>) {
    sqlx::query_as(
        "SELECT name, scheduled_for FROM scheduler.steps WHERE invoice_id = $1 AND state = 'pending' \
         ORDER BY scheduled_for LIMIT 1",
    )
    .bind(invoice)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// A French client's answer as Outlook/Gmail produce it: multipart/alternative, the text part in
/// ISO-8859-1 quoted-printable with the original reminder quoted under "Le ... a écrit :", the
/// HTML part in base64 with the quote in a blockquote.
fn french_reply(to_token: &str, in_reply_to: &str, subject: &str, said_qp: &str, said_html: &str) -> Vec<u8> {
    let html = format!(
        "<html><body><div dir=\"ltr\">{said_html}</div><br><div class=\"gmail_quote\">\
         <div class=\"gmail_attr\">Le jeu. 5 mars 2026 à 09:00, Harbor &amp; Pine Accounting \
         &lt;ar@harborpine.test&gt; a écrit :<br></div><blockquote class=\"gmail_quote\">Bonjour, la facture \
         reste impayée. Pour ne plus recevoir ces relances, cliquez ici pour vous désabonner.</blockquote></div>\
         </body></html>"
    );
    let html_b64 = base64::engine::general_purpose::STANDARD.encode(html.as_bytes());
    format!(
        "Return-Path: <billing@cus_fr.test>\r\n\
         From: Claire Dubois <billing@cus_fr.test>\r\n\
         To: \"Harbor & Pine Accounting\" <reply+{to_token}@{REPLY_DOMAIN}>\r\n\
         Subject: RE: {subject}\r\n\
         Date: Fri, 06 Mar 2026 10:12:00 +0100\r\n\
         Message-ID: <CAF{to_token}@mail.gmail.com>\r\n\
         In-Reply-To: {in_reply_to}\r\n\
         References: {in_reply_to}\r\n\
         Content-Language: fr-FR\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"000000000000b1c2d3\"\r\n\
         \r\n\
         --000000000000b1c2d3\r\n\
         Content-Type: text/plain; charset=\"iso-8859-1\"\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         \r\n\
         {said_qp}\r\n\
         \r\n\
         Le jeu. 5 mars 2026 =E0 09:00, Harbor & Pine Accounting <ar@harborpine.test> a =\r\n\
         =E9crit :\r\n\
         > Bonjour, la facture reste impay=E9e.\r\n\
         > Pour ne plus recevoir ces relances, cliquez ici pour vous d=E9sabonner.\r\n\
         \r\n\
         --000000000000b1c2d3\r\n\
         Content-Type: text/html; charset=\"UTF-8\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {html_b64}\r\n\
         --000000000000b1c2d3--\r\n"
    )
    .into_bytes()
}

/// The Reply-To token and Message-ID of the email arflow sent.
pub(crate) fn thread_of(mail: &arflow_testkit::smtp::ReceivedMail) -> (String, String, String) {
    let reply_to = mail.header("Reply-To").expect("Reply-To").to_string();
    let token = reply_to.split("reply+").nth(1).and_then(|s| s.split('@').next()).expect("reply token").to_string();
    assert!(reply_to.contains(REPLY_DOMAIN), "{reply_to}");
    let message_id = mail.header("Message-ID").expect("Message-ID").to_string();
    (token, message_id, mail.subject().unwrap_or_default().to_string())
}

async fn classified(app: &TestApp) -> Vec<Value> {
    app.events("REPLY", "reply.classified.").await.into_iter().map(|(_, e)| e.data).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_french_mime_reply_opts_the_contact_out_even_with_a_step_already_due() {
    let mut app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    let (_, contact) = app.add_client(&firm, "cus_fr", "Atelier Moreau", "standard", "Europe/Paris").await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
    let invoice = app.finalize_invoice(&firm, "in_fr_1", "cus_fr", 2_320_780, "eur", due).await;
    app.process_until_idle().await;
    app.advance(Duration::days(4)).await;
    let sent = app.emails_for(invoice);
    assert_eq!(sent.len(), 1, "the pre-due reminder went out");
    let (token, message_id, subject) = thread_of(&sent[0]);

    // The next step comes due while SMTP refuses it once (4xx): its email waits 5 s for a retry.
    app.stop_service("email").await;
    app.start_service_with("email", |c| c.email.retry_backoff_ms = vec![5_000]).await;
    app.smtp.fail_next(1, false);
    let (step, at) = next_pending_step(&app, invoice).await;
    arflow_bus::clock::set(&app.bus, at).await.unwrap();
    let waiting = async {
        loop {
            let row: Option<(String, i32)> =
                sqlx::query_as("SELECT state, attempts FROM email.emails WHERE invoice_id = $1 AND step = $2")
                    .bind(invoice)
                    .bind(&step)
                    .fetch_optional(&app.pool)
                    .await
                    .unwrap();
            if matches!(row, Some((ref s, 1)) if s == "pending") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), waiting).await.expect("the due step's email is pending");

    // Now the client's answer arrives: stop, in French, with our reminder (and its unsubscribe line) quoted.
    let said = "Bonjour,\r\n\r\nMerci de ne plus m'envoyer ces relances automatiques, je ne souhaite plus =\r\n\
                =EAtre contact=E9e par e-mail.\r\n\r\nCordialement,\r\nClaire Dubois";
    let said_html = "Bonjour,<br><br>Merci de ne plus m'envoyer ces relances automatiques, je ne souhaite plus \
                     être contactée par e-mail.<br><br>Cordialement,<br>Claire Dubois";
    let raw = french_reply(&token, &message_id, &subject, said, said_html);
    let r = app.inbound_email(&firm, &raw).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    app.process_until_idle().await;

    let replies = classified(&app).await;
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply["intent"], "opt_out", "{reply}");
    assert_eq!(reply["matched_by"], "reply_token");
    assert_eq!(reply["invoice_id"], invoice.to_string());
    assert_eq!(reply["contact_id"], contact.to_string());
    assert!(!reply["client_text"].as_str().unwrap().contains("sabonner"), "the quote is not the client's text");
    assert!(app.bus.holds().get(&contact_hold_key(contact)).await.unwrap().is_some(), "the contact hold is written");
    let consent = app.events("CONSENT", "consent.opted_out.").await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].1.data["source"], "email_reply");
    assert!(consent[0].1.data["channel"].is_null(), "every channel");

    // The email that was already due never went out: the last check before SMTP stopped it.
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("SELECT state, last_error FROM email.emails WHERE invoice_id = $1 AND step = $2")
            .bind(invoice)
            .bind(&step)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), reason.as_deref()), ("suppressed", Some("contact_held")));
    // ... and nothing else ever goes to that contact.
    app.advance(Duration::days(40)).await;
    assert_eq!(app.emails_for(invoice).len(), 1, "only the reminder sent before the opt-out");
    let activity = app.activity(&firm, invoice).await;
    let history = activity["history"].as_array().unwrap();
    let entry = history.iter().find(|h| h["kind"] == "reply_received").expect("the reply is in the history");
    assert_eq!(entry["intent"], "opt_out", "{entry}");
    assert!(!entry["evidence"].as_str().unwrap().is_empty(), "the deciding phrase is shown: {entry}");
    assert!(entry["client_text"].as_str().unwrap().contains("ne plus m'envoyer"), "{entry}");
    let inbox = app.get(&firm, "/v1/replies").await;
    assert_eq!(inbox["data"][0]["intent"], "opt_out", "the firm's reply inbox: {inbox}");
    assert_eq!(inbox["data"][0]["invoice_id"], invoice.to_string());
    let redelivered = app.inbound_email(&firm, &raw).await.json::<Value>().await.unwrap();
    assert_eq!(redelivered["duplicate"], true);
}

/// A plain reply as a phone mail app sends it, threaded only by In-Reply-To (no token).
fn plain_reply(from: &str, in_reply_to: &str, subject: &str, date: &str, said: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <ar@harborpine.test>\r\nSubject: Re: {subject}\r\nDate: {date}\r\n\
         Message-ID: <reply-{n}@client.test>\r\nIn-Reply-To: {in_reply_to}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{said}\r\n\r\nSent from my iPhone\r\n\r\n\
         > On Mar 5, 2026, at 9:00 AM, Harbor & Pine Accounting <ar@harborpine.test> wrote:\r\n\
         > Please pay. Reply STOP to unsubscribe.\r\n",
        n = Uuid::new_v4().simple()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_pauses_reminders_and_a_broken_one_resumes_them_firmer() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.add_client(&firm, "cus_pr", "Cedar Dental", "standard", "America/Chicago").await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
    let invoice = app.finalize_invoice(&firm, "in_pr_1", "cus_pr", 370_050, "usd", due).await;
    app.process_until_idle().await;
    // Due Wednesday 4 March; the +3 reminder goes out Monday 9 March (the 7th is a Saturday).
    app.advance(Duration::days(8)).await;
    let sent = app.emails_for(invoice);
    let last = sent.last().expect("reminders went out");
    let (_, message_id, subject) = thread_of(last);
    let before = sent.len();

    // Tuesday 10 March the client promises the 20th: paused until the 20th plus 3 days' grace.
    app.advance(Duration::days(1)).await;
    let raw = plain_reply(
        "billing@cus_pr.test",
        &message_id,
        &subject,
        "Tue, 10 Mar 2026 11:20:00 -0500",
        "Hi, sorry for the delay. We'll pay this on the 20th with our next payment run.",
    );
    assert_eq!(app.inbound_email(&firm, &raw).await.status(), 202);
    app.process_until_idle().await;
    let reply = classified(&app).await.pop().expect("classified");
    assert_eq!(reply["intent"], "promise_to_pay", "{reply}");
    assert_eq!(reply["promised_date"], "2026-03-20");
    assert_eq!(reply["matched_by"], "in_reply_to");

    // Through the promised date and the grace: nothing goes out.
    app.advance(Duration::days(12)).await; // to Sunday 22 March
    assert_eq!(app.emails_for(invoice).len(), before, "no reminder while the promise stands");
    // No payment came: the promise is broken, recorded once, and the next reminder is firmer.
    app.advance(Duration::days(3)).await;
    let broken = app.events("ELIGIBILITY", "eligibility.promise_broken.").await;
    assert_eq!(broken.len(), 1, "recorded once");
    assert_eq!(broken[0].1.data["promised_date"], "2026-03-20");
    let after = app.emails_for(invoice);
    assert!(after.len() > before, "reminders resumed");
    let resumed = &after[before];
    let tone: (String,) = sqlx::query_as("SELECT tone FROM email.emails WHERE step_id = $1")
        .bind(resumed.step_id().unwrap().parse::<Uuid>().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(tone.0, "friendly", "a broken promise is followed by a firmer reminder");
    assert!(
        resumed.subject().unwrap_or_default().starts_with("Payment promised for March 20, 2026 not received"),
        "the reminder recalls the promise: {:?}",
        resumed.subject()
    );
    let activity = app.activity(&firm, invoice).await;
    let kinds: Vec<&str> = activity["history"].as_array().unwrap().iter().filter_map(|h| h["kind"].as_str()).collect();
    assert!(kinds.contains(&"reply_received") && kinds.contains(&"promise_broken"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_stops_email_to_the_address_and_a_dispute_halts_outreach() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.add_client(&firm, "cus_bo", "Granite Builders", "standard", "America/New_York").await;
    app.add_client(&firm, "cus_di", "Oak Studio", "standard", "America/New_York").await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
    let bounced = app.finalize_invoice(&firm, "in_bo_1", "cus_bo", 120_000, "usd", due).await;
    let disputed = app.finalize_invoice(&firm, "in_di_1", "cus_di", 220_000, "usd", due).await;
    app.process_until_idle().await;
    // Finalized two days before it is due: one reminder each on Monday 2 March.
    app.advance(Duration::days(1)).await;
    let first = app.emails_for(bounced);
    assert_eq!(first.len(), 1);
    let (_, message_id, _) = thread_of(&first[0]);

    // The recipient's server says the mailbox does not exist (RFC 3464 DSN, 5.1.1).
    let dsn = arflow_tests::hard_bounce("billing@cus_bo.test", &message_id);
    assert_eq!(app.inbound_email(&firm, dsn.as_bytes()).await.status(), 202);
    // The other client disputes the invoice.
    let (_, other_id, other_subject) = thread_of(&app.emails_for(disputed)[0]);
    let raw = plain_reply(
        "billing@cus_di.test",
        &other_id,
        &other_subject,
        "Thu, 05 Mar 2026 10:00:00 -0500",
        "We never approved the extra hours billed on this invoice. Please correct it.",
    );
    assert_eq!(app.inbound_email(&firm, &raw).await.status(), 202);
    app.process_until_idle().await;

    let replies = classified(&app).await;
    let bounce = replies.iter().find(|r| r["kind"] == "bounce").expect("the bounce");
    assert_eq!(bounce["bounce"]["hard"], true);
    assert_eq!(bounce["bounce"]["status"], "5.1.1");
    assert_eq!(bounce["invoice_id"], bounced.to_string());
    let dispute = replies.iter().find(|r| r["intent"] == "dispute").expect("the dispute");
    assert_eq!(dispute["invoice_id"], disputed.to_string());

    app.advance(Duration::days(30)).await;
    assert_eq!(app.emails_for(bounced).len(), 1, "no more email to an address that does not exist");
    assert_eq!(app.emails_for(disputed).len(), 1, "a disputed invoice is not chased");
    let bounces = app.get(&firm, "/v1/replies?intent=bounce").await;
    assert_eq!(bounces["data"].as_array().unwrap().len(), 1, "{bounces}");
    assert_eq!(app.get(&firm, "/v1/replies?matched=false").await["data"].as_array().unwrap().len(), 0);
    let decision = app.get(&firm, &format!("/v1/invoices/{disputed}")).await;
    assert_ne!(decision["automation_status"], "enabled", "{decision}");
}
