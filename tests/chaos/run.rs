//! One run of the portfolio on one stack: the seeded world day by day on the simulated clock,
//! with (faulted run) or without (reference run) the seeded faults, then what came out of it.
use crate::pg::PgCluster;
use crate::portfolio::{Act, Portfolio};
use crate::stack::{ADMIN, REPLY_DOMAIN, SERVICES, Stack, start_time};
use arflow_testkit::stripe;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    pub invoices: usize,
    pub days: u32,
    pub kill_rounds: usize,
    pub proxy_rounds: usize,
    pub pg_outage: Duration,
    /// Longest wait for the pipeline to settle (a PostgreSQL outage included).
    pub settle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum Fault {
    Kill { service: &'static str, after_ms: u64, down_ms: u64 },
    NatsRestart { after_ms: u64 },
    PgOutage { after_ms: u64 },
    ProxySlow { after_ms: u64, delay_ms: u64, for_ms: u64 },
    ProxyReset { after_ms: u64, times: u32 },
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill -9",
            Fault::NatsRestart { .. } => "NATS restart",
            Fault::PgOutage { .. } => "PostgreSQL outage",
            Fault::ProxySlow { .. } => "proxy slow",
            Fault::ProxyReset { .. } => "proxy reset",
        }
    }
}

/// The seeded fault plan: day -> faults of that day (in order).
pub fn plan_faults(p: &Params) -> BTreeMap<u32, Vec<Fault>> {
    let mut rng = StdRng::seed_from_u64(p.seed ^ 0xFA17_5EED);
    let mut plan: BTreeMap<u32, Vec<Fault>> = BTreeMap::new();
    let day = |rng: &mut StdRng| rng.random_range(2..=p.days.saturating_sub(1).max(2));
    for _ in 0..p.kill_rounds {
        let service = SERVICES[rng.random_range(0..SERVICES.len())];
        let f = Fault::Kill { service, after_ms: rng.random_range(0..1_500), down_ms: rng.random_range(0..1_500) };
        plan.entry(day(&mut rng)).or_default().push(f);
    }
    for i in 0..p.proxy_rounds {
        let after_ms = rng.random_range(0..1_000);
        let f = if i % 2 == 0 {
            Fault::ProxySlow { after_ms, delay_ms: rng.random_range(20..150), for_ms: rng.random_range(2_000..6_000) }
        } else {
            Fault::ProxyReset { after_ms, times: rng.random_range(1..4) }
        };
        plan.entry(day(&mut rng)).or_default().push(f);
    }
    plan.entry(p.days / 2).or_default().push(Fault::NatsRestart { after_ms: rng.random_range(0..800) });
    plan.entry(p.days / 3).or_default().push(Fault::PgOutage { after_ms: rng.random_range(0..800) });
    plan
}

/// What one payment or opt-out was acknowledged after: the sends seen until then.
#[derive(Debug, Clone)]
pub struct HoldMark {
    pub what: String,
    /// Stripe invoice id (a payment) or none (an opt-out: the contact's address and phone).
    pub invoice: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Only the email channel (an opt-out reply).
    pub email_only: bool,
    pub mails_before: usize,
    pub calls_before: usize,
    pub texts_before: usize,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// Stripe invoice id -> the invoice's final state (gateway record, plan steps, sends).
    pub invoices: BTreeMap<String, String>,
    pub uncertain_invoices: Vec<String>,
    pub uncertain_emails: usize,
    pub events: u64,
    pub events_by_type: BTreeMap<String, u64>,
    pub emails: usize,
    pub notifications: usize,
    pub calls: usize,
    pub texts: usize,
    pub duplicates: Vec<String>,
    pub after_hold: Vec<String>,
    pub dlq: Vec<String>,
    pub dropped_by_server: Vec<String>,
    pub faults: BTreeMap<&'static str, usize>,
    pub pg_outage: Duration,
    pub unexpected_exits: BTreeMap<&'static str, u32>,
    pub replies: usize,
    pub unsubscribes: usize,
    pub payments: usize,
    pub wall: Duration,
}

