use arflow_runtime::ServiceConfig;
use arflow_voice::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    arflow_runtime::telemetry::init(&config.log);
    let shutdown = arflow_runtime::shutdown::on_signals();
    let app = Application::build(config, shutdown).await?;
    app.run().await?;
    Ok(())
}
