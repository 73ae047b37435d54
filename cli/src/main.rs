//! `arflow`: the operator's command. Errors are printed with their cause chain.
mod api;
mod classify;
mod demo;
mod demo_firm;
mod demo_phone;
mod demo_replies;
mod inbound;
mod migrate;
mod serve;
mod telephony_sim;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "arflow", version, about = "arflow: accounts-receivable collections on Stripe")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify client replies: JSONL on stdin (id, channel, reference_date, text) -> one JSONL line each
    /// (id, intent, promised_date, or error); `--eval FILE` prints the report on a labelled file.
    Classify {
        #[arg(long)]
        eval: Option<std::path::PathBuf>,
    },
    /// Run one service, or all of them in one process (`all`), until SIGTERM.
    Serve {
        /// gateway | eligibility | scheduler | email | optout | escalation | notification | voice | all
        service: String,
    },
    /// Create one service's schema if missing and run its migrations, then exit (the Kubernetes
    /// init container). Reads the service's `[database]` config: defaults, `$ARFLOW_CONFIG`,
    /// `ARFLOW__DATABASE__URL` / `ARFLOW__DATABASE__SCHEMA`... Running it again changes nothing.
    Migrate {
        /// gateway | eligibility | scheduler | email | optout | escalation | notification | voice
        service: String,
    },
    /// Show or move the simulated clock shared by every service.
    Clock {
        #[command(subcommand)]
        action: ClockAction,
        /// NATS URL (default: ARFLOW__NATS__URL or nats://127.0.0.1:4222).
        #[arg(long, env = "ARFLOW__NATS__URL", default_value = "nats://127.0.0.1:4222")]
        nats: String,
    },
    /// Firms (operator).
    Firm {
        #[command(subcommand)]
        action: FirmAction,
    },
    /// Portfolio summary of a firm.
    Status {
        #[arg(long, env = "ARFLOW_API_URL", default_value = "http://127.0.0.1:8080")]
        api: String,
        /// The firm's API key (default: the demo firm's, from .demo/firm.json).
        #[arg(long, env = "ARFLOW_API_KEY")]
        api_key: Option<String>,
    },
    /// Seed a demo firm and run it through the simulated days, then print a summary.
    Demo {
        #[arg(long, default_value_t = 45)]
        days: u32,
        #[arg(long, default_value_t = 60)]
        clients: usize,
        #[arg(long, default_value_t = 220)]
        invoices: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Parse raw inbound emails (RFC 5322 files): one JSON line per file with kind, intent, promised date,
    /// the reminder answered, reply token and bounce.
    Inbound {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Run the local telephony simulator (Twilio's REST contract, scripted clients chosen by the
    /// last digit of the number called) until SIGTERM; `GET /_sim/calls`, `GET /_sim/messages`,
    /// `POST /_sim/sms` {from,to,body} for the demo.
    TelephonySim {
        #[arg(long, env = "ARFLOW_DEMO_TELEPHONY_PORT", default_value_t = 18087)]
        port: u16,
        #[arg(long, env = "ARFLOW__TELEPHONY__ACCOUNT_SID")]
        account_sid: String,
        #[arg(long, env = "ARFLOW__TELEPHONY__AUTH_TOKEN", hide_env_values = true)]
        auth_token: String,
        /// Where inbound texts are posted (the gateway's /webhooks/telephony/sms/inbound).
        #[arg(long)]
        sms_webhook_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClockAction {
    /// Print the simulated now.
    Show,
    /// Move it forward, e.g. `7d`, `36h`.
    Advance { by: String },
    /// Set it (RFC 3339); never backwards.
    Set { to: String },
}

#[derive(Subcommand)]
enum FirmAction {
    /// Create a firm; prints its id and first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        sender_email: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Stripe webhook signing secret (whsec_...).
        #[arg(long)]
        webhook_secret: String,
        #[arg(long, env = "ARFLOW_API_URL", default_value = "http://127.0.0.1:8080")]
        api: String,
        #[arg(long, env = "ARFLOW_ADMIN_TOKEN")]
        admin_token: String,
    },
}

fn main() {
    // `serve` builds whole services on worker threads; their start-up futures (several
    // services in one process, each with its bus, store and consumers) are deep, and a debug
    // build overflowed tokio's default 2 MiB worker stack in `serve voice`. 8 MiB, like the
    // main thread's.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(8 << 20).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(Cli::parse())) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Classify { eval } => classify::run(eval.as_deref()),
        Command::Serve { service } => serve::run(&service).await,
        Command::Migrate { service } => migrate::run(&service).await,
        Command::Clock { action, nats } => clock(action, &nats).await,
        Command::Firm {
            action: FirmAction::Create { name, sender_email, timezone, webhook_secret, api, admin_token },
        } => {
            let client = api::Api::new(&api, &admin_token);
            let created = client.create_firm(&name, &sender_email, &timezone, &webhook_secret).await?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
        Command::Status { api, api_key } => {
            let key = match api_key {
                Some(k) => k,
                None => {
                    demo::saved_firm().context("no --api-key and no .demo/firm.json (run `just demo` first)")?.api_key
                }
            };
            let portfolio = api::Api::new(&api, &key).portfolio().await?;
            demo::print_portfolio(&portfolio);
            Ok(())
        }
        Command::Inbound { files } => inbound::run(&files),
        Command::TelephonySim { port, account_sid, auth_token, sms_webhook_url } => {
            telephony_sim::run(telephony_sim::Options { port, account_sid, auth_token, sms_webhook_url }).await
        }
        Command::Demo { days, clients, invoices, seed } => {
            demo::run(demo::Options { days, clients, invoices, seed }).await
        }
    }
}

async fn clock(action: ClockAction, nats: &str) -> anyhow::Result<()> {
    let settings = arflow_runtime::NatsSettings::at(nats.to_string());
    let bus = arflow_bus::Bus::connect(&settings, "cli", arflow_runtime::Metrics::new("cli"))
        .await
        .with_context(|| format!("cannot reach NATS at {nats}"))?;
    let now = match action {
        ClockAction::Show => arflow_bus::clock::read(&bus)
            .await?
            .map(|(t, _)| t)
            .context("the simulated clock is not set (services run with the system clock)")?,
        ClockAction::Advance { by } => {
            let d = arflow_core::duration::parse(&by)?;
            arflow_bus::clock::advance(&bus, d).await?
        }
        ClockAction::Set { to } => {
            let t = chrono::DateTime::parse_from_rfc3339(&to)
                .with_context(|| format!("{to:?} is not an RFC 3339 time (e.g. 2026-03-02T00:00:00Z)"))?;
            arflow_bus::clock::set(&bus, t.with_timezone(&chrono::Utc)).await?
        }
    };
    println!("{}", now.to_rfc3339());
    Ok(())
}
