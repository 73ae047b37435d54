//! `arflow demo`: a demo firm with a varied portfolio, run through simulated days against
//! the local stack (`deploy/local/stack.sh`), paying some invoices through signed Stripe
//! webhooks along the way, then a summary. Deterministic for a given `--seed`.
use crate::api::Api;
use anyhow::Context;
use arflow_testkit::stripe;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Duration;

pub struct Options {
    pub days: u32,
    pub clients: usize,
    pub invoices: usize,
    pub seed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedFirm {
    pub firm_id: String,
    pub api_key: String,
    pub webhook_secret: String,
}

const FIRM_FILE: &str = ".demo/firm.json";

pub fn saved_firm() -> Option<SavedFirm> {
    serde_json::from_str(&std::fs::read_to_string(FIRM_FILE).ok()?).ok()
}

/// Where clients are, and the currency they are billed in.
/// Zone, currency and a mobile-number prefix that is valid there (4 digits follow).
const REGIONS: &[(&str, &str, &str)] = &[
    ("America/Los_Angeles", "usd", "+1201555"),
    ("America/Denver", "usd", "+1720555"),
    ("America/Chicago", "usd", "+1312555"),
    ("America/New_York", "usd", "+1212555"),
    ("America/Toronto", "cad", "+1416555"),
    ("Europe/London", "gbp", "+44740012"),
    ("Europe/Paris", "eur", "+3361234"),
    ("Europe/Berlin", "eur", "+491512345"),
    ("Asia/Tokyo", "jpy", "+81901234"),
    ("Asia/Singapore", "sgd", "+658123"),
    ("Australia/Sydney", "aud", "+6141234"),
    ("Pacific/Auckland", "nzd", "+642112"),
];

/// The client whose contact and record have no time zone (its calls are refused, fence 4).
const NO_ZONE_CLIENT: usize = 10;

/// Every other client gave a mobile number and agreed to calls and texts. The number's last
/// digit picks how the simulated person behaves on the phone (`ScriptBook::demo`: promise,
/// dispute, stop calling, asks for a person, Spanish, voicemail, no answer, busy, silence), so
/// each behaviour occurs about three times.
fn demo_phone(i: usize, prefix: &str) -> Option<String> {
    i.is_multiple_of(2).then(|| format!("{prefix}{:04}", 1000 + i * 10 + (i / 2) % 10))
}
const FIRST: &[&str] = &[
    "Harbor",
    "Cedar",
    "Northwind",
    "Bluestone",
    "Maple",
    "Granite",
    "Silver",
    "Oak",
    "Summit",
    "Riverside",
    "Beacon",
    "Juniper",
];
const SECOND: &[&str] =
    &["Dental", "Architects", "Logistics", "Bakery", "Legal", "Studio", "Clinic", "Builders", "Media", "Engineering"];
const PEOPLE: &[&str] =
    &["Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kai", "Lena"];
const TIERS: &[&str] = &["new", "standard", "standard", "standard", "long_standing", "long_standing", "key"];

struct Invoice {
    stripe_id: String,
    customer: String,
    number: String,
    amount_minor: i64,
    currency: &'static str,
    due_unix: i64,
    pay_day: Option<u32>,
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: run the demo through `just demo` (it sources .demo/env)"))
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let api_url = env("ARFLOW_API_URL")?;
    let admin = Api::new(&api_url, &env("ARFLOW_ADMIN_TOKEN")?);
    let nats = arflow_runtime::NatsSettings::at(env("ARFLOW__NATS__URL")?);
    let bus = arflow_bus::Bus::connect(&nats, "demo", arflow_runtime::Metrics::new("demo")).await?;
    let pool = sqlx::PgPool::connect(&env("ARFLOW__DATABASE__URL")?).await.context("demo database")?;
    let mut rng = StdRng::seed_from_u64(opts.seed);

    // 1. The firm.
    let secret = format!("whsec_demo_{:016x}", rng.random::<u64>());
    let created =
        admin.create_firm("Harbor & Pine Accounting", "ar@harborpine.example", "America/New_York", &secret).await?;
    let firm_id = created["firm"]["id"].as_str().context("firm id in the response")?.to_string();
    let api_key = created["api_key"].as_str().context("api key in the response")?.to_string();
    let inbound_token = created["inbound_token"].as_str().context("inbound token in the response")?.to_string();
    let reply_domain = std::env::var("ARFLOW__EMAIL__REPLY_DOMAIN").unwrap_or_default();
    std::fs::write(
        FIRM_FILE,
        serde_json::to_string_pretty(&SavedFirm {
            firm_id: firm_id.clone(),
            api_key: api_key.clone(),
            webhook_secret: secret.clone(),
        })?,
    )?;
    let firm = Api::new(&api_url, &api_key);
    firm.patch(
        "/v1/firm",
        &json!({"min_amounts": {"USD": "50", "EUR": "50", "GBP": "40", "CAD": "60", "AUD": "60", "NZD": "60", "SGD": "60", "JPY": "5000"}}),
    )
    .await?;
    let start = arflow_bus::clock::read(&bus).await?.map(|(t, _)| t).context("the simulated clock is not set")?;
    println!("demo firm {firm_id} created; simulated clock at {start}");

