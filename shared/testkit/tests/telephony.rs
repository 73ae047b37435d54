//! The telephony simulator against an in-test webhook receiver laid out like the gateway's
//! telephony routes. Every callback's `X-Twilio-Signature` is checked with an independent
//! implementation of Twilio's documented algorithm (below, hmac + sha1 + base64 directly).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_testkit::telephony::{CallbackKind, ClientScript, SimCall, SimConfig, TelephonySim};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "sim-auth-token-0123456789";
const FROM: &str = "+15005550006";

/// Twilio's documented request validation: the full URL, then each POST parameter's name and
/// value concatenated, parameters sorted by name; HMAC-SHA1 keyed with the auth token; base64.
fn expected_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in &sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The example of Twilio's "Webhooks security" page (Caller and From are +14158675310 there; with
/// +12349013030 the same algorithm gives `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`, not the documented value).
#[test]
fn the_independent_validator_reproduces_twilios_documented_example() {
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675310"),
        ("Digits", "1234"),
        ("From", "+14158675310"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(expected_signature("12345", url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
    // Parameter order on the wire does not matter.
    let mut reversed = params.clone();
    reversed.reverse();
    assert_eq!(expected_signature("12345", url, &reversed), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
}

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    path_and_query: String,
    params: Vec<(String, String)>,
    signature_ok: bool,
}

impl Hit {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver with the gateway's telephony paths: checks each signature (403 when it
/// does not match, as the gateway answers) and answers TwiML by the call id in the path:
/// - `talk`: a greeting and a Gather (turn 1), then a second Gather (turn 2), then goodbye.
/// - `fallthrough`: a Gather without `actionOnEmptyResult`, then a closing Say.
/// - `error`: the answer webhook fails with 500.
/// - `loop`: the answer redirects to itself forever.
/// - `voicemail`: a short message and hang up.
struct Receiver {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn twiml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml")],
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>"#),
    )
        .into_response()
}

fn answer_for(base: &str, call_id: &str, action: &str, turn: u32) -> Response {
    let gather = |turn: u32, prompt: &str, on_empty: bool| {
        format!(
            r#"<Gather input="speech" action="{base}/webhooks/telephony/voice/{call_id}/gather?turn={turn}" method="POST" speechTimeout="auto" language="en-US"{}><Say voice="Polly.Joanna" language="en-US">{prompt}</Say></Gather>"#,
            if on_empty { r#" actionOnEmptyResult="true""# } else { "" }
        )
    };
    match (call_id, action) {
        ("error", "answer") => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        ("loop", _) => twiml(format!(
            r#"<Say>Again</Say><Redirect method="POST">{base}/webhooks/telephony/voice/loop/answer</Redirect>"#
        )),
        ("voicemail", "answer") => twiml(
            r#"<Say>Hello, this is Harbor Pine calling about your account. Please call us back.</Say><Hangup/>"#
                .to_string(),
        ),
        ("fallthrough", "answer") => {
            twiml(format!("{}<Say>We will try you again later.</Say>", gather(1, "When can you pay?", false)))
        }
        (_, "answer") => twiml(format!(
            "<Say>Hello, this is Harbor Pine &amp; Co about invoice 1042.</Say><Pause length=\"1\"/>{}",
            gather(1, "When can you pay?", true)
        )),
        (_, "gather") if turn == 1 => twiml(gather(2, "Is there anything else?", true)),
        (_, "gather") => twiml("<Say>Thank you. Goodbye.</Say><Hangup/>".to_string()),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (b, h) = (base.clone(), hits.clone());
        let app =
            Router::new().fallback(move |uri: Uri, headers: HeaderMap, Form(params): Form<Vec<(String, String)>>| {
                let (base, hits) = (b.clone(), h.clone());
                async move {
                    let path_and_query = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                    let url = format!("{base}{path_and_query}");
                    let signature_ok = headers
                        .get("x-twilio-signature")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|sig| sig == expected_signature(TOKEN, &url, &params));
                    hits.lock().unwrap().push(Hit {
                        path_and_query: path_and_query.clone(),
                        params: params.clone(),
                        signature_ok,
                    });
                    if !signature_ok {
                        return (StatusCode::FORBIDDEN, "bad signature").into_response();
                    }
                    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
                    match segments.as_slice() {
                        ["webhooks", "telephony", "voice", call_id, action] => {
                            let turn = uri
                                .query()
                                .and_then(|q| q.strip_prefix("turn="))
                                .and_then(|t| t.parse().ok())
                                .unwrap_or(0);
                            answer_for(&base, call_id, action, turn)
                        }
                        ["webhooks", "telephony", "sms", "inbound"] => {
                            let body =
                                params.iter().find(|(k, _)| k == "Body").map(|(_, v)| v.clone()).unwrap_or_default();
                            if body.trim().eq_ignore_ascii_case("HELP") {
                                twiml("<Message>Harbor Pine: reply STOP to opt out.</Message>".to_string())
                            } else {
                                twiml(String::new())
                            }
                        }
                        _ => StatusCode::NO_CONTENT.into_response(),
                    }
                }
            });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { base, hits, task }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn voice(&self, call_id: &str, action: &str) -> String {
        format!("{}/webhooks/telephony/voice/{call_id}/{action}", self.base)
    }
}

async fn sim_for(receiver: &Receiver) -> TelephonySim {
    TelephonySim::start(SimConfig {
        account_sid: ACCOUNT.to_string(),
        auth_token: TOKEN.to_string(),
        sms_webhook_url: Some(format!("{}/webhooks/telephony/sms/inbound", receiver.base)),
        default_script: ClientScript::NoAnswer,
    })
    .await
}

fn rest(sim: &TelephonySim, resource: &str) -> String {
    format!("{}/2010-04-01/Accounts/{ACCOUNT}/{resource}", sim.base_url())
}

/// The voice service's `Calls.json` request (common contract), every event asked for.
fn call_params(receiver: &Receiver, call_id: &str, to: &str) -> Vec<(String, String)> {
    let mut p = vec![
        ("To", to.to_string()),
        ("From", FROM.to_string()),
        ("Url", receiver.voice(call_id, "answer")),
        ("Method", "POST".to_string()),
        ("StatusCallback", receiver.voice(call_id, "status")),
        ("StatusCallbackMethod", "POST".to_string()),
    ];
    for e in ["initiated", "ringing", "answered", "completed"] {
        p.push(("StatusCallbackEvent", e.to_string()));
    }
    p.extend([
        ("MachineDetection", "DetectMessageEnd".to_string()),
        ("Timeout", "25".to_string()),
        ("Record", "true".to_string()),
        ("RecordingStatusCallback", receiver.voice(call_id, "recording")),
        ("RecordingStatusCallbackMethod", "POST".to_string()),
    ]);
    p.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

async fn post_form(url: &str, user: &str, password: &str, params: &[(String, String)]) -> (u16, Value) {
    let res = reqwest::Client::new().post(url).basic_auth(user, Some(password)).form(params).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Places the call, waits for it to finish, and returns the simulator's record of it.
async fn place(sim: &TelephonySim, params: &[(String, String)]) -> SimCall {
    place_as(sim, TOKEN, params).await
}

async fn place_as(sim: &TelephonySim, token: &str, params: &[(String, String)]) -> SimCall {
    let (status, body) = post_form(&rest(sim, "Calls.json"), ACCOUNT, token, params).await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap().to_string();
    sim.wait_idle().await;
    sim.calls().into_iter().find(|c| c.sid == sid).expect("the call is recorded")
}

fn assert_all_signed(receiver: &Receiver) {
    let hits = receiver.hits();
    assert!(!hits.is_empty());
    for h in &hits {
        assert!(h.signature_ok, "bad signature on {}", h.path_and_query);
    }
}

#[tokio::test]
async fn a_two_turn_conversation_posts_signed_callbacks_in_twilios_order() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script(
        "+14155550100",
        ClientScript::Answer {
            utterances: vec!["I can pay it on Friday".into(), "No, that's all".into()],
            language: "en-US".into(),
        },
    );
    let (status, body) =
        post_form(&rest(&sim, "Calls.json"), ACCOUNT, TOKEN, &call_params(&receiver, "talk", "+14155550100")).await;
    assert_eq!(status, 201);
    let sid = body["sid"].as_str().unwrap();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], "+14155550100");
    assert_eq!(body["from"], FROM);
    assert_eq!(body["direction"], "outbound-api");
    assert_eq!(body["uri"], format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"));
    assert!(body["date_created"].as_str().is_some_and(|d| d.ends_with("+0000")), "{body}");
    sim.wait_idle().await;

    let paths: Vec<String> = receiver.hits().iter().map(|h| h.path_and_query.clone()).collect();
    assert_eq!(
        paths,
        [
            "/webhooks/telephony/voice/talk/status",
            "/webhooks/telephony/voice/talk/status",
            "/webhooks/telephony/voice/talk/status",
            "/webhooks/telephony/voice/talk/answer",
            "/webhooks/telephony/voice/talk/gather?turn=1",
            "/webhooks/telephony/voice/talk/gather?turn=2",
            "/webhooks/telephony/voice/talk/recording",
            "/webhooks/telephony/voice/talk/status",
        ]
    );
    assert_all_signed(&receiver);
    let hits = receiver.hits();
    let statuses: Vec<&str> = hits.iter().filter_map(|h| h.param("CallStatus")).collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "in-progress", "in-progress", "in-progress", "completed"]
    );
    let seq: Vec<&str> = hits.iter().filter_map(|h| h.param("SequenceNumber")).collect();
    assert_eq!(seq, ["0", "1", "2", "3"]);
    for h in &hits {
        assert_eq!(h.param("CallSid"), Some(sid));
        assert_eq!(h.param("AccountSid"), Some(ACCOUNT));
    }
    for h in hits.iter().filter(|h| h.param("CallStatus").is_some()) {
        assert_eq!(h.param("Direction"), Some("outbound-api"));
        assert_eq!(h.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(h.param("From"), Some(FROM));
        assert_eq!(h.param("To"), Some("+14155550100"));
    }
    assert!(hits[0].param("Timestamp").is_some());
    assert_eq!(hits[0].param("AnsweredBy"), None, "not known before the answer");
    assert_eq!(hits[3].param("AnsweredBy"), Some("human"));
    assert_eq!(hits[4].param("SpeechResult"), Some("I can pay it on Friday"));
    assert_eq!(hits[4].param("Confidence"), Some("0.92"));
    assert_eq!(hits[5].param("SpeechResult"), Some("No, that's all"));
    let recording = &hits[6];
    let re = recording.param("RecordingSid").unwrap();
    assert!(re.starts_with("RE") && re.len() == 34);
    assert_eq!(
        recording.param("RecordingUrl").unwrap(),
        format!("{}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{re}", sim.base_url())
    );
    assert_eq!(recording.param("RecordingStatus"), Some("completed"));
    assert_eq!(recording.param("RecordingChannels"), Some("1"));
    assert_eq!(recording.param("RecordingSource"), Some("DialVerb"));
    let completed = &hits[7];
    let duration: u32 = completed.param("CallDuration").unwrap().parse().unwrap();
    assert!(duration > 5, "{duration}");
    assert_eq!(recording.param("RecordingDuration"), Some(duration.to_string().as_str()));

    let call = &sim.calls()[0];
    assert_eq!(call.sid, sid);
    assert_eq!(
        call.said,
        [
            "Hello, this is Harbor Pine & Co about invoice 1042.",
            "When can you pay?",
            "Is there anything else?",
            "Thank you. Goodbye."
        ]
    );
    assert_eq!(call.heard, ["I can pay it on Friday", "No, that's all"]);
    assert_eq!(call.gather_languages, [Some("en-US".to_string()), Some("en-US".to_string())]);
    assert_eq!(call.status, "completed");
    assert_eq!(call.answered_by.as_deref(), Some("human"));
    assert_eq!(call.recording_sid.as_deref(), Some(re));
    assert_eq!(call.duration_secs, duration);
    assert_eq!(call.status_events(), ["initiated", "ringing", "in-progress", "completed"]);
    assert!(call.callbacks.iter().all(|c| c.status.is_some_and(|s| s < 300)), "{:?}", call.callbacks);
    assert_eq!(call.param("MachineDetection"), Some("DetectMessageEnd"));
    assert!(call.finished);

    // The recording is served where RecordingUrl points.
    let media = reqwest::get(recording.param("RecordingUrl").unwrap()).await.unwrap();
    assert_eq!(media.status(), 200);
    assert_eq!(media.headers()[header::CONTENT_TYPE], "audio/x-wav");
    // And the call can be fetched.
    let fetched = reqwest::Client::new()
        .get(rest(&sim, &format!("Calls/{sid}.json")))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "completed");
    assert_eq!(fetched["duration"], duration.to_string());
}

#[tokio::test]
async fn voicemail_hears_the_message_and_reports_machine_end_beep() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script("+14155550106", ClientScript::Voicemail);
    let call = place(&sim, &call_params(&receiver, "voicemail", "+14155550106")).await;
    assert_all_signed(&receiver);
    assert_eq!(call.status_events(), ["initiated", "ringing", "in-progress", "completed"]);
    let answer = call.callbacks_of(CallbackKind::Answer).next().unwrap();
    assert_eq!(answer.param("AnsweredBy"), Some("machine_end_beep"));
    assert_eq!(call.said, ["Hello, this is Harbor Pine calling about your account. Please call us back."]);
    assert!(call.heard.is_empty());
    assert_eq!(call.answered_by.as_deref(), Some("machine_end_beep"));
    assert_eq!(call.callbacks_of(CallbackKind::Recording).count(), 1);
    let last = call.callbacks.last().unwrap();
    assert_eq!(last.param("CallStatus"), Some("completed"));
    assert_eq!(last.param("AnsweredBy"), Some("machine_end_beep"));
    assert!(last.param("CallDuration").unwrap().parse::<u32>().unwrap() > 0);
}

#[tokio::test]
async fn no_answer_busy_and_failed_end_without_the_answer_webhook() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script("+14155550107", ClientScript::NoAnswer);
    sim.set_script("+14155550108", ClientScript::Busy);
    sim.set_script("+14155550199", ClientScript::Fails);
    for (to, events) in [
        ("+14155550107", vec!["initiated", "ringing", "no-answer"]),
        ("+14155550108", vec!["initiated", "ringing", "busy"]),
        ("+14155550199", vec!["initiated", "failed"]),
    ] {
        let call = place(&sim, &call_params(&receiver, "unanswered", to)).await;
        assert_eq!(call.status_events(), events, "{to}");
        assert_eq!(call.callbacks_of(CallbackKind::Answer).count(), 0);
        assert_eq!(call.callbacks_of(CallbackKind::Recording).count(), 0);
        assert_eq!(call.callbacks.last().unwrap().param("CallDuration"), Some("0"));
        assert_eq!(call.status, *events.last().unwrap());
        assert_eq!(call.answered_by, None);
        assert!(call.recording_sid.is_none());
    }
    assert_all_signed(&receiver);

    // Without StatusCallbackEvent only the final status is posted (Twilio's default).
    let mut params = call_params(&receiver, "unanswered", "+14155550107");
    params.retain(|(k, _)| k != "StatusCallbackEvent");
    let call = place(&sim, &params).await;
    assert_eq!(call.status_events(), ["no-answer"]);
    // An unscripted number plays the default script (NoAnswer here).
    let call = place(&sim, &call_params(&receiver, "unanswered", "+14155550000")).await;
    assert_eq!(call.status, "no-answer");
}