/// One run. `faults`: the plan (empty for the reference run).
pub async fn run(
    p: &Params,
    world: &Portfolio,
    pg: &Arc<PgCluster>,
    db_name: &str,
    dir: &std::path::Path,
    faults: BTreeMap<u32, Vec<Fault>>,
) -> Outcome {
    let started = Instant::now();
    let admin = pg.admin_url();
    let db_url = crate::pg::create_database(&admin, db_name).await;
    let stack = Stack::start(dir, db_url).await;
    let advisories = watch_advisories(&stack).await;
    let mut out = Outcome::default();

    // The firm, its clients and their contacts, its invoices (finalized through Stripe webhooks).
    let body = json!({"name": "Chaos & Co", "sender_email": "ar@chaos.test", "timezone": "America/New_York",
                      "stripe_webhook_secrets": [world.webhook_secret]});
    let firm: Value = retry_json(&stack, "create the firm", || {
        stack.http.post(stack.gateway("/v1/firms")).bearer_auth(ADMIN).json(&body)
    })
    .await;
    let firm_id = firm["firm"]["id"].as_str().expect("firm id").to_string();
    let key = firm["api_key"].as_str().expect("api key").to_string();
    let inbound_token = firm["inbound_token"].as_str().expect("inbound token").to_string();
    for c in &world.clients {
        let client: Value = retry_json(&stack, "create a client", || {
            stack.http.post(stack.gateway("/v1/clients")).bearer_auth(&key).json(&json!({
                "name": c.name, "tier": "standard", "timezone": c.tz, "stripe_customer_id": c.customer}))
        })
        .await;
        let id = client["id"].as_str().expect("client id").to_string();
        let phone = c.phone.is_some();
        let _: Value = retry_json(&stack, "create a contact", || {
            stack.http.post(stack.gateway(&format!("/v1/clients/{id}/contacts"))).bearer_auth(&key).json(&json!({
                "name": format!("{} billing", c.name), "email": c.email, "phone": c.phone, "timezone": c.tz,
                "primary": true, "consent": {"email": true, "voice": phone, "sms": phone}}))
        })
        .await;
    }
    for (j, inv) in world.invoices.iter().enumerate() {
        let c = &world.clients[inv.client];
        let due = (start_time() + chrono::Duration::days(inv.due_in_days)).timestamp();
        let object =
            stripe::invoice(&inv.stripe_id, &c.customer, &format!("CH-{j:05}"), inv.amount_minor, "usd", due, "open");
        let event =
            stripe::event(&format!("evt_fin_{}", inv.stripe_id), "invoice.finalized", start_time().timestamp(), object);
        stripe_webhook(&stack, &firm_id, &world.webhook_secret, &event).await;
    }
    settle(&stack, p.settle_timeout).await;

    // Day by day.
    let mut pending_acts: Vec<usize> = (0..world.invoices.len()).filter(|j| world.invoices[*j].act.is_some()).collect();
    let mut marks: Vec<HoldMark> = vec![];
    let mut faults = faults;
    for day in 1..=p.days {
        let todays = faults.remove(&day).unwrap_or_default();
        for f in &todays {
            *out.faults.entry(f.kind()).or_default() += 1;
        }
        let (_, outage) = tokio::join!(advance_day(&stack, p), inject(&stack, pg, p, &todays));
        out.pg_outage += outage;
        // Stripe: today's payments.
        let now = clock(&stack).await;
        for (j, inv) in world.invoices.iter().enumerate().filter(|(_, i)| i.pay_day == Some(day)) {
            let c = &world.clients[inv.client];
            let due = (start_time() + chrono::Duration::days(inv.due_in_days)).timestamp();
            let mut object = stripe::invoice(
                &inv.stripe_id,
                &c.customer,
                &format!("CH-{j:05}"),
                inv.amount_minor,
                "usd",
                due,
                "paid",
            );
            object["amount_paid"] = json!(inv.amount_minor);
            object["amount_remaining"] = json!(0);
            let event = stripe::event(&format!("evt_paid_{}", inv.stripe_id), "invoice.paid", now.timestamp(), object);
            stripe_webhook(&stack, &firm_id, &world.webhook_secret, &event).await;
            marks.push(mark(
                &stack,
                format!("payment of {} on day {day}", inv.stripe_id),
                Some(inv.stripe_id.clone()),
                None,
                None,
                false,
            ));
            out.payments += 1;
        }
        // Clients: unsubscribe or answer (once they got an email about the invoice).
        let mut still = vec![];
        for j in pending_acts {
            let inv = &world.invoices[j];
            let Some((act_day, act)) = inv.act else { continue };
            let latest = if act_day <= day { latest_mail(&stack, &inv.stripe_id).await } else { None };
            let Some(mail) = latest else {
                still.push(j);
                continue;
            };
            let c = &world.clients[inv.client];
            match act {
                Act::Unsubscribe => {
                    let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe").to_string();
                    let url =
                        header.split(['<', '>']).find(|s| s.starts_with("http")).expect("an http link").to_string();
                    retry_ok(&stack, "one-click unsubscribe", || {
                        stack
                            .http
                            .post(&url)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body("List-Unsubscribe=One-Click")
                    })
                    .await;
                    marks.push(mark(
                        &stack,
                        format!("unsubscribe of {} on day {day}", c.email),
                        None,
                        Some(c.email.clone()),
                        c.phone.clone(),
                        false,
                    ));
                    out.unsubscribes += 1;
                }
                Act::ReplyStop | Act::ReplyPromise => {
                    let reply_to = mail.header("Reply-To").unwrap_or_default();
                    let token = reply_to.split("reply+").nth(1).and_then(|s| s.split('@').next()).unwrap_or_default();
                    let message_id = mail.header("Message-ID").unwrap_or_default();
                    let text = if act == Act::ReplyStop {
                        "Please stop emailing me about this."
                    } else {
                        "Sorry for the delay, we will pay this invoice next Friday."
                    };
                    let raw = format!(
                        "From: <{}>\r\nTo: <reply+{token}@{REPLY_DOMAIN}>\r\nSubject: Re: reminder\r\nIn-Reply-To: {message_id}\r\n\
                         Message-ID: <reply-{}@client.test>\r\nDate: {}\r\n\r\n{text}\r\n",
                        c.email,
                        inv.stripe_id,
                        now.to_rfc2822()
                    );
                    retry_ok(&stack, "inbound reply", || {
                        stack
                            .http
                            .post(stack.gateway(&format!("/webhooks/email/inbound/{firm_id}")))
                            .bearer_auth(&inbound_token)
                            .header("content-type", "message/rfc822")
                            .body(raw.clone())
                    })
                    .await;
                    if act == Act::ReplyStop {
                        marks.push(mark(
                            &stack,
                            format!("opt-out reply of {} on day {day}", c.email),
                            None,
                            Some(c.email.clone()),
                            None,
                            true,
                        ));
                    }
                    out.replies += 1;
                }
            }
        }
        pending_acts = still;
        settle(&stack, p.settle_timeout).await;
        eprintln!(
            "{db_name} day {day:>2}/{}: {} emails, {} calls, {} texts, {:.0} s",
            p.days,
            stack.smtp.count(),
            stack.telephony.calls().len(),
            stack.telephony.messages().len(),
            started.elapsed().as_secs_f64()
        );
    }
    // Every service up, everything settled, leases expired and judged.
    for s in SERVICES {
        stack.wait_ready(s).await;
    }
    settle(&stack, p.settle_timeout).await;

    collect(&stack, &marks, &advisories, &mut out).await;
    out.unexpected_exits = stack.exits();
    out.wall = started.elapsed();
    stack.shutdown();
    out
}

