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

/// What clients say (and the headers an auto-responder adds), in the languages of the portfolio,
/// with what they meant (the label a person gives a reply arflow holds for review). Written by a
/// writer who never saw the classifier; two of them are too terse for anyone to read with
/// confidence ("Interesting.", "Well, we will see about that."), so the demo shows the review path.
pub const ANSWERS: &[(&str, &str, &str)] = &[
    (
        "",
        "Please stop sending these automated reminders. If Harbor & Pine needs something from me, have Dana call me directly.",
        "opt_out",
    ),
    ("", "Unsubscribe.", "opt_out"),
    (
        "",
        "I'm not arguing about the bill, I just don't want a robot emailing me every three days. Take this address off your list please.",
        "opt_out",
    ),
    ("", "i never signed up for these emails and this is the fourth one this week. marking as spam. -Rick", "opt_out"),
    (
        "",
        "Merci de ne plus m'envoyer ces relances automatiques. Je préfère qu'une vraie personne du cabinet me contacte.",
        "opt_out",
    ),
    ("", "Bitte nehmen Sie meine Adresse aus Ihrem Mahnverteiler. Ich habe dem nie zugestimmt.", "opt_out"),
    (
        "",
        "This invoice has us down for 14 hours of bookkeeping in March, but our engagement letter is a flat $450 a month. I'm not paying the hourly version until someone explains it.",
        "dispute",
    ),
    (
        "",
        "We were already charged for the Q2 payroll filing on invoice 2231. This looks like the same thing billed twice.",
        "dispute",
    ),
    (
        "",
        "The 1099s were filed late and we got a penalty notice from the IRS because of it. I'm not paying this until we talk about who covers that. Marcus",
        "dispute",
    ),
    (
        "",
        "Le montant ne correspond pas au devis signé : 1 200 € HT pour la liasse fiscale, pas 1 680 €. Pouvez-vous corriger la facture ?",
        "dispute",
    ),
    ("", "Interesting.", "acknowledged"),
    (
        "",
        "No reconozco este cargo de \"asesoría extraordinaria\". Nadie nos consultó antes de hacer ese trabajo y no lo aprobamos.",
        "dispute",
    ),
    (
        "",
        "Die Lohnabrechnung für Mai wurde nie erstellt, wir mussten sie selbst machen. Diese Position akzeptieren wir nicht.",
        "dispute",
    ),
    ("", "Paid this on the 3rd by ACH, confirmation ends in 7781. Can you check on your end?", "already_paid"),
    (
        "",
        "Hi, our AP team says it went out in last Thursday's payment run. Should land any day now. Thanks, Priya",
        "already_paid",
    ),
    ("", "I mailed a check for the full amount over a week ago!", "already_paid"),
    (
        "",
        "Bonjour, le virement a été effectué lundi dernier depuis notre compte pro. Je vous joins l'avis d'opéré.",
        "already_paid",
    ),
    ("", "Die Rechnung wurde bereits am Dienstag überwiesen. Bitte prüfen Sie Ihren Zahlungseingang.", "already_paid"),
    ("", "Ya está pagada, hice la transferencia el viernes. Te adjunto el justificante.", "already_paid"),
    (
        "",
        "Business has been really slow since the road construction started out front. Could I pay this off in three monthly chunks instead of all at once?",
        "payment_plan",
    ),
    (
        "",
        "I can do $500 now and the remaining $820 once our big client pays us, probably mid next month. Does that work?",
        "payment_plan",
    ),
    (
        "",
        "Any chance of a 30 day extension on this one? Cash is tight until tax refunds come through. Sorry, Jen",
        "payment_plan",
    ),
    (
        "",
        "Estamos pasando un mal momento con la tesorería. ¿Sería posible fraccionar la factura en dos o tres pagos?",
        "payment_plan",
    ),
    (
        "",
        "Je peux régler la moitié le 10 et le reste le 25, si cela vous convient. Désolé pour le retard.",
        "payment_plan",
    ),
    ("", "Sorry, totally slipped my mind. I'll pay it Friday.", "promise_to_pay"),
    ("", "It's approved and in the queue for next week's run.", "promise_to_pay"),
    (
        "",
        "Will get this paid by the end of the month, promise. Things have just been hectic with the move. Tom",
        "promise_to_pay",
    ),
    ("", "ok will pay tonight when im back at the computer", "promise_to_pay"),
    ("", "Thanks for the nudge. We'll have it paid on the 20th when our receivables clear.", "promise_to_pay"),
    ("", "Pas de souci, je fais le virement d'ici la fin de la semaine. Bonne journée, Claire", "promise_to_pay"),
    ("", "Danke für die Erinnerung, ich überweise den Betrag am Montag.", "promise_to_pay"),
    ("", "Perdona el retraso, lo pago mañana sin falta.", "promise_to_pay"),
    ("", "Ya lo tengo en la lista de pagos, saldrá a finales de mes.", "promise_to_pay"),
    (
        "",
        "I left Coastal Print Supply in January, so I can't help with this. Try accounts@coastalprint.com.",
        "wrong_contact",
    ),
    (
        "",
        "Not unsubscribing, but please send these to our AP inbox (ap@bellmeadowdental.com) instead of my personal email. I'm just the office manager.",
        "wrong_contact",
    ),
    ("", "Well, we will see about that.", "dispute"),
    ("", "Wrong Sarah, I think. I've never used an accounting firm and I don't own a business.", "wrong_contact"),
    (
        "",
        "Ich bin hier nur für die Personalabteilung zuständig. Rechnungen gehen bitte an buchhaltung@mueller-holzbau.de.",
        "wrong_contact",
    ),
    (
        "",
        "Cette facture concerne la SARL, pas moi personnellement. Merci de l'adresser à notre comptable, M. Garnier.",
        "wrong_contact",
    ),
    ("", "Can you send me a PDF copy of the invoice? The link in the email just spins for me.", "question"),
    (
        "",
        "What exactly is the $275 \"advisory\" line for? I don't remember asking for anything extra this quarter.",
        "question",
    ),
    (
        "",
        "Our vendor portal needs a current W-9 before we can pay anyone. Could you send one over? Thanks, Luis",
        "question",
    ),
    ("", "¿Me podéis mandar los datos bancarios para hacer la transferencia? No quiero pagar con tarjeta.", "question"),
    (
        "",
        "Bonjour, pourriez-vous m'indiquer le numéro de bon de commande à reporter ? Notre service compta le demande.",
        "question",
    ),
    ("", "Got it, thanks.", "acknowledged"),
    ("", "I've forwarded this to our controller, she handles payables.", "acknowledged"),
    ("", "Thanks for the reminder, I'll look into it this afternoon.", "acknowledged"),
    ("", "Vielen Dank, habe ich zur Kenntnis genommen.", "acknowledged"),
    (
        "Auto-Submitted: auto-replied\r\n",
        "I'm out of the office until Monday with limited access to email. For anything urgent please contact Beth at 555-0142.",
        "auto_reply",
    ),
    (
        "",
        "Thank you for your email. I am currently on parental leave and will not be checking messages. Your email will not be forwarded.",
        "auto_reply",
    ),
];