#[tokio::test]
async fn a_gather_with_nothing_left_posts_an_empty_result_or_falls_through() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script("+14155550109", ClientScript::silent());

    // actionOnEmptyResult="true": the action gets SpeechResult="" each turn.
    let call = place(&sim, &call_params(&receiver, "talk", "+14155550109")).await;
    let gathers: Vec<_> = call.callbacks_of(CallbackKind::Gather).collect();
    assert_eq!(gathers.len(), 2);
    assert!(gathers.iter().all(|g| g.param("SpeechResult") == Some("")));
    assert!(call.heard.is_empty());
    assert_eq!(call.said.last().map(String::as_str), Some("Thank you. Goodbye."));
    assert_eq!(call.status, "completed");

    // Without it: the verbs after the Gather run, and the document's end ends the call.
    let call = place(&sim, &call_params(&receiver, "fallthrough", "+14155550109")).await;
    assert_eq!(call.callbacks_of(CallbackKind::Gather).count(), 0);
    assert_eq!(call.said, ["When can you pay?", "We will try you again later."]);
    assert_eq!(call.status_events().last().map(String::as_str), Some("completed"));
    assert_all_signed(&receiver);
}

#[tokio::test]
async fn a_failing_webhook_ends_the_call_and_loops_are_bounded() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script("+14155550100", ClientScript::promises("on Friday"));

    let call = place(&sim, &call_params(&receiver, "error", "+14155550100")).await;
    let answer = call.callbacks_of(CallbackKind::Answer).next().unwrap();
    assert_eq!(answer.status, Some(500));
    assert!(call.said.is_empty() && call.heard.is_empty());
    assert_eq!(call.status_events(), ["initiated", "ringing", "in-progress", "completed"]);

    let call = place(&sim, &call_params(&receiver, "loop", "+14155550100")).await;
    let round_trips =
        call.callbacks_of(CallbackKind::Answer).count() + call.callbacks_of(CallbackKind::Redirect).count();
    assert_eq!(round_trips, arflow_testkit::telephony::MAX_ROUND_TRIPS);
    assert_eq!(call.status, "completed");

    // A signature the receiver refuses is recorded with its 403, and the call still ends.
    let other = TelephonySim::start(SimConfig {
        account_sid: ACCOUNT.to_string(),
        auth_token: "another-token-entirely".to_string(),
        sms_webhook_url: None,
        default_script: ClientScript::disputes(),
    })
    .await;
    let call = place_as(&other, "another-token-entirely", &call_params(&receiver, "talk", "+14155550102")).await;
    assert!(call.callbacks.iter().all(|c| c.status == Some(403)), "{:?}", call.callbacks);
    assert_eq!(call.status, "completed");
    assert!(call.said.is_empty());
}