fn mark(
    stack: &Stack,
    what: String,
    invoice: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    email_only: bool,
) -> HoldMark {
    HoldMark {
        what,
        invoice,
        email,
        phone,
        email_only,
        mails_before: stack.smtp.count(),
        calls_before: stack.telephony.calls().len(),
        texts_before: stack.telephony.messages().len(),
    }
}

/// The latest reminder about this invoice that reached the sink.
async fn latest_mail(stack: &Stack, stripe_id: &str) -> Option<arflow_testkit::smtp::ReceivedMail> {
    let id: Option<(uuid::Uuid,)> = sqlx::query_as("SELECT id FROM gateway.invoices WHERE stripe_invoice_id = $1")
        .bind(stripe_id)
        .fetch_optional(&stack.pool)
        .await
        .ok()
        .flatten();
    let id = id?.0.to_string();
    stack.smtp.messages().into_iter().rfind(|m| m.header("X-Arflow-Invoice") == Some(id.as_str()))
}

async fn clock(stack: &Stack) -> DateTime<Utc> {
    arflow_testkit::eventually("the simulated clock", Duration::from_secs(60), || async {
        arflow_bus::clock::read(&stack.bus).await.ok().flatten().map(|(t, _)| t)
    })
    .await
}

/// Sends an HTTP request until it succeeds (as Stripe and mail clients retry): a service may be
/// down or its database away.
async fn retry_ok<F>(stack: &Stack, what: &str, req: F) -> reqwest::Response
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let last = match req().send().await {
            Ok(r) if r.status().is_success() => return r,
            Ok(r) if r.status().is_client_error() => {
                panic!("{what}: {} {}", r.status(), r.text().await.unwrap_or_default())
            }
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "{what} never succeeded: {last}");
        let _ = stack;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn retry_json<F>(stack: &Stack, what: &str, req: F) -> Value