/// What the client meant by `text`, if it is one of the demo's answers.
pub fn meaning(text: &str) -> Option<&'static str> {
    let text = text.trim();
    ANSWERS.iter().find(|(_, said, _)| said.trim() == text).map(|&(_, _, meant)| meant)
}

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
            let (extra, said, _) = ANSWERS[self.next % ANSWERS.len()];
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

/// How often the classifier asked a person: replies (not bounces or complaints) classified, those
/// held for review, and those a person labelled.
#[derive(Debug, Default)]
pub struct Reviews {
    pub replies: usize,
    pub held: usize,
    pub labelled: usize,
}

/// Replies by intent and what was done, from the `reply.classified` events, and the review counts.
pub async fn summary(bus: &arflow_bus::Bus) -> anyhow::Result<(BTreeMap<String, usize>, Reviews)> {
    let mut out = BTreeMap::new();
    let mut reviews = Reviews::default();
    let stream = bus.js.get_stream("REPLY").await.context("REPLY stream")?;
    let state = stream.get_info().await.context("REPLY stream info")?.state;
    if state.messages == 0 {
        return Ok((out, reviews));
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        if !m.subject.starts_with("reply.classified.") {
            continue;
        }
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or_default();
        let data = &v["data"];
        if data["labelled_by"].is_string() {
            reviews.labelled += 1;
        } else if data["intent"].is_string() {
            reviews.replies += 1;
            reviews.held += usize::from(data["needs_review"].as_bool().unwrap_or(false));
        }
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
    Ok((out, reviews))
}