    // 2. Clients and their billing contacts (REST), a few with something that makes them ineligible.
    let mut customers = Vec::new();
    let mut contacts = Vec::new();
    for i in 0..opts.clients {
        let (region_tz, currency, phone_prefix) = REGIONS[i % REGIONS.len()];
        let tz = (i != NO_ZONE_CLIENT).then_some(region_tz);
        let phone = demo_phone(i, phone_prefix);
        let name = format!("{} {} {}", FIRST[i % FIRST.len()], SECOND[(i / FIRST.len() + i) % SECOND.len()], i + 1);
        let tier = TIERS[rng.random_range(0..TIERS.len())];
        let customer = format!("cus_demo_{i:03}");
        let client = firm
            .post("/v1/clients", &json!({"name": name, "tier": tier, "timezone": tz, "stripe_customer_id": customer, "excluded": i == 5}))
            .await?;
        let client_id = client["id"].as_str().context("client id")?.to_string();
        let person = PEOPLE[i % PEOPLE.len()];
        let contact = firm
            .post(
                &format!("/v1/clients/{client_id}/contacts"),
                &json!({
                    "name": format!("{person} (billing)"),
                    "email": format!("billing+{i:03}@client{i:03}.example"),
                    "timezone": tz,
                    "phone": phone,
                    "primary": true,
                    // One client never agreed to email reminders.
                    "consent": {"email": i != 9, "voice": phone.is_some(), "sms": phone.is_some()},
                }),
            )
            .await?;
        contacts.push((
            contact["id"].as_str().context("contact id")?.to_string(),
            format!("billing+{i:03}@client{i:03}.example"),
        ));
        customers.push((customer, currency, name));
    }

    // 3. Invoices through signed Stripe webhooks: varied age, amount and currency.
    let mut invoices = Vec::new();
    for j in 0..opts.invoices {
        let (customer, currency, _) = &customers[j % customers.len()];
        let due_in_days: i64 = rng.random_range(-25..=30);
        let mut amount_minor: i64 = rng.random_range(15_000..=1_200_000);
        if j % 37 == 11 {
            amount_minor = 2_000; // below the firm's minimum
        }
        let pay_day = rng.random_bool(0.35).then(|| rng.random_range(1..=opts.days));
        invoices.push(Invoice {
            stripe_id: format!("in_demo_{j:04}"),
            customer: customer.clone(),
            number: format!("HP-{:04}", 1000 + j),
            amount_minor,
            currency,
            due_unix: (start + chrono::Duration::days(due_in_days)).timestamp(),
            pay_day,
        });
    }
    let seed_bar = bar(invoices.len() as u64, "seeding invoices");
    for (j, inv) in invoices.iter().enumerate() {
        let object = stripe::invoice(
            &inv.stripe_id,
            &inv.customer,
            &inv.number,
            inv.amount_minor,
            inv.currency,
            inv.due_unix,
            "open",
        );
        let event = stripe::event(&format!("evt_demo_fin_{j:04}"), "invoice.finalized", start.timestamp(), object);
        firm.stripe_webhook(&firm_id, &secret, &event).await?;
        seed_bar.inc(1);
    }
    seed_bar.finish();
    // One invoice disputed by the firm.
    if let Some(id) = first_invoice_id(&firm).await? {
        firm.patch(&format!("/v1/invoices/{id}"), &json!({"disputed": true})).await?;
    }
    idle(&bus, &pool).await?;

    // 4. The firm's people: notification subscriptions now; opt-outs and the escalation queue day by day.
    let mut side = crate::demo_firm::FirmSide::start(&firm).await?;