where
    F: Fn() -> reqwest::RequestBuilder,
{
    retry_ok(stack, what, req).await.json().await.expect("a JSON answer")
}

/// A signed Stripe webhook, re-signed and retried until the gateway answers 200.
async fn stripe_webhook(stack: &Stack, firm_id: &str, secret: &str, event: &Value) {
    let url = stack.gateway(&format!("/webhooks/stripe/{firm_id}"));
    retry_ok(stack, "stripe webhook", || {
        let (sig, body) = stripe::signed_webhook(secret, event);
        stack.http.post(&url).header("Stripe-Signature", sig).header("Content-Type", "application/json").body(body)
    })
    .await;
}

/// Waits until the pipeline is idle: `arflow_testkit::idle::busy_work` is 0 on several looks in
/// a row. An error (NATS or PostgreSQL away) counts as busy: the wait goes on through a fault.
pub async fn settle(stack: &Stack, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    let mut last = String::new();
    loop {
        let now = arflow_bus::clock::read(&stack.bus).await.ok().flatten().map(|(t, _)| t);
        let busy = match now {
            Some(now) => arflow_testkit::idle::busy_parts(&stack.bus.js, &stack.pool, now).await,
            None => Err("no clock".into()),
        };
        match busy {
            Ok(parts) if parts.is_empty() => quiet += 1,
            Ok(parts) => {
                quiet = 0;
                last = format!("in flight: {parts:?}");
            }
            Err(e) => {
                quiet = 0;
                last = e;
            }
        }
        if quiet >= 4 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pipeline did not settle in {timeout:?}: {last} (logs in {})",
            stack.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(if quiet > 0 { 80 } else { 40 })).await;
    }
}

/// One simulated day, stopping at every pending step on the way (as `advance_stepwise` does) and
/// settling at each stop.
async fn advance_day(stack: &Stack, p: &Params) {
    let now = clock(stack).await;
    let target = now + chrono::Duration::days(1);
    let mut at = now;
    loop {
        let next: Option<DateTime<Utc>> = arflow_testkit::eventually("the next timer", p.settle_timeout, || async {
            sqlx::query_as::<_, (Option<DateTime<Utc>>,)>(
                "SELECT min(scheduled_for) FROM scheduler.steps WHERE state = 'pending' AND scheduled_for > $1 AND scheduled_for <= $2",
            )
            .bind(at)
            .bind(target)
            .fetch_one(&stack.pool)
            .await
            .ok()
            .map(|(t,)| t)
        })
        .await;
        let stop = next.unwrap_or(target);
        at = arflow_testkit::eventually("the clock to move", p.settle_timeout, || async {
            arflow_bus::clock::set(&stack.bus, stop).await.ok()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        settle(stack, p.settle_timeout).await;
        if at >= target {
            return;
        }
    }
}

/// Runs the day's faults; returns how long PostgreSQL was away.
async fn inject(stack: &Stack, pg: &Arc<PgCluster>, p: &Params, faults: &[Fault]) -> Duration {
    let mut outage = Duration::ZERO;
    for f in faults {
        match f {
            Fault::Kill { service, after_ms, down_ms } => {
                tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                eprintln!("fault: kill -9 {service} (down {down_ms} ms)");
                stack.kill9(service);
                tokio::time::sleep(Duration::from_millis(*down_ms)).await;
                stack.revive(service);
                stack.wait_ready(service).await;
            }
            Fault::NatsRestart { after_ms } => {
                tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                eprintln!("fault: NATS restart");
                let nats = stack.nats.clone();
                tokio::task::spawn_blocking(move || nats.lock().unwrap().restart()).await.unwrap();
            }
            Fault::PgOutage { after_ms } => {
                tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                eprintln!("fault: PostgreSQL stopped for {:?}", p.pg_outage);
                let cluster = pg.clone();
                tokio::task::spawn_blocking(move || cluster.stop_server()).await.unwrap();
                let down = Instant::now();
                tokio::time::sleep(p.pg_outage).await;
                let cluster = pg.clone();
                tokio::task::spawn_blocking(move || cluster.start_server()).await.unwrap();
                outage += down.elapsed();
                eprintln!("fault: PostgreSQL back after {:?}", down.elapsed());
            }
            Fault::ProxySlow { after_ms, delay_ms, for_ms } => {
                tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                eprintln!("fault: proxy delays every chunk {delay_ms} ms for {for_ms} ms");
                stack.proxy.set_delay(*delay_ms);
                tokio::time::sleep(Duration::from_millis(*for_ms)).await;
                stack.proxy.set_delay(0);
            }
            Fault::ProxyReset { after_ms, times } => {
                for _ in 0..*times {
                    tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                    eprintln!("fault: proxy resets every NATS connection");
                    stack.proxy.reset_all();
                }
            }
        }
    }
    outage
}

/// JetStream advisories of messages the server gave up on (max deliveries) or that a consumer
/// terminated, collected on the suite's own connection for the whole run.
async fn watch_advisories(stack: &Stack) -> Arc<Mutex<Vec<String>>> {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    for subject in ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>"] {
        let mut sub = stack.bus.client.subscribe(subject).await.expect("subscribe to advisories");
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                seen.lock().unwrap().push(format!("{}: {}", m.subject, String::from_utf8_lossy(&m.payload)));
            }
        });
    }
    seen
}

