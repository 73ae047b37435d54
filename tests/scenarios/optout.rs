//! Fence 2 end to end: an opt-out from any source stops every send to the contact, however it
//! interleaves with due steps. Six sources (a firm user through the API, a CSV suppression
//! import, the one-click link, an email reply, a spam complaint, a hard bounce) hit contacts at
//! random moments while the clock runs and reminders go out. Proof from the holds bucket itself:
//! in each contact's key history no send claim comes after the hold, and the client received
//! exactly the sends claimed before it.
use arflow_bus::HoldValue;
use arflow_contracts::streams::{HOLDS_BUCKET, contact_channel_hold_key, contact_hold_key};
use arflow_core::Channel;
use arflow_tests::{Firm, REPLY_DOMAIN, TestApp};
use chrono::{Duration, NaiveDate};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    FirmUser,
    CsvImport,
    UnsubscribeLink,
    EmailReply,
    SpamComplaint,
    HardBounce,
}

impl Source {
    /// Sources that answer an email the contact received.
    fn needs_an_email(self) -> bool {
        matches!(self, Source::UnsubscribeLink | Source::EmailReply | Source::SpamComplaint | Source::HardBounce)
    }

    /// What the ledger records.
    fn ledger_source(self) -> &'static str {
        match self {
            Source::FirmUser => "firm_user",
            Source::CsvImport => "csv_import",
            Source::UnsubscribeLink => "unsubscribe_link",
            Source::EmailReply => "email_reply",
            Source::SpamComplaint => "spam_complaint",
            Source::HardBounce => "hard_bounce",
        }
    }
}

struct Target {
    source: Source,
    contact: Uuid,
    email: String,
    /// The 6-hour window of the simulated clock when the opt-out is sent (postponed until the
    /// contact got an email, for the sources that answer one).
    window: u32,
    done: bool,
}

fn mails_to(app: &TestApp, email: &str) -> Vec<arflow_testkit::smtp::ReceivedMail> {
    app.emails().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(email))).collect()
}

/// Sends one opt-out the way its source does.
async fn opt_out(app: &TestApp, firm: &Firm, t: &Target) {
    let last = mails_to(app, &t.email).pop();
    let (message_id, token) = last
        .as_ref()
        .map(|m| {
            let reply_to = m.header("Reply-To").unwrap_or_default();
            let token = reply_to.split("reply+").nth(1).and_then(|s| s.split('@').next()).unwrap_or_default();
            (m.header("Message-ID").unwrap_or_default().to_string(), token.to_string())
        })
        .unwrap_or_default();
    let http = &app.http;
    let status = match t.source {
        Source::FirmUser => http
            .post(app.url("/v1/consent/opt-outs"))
            .bearer_auth(&firm.key)
            .header("x-arflow-actor", "dana@firm.test")
            .json(&json!({"contact_id": t.contact, "reason": "asked by phone"}))
            .send()
            .await
            .unwrap()
            .status(),
        Source::CsvImport => {
            let csv = format!("email,channel,evidence\n{},,old do-not-contact list\n", t.email);
            let r = http
                .post(app.url("/v1/consent/suppressions.csv"))
                .bearer_auth(&firm.key)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let report: Value = r.json().await.unwrap();
            assert_eq!(report["imported"], 1, "{report}");
            status
        }
        Source::UnsubscribeLink => {
            // The link of the mail the SMTP sink received, clicked as a person (GET, the page with
            // its form) and as a mail client's one-click (POST, RFC 8058) does: both 200.
            let header = last.as_ref().and_then(|m| m.header("List-Unsubscribe")).expect("List-Unsubscribe");
            let url = header.split(['<', '>']).find(|p| p.starts_with("http")).expect("an https unsubscribe URL");
            let page = http.get(url).send().await.unwrap();
            assert_eq!(page.status(), 200, "GET {url}");
            let html = page.text().await.unwrap();
            assert!(html.contains("<form") && html.contains(url), "the page posts to the link: {html}");
            let r = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "POST {url}");
            r.status()
        }
        Source::EmailReply => {
            let raw = format!(
                "From: <{}>\r\nTo: <reply+{token}@{REPLY_DOMAIN}>\r\nSubject: Re: reminder\r\nIn-Reply-To: {message_id}\r\n\
                 Date: Mon, 09 Mar 2026 10:00:00 +0000\r\n\r\nPlease stop emailing me about this.\r\n",
                t.email
            );
            app.inbound_email(firm, raw.as_bytes()).await.status()
        }
        Source::SpamComplaint => {
            let raw = format!(
                "From: <fbl@isp.example>\r\nTo: <abuse@firm.example>\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\r\n\
                 --arf\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\
                 --arf\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: isp/1.0\r\nVersion: 1\r\n\r\n\
                 --arf\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: ar@firm.example\r\nTo: {}\r\n\
                 Message-ID: {message_id}\r\nSubject: Reminder\r\n\r\n--arf--\r\n",
                t.email
            );
            app.inbound_email(firm, raw.as_bytes()).await.status()
        }
        Source::HardBounce => {
            let raw = arflow_tests::hard_bounce(&t.email, &message_id);
            app.inbound_email(firm, raw.as_bytes()).await.status()
        }
    };
    assert!(status.is_success(), "{:?} opt-out answered {status}", t.source);
}

