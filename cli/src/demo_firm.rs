//! The firm's side of the demo, all through the gateway's public API: a firm user subscribes
//! to notifications (email to the AR manager, a Slack channel and a signed webhook, both
//! served by a receiver this process runs and takes down for a few days), opts contacts out
//! by hand and by CSV, re-consents one with a reason, and works the escalation queue.
use crate::api::Api;
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

const AR_MANAGER: &str = "dana.whitfield@harborpine.example";

/// What the firm's webhook endpoint and Slack channel saw.
#[derive(Default)]
pub struct Received {
    /// False while the endpoint is "down" (it answers 503).
    pub up: bool,
    pub refused_while_down: u64,
    pub verified: u64,
    pub bad_signature: u64,
    pub ids: HashSet<String>,
    /// The same `webhook-id` delivered again (at-least-once).
    pub repeats: u64,
    pub by_type: BTreeMap<String, u64>,
    pub slack: u64,
    /// The webhook secret (`whsec_...`), once the subscription exists.
    pub secret: String,
}

type Shared = Arc<Mutex<Received>>;

async fn webhook(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(mut r) = state.lock() else { return StatusCode::INTERNAL_SERVER_ERROR };
    if !r.up {
        r.refused_while_down += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let Some(id) = arflow_testkit::standard_webhooks::verify(&r.secret, &headers, &body) else {
        r.bad_signature += 1;
        return StatusCode::UNAUTHORIZED;
    };
    r.verified += 1;
    if !r.ids.insert(id) {
        r.repeats += 1;
    }
    let kind = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
        .unwrap_or_default();
    *r.by_type.entry(kind).or_default() += 1;
    StatusCode::NO_CONTENT
}

async fn slack(State(state): State<Shared>) -> StatusCode {
    let Ok(mut r) = state.lock() else { return StatusCode::INTERNAL_SERVER_ERROR };
    if !r.up {
        r.refused_while_down += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.slack += 1;
    StatusCode::OK
}

/// The firm: its API client, its receiver and what its users did.
pub struct FirmSide<'a> {
    pub firm: &'a Api,
    pub received: Shared,
    pub opted_out_by_hand: Vec<String>,
    pub actions: BTreeMap<&'static str, u64>,
    pub csv_report: Value,
    pub reenabled: u64,
    pub replayed: u64,
}

impl<'a> FirmSide<'a> {
    /// Starts the receiver and subscribes the firm's users.
    pub async fn start(firm: &'a Api) -> anyhow::Result<FirmSide<'a>> {
        let received: Shared = Arc::new(Mutex::new(Received { up: true, ..Received::default() }));
        let app = axum::Router::new()
            .route("/hooks/arflow", post(webhook))
            .route("/slack/T000/B000", post(slack))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("demo webhook receiver")?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });

        let all = [
            "opt_out",
            "escalation_opened",
            "dispute",
            "payment_after_outreach",
            "promise_made",
            "promise_broken",
            "all_contacts_opted_out",
            "dead_letter",
        ];
        let hook = firm
            .post_as(
                AR_MANAGER,
                "/v1/notifications/subscriptions",
                &json!({"user": "ops-integration", "kinds": all, "channel": {"type": "webhook", "url": format!("{base}/hooks/arflow")}}),
            )
            .await?;
        let secret = hook["secret"].as_str().context("the webhook subscription's secret")?;
        if let Ok(mut r) = received.lock() {
            r.secret = secret.to_string();
        }
        firm.post_as(
            AR_MANAGER,
            "/v1/notifications/subscriptions",
            &json!({"user": AR_MANAGER, "kinds": ["escalation_opened", "all_contacts_opted_out", "promise_broken", "daily_digest"],
                "channel": {"type": "email", "address": AR_MANAGER}}),
        )
        .await?;
        firm.post_as(
            AR_MANAGER,
            "/v1/notifications/subscriptions",
            &json!({"user": "#collections", "kinds": ["escalation_opened", "dispute", "payment_after_outreach"],
                "channel": {"type": "slack", "webhook_url": format!("{base}/slack/T000/B000")}}),
        )
        .await?;
        Ok(FirmSide {
            firm,
            received,
            opted_out_by_hand: vec![],
            actions: BTreeMap::new(),
            csv_report: Value::Null,
            reenabled: 0,
            replayed: 0,
        })
    }

    fn set_up(&self, up: bool) {
        if let Ok(mut r) = self.received.lock() {
            r.up = up;
        }
    }

    /// What the firm's people do on a given day of the demo.
    pub async fn day(&mut self, day: u32, now: DateTime<Utc>, contacts: &[(String, String)]) -> anyhow::Result<()> {
        match day {
            // A client phoned to say "no more reminders": a firm user records it.
            6 => {
                for (contact_id, _) in contacts.iter().skip(20).step_by(17).take(2) {
                    self.firm
                        .post_as(
                            AR_MANAGER,
                            "/v1/consent/opt-outs",
                            &json!({"contact_id": contact_id, "reason": "asked by phone to stop all reminders"}),
                        )
                        .await?;
                    self.opted_out_by_hand.push(contact_id.clone());
                }
            }
            // The firm imports its old suppression list: two known addresses, one unknown, one broken row.
            9 => {
                let known: Vec<&str> = contacts.iter().skip(31).step_by(13).take(2).map(|(_, e)| e.as_str()).collect();
                let mut csv = String::from("email,channel,evidence\n");
                for email in known {
                    csv.push_str(&format!("{email},,old CRM do-not-contact list\n"));
                }
                csv.push_str("nobody@unknown-client.example,email,old CRM do-not-contact list\n");
                csv.push_str("not-an-email,fax,?\n");
                self.csv_report = self.firm.post_csv(AR_MANAGER, "/v1/consent/suppressions.csv", csv).await?;
            }
            // The firm's webhook endpoint is down for three days (a deploy gone wrong).
            15 => self.set_up(false),
            // Back up: the endpoints arflow disabled meanwhile are re-enabled and what was parked is replayed.
            18 => {
                self.set_up(true);
                let subs = self.firm.get("/v1/notifications/subscriptions?limit=100").await?;
                for sub in subs["data"].as_array().into_iter().flatten().filter(|s| s["status"] == "disabled") {
                    let path =
                        format!("/v1/notifications/subscriptions/{}/enable", sub["id"].as_str().unwrap_or_default());
                    let r = self.firm.post_as(AR_MANAGER, &path, &json!({"replay_parked": true})).await?;
                    self.replayed += r["replayed"].as_u64().unwrap_or(0);
                    self.reenabled += 1;
                }
            }
            // One of the phoned-in opt-outs changes their mind, in writing.
            22 => {
                if let Some(contact_id) = self.opted_out_by_hand.first() {
                    self.firm
                        .post_as(
                            AR_MANAGER,
                            "/v1/consent/opt-ins",
                            &json!({"contact_id": contact_id, "reason": "client emailed on the 24th asking to receive statements again"}),
                        )
                        .await?;
                }
            }
            _ => {}
        }
        self.work_queue(now).await
    }

    /// The AR manager works the escalation queue: every case open for two days gets a decision.
    async fn work_queue(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let page = self.firm.get("/v1/escalations?status=open&limit=100").await?;
        for case in page["data"].as_array().into_iter().flatten() {
            let opened: DateTime<Utc> = case["opened_at"].as_str().unwrap_or_default().parse().unwrap_or(now);
            if now - opened < chrono::Duration::days(2) {
                continue;
            }
            let (action, body) = match case["reason"].as_str().unwrap_or_default() {
                "dispute" => (
                    "continue_automation",
                    json!({"note": "credit note issued for the disputed line; remaining balance is due"}),
                ),
                "payment_plan" => (
                    "pause",
                    json!({"note": "agreed three monthly instalments by phone", "paused_until": (now + chrono::Duration::days(14)).to_rfc3339()}),
                ),
                "question" => ("continue_automation", json!({"note": "sent the W-9 and a copy of the invoice"})),
                "wrong_contact" => ("resolve", json!({"note": "billing contact updated in the CRM"})),
                // A reply arflow was not sure of: the AR manager reads it and says what it means
                // (the demo client's meaning; else the classifier's likeliest intent); arflow then
                // acts on the label (`resolve` is refused on such a case).
                "needs_review" => {
                    let said = case["review"]["client_text"].as_str().unwrap_or_default();
                    let guess = case["review"]["scores"][0]["intent"].as_str().unwrap_or("acknowledged");
                    let meant = crate::demo_replies::meaning(said).unwrap_or(guess);
                    ("label", json!({"intent": meant, "note": "read the reply"}))
                }
                "days_past_due" | "cadence_exhausted" | "promise_broken_twice" => (
                    "refer_to_agency",
                    json!({"note": "no response after the full cadence; handing over", "agency": "Northwind Collections LLC"}),
                ),
                _ => ("resolve", json!({"note": "will call the client directly"})),
            };
            let mut body = body;
            body["action"] = json!(action);
            let path = format!("/v1/escalations/{}/actions", case["case_id"].as_str().unwrap_or_default());
            self.firm.post_as(AR_MANAGER, &path, &body).await?;
            *self.actions.entry(action).or_default() += 1;
        }
        Ok(())
    }
}