/// Reads the outcome: read-only SQL on the services' schemas, the streams, the sink, the simulator.
async fn collect(stack: &Stack, marks: &[HoldMark], advisories: &Arc<Mutex<Vec<String>>>, out: &mut Outcome) {
    let pool = &stack.pool;
    // Final state per invoice.
    let rows: Vec<(String, String, Option<String>, String, bool)> = sqlx::query_as(
        "SELECT stripe_invoice_id, status, automation_status, amount_remaining::text, disputed FROM gateway.invoices",
    )
    .fetch_all(pool)
    .await
    .expect("invoices");
    type StepRow = (String, String, String, Option<String>, Option<String>, Option<String>, Option<String>);
    let steps: Vec<StepRow> = sqlx::query_as(
        "SELECT i.stripe_invoice_id, s.name, s.state, s.reason, e.state, c.state || ':' || coalesce(c.outcome, '-'), t.state
         FROM scheduler.steps s JOIN gateway.invoices i ON i.id = s.invoice_id
         LEFT JOIN email.emails e ON e.step_id = s.step_id
         LEFT JOIN voice.calls c ON c.step_id = s.step_id
         LEFT JOIN voice.texts t ON t.step_id = s.step_id
         ORDER BY 1, s.offset_days, s.name",
    )
    .fetch_all(pool)
    .await
    .expect("steps");
    let mut by_invoice: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (inv, name, state, reason, email, call, text) in steps {
        if email.as_deref() == Some("uncertain") && !out.uncertain_invoices.contains(&inv) {
            out.uncertain_invoices.push(inv.clone());
        }
        let send =
            [email.map(|e| format!("email:{e}")), call.map(|c| format!("call:{c}")), text.map(|t| format!("text:{t}"))]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(",");
        by_invoice
            .entry(inv)
            .or_default()
            .push(format!("{name}={state}{}[{send}]", reason.map(|r| format!("({r})")).unwrap_or_default()));
    }
    for (inv, status, automation, remaining, disputed) in rows {
        let steps = by_invoice.remove(&inv).unwrap_or_default().join(" ");
        out.invoices.insert(
            inv,
            format!(
                "{status} {} remaining {remaining}{} | {steps}",
                automation.unwrap_or_default(),
                if disputed { " disputed" } else { "" }
            ),
        );
    }
    let (uncertain,): (i64,) = sqlx::query_as("SELECT count(*) FROM email.emails WHERE state = 'uncertain'")
        .fetch_one(pool)
        .await
        .expect("uncertain");
    out.uncertain_emails = uncertain as usize;

    // Events, by stream and type; the DLQ.
    let mut names = stack.bus.js.stream_names();
    while let Some(Ok(name)) = names.next().await {
        if name.starts_with("KV_") || name.starts_with("OBJ_") {
            continue;
        }
        let stream = stack.bus.js.get_stream(&name).await.expect("stream");
        let state = stream.get_info().await.expect("stream info").state;
        out.events += state.messages;
        if state.messages == 0 {
            continue;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(m) = stream.get_raw_message(seq).await else { continue };
            let kind = m.subject.rsplit_once('.').map(|(k, _)| k.to_string()).unwrap_or_else(|| m.subject.to_string());
            *out.events_by_type.entry(kind).or_default() += 1;
            if name == "DLQ" {
                out.dlq.push(format!("{}: {}", m.subject, String::from_utf8_lossy(&m.payload)));
            }
        }
    }
    out.dropped_by_server =
        advisories.lock().unwrap().iter().filter(|a| a.contains("MAX_DELIVERIES")).cloned().collect();

    // Sends: duplicates per step, and sends after a hold.
    let mails = stack.smtp.messages();
    let calls = stack.telephony.calls();
    let texts = stack.telephony.messages();
    let mut per_step: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        match m.header("X-Arflow-Step") {
            Some(step) => *per_step.entry(format!("email step {step}")).or_default() += 1,
            None => out.notifications += 1,
        }
    }
    out.emails = mails.len() - out.notifications;
    let param = |params: &[(String, String)], k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for c in &calls {
        let key = param(&c.params, "StatusCallback").unwrap_or_else(|| c.sid.clone());
        *per_step.entry(format!("call {key}")).or_default() += 1;
    }
    let outbound: Vec<_> = texts.iter().filter(|t| t.direction.starts_with("outbound")).collect();
    for t in &outbound {
        let key = param(&t.params, "StatusCallback").unwrap_or_else(|| t.sid.clone());
        *per_step.entry(format!("text {key}")).or_default() += 1;
    }
    out.calls = calls.len();
    out.texts = outbound.len();
    out.duplicates = per_step.into_iter().filter(|(_, n)| *n > 1).map(|(k, n)| format!("{k}: {n} sends")).collect();
    out.duplicates.sort();

    let ids: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id::text, stripe_invoice_id FROM gateway.invoices")
            .fetch_all(pool)
            .await
            .expect("ids")
            .into_iter()
            .collect();
    let call_invoice: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT provider_sid, invoice_id::text FROM voice.calls WHERE provider_sid IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("calls")
    .into_iter()
    .collect();
    let text_invoice: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT message_sid, invoice_id::text FROM voice.texts WHERE message_sid IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("texts")
    .into_iter()
    .collect();
    let stripe_of = |uuid: Option<&String>| uuid.and_then(|u| ids.get(u)).cloned();
    for h in marks {
        for (i, m) in mails.iter().enumerate().skip(h.mails_before) {
            let inv = stripe_of(m.header("X-Arflow-Invoice").map(str::to_string).as_ref());
            let hit = (h.invoice.is_some() && inv == h.invoice && m.step_id().is_some())
                || h.email
                    .as_ref()
                    .is_some_and(|e| m.to.iter().any(|t| t.eq_ignore_ascii_case(e)) && m.step_id().is_some());
            if hit {
                out.after_hold.push(format!("email #{i} ({}) after the {}", m.subject().unwrap_or_default(), h.what));
            }
        }
        if h.email_only {
            continue;
        }
        for (i, c) in calls.iter().enumerate().skip(h.calls_before) {
            let inv = stripe_of(call_invoice.get(&c.sid));
            if (h.invoice.is_some() && inv == h.invoice) || h.phone.as_ref() == Some(&c.to) {
                out.after_hold.push(format!("call #{i} to {} after the {}", c.to, h.what));
            }
        }
        for (i, t) in texts.iter().enumerate().skip(h.texts_before) {
            if !t.direction.starts_with("outbound") {
                continue;
            }
            let inv = stripe_of(text_invoice.get(&t.sid));
            if (h.invoice.is_some() && inv == h.invoice) || h.phone.as_ref() == Some(&t.to) {
                out.after_hold.push(format!("text #{i} to {} after the {}", t.to, h.what));
            }
        }
    }
}
