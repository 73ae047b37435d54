//! `arflow serve <service|all>`: each service with its own config (defaults, `$ARFLOW_CONFIG`,
//! `ARFLOW__...`); `all` runs every service in this one process (the local stack).
use anyhow::{Context, bail};
use arflow_runtime::ServiceConfig;
use arflow_runtime::{Shutdown, shutdown, telemetry};

pub const SERVICES: [&str; 8] =
    ["gateway", "eligibility", "scheduler", "email", "optout", "escalation", "notification", "voice"];

pub async fn run(which: &str) -> anyhow::Result<()> {
    let names: Vec<&'static str> = match which {
        "all" => SERVICES.to_vec(),
        one => match SERVICES.iter().find(|s| **s == one) {
            Some(s) => vec![*s],
            None => bail!("unknown service {one:?}: expected one of {} or all", SERVICES.join(", ")),
        },
    };
    let token = shutdown::on_signals();
    let mut runs = Vec::new();
    for name in names {
        runs.push(tokio::spawn(start(name, token.clone())));
    }
    let mut first_error = None;
    for r in futures::future::join_all(runs).await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                token.cancel();
                first_error.get_or_insert(e);
            }
            Err(e) => {
                token.cancel();
                first_error.get_or_insert(anyhow::anyhow!(e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Loads the service's config, starts logging, builds and runs it (every service crate has
/// the same `Config::load` / `Application::build` / `run` shape).
macro_rules! run_service {
    ($krate:ident, $name:expr, $token:expr) => {{
        let ctx = || format!("{} service", $name);
        let c = $krate::Config::load().with_context(ctx)?;
        telemetry::init(&c.log);
        $krate::Application::build(c, $token).await.with_context(ctx)?.run().await.with_context(ctx)
    }};
}

async fn start(name: &'static str, token: Shutdown) -> anyhow::Result<()> {
    match name {
        "gateway" => run_service!(arflow_gateway, name, token),
        "eligibility" => run_service!(arflow_eligibility, name, token),
        "scheduler" => run_service!(arflow_scheduler, name, token),
        "email" => run_service!(arflow_email, name, token),
        "optout" => run_service!(arflow_optout, name, token),
        "escalation" => run_service!(arflow_escalation, name, token),
        "notification" => run_service!(arflow_notification, name, token),
        "voice" => run_service!(arflow_voice, name, token),
        other => bail!("unknown service {other:?}"),
    }
}