#[tokio::test]
async fn the_rest_api_refuses_bad_credentials_and_bad_parameters_as_twilio_does() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    let good = call_params(&receiver, "talk", "+14155550100");

    let (status, body) = post_form(&rest(&sim, "Calls.json"), ACCOUNT, "wrong-token", &good).await;
    assert_eq!((status, body["code"].as_u64(), body["status"].as_u64()), (401, Some(20003), Some(401)), "{body}");
    assert!(body["more_info"].as_str().unwrap().ends_with("/20003"));
    let res = reqwest::Client::new().post(rest(&sim, "Calls.json")).form(&good).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let (status, body) = post_form(
        &format!("{}/2010-04-01/Accounts/ACffffffffffffffffffffffffffffffff/Calls.json", sim.base_url()),
        ACCOUNT,
        TOKEN,
        &good,
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));

    let without = |name: &str| good.iter().filter(|(k, _)| k != name).cloned().collect::<Vec<_>>();
    let with = |name: &str, value: &str| {
        good.iter()
            .map(|(k, v)| if k == name { (k.clone(), value.to_string()) } else { (k.clone(), v.clone()) })
            .collect::<Vec<_>>()
    };
    for (params, code) in [
        (without("To"), 21201),
        (without("From"), 21213),
        (without("Url"), 21205),
        (with("To", "4155550100"), 21211),
        (with("To", "+1 (415) 555-0100"), 21211),
        (with("From", "not-a-number"), 21212),
    ] {
        let (status, body) = post_form(&rest(&sim, "Calls.json"), ACCOUNT, TOKEN, &params).await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(code)), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let sms = |to: &str, body: &str| {
        vec![
            ("To".to_string(), to.to_string()),
            ("From".to_string(), FROM.to_string()),
            ("Body".to_string(), body.to_string()),
        ]
    };
    for (params, code) in [(sms("+14155550100", ""), 21602), (sms("415", "hi"), 21211), (sms("", "hi"), 21604)] {
        let (status, body) = post_form(&rest(&sim, "Messages.json"), ACCOUNT, TOKEN, &params).await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(code)), "{body}");
    }
    let (status, _) = post_form(&rest(&sim, "Messages.json"), ACCOUNT, "nope", &sms("+14155550100", "hi")).await;
    assert_eq!(status, 401);
    assert!(sim.calls().is_empty() && sim.messages().is_empty());
    assert!(receiver.hits().is_empty());
}

