//! The demo's phones: calls and texts go to the local telephony simulator, whose scripted
//! people answer by the last digit of their number (`ScriptBook::demo`). A few clients text
//! back to the reminders they receive (STOP, HELP, a promise), through the simulator's inbound
//! hook, so the signed SMS webhook, the gateway's signature check and the voice service's
//! keyword handling all run for real. The summary reads what happened from the voice service's
//! tables and cross-checks the simulator's own record.
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// What texting clients answer, in turn: opt out, ask for help, promise (in Spanish).
const TEXT_ANSWERS: &[&str] = &["STOP", "HELP", "Pagaré la factura el viernes"];

pub struct Phones {
    /// The simulator's base URL (`ARFLOW_TELEPHONY_SIM`).
    sim: String,
    /// Our number, which clients text back to.
    from: String,
    http: reqwest::Client,
    next: usize,
    /// (contact, when) of each STOP sent, to prove nothing followed it.
    pub stops: Vec<(uuid::Uuid, DateTime<Utc>)>,
}

impl Phones {
    /// `None` when the stack runs without the simulator.
    pub fn from_env() -> Option<Phones> {
        let sim = std::env::var("ARFLOW_TELEPHONY_SIM").ok()?;
        let from = std::env::var("ARFLOW__TELEPHONY__FROM_NUMBER").ok()?;
        Some(Phones { sim, from, http: reqwest::Client::new(), next: 0, stops: Vec::new() })
    }

    /// The first texts delivered since `since` each get the next answer, until all are used.
    pub async fn answer_texts(
        &mut self,
        pool: &sqlx::PgPool,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        if self.next >= TEXT_ANSWERS.len() {
            return Ok(0);
        }
        let sent: Vec<(uuid::Uuid, String)> = sqlx::query_as(
            "SELECT contact_id, to_number FROM voice.texts WHERE state = 'sent' AND sent_at > $1 AND sent_at <= $2 \
             AND to_number IS NOT NULL ORDER BY sent_at, id",
        )
        .bind(since)
        .bind(now)
        .fetch_all(pool)
        .await
        .context("reading the texts clients received")?;
        let mut answered = 0;
        for (contact, number) in sent {
            let Some(body) = TEXT_ANSWERS.get(self.next) else { break };
            let resp: Value = self
                .http
                .post(format!("{}/_sim/sms", self.sim))
                .json(&json!({"from": number, "to": self.from, "body": body}))
                .send()
                .await
                .context("the telephony simulator")?
                .error_for_status()?
                .json()
                .await?;
            anyhow::ensure!(resp["status"].as_u64() == Some(200), "inbound text {body:?} was refused: {resp}");
            if *body == "STOP" {
                self.stops.push((contact, now));
            }
            self.next += 1;
            answered += 1;
        }
        Ok(answered)
    }

    /// Calls by outcome, texts by state, inbound texts by what they meant, the fence checks.
    pub async fn summary(&self, pool: &sqlx::PgPool) -> anyhow::Result<()> {
        let rows = |sql: &'static str| async move {
            sqlx::query_as::<_, (String, i64)>(sql).fetch_all(pool).await.context("reading the voice service's records")
        };
        println!("calls (AI voice, through the telephony simulator):");
        for (what, n) in rows(
            "SELECT coalesce(outcome, state || coalesce(': ' || skip_reason, '')), count(*) FROM voice.calls \
             GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .await?
        {
            println!("  {n:>4}  {what}");
        }
        for (what, n) in rows(
            "SELECT 'client said ' || intent, count(*) FROM voice.call_turns WHERE speaker = 'client' \
             AND intent IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .await?
        {
            println!("  {n:>4}  {what}");
        }
        println!("texts:");
        for (what, n) in rows(
            "SELECT state || coalesce(': ' || skip_reason, ''), count(*) FROM voice.texts GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .await?
        {
            println!("  {n:>4}  {what}");
        }
        for (what, n) in rows(
            "SELECT 'inbound ' || kind || coalesce(' (' || intent || ')', ''), count(*) FROM voice.inbound_texts \
             GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .await?
        {
            println!("  {n:>4}  {what}");
        }
        // Fence 4, read back from what was actually placed.
        let (outside, no_zone_placed, max_week): (i64, i64, i64) = sqlx::query_as(
            "WITH placed AS (SELECT invoice_id, placed_at, step_due->'contact'->>'call_timezone' AS tz \
                             FROM voice.calls WHERE placed_at IS NOT NULL) \
             SELECT \
               (SELECT count(*) FROM placed WHERE tz IS NOT NULL \
                  AND extract(hour FROM placed_at AT TIME ZONE tz) NOT BETWEEN 8 AND 20), \
               (SELECT count(*) FROM placed WHERE tz IS NULL), \
               coalesce((SELECT max(n) FROM (SELECT count(*) AS n FROM placed a JOIN placed b \
                  ON a.invoice_id = b.invoice_id AND b.placed_at >= a.placed_at \
                  AND b.placed_at < a.placed_at + interval '7 days' GROUP BY a.invoice_id, a.placed_at) w), 0)",
        )
        .fetch_one(pool)
        .await
        .context("checking the calling window")?;
        println!(
            "  calls placed outside 08:00-21:00 local: {outside}; without a known zone: {no_zone_placed}; \
             most attempts for one invoice in 7 days: {max_week}"
        );
        let (placed,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM voice.calls WHERE provider_sid IS NOT NULL").fetch_one(pool).await?;
        let (sent,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM voice.texts WHERE message_sid IS NOT NULL").fetch_one(pool).await?;
        let sim_calls = self.count(&format!("{}/_sim/calls", self.sim)).await?;
        let sim_texts = self.count(&format!("{}/_sim/messages", self.sim)).await?;
        println!(
            "  the simulator received {sim_calls} calls ({placed} placed by arflow) and {sim_texts} texts ({sent} sent)"
        );
        for (contact, at) in &self.stops {
            let (after,): (i64,) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM email.emails WHERE contact_id = $1 AND state = 'sent' AND sent_at > $2) \
                      + (SELECT count(*) FROM voice.calls WHERE contact_id = $1 AND placed_at > $2) \
                      + (SELECT count(*) FROM voice.texts WHERE contact_id = $1 AND sent_at > $2)",
            )
            .bind(contact)
            .bind(at)
            .fetch_one(pool)
            .await?;
            println!(
                "  contact {contact} texted STOP on {}: {after} emails, calls or texts after it",
                at.format("%Y-%m-%d")
            );
        }
        Ok(())
    }

    async fn count(&self, url: &str) -> anyhow::Result<usize> {
        let v: Value = self.http.get(url).send().await?.error_for_status()?.json().await?;
        Ok(v.as_array().map_or(0, Vec::len))
    }
}
