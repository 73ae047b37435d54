//! Clients of the demo portfolio answer some reminders, as real mail clients would: a raw
//! RFC 5322 reply (threaded with `In-Reply-To`, sent to the `Reply-To` token address, the
//! reminder quoted below) posted to the gateway's inbound webhook. Everything after that is the
//! real path: object store, MIME parsing, matching, classification, the actions.
use crate::api::Api;
use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use std::collections::BTreeMap;

/// What clients say (and the headers an auto-responder adds), in the languages of the portfolio.
const ANSWERS: &[(&str, &str)] = &[
    ("", "Please stop sending these automated reminders and remove me from your mailing list."),
    ("", "We'll pay this on the 20th with our regular payment run."),
    ("", "We never approved the extra site visits on this invoice. Please correct it before we pay."),
    ("", "This was paid by ACH last Tuesday, reference 44718. Please check on your side."),
    ("", "Could we split this into three monthly instalments? Cash is tight this quarter."),
    ("", "Can you send me a copy of the invoice and your W-9? We need it for our records."),
    ("", "I left the company in June. Please contact our accounts payable team at ap@ instead."),
    ("", "Thanks, I've forwarded this to our AP team."),
    ("Auto-Submitted: auto-replied\r\n", "I am out of the office until Monday with limited access to email."),
    ("", "Bitte senden Sie mir keine weiteren automatischen Zahlungserinnerungen."),
    ("", "Nous réglerons la facture vendredi prochain, merci de votre patience."),
    ("", "Pagaremos la factura a fin de mes."),
];

/// Emails sent since `since` that a client could answer: (to, message id, reply token, subject).
async fn answerable(
    pool: &sqlx::PgPool,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, String, String, String)>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT to_address, message_id, reply_token, subject FROM email.emails \
         WHERE state = 'sent' AND sent_at > $1 AND message_id IS NOT NULL AND reply_token IS NOT NULL \
         ORDER BY sent_at, id",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .context("reading the emails clients received")?;
    Ok(rows)
}

/// The demo's clients, answering some of the reminders they receive.
pub struct Clients<'a> {
    pub firm: &'a Api,
    pub firm_id: &'a str,
    pub inbound_token: &'a str,
    pub reply_domain: &'a str,
    /// The share of reminders that get an answer.
    pub share: f64,
    /// The next answer to use (they are taken in turn).
    pub next: usize,
}

impl Clients<'_> {
    /// Answers about `share` of the reminders sent since `since`; returns how many were posted.
    pub async fn answer_some(
        &mut self,
        pool: &sqlx::PgPool,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> anyhow::Result<usize> {
        let mut posted = 0;
        for (to, message_id, token, subject) in answerable(pool, since).await? {
            if !rng.random_bool(self.share) {
                continue;
            }
            let (extra, said) = ANSWERS[self.next % ANSWERS.len()];
            self.next += 1;
            let raw = format!(
                "From: <{to}>\r\nTo: <reply+{token}@{domain}>\r\nSubject: Re: {subject}\r\n\
                 Date: {date}\r\nMessage-ID: <demo-{n}-{token}@client.example>\r\nIn-Reply-To: {message_id}\r\n\
                 References: {message_id}\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{said}\r\n\r\nOn {when} Harbor & Pine Accounting wrote:\r\n\
                 > {subject}\r\n> To stop these reminders, unsubscribe here.\r\n",
                domain = self.reply_domain,
                date = now.to_rfc2822(),
                n = self.next,
                when = since.format("%a, %b %-d, %Y"),
            );
            self.firm.inbound_email(self.firm_id, self.inbound_token, raw.into_bytes()).await?;
            posted += 1;
        }
        Ok(posted)
    }
}

/// Replies by intent and what was done, from the `reply.classified` events.
pub async fn summary(bus: &arflow_bus::Bus) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    let stream = bus.js.get_stream("REPLY").await.context("REPLY stream")?;
    let state = stream.get_info().await.context("REPLY stream info")?.state;
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        if !m.subject.starts_with("reply.classified.") {
            continue;
        }
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or_default();
        let data = &v["data"];
        let key = match data["intent"].as_str() {
            Some(i) => format!("{i}: {}", data["action"].as_str().unwrap_or_default()),
            None => format!(
                "{}: {}",
                data["kind"].as_str().unwrap_or_default(),
                data["action"].as_str().unwrap_or_default()
            ),
        };
        *out.entry(key).or_default() += 1;
    }
    Ok(out)
}
