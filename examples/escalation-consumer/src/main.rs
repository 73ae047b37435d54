//! `escalation-consumer`: prints one line per escalation event of one firm (see README.md).
use escalation_consumer::{Cases, Settings, bind, connect, run};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match consume().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("escalation-consumer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn consume() -> Result<(), escalation_consumer::Error> {
    let settings = Settings::from_env()?;
    let client = connect(&settings).await?;
    let consumer = bind(&client, &settings).await?;
    eprintln!("reading {} as consumer {} (Ctrl-C stops)", settings.filter_subject(), settings.consumer);
    let mut cases = Cases::default();
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run(&consumer, &mut cases, |handled| println!("{handled}"), ctrl_c).await?;
    // Unsubscribes, so the server stops holding our outstanding pull for this connection.
    client.drain().await.map_err(|e| escalation_consumer::Error::Nats { what: "drain", source: e.into() })
}
