//! `arflow serve <service|all>`: each service with its own config (defaults, `$ARFLOW_CONFIG`,
//! `ARFLOW__...`); `all` runs every service in this one process (the local stack).
use anyhow::{Context, bail};
use arflow_runtime::ServiceConfig;
use arflow_runtime::{Shutdown, shutdown, telemetry};

pub async fn run(which: &str) -> anyhow::Result<()> {
    let names: Vec<&'static str> = match which {
        "all" => vec!["gateway", "eligibility", "scheduler", "email"],
        "gateway" => vec!["gateway"],
        "eligibility" => vec!["eligibility"],
        "scheduler" => vec!["scheduler"],
        "email" => vec!["email"],
        other => bail!("unknown service {other:?}: expected gateway, eligibility, scheduler, email or all"),
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

async fn start(name: &'static str, token: Shutdown) -> anyhow::Result<()> {
    let ctx = || format!("{name} service");
    match name {
        "gateway" => {
            let c = arflow_gateway::Config::load().with_context(ctx)?;
            telemetry::init(&c.log);
            arflow_gateway::Application::build(c, token).await.with_context(ctx)?.run().await.with_context(ctx)
        }
        "eligibility" => {
            let c = arflow_eligibility::Config::load().with_context(ctx)?;
            telemetry::init(&c.log);
            arflow_eligibility::Application::build(c, token).await.with_context(ctx)?.run().await.with_context(ctx)
        }
        "scheduler" => {
            let c = arflow_scheduler::Config::load().with_context(ctx)?;
            telemetry::init(&c.log);
            arflow_scheduler::Application::build(c, token).await.with_context(ctx)?.run().await.with_context(ctx)
        }
        _ => {
            let c = arflow_email::Config::load().with_context(ctx)?;
            telemetry::init(&c.log);
            arflow_email::Application::build(c, token).await.with_context(ctx)?.run().await.with_context(ctx)
        }
    }
}
