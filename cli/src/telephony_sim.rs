//! `arflow telephony-sim`: the local telephony provider of `just demo`. Runs
//! `arflow_testkit::telephony::TelephonySim` on a fixed port with the demo's script book (the
//! client's behaviour follows the last digit of the number called, see `ScriptBook::demo`) until
//! SIGTERM or Ctrl-C. Besides Twilio's REST paths it serves `GET /_sim/calls`,
//! `GET /_sim/messages` (texts sent), `GET /_sim/inbound` (texts received) and `POST /_sim/sms`
//! (`{"from","to","body"}`: an inbound text, posted signed to the SMS webhook; answers
//! `{"status","body"}` with the webhook's HTTP status and TwiML).
use anyhow::Context;
use arflow_testkit::telephony::{ClientScript, ScriptBook, SimConfig, TelephonySim};
use std::net::SocketAddr;

pub struct Options {
    pub port: u16,
    pub account_sid: String,
    pub auth_token: String,
    pub sms_webhook_url: Option<String>,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    arflow_runtime::telemetry::init(&arflow_runtime::LogSettings {
        format: "pretty".to_string(),
        level: "info".to_string(),
        otlp_endpoint: None,
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], o.port));
    let config = SimConfig {
        account_sid: o.account_sid,
        auth_token: o.auth_token,
        sms_webhook_url: o.sms_webhook_url,
        // Every E.164 number ends in a digit, so the demo book decides them all.
        default_script: ClientScript::NoAnswer,
    };
    let sim = TelephonySim::start_with(config, ScriptBook::demo(), addr)
        .await
        .with_context(|| format!("cannot start the telephony simulator on {addr}"))?;
    tracing::info!(base_url = %sim.base_url(), "telephony simulator listening");
    println!(
        "telephony simulator on {} (calls: {0}/_sim/calls, texts: {0}/_sim/messages, {0}/_sim/inbound)",
        sim.base_url()
    );
    arflow_runtime::shutdown::on_signals().cancelled().await;
    Ok(())
}