#[tokio::test]
async fn messages_are_accepted_then_report_sent_and_delivered() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script("+14155550199", ClientScript::Fails);
    let text = |to: &str, id: &str| {
        vec![
            ("To".to_string(), to.to_string()),
            ("From".to_string(), FROM.to_string()),
            ("Body".to_string(), "Invoice 1042 is 10 days overdue: https://pay.test/i/1042".to_string()),
            ("StatusCallback".to_string(), format!("{}/webhooks/telephony/sms/{id}/status", receiver.base)),
        ]
    };
    let (status, body) = post_form(&rest(&sim, "Messages.json"), ACCOUNT, TOKEN, &text("+14155550100", "t1")).await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["body"], "Invoice 1042 is 10 days overdue: https://pay.test/i/1042");
    assert_eq!(body["uri"], format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"));
    let (status, failed) = post_form(&rest(&sim, "Messages.json"), ACCOUNT, TOKEN, &text("+14155550199", "t2")).await;
    assert_eq!(status, 201);
    let messages = sim.wait_for_messages(2, Duration::from_secs(10)).await;
    assert_all_signed(&receiver);

    let hits = receiver.hits();
    let t1: Vec<&Hit> = hits.iter().filter(|h| h.path_and_query == "/webhooks/telephony/sms/t1/status").collect();
    assert_eq!(t1.iter().map(|h| h.param("MessageStatus").unwrap()).collect::<Vec<_>>(), ["sent", "delivered"]);
    for h in &t1 {
        assert_eq!(h.param("MessageSid"), Some(sid.as_str()));
        assert_eq!(h.param("AccountSid"), Some(ACCOUNT));
        assert_eq!(h.param("To"), Some("+14155550100"));
        assert_eq!(h.param("ErrorCode"), None);
    }
    let t2: Vec<&Hit> = hits.iter().filter(|h| h.path_and_query == "/webhooks/telephony/sms/t2/status").collect();
    assert_eq!(t2.len(), 1);
    assert_eq!(t2[0].param("MessageStatus"), Some("failed"));
    assert_eq!(t2[0].param("ErrorCode"), Some("30008"));
    assert_eq!(t2[0].param("MessageSid"), failed["sid"].as_str());

    assert_eq!(messages[0].status, "delivered");
    assert_eq!(messages[0].direction, "outbound-api");
    assert_eq!(messages[0].callbacks.iter().map(|c| c.status).collect::<Vec<_>>(), [Some(204), Some(204)]);
    assert_eq!(messages[1].status, "failed");
}

