//! Against `arflow_testkit::telephony::TelephonySim` (Twilio's REST contract and signed
//! callbacks, scripted clients), through a minimal stand-in for the gateway that checks each
//! callback's X-Twilio-Signature and forwards it to `/internal/telephony/...` with the token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_contracts::events::Tone;
use arflow_contracts::streams::contact_hold_key;
use arflow_contracts::subjects::{outreach, reply};
use arflow_core::Channel;
use arflow_testkit::telephony::{ClientScript, ScriptBook, SimConfig, TelephonySim};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The gateway's part of the contract: verify, then forward unchanged.
#[derive(Clone)]
struct MiniGateway {
    base: String,
    voice_port: Arc<Mutex<u16>>,
    http: reqwest::Client,
}

async fn forward(
    State(g): State<MiniGateway>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let url = format!("{}{path_and_query}", g.base);
    if !arflow_runtime::signature::verify_twilio_signature(AUTH_TOKEN, &url, &params, signature) {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    let Some(rest) = path_and_query.strip_prefix("/webhooks/telephony/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let port = *g.voice_port.lock().unwrap();
    let r = g
        .http
        .post(format!("http://127.0.0.1:{port}/internal/telephony/{rest}"))
        .header("x-arflow-internal-token", TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("text/plain").to_string();
    let body = r.bytes().await.unwrap();
    (status, [("content-type", ct)], body).into_response()
}

async fn mini_gateway() -> MiniGateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let g = MiniGateway {
        base: format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port()),
        voice_port: Arc::new(Mutex::new(0)),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(forward).with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    g
}

async fn stack() -> (TestApp, TelephonySim) {
    let gateway = mini_gateway().await;
    let sim = TelephonySim::start_with(
        SimConfig {
            account_sid: ACCOUNT.into(),
            auth_token: AUTH_TOKEN.into(),
            sms_webhook_url: Some(format!("{}/webhooks/telephony/sms/inbound", gateway.base)),
            default_script: ClientScript::NoAnswer,
        },
        ScriptBook::demo(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = gateway.base.clone();
    let api = sim.base_url();
    let app = TestApp::spawn_with(tuesday_afternoon(), move |c| {
        c.telephony.api_base = api;
        c.telephony.callback_base_url = base;
    })
    .await;
    *gateway.voice_port.lock().unwrap() = app.port;
    (app, sim)
}

#[tokio::test]
async fn every_scripted_client_of_the_simulator_leads_to_its_outcome() {
    let (app, sim) = stack().await;
    // (last digit, outcome subject, intent of the first client turn)
    let cases = [
        (0, outreach::VOICE_COMPLETED, Some("promise_to_pay")),
        (1, outreach::VOICE_COMPLETED, Some("promise_to_pay")),
        (2, outreach::VOICE_COMPLETED, Some("dispute")),
        (3, outreach::VOICE_COMPLETED, Some("opt_out")),
        (4, outreach::VOICE_COMPLETED, Some("question")),
        (5, outreach::VOICE_COMPLETED, Some("promise_to_pay")),
        (6, outreach::VOICE_VOICEMAIL, None),
        (7, outreach::VOICE_NO_ANSWER, None),
        (8, outreach::VOICE_NO_ANSWER, None),
        (9, outreach::VOICE_COMPLETED, None),
    ];
    let mut steps = vec![];
    for (digit, _, _) in cases {
        let step = common::step(Channel::Voice, Tone::Firm, &format!("+1415555267{digit}"));
        app.publish_step(&step, 1).await;
        steps.push(step);
    }
    for ((digit, subject, intent), step) in cases.iter().zip(&steps) {
        let ended = app.wait_event_for(subject, "step_id", step.step_id).await;
        let number = format!("+1415555267{digit}");
        assert_eq!(ended["to"], number.as_str());
        match intent {
            Some(intent) => {
                assert_eq!(ended["intents"][0], *intent, "digit {digit}: {ended}");
                let c = app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
                assert_eq!(c["intent"], *intent, "digit {digit}");
            }
            None => assert_eq!(ended["intents"].as_array().unwrap().len(), 0, "digit {digit}: {ended}"),
        }
        let held = app.is_held(&contact_hold_key(step.contact.contact_id)).await;
        assert_eq!(held, *digit == 3, "digit {digit}: only 'stop calling' holds the contact");
    }
    sim.wait_idle().await;
    let calls = sim.calls();
    assert_eq!(calls.len(), 10, "one call per step");
    let spanish = calls.iter().find(|c| c.to == "+14155552675").unwrap();
    assert!(spanish.said.iter().any(|s| s.contains("viernes")), "{:?}", spanish.said);
    let voicemail = calls.iter().find(|c| c.to == "+14155552676").unwrap();
    assert!(voicemail.said.iter().all(|s| !s.contains("3,200") && !s.contains("INV-0042")), "{:?}", voicemail.said);
    // Every callback the simulator made was accepted (signatures checked by the stand-in gateway).
    for c in &calls {
        for cb in &c.callbacks {
            assert!(matches!(cb.status, Some(200) | Some(204)), "{} -> {:?}: {}", cb.url, cb.status, cb.body);
        }
    }
    // The recording link reaches the call (the simulator records every answered call).
    let promise = &steps[0];
    let call_id = app.call_of(promise.step_id).await.unwrap().1;
    let mut view = serde_json::Value::Null;
    for _ in 0..100 {
        view = app.api(&format!("/v1/calls/{call_id}")).await.1;
        if !view["recording_url"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(view["recording_url"].as_str().is_some(), "{view}");
}

#[tokio::test]
async fn a_text_through_the_simulator_and_an_inbound_stop() {
    let (app, sim) = stack().await;
    let step = common::step(Channel::Sms, Tone::Friendly, "+14155552670");
    app.publish_step(&step, 1).await;
    let sent = app.wait_event_for(outreach::SMS_SENT, "step_id", step.step_id).await;
    assert!(sent["body"].as_str().unwrap().contains("https://invoice.stripe.com/"));
    let messages = sim.wait_for_messages(1, WAIT).await;
    assert!(messages[0].body.contains("Reply STOP to opt out"));
    let (status, twiml) = sim.send_sms("+14155552670", "+12025550100", "STOP").await.unwrap();
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert!(app.is_held(&contact_hold_key(step.contact.contact_id)).await);
    let c = app.wait_event_for(reply::CLASSIFIED, "invoice_id", step.invoice_id).await;
    assert_eq!(c["intent"], "opt_out");
    assert_eq!(c["channel"], "sms");
}