    // 5. Day by day.
    let days = bar(u64::from(opts.days), "simulated days");
    let mut paid = 0;
    let mut replies = 0;
    let mut clients = crate::demo_replies::Clients {
        firm: &firm,
        firm_id: &firm_id,
        inbound_token: &inbound_token,
        reply_domain: &reply_domain,
        share: 0.08,
        next: 0,
    };
    let mut phones = crate::demo_phone::Phones::from_env();
    let mut texts_answered = 0;
    let mut since = start;
    for day in 1..=opts.days {
        // Stops at every timer of the day, so each email goes out at its own local time.
        let now =
            arflow_testkit::idle::advance_stepwise(&bus, &pool, chrono::Duration::days(1), Duration::from_secs(300))
                .await
                .map_err(|e| anyhow::anyhow!("the pipeline did not settle: {e}"))?;
        days.set_message(now.format("%a %Y-%m-%d").to_string());
        if !std::io::stdout().is_terminal() {
            // No progress bar without a terminal (CI, logs): a line a day instead.
            println!("day {day:>2}/{}: {}", opts.days, now.format("%a %Y-%m-%d"));
        }
        for (j, inv) in invoices.iter().enumerate().filter(|(_, i)| i.pay_day == Some(day)) {
            let mut object = stripe::invoice(
                &inv.stripe_id,
                &inv.customer,
                &inv.number,
                inv.amount_minor,
                inv.currency,
                inv.due_unix,
                "paid",
            );
            object["amount_paid"] = json!(inv.amount_minor);
            object["amount_remaining"] = json!(0);
            let event = stripe::event(&format!("evt_demo_paid_{j:04}"), "invoice.paid", now.timestamp(), object);
            firm.stripe_webhook(&firm_id, &secret, &event).await?;
            paid += 1;
        }
        // Some clients answer the reminders they got today (only when replies are routed back).
        if !reply_domain.is_empty() {
            replies += clients.answer_some(&pool, since, now, &mut rng).await?;
        }
        if let Some(p) = phones.as_mut() {
            texts_answered += p.answer_texts(&pool, since, now).await?;
        }
        since = now;
        idle(&bus, &pool).await?;
        side.day(day, now, &contacts).await?;
        idle(&bus, &pool).await?;
        days.inc(1);
    }
    days.finish();

    settle_notifications(&pool).await?;

    // 6. Summary.
    println!(
        "\n=== demo summary: {} clients, {} invoices, {} days, {paid} paid through Stripe webhooks ===",
        opts.clients, opts.invoices, opts.days
    );
    print_portfolio(&firm.portfolio().await?);
    println!("client replies: {replies} posted to the inbound webhook; understood and acted on:");
    let (understood, reviews) = crate::demo_replies::summary(&bus).await?;
    for (what, n) in understood {
        println!("  {n:>4}  {what}");
    }
    let rate = if reviews.replies == 0 { 0.0 } else { 100.0 * reviews.held as f64 / reviews.replies as f64 };
    println!(
        "review rate: {rate:.1}% ({} of {} replies held for a person), {} labelled by the AR manager and acted on",
        reviews.held, reviews.replies, reviews.labelled
    );
    crate::demo_firm::summary(&pool, &side).await?;
    match &phones {
        Some(p) => {
            println!("clients texted back {texts_answered} times (STOP, HELP, a promise in Spanish)");
            p.summary(&pool).await?;
        }
        None => println!("calls and texts: no telephony simulator in this stack (ARFLOW_TELEPHONY_SIM unset)"),
    }
    if let Ok(mail_api) = std::env::var("ARFLOW_MAIL_API")
        && let Ok(resp) = reqwest::get(format!("{mail_api}/email")).await
        && let Ok(Value::Array(mails)) = resp.json::<Value>().await
    {
        println!("mailbox: {} messages received by the SMTP sink", mails.len());
    }
    Ok(())
}

/// Notifications retried after the firm's endpoint came back are sent on real time too: wait
/// (bounded) until none is left pending.
async fn settle_notifications(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    for _ in 0..120 {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM notification.deliveries WHERE status = 'pending'")
                .fetch_one(pool)
                .await
                .context("reading the notification deliveries")?;
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

async fn first_invoice_id(firm: &Api) -> anyhow::Result<Option<String>> {
    let list = firm.get("/v1/invoices?limit=1").await?;
    Ok(list["data"].get(0).and_then(|i| i["id"].as_str()).map(str::to_string))
}

async fn idle(bus: &arflow_bus::Bus, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let now = arflow_bus::clock::read(bus).await?.map(|(t, _)| t).unwrap_or_else(chrono::Utc::now);
    arflow_testkit::idle::wait_until_idle(&bus.js, pool, now, Duration::from_secs(300))
        .await
        .map_err(|e| anyhow::anyhow!("the pipeline did not settle: {e}"))
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{prefix:>18} [{bar:40}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(what.to_string());
    pb
}

/// Prints the gateway's portfolio summary, section by section.
pub fn print_portfolio(p: &Value) {
    let Some(obj) = p.as_object() else {
        println!("{p}");
        return;
    };
    for (section, value) in obj {
        match value {
            Value::Object(m) => {
                println!("{section}:");
                for (k, v) in m {
                    println!("  {k:<36} {v}");
                }
            }
            other => println!("{section}: {other}"),
        }
    }
}