/// Opt-outs, escalations and notifications for the summary, read from the services' own tables.
pub async fn summary(pool: &sqlx::PgPool, side: &FirmSide<'_>) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT action, source, count(*) FROM optout.consent_ledger GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC, 2",
    )
    .fetch_all(pool)
    .await
    .context("reading the consent ledger")?;
    println!("consent ledger (append-only): entries by action and source:");
    for (action, source, n) in rows {
        println!("  {n:>4}  {action:<8} {source}");
    }
    let r = &side.csv_report;
    if !r.is_null() {
        println!(
            "  CSV suppression import: {} imported, {} already opted out, {} unknown, {} invalid",
            r["imported"],
            r["already_opted_out"],
            r["unknown"].as_array().map_or(0, Vec::len),
            r["invalid"].as_array().map_or(0, Vec::len)
        );
    }
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT reason, status, count(*) FROM escalation.cases GROUP BY 1, 2 ORDER BY 1, 2")
            .fetch_all(pool)
            .await
            .context("reading the escalation cases")?;
    println!("escalation cases by reason and status:");
    for (reason, status, n) in rows {
        println!("  {n:>4}  {reason:<24} {status}");
    }
    println!("case actions by the AR manager:");
    for (action, n) in &side.actions {
        println!("  {n:>4}  {action}");
    }
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT s.channel, d.kind, d.status, count(*) FROM notification.deliveries d \
         JOIN notification.subscriptions s ON s.id = d.subscription_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .context("reading the notification deliveries")?;
    println!("notifications by channel, kind and status:");
    for (channel, kind, status, n) in rows {
        println!("  {n:>4}  {channel:<8} {kind:<24} {status}");
    }
    println!(
        "  after the outage: {} endpoints re-enabled by the firm, {} parked notifications replayed",
        side.reenabled, side.replayed
    );
    if let Ok(r) = side.received.lock() {
        println!(
            "firm webhook endpoint: {} verified (Standard Webhooks signature), {} distinct webhook-ids, {} repeats, \
             {} bad signatures, {} refused while it was down (days 15-17); Slack channel: {} messages",
            r.verified,
            r.ids.len(),
            r.repeats,
            r.bad_signature,
            r.refused_while_down,
            r.slack
        );
    }
    Ok(())
}
