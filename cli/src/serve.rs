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
    let mut runs: futures::stream::FuturesUnordered<_> =
        names.into_iter().map(|name| tokio::spawn(start(name, token.clone()))).collect();
    // The first service to fail (at start-up or later) stops them all, so a broken config is
    // a failed process, not a stack quietly missing a service.
    let mut first_error = None;
    while let Some(r) = futures::StreamExt::next(&mut runs).await {
        let failed = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(anyhow::anyhow!(e)),
        };
        if let Some(e) = failed {
            tracing::error!(error = %format!("{e:#}"), "a service stopped with an error; stopping the others");
            eprintln!("error: {e:#}");
            token.cancel();
            first_error.get_or_insert(e);
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
        // Boxed: eight services' futures inline overflow a worker thread's stack in debug builds.
        let app = Box::pin($krate::Application::build(c, $token)).await.with_context(ctx)?;
        Box::pin(app.run()).await.with_context(ctx)
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