#[tokio::test]
async fn send_sms_posts_a_signed_inbound_webhook_as_twilio_does() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    let (status, body) = sim.send_sms("+14155550100", FROM, "STOP").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("<Response>"), "{body}");
    let (_, help) = sim.send_sms("+14155550100", FROM, "help").await.unwrap();
    assert!(help.contains("<Message>"), "{help}");
    assert_all_signed(&receiver);

    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    let stop = &hits[0];
    assert_eq!(stop.path_and_query, "/webhooks/telephony/sms/inbound");
    let sid = stop.param("MessageSid").unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(stop.param("SmsSid"), Some(sid));
    assert_eq!(stop.param("AccountSid"), Some(ACCOUNT));
    assert_eq!(stop.param("From"), Some("+14155550100"));
    assert_eq!(stop.param("To"), Some(FROM));
    assert_eq!(stop.param("Body"), Some("STOP"));
    assert_eq!(stop.param("NumMedia"), Some("0"));
    assert_eq!(stop.param("SmsStatus"), Some("received"));
    assert_eq!(stop.param("ApiVersion"), Some("2010-04-01"));

    assert!(sim.messages().is_empty(), "inbound texts are not outbound messages");
    let messages = sim.inbound();
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].direction.as_str(), messages[0].body.as_str()), ("inbound", "STOP"));
    assert!(messages[0].replies.is_empty());
    assert_eq!(messages[1].replies, ["Harbor Pine: reply STOP to opt out."]);

    // Without a webhook URL there is nowhere to post.
    let lonely = TelephonySim::start(SimConfig {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        sms_webhook_url: None,
        default_script: ClientScript::NoAnswer,
    })
    .await;
    assert!(lonely.send_sms("+14155550100", FROM, "hi").await.is_err());
}

