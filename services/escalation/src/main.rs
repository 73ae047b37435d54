use arflow_escalation::{Application, Config};
use arflow_runtime::ServiceConfig;
use arflow_runtime::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    telemetry::init(&config.log);
    let shutdown = shutdown::on_signals();
    let app = Application::build(config, shutdown).await?;
    app.run().await?;
    Ok(())
}