/// The contact's hold key history: (revision, value) oldest first.
pub(crate) async fn history(app: &TestApp, key: &str) -> Vec<(u64, Option<HoldValue>)> {
    let kv = app.bus.js.get_key_value(HOLDS_BUCKET).await.unwrap();
    let mut entries = kv.history(key).await.unwrap();
    let mut out = vec![];
    while let Some(e) = entries.next().await {
        let e = e.unwrap();
        out.push((e.revision, serde_json::from_slice(&e.value).ok()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_opt_out_from_any_source_stops_every_send_under_random_interleavings() {
    let seed: u64 = std::env::var("ARFLOW_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("ARFLOW_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    let start = app.now().await.date_naive();
    let sources = [
        Source::FirmUser,
        Source::CsvImport,
        Source::UnsubscribeLink,
        Source::EmailReply,
        Source::SpamComplaint,
        Source::HardBounce,
    ];
    let mut targets = vec![];
    for (i, source) in sources.iter().cycle().take(12).enumerate() {
        let customer = format!("cus_oo{i:02}");
        let (_, contact) =
            app.add_client(&firm, &customer, &format!("Client {i}"), "standard", "America/Chicago").await;
        let due: NaiveDate = start + Duration::days(rng.random_range(1..=6));
        app.finalize_invoice(&firm, &format!("in_oo{i:02}"), &customer, 90_000 + i as i64, "usd", due).await;
        targets.push(Target {
            source: *source,
            contact,
            email: format!("billing@{customer}.test"),
            window: rng.random_range(0..48),
            done: false,
        });
    }
    app.process_until_idle().await;

    // 16 days in 6-hour windows; each opt-out races the window's sends after a random delay.
    for window in 0..64u32 {
        let mut due = vec![];
        for t in targets.iter_mut().filter(|t| !t.done && t.window <= window) {
            if t.source.needs_an_email() && mails_to(&app, &t.email).is_empty() {
                continue; // postponed: nothing to answer yet
            }
            t.done = true;
            due.push((&*t, rng.random_range(0..60u64)));
        }
        let fire = futures::future::join_all(due.into_iter().map(|(t, delay_ms)| {
            let (app, firm) = (&app, &firm);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                opt_out(app, firm, t).await;
            }
        }));
        tokio::join!(app.advance(Duration::hours(6)), fire);
    }
    assert!(targets.iter().all(|t| t.done), "every contact got an email and opted out");
    // Long after: the cadences would have run out by now.
    app.advance_days(30).await;

    for t in &targets {
        let key = match t.source {
            Source::HardBounce => contact_channel_hold_key(t.contact, Channel::Email),
            _ => contact_hold_key(t.contact),
        };
        let h = history(&app, &key).await;
        let held_at = h.iter().position(|(_, v)| matches!(v, Some(HoldValue::Held { .. })));
        let held_at = held_at.unwrap_or_else(|| panic!("{:?}: no hold on {key}: {h:?}", t.source));
        let claims_after = h[held_at..].iter().filter(|(_, v)| matches!(v, Some(HoldValue::Claimed { .. }))).count();
        assert_eq!(claims_after, 0, "{:?} (seed {seed}): a send claimed {key} after the hold: {h:?}", t.source);
        // Every email the client got was claimed before the hold (the channel-wide key for all
        // sources but the bounce, where the address itself is suppressed).
        let claims_before = history(&app, &contact_hold_key(t.contact))
            .await
            .iter()
            .filter(|(_, v)| matches!(v, Some(HoldValue::Claimed { .. })))
            .count();
        let received = mails_to(&app, &t.email).len();
        if t.source.needs_an_email() {
            assert!(received >= 1, "{:?}: the contact got at least one reminder first", t.source);
        }
        assert!(received <= claims_before.max(1) + 1, "{:?}: {received} emails for {claims_before} claims", t.source);

        // The ledger says who, how and why.
        let state = app.get(&firm, &format!("/v1/consent/contacts/{}", t.contact)).await;
        let text = state.to_string();
        assert!(text.contains(t.source.ledger_source()), "{:?}: ledger {state}", t.source);
    }
    // One consent event per contact, from the opt-out service.
    let consent = app.events("CONSENT", "consent.opted_out.").await;
    for t in &targets {
        let n = consent.iter().filter(|(_, e)| e.data["contact_id"] == t.contact.to_string()).count();
        assert_eq!(n, 1, "{:?}: consent.opted_out events for the contact", t.source);
        assert!(consent.iter().all(|(_, e)| e.source == "optout"));
    }
}