#[tokio::test]
async fn the_sim_endpoints_list_calls_and_messages_and_trigger_inbound_texts() {
    let receiver = Receiver::start().await;
    let sim = sim_for(&receiver).await;
    sim.set_script("+14155550105", ClientScript::spanish());
    let call = place(&sim, &call_params(&receiver, "talk", "+14155550105")).await;
    assert_eq!(call.heard, ["Lo siento, pagaré la factura el viernes"]);

    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/_sim/sms", sim.base_url()))
        .json(&serde_json::json!({"from": "+14155550105", "to": FROM, "body": "HELP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["status"], 200);
    assert!(sent["body"].as_str().unwrap().contains("<Message>"));

    let calls: Value = http.get(format!("{}/_sim/calls", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls[0]["sid"], call.sid.as_str());
    assert_eq!(calls[0]["status"], "completed");
    assert_eq!(calls[0]["heard"][0], "Lo siento, pagaré la factura el viernes");
    assert_eq!(calls[0]["callbacks"][0]["kind"], "status");
    let inbound: Value =
        http.get(format!("{}/_sim/inbound", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(inbound[0]["direction"], "inbound");
    assert_eq!(inbound[0]["body"], "HELP");
    let messages: Value =
        http.get(format!("{}/_sim/messages", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(messages, serde_json::json!([]));
    assert_all_signed(&receiver);
}
