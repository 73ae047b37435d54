//! `TelephonySim`: a local telephony provider speaking Twilio's REST contract (API 2010-04-01,
//! form-encoded, HTTP Basic auth) on a free port, which plays scripted clients on the calls it
//! is asked to place and posts signed callbacks (`X-Twilio-Signature`) as Twilio does.
//!
//! - `POST /2010-04-01/Accounts/{sid}/Calls.json` places a call: 201 with a Twilio-shaped call,
//!   then a task per call posts, in Twilio's order, the status callbacks asked for in
//!   `StatusCallbackEvent` (`initiated`, `ringing`, `answered`; the final one always), the answer
//!   webhook (`Url`, with `AnsweredBy` when `MachineDetection` was asked), runs the TwiML it gets
//!   (`<Say>`, `<Pause>`, `<Gather>`, `<Redirect>`, `<Hangup/>`), the recording callback
//!   (`Record=true`) and the final status with `CallDuration`.
//! - `POST /2010-04-01/Accounts/{sid}/Messages.json` sends a text: 201, then `sent` and
//!   `delivered` (or `failed` for a number whose script is [`ClientScript::Fails`]) to its
//!   `StatusCallback`.
//! - [`TelephonySim::send_sms`] posts an inbound-SMS webhook as Twilio does.
//! - `GET /_sim/calls`, `GET /_sim/messages` (texts sent through `Messages.json`),
//!   `GET /_sim/inbound` (texts posted by `send_sms`), `POST /_sim/sms` (`{from,to,body}`) expose
//!   the same to other processes (the `arflow telephony-sim` wrapper of the local stack).
//!
//! Simulated call time: durations are computed, not waited for (a `<Say>` lasts 0.4 s a word,
//! at least 1 s; a `<Pause>` its `length`; each spoken answer 0.4 s a word plus 2 s), so tests
//! run at full speed and durations are deterministic.
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Twilio REST API version the simulator speaks.
pub const API_VERSION: &str = "2010-04-01";
/// The speech-recognition confidence every simulated `SpeechResult` reports.
pub const CONFIDENCE: &str = "0.92";
/// Webhook round trips (answer, gather actions, redirects) allowed per call before the simulator
/// hangs up: guards against TwiML that loops.
pub const MAX_ROUND_TRIPS: usize = 20;

/// What the person (or machine) at a number does when called.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientScript {
    /// Picks up (`AnsweredBy=human`) and answers each `<Gather>` with the next utterance;
    /// `language` is what they speak (`en-US`, `es-US`).
    Answer { utterances: Vec<String>, language: String },
    /// The voicemail picks up (`AnsweredBy=machine_end_beep`) and records what is said.
    Voicemail,
    /// Rings out: final status `no-answer`.
    NoAnswer,
    /// Final status `busy`.
    Busy,
    /// The call cannot be placed: final status `failed` (texts to the number fail too).
    Fails,
}

impl ClientScript {
    fn answer(utterances: &[&str], language: &str) -> Self {
        ClientScript::Answer {
            utterances: utterances.iter().map(|u| u.to_string()).collect(),
            language: language.to_string(),
        }
    }

    /// Promises to pay: `promises("on Friday")` says "I can pay it on Friday".
    pub fn promises(date_phrase: &str) -> Self {
        ClientScript::Answer {
            utterances: vec![format!("I can pay it {}", date_phrase.trim())],
            language: "en-US".to_string(),
        }
    }

    /// Disputes the invoice.
    pub fn disputes() -> Self {
        Self::answer(&["I don't recognise this invoice, we never received those services"], "en-US")
    }

    /// Asks not to be called again.
    pub fn stop_calling() -> Self {
        Self::answer(&["Please stop calling me"], "en-US")
    }

    /// Asks for a human.
    pub fn asks_for_person() -> Self {
        Self::answer(&["Can I speak to a person about this?"], "en-US")
    }

    /// Answers in Spanish with a promise for Friday.
    pub fn spanish() -> Self {
        Self::answer(&["Lo siento, pagaré la factura el viernes"], "es-US")
    }

    /// Answers and says nothing.
    pub fn silent() -> Self {
        Self::answer(&[], "en-US")
    }
}

/// Which script plays at which number: explicit entries first, then (for [`ScriptBook::demo`])
/// a persona chosen by the number's last digit, else the simulator's `default_script`.
#[derive(Clone, Debug, Default)]
pub struct ScriptBook {
    by_number: HashMap<String, ClientScript>,
    by_last_digit: bool,
}

impl ScriptBook {
    /// A book with no entries: every number plays the simulator's `default_script`.
    pub fn new() -> Self {
        ScriptBook::default()
    }

    /// The demo's book: the persona follows from the number's last digit, so the demo chooses
    /// behaviour by the numbers it gives its contacts.
    ///
    /// | last digit | script |
    /// |---|---|
    /// | 0 | `promises("on Friday")` ("I can pay it on Friday") |
    /// | 1 | `promises("next Monday")` ("I can pay it next Monday") |
    /// | 2 | `disputes()` |
    /// | 3 | `stop_calling()` |
    /// | 4 | `asks_for_person()` |
    /// | 5 | `spanish()` |
    /// | 6 | `Voicemail` |
    /// | 7 | `NoAnswer` |
    /// | 8 | `Busy` |
    /// | 9 | `silent()` |
    ///
    /// A number not ending in a digit plays the simulator's `default_script`.
    pub fn demo() -> Self {
        ScriptBook { by_number: HashMap::new(), by_last_digit: true }
    }

    /// The demo table's script for a last digit (see [`ScriptBook::demo`]).
    pub fn demo_persona(last_digit: u32) -> Option<ClientScript> {
        Some(match last_digit {
            0 => ClientScript::promises("on Friday"),
            1 => ClientScript::promises("next Monday"),
            2 => ClientScript::disputes(),
            3 => ClientScript::stop_calling(),
            4 => ClientScript::asks_for_person(),
            5 => ClientScript::spanish(),
            6 => ClientScript::Voicemail,
            7 => ClientScript::NoAnswer,
            8 => ClientScript::Busy,
            9 => ClientScript::silent(),
            _ => return None,
        })
    }

    /// Plays `script` at `phone` (E.164) from now on.
    pub fn set(&mut self, phone: &str, script: ClientScript) {
        self.by_number.insert(phone.to_string(), script);
    }

    /// The script for `phone`, if the book decides it.
    pub fn script_for(&self, phone: &str) -> Option<ClientScript> {
        if let Some(s) = self.by_number.get(phone) {
            return Some(s.clone());
        }
        if self.by_last_digit {
            return phone.chars().last().and_then(|c| c.to_digit(10)).and_then(Self::demo_persona);
        }
        None
    }
}

/// How the simulator is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The account (`AC...`) REST calls must authenticate as and address.
    pub account_sid: String,
    /// The REST password and the key every callback is signed with.
    pub auth_token: String,
    /// Where [`TelephonySim::send_sms`] posts inbound texts (the gateway's
    /// `/webhooks/telephony/sms/inbound`).
    pub sms_webhook_url: Option<String>,
    /// The script of every number the script book does not decide.
    pub default_script: ClientScript,
}

/// Which webhook a callback went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// `StatusCallback` (call) or a message's `StatusCallback`.
    Status,
    /// The call's `Url`, requested when it is answered.
    Answer,
    /// A `<Gather>`'s `action`.
    Gather,
    /// A `<Redirect>`'s URL.
    Redirect,
    /// `RecordingStatusCallback`.
    Recording,
    /// The inbound-SMS webhook.
    InboundSms,
}

/// One signed POST the simulator made and what it got back.
#[derive(Clone, Debug, Serialize)]
pub struct SimCallback {
    pub kind: CallbackKind,
    pub url: String,
    /// The form parameters, in the order sent.
    pub params: Vec<(String, String)>,
    /// The HTTP status, `None` when no answer came (refused connection, timeout).
    pub status: Option<u16>,
    /// The response body (TwiML for answer/gather/redirect), or the transport error.
    pub body: String,
}

impl SimCallback {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A call placed through the simulator, as it stands now.
#[derive(Clone, Debug, Serialize)]
pub struct SimCall {
    /// `CA` + 32 hex.
    pub sid: String,
    pub to: String,
    pub from: String,
    /// The parameters of the `Calls.json` request, in the order received.
    pub params: Vec<(String, String)>,
    /// Every callback posted for the call, in order.
    pub callbacks: Vec<SimCallback>,
    /// Every `<Say>` text the caller played, in order (those inside `<Gather>` too).
    pub said: Vec<String>,
    /// Every utterance the client spoke (the `SpeechResult`s that were not empty).
    pub heard: Vec<String>,
    /// The `language` of each `<Gather>` the client was asked in, in order (`None`: not set,
    /// Twilio's default `en-US`).
    pub gather_languages: Vec<Option<String>>,
    /// `queued`, `initiated`, `ringing`, `in-progress`, then `completed`, `no-answer`, `busy`
    /// or `failed`.
    pub status: String,
    /// `human` or `machine_end_beep` once answered (when machine detection was asked).
    pub answered_by: Option<String>,
    /// `RE` + 32 hex, when the call was recorded.
    pub recording_sid: Option<String>,
    /// Simulated seconds (see the module docs).
    pub duration_secs: u32,
    /// True once every callback of the call has been posted.
    pub finished: bool,
}

impl SimCall {
    /// The first value of request parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The `CallStatus` of each status callback, in order.
    pub fn status_events(&self) -> Vec<String> {
        self.callbacks_of(CallbackKind::Status).filter_map(|c| c.param("CallStatus").map(str::to_string)).collect()
    }

    /// The callbacks of one kind, in order.
    pub fn callbacks_of(&self, kind: CallbackKind) -> impl Iterator<Item = &SimCallback> {
        self.callbacks.iter().filter(move |c| c.kind == kind)
    }
}

/// A text through the simulator: sent through `Messages.json` (`direction` `outbound-api`, in
/// [`TelephonySim::messages`]), or posted by [`TelephonySim::send_sms`] (`inbound`, in
/// [`TelephonySim::inbound`]).
#[derive(Clone, Debug, Serialize)]
pub struct SimMessage {
    /// `SM` + 32 hex.
    pub sid: String,
    pub direction: String,
    pub to: String,
    pub from: String,
    pub body: String,
    /// The request parameters (outbound), in the order received.
    pub params: Vec<(String, String)>,
    /// `queued`, `sent`, `delivered`, `failed`; `received` for inbound.
    pub status: String,
    /// Status callbacks (outbound) or the inbound webhook (inbound) with what they got back.
    pub callbacks: Vec<SimCallback>,
    /// Inbound: the `<Message>` texts of the TwiML reply, which Twilio would send back.
    pub replies: Vec<String>,
    pub finished: bool,
}

#[derive(Default)]
struct Records {
    calls: Vec<SimCall>,
    messages: Vec<SimMessage>,
    inbound: Vec<SimMessage>,
}

struct Inner {
    config: SimConfig,
    base_url: String,
    book: Mutex<ScriptBook>,
    records: Mutex<Records>,
    http: reqwest::Client,
    active: AtomicUsize,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Counts a call's or message's task as active until dropped (a panic still releases it).
struct ActiveGuard(Arc<Inner>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Failed to start the simulator or to post an inbound text.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("no sms_webhook_url is configured")]
    NoSmsWebhook,
    #[error("posting to {url} failed: {reason}")]
    Post { url: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The running simulator; dropping it stops the server and every call in flight.
pub struct TelephonySim {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl TelephonySim {
    /// Starts on a free port of 127.0.0.1, every number playing `config.default_script` until
    /// [`Self::set_script`] says otherwise.
    pub async fn start(config: SimConfig) -> Self {
        Self::start_with(config, ScriptBook::new(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("telephony sim binds a free port")
    }

    /// Starts on `addr` with the scripts of `book` (the `arflow telephony-sim` wrapper).
    pub async fn start_with(config: SimConfig, book: ScriptBook, addr: SocketAddr) -> Result<Self, SimError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("TwilioProxy/1.1")
            .build()
            .map_err(SimError::Client)?;
        let inner = Arc::new(Inner {
            config,
            base_url: format!("http://{addr}"),
            book: Mutex::new(book),
            records: Mutex::new(Records::default()),
            http,
            active: AtomicUsize::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls.json", post(create_call))
            .route("/2010-04-01/Accounts/{account}/Calls/{sid}", get(fetch_call))
            .route("/2010-04-01/Accounts/{account}/Messages.json", post(create_message))
            .route("/2010-04-01/Accounts/{account}/Messages/{sid}", get(fetch_message))
            .route("/2010-04-01/Accounts/{account}/Recordings/{sid}", get(fetch_recording))
            .route("/_sim/calls", get(sim_calls))
            .route("/_sim/messages", get(sim_messages))
            .route("/_sim/inbound", get(sim_inbound))
            .route("/_sim/sms", post(sim_sms))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "telephony sim stopped serving");
            }
        });
        Ok(TelephonySim { addr, inner, server })
    }

    /// `http://127.0.0.1:<port>` (no trailing slash): the value for `telephony.api_base`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Plays `script` at `phone` for the calls placed from now on.
    pub fn set_script(&self, phone: &str, script: ClientScript) {
        self.inner.book.lock().unwrap().set(phone, script);
    }

    /// Every call placed, in order.
    pub fn calls(&self) -> Vec<SimCall> {
        self.inner.records.lock().unwrap().calls.clone()
    }

    /// Every text sent through `Messages.json`, in order.
    pub fn messages(&self) -> Vec<SimMessage> {
        self.inner.records.lock().unwrap().messages.clone()
    }

    /// Every inbound text posted by [`Self::send_sms`], in order.
    pub fn inbound(&self) -> Vec<SimMessage> {
        self.inner.records.lock().unwrap().inbound.clone()
    }

    /// Posts a signed inbound-SMS webhook to `sms_webhook_url` exactly as Twilio does; returns the
    /// webhook's HTTP status and body (TwiML). Recorded in [`Self::inbound`].
    pub async fn send_sms(&self, from: &str, to: &str, body: &str) -> Result<(u16, String), SimError> {
        send_sms(&self.inner, from, to, body).await
    }

    /// Waits (up to 30 s, then fails the test) until no call or message has callbacks left to post.
    pub async fn wait_idle(&self) {
        crate::eventually("the telephony sim to go idle", Duration::from_secs(30), || async {
            (self.inner.active.load(Ordering::SeqCst) == 0).then_some(())
        })
        .await
    }

    /// Waits (up to `within`) until at least `n` calls were placed and every one has finished.
    pub async fn wait_for_calls(&self, n: usize, within: Duration) -> Vec<SimCall> {
        crate::eventually(&format!("{n} finished calls"), within, || async {
            let calls = self.calls();
            (calls.len() >= n && calls.iter().all(|c| c.finished)).then_some(calls)
        })
        .await
    }

    /// Waits (up to `within`) until at least `n` texts exist and every one has finished.
    pub async fn wait_for_messages(&self, n: usize, within: Duration) -> Vec<SimMessage> {
        crate::eventually(&format!("{n} finished messages"), within, || async {
            let messages = self.messages();
            (messages.len() >= n && messages.iter().all(|m| m.finished)).then_some(messages)
        })
        .await
    }

    /// Serves until the task is aborted or fails (for the process wrapper).
    pub async fn serve_forever(mut self) {
        let _ = (&mut self.server).await;
    }
}

impl Drop for TelephonySim {
    fn drop(&mut self) {
        self.server.abort();
        for t in self.inner.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

type Shared = State<Arc<Inner>>;

/// `CA`/`SM`/`RE` + 32 lowercase hex, as Twilio's sids.
fn new_sid(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn now_rfc2822() -> String {
    chrono::Utc::now().to_rfc2822()
}

/// Twilio's REST error body.
fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

/// `Some` is the refusal: Basic auth must be the configured account and token, and the path's
/// account the configured one.
fn refuse(inner: &Inner, headers: &HeaderMap, account: &str) -> Option<Response> {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| pair == format!("{}:{}", inner.config.account_sid, inner.config.auth_token));
    if !ok {
        return Some(twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
    }
    if account != inner.config.account_sid {
        return Some(twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account} was not found"),
        ));
    }
    None
}

/// `+` then 2 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0'))
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
}

fn call_json(inner: &Inner, call: &SimCall, created: &str) -> Value {
    let account = &inner.config.account_sid;
    let uri = format!("/{API_VERSION}/Accounts/{account}/Calls/{}", call.sid);
    json!({
        "account_sid": account,
        "annotation": null,
        "answered_by": call.answered_by,
        "api_version": API_VERSION,
        "caller_name": null,
        "date_created": created,
        "date_updated": created,
        "direction": "outbound-api",
        "duration": if call.finished { json!(call.duration_secs.to_string()) } else { Value::Null },
        "end_time": null,
        "forwarded_from": null,
        "from": call.from,
        "from_formatted": call.from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": call.sid,
        "start_time": null,
        "status": call.status,
        "subresource_uris": {
            "notifications": format!("{uri}/Notifications.json"),
            "recordings": format!("{uri}/Recordings.json"),
            "payments": format!("{uri}/Payments.json"),
            "events": format!("{uri}/Events.json"),
        },
        "to": call.to,
        "to_formatted": call.to,
        "trunk_sid": null,
        "uri": format!("{uri}.json"),
    })
}

fn message_json(inner: &Inner, m: &SimMessage, created: &str) -> Value {
    let account = &inner.config.account_sid;
    let uri = format!("/{API_VERSION}/Accounts/{account}/Messages/{}", m.sid);
    json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "body": m.body,
        "date_created": created,
        "date_sent": null,
        "date_updated": created,
        "direction": m.direction,
        "error_code": null,
        "error_message": null,
        "from": m.from,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": {"media": format!("{uri}/Media.json")},
        "to": m.to,
        "uri": format!("{uri}.json"),
    })
}

/// What a `Calls.json` request asked for.
struct CallRequest {
    sid: String,
    to: String,
    from: String,
    url: String,
    status_callback: Option<String>,
    status_events: Vec<String>,
    machine_detection: bool,
    record: bool,
    recording_callback: Option<String>,
}

async fn create_call(
    State(inner): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = refuse(&inner, &headers, &account) {
        return r;
    }
    let Some(to) = first(&params, "To") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21201, "No 'To' number is specified");
    };
    let Some(from) = first(&params, "From") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21213, "No 'From' number is specified");
    };
    let Some(url) = first(&params, "Url") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21205, "Url parameter is required");
    };
    if !is_e164(to) {
        return twilio_error(StatusCode::BAD_REQUEST, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    if !is_e164(from) {
        return twilio_error(StatusCode::BAD_REQUEST, 21212, &format!("Invalid 'From' Phone Number: {from}"));
    }
    if reqwest::Url::parse(url).is_err() {
        return twilio_error(StatusCode::BAD_REQUEST, 21205, &format!("Url is not a valid URL: {url}"));
    }
    let request = CallRequest {
        sid: new_sid("CA"),
        to: to.to_string(),
        from: from.to_string(),
        url: url.to_string(),
        status_callback: first(&params, "StatusCallback").map(str::to_string),
        status_events: params
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            // Twilio accepts the events repeated or space-separated in one value.
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect(),
        machine_detection: first(&params, "MachineDetection").is_some(),
        record: first(&params, "Record").is_some_and(|r| r.eq_ignore_ascii_case("true")),
        recording_callback: first(&params, "RecordingStatusCallback").map(str::to_string),
    };
    let call = SimCall {
        sid: request.sid.clone(),
        to: request.to.clone(),
        from: request.from.clone(),
        params: params.clone(),
        callbacks: vec![],
        said: vec![],
        heard: vec![],
        gather_languages: vec![],
        status: "queued".to_string(),
        answered_by: None,
        recording_sid: None,
        duration_secs: 0,
        finished: false,
    };
    let body = call_json(&inner, &call, &now_rfc2822());
    let script = inner.book.lock().unwrap().script_for(to).unwrap_or_else(|| inner.config.default_script.clone());
    inner.records.lock().unwrap().calls.push(call);
    spawn_tracked(&inner, play_call(inner.clone(), request, script));
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn create_message(
    State(inner): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = refuse(&inner, &headers, &account) {
        return r;
    }
    let Some(to) = first(&params, "To") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required.");
    };
    let Some(from) = first(&params, "From") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21603, "A 'From' phone number is required.");
    };
    let Some(body) = first(&params, "Body") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    if !is_e164(to) {
        return twilio_error(StatusCode::BAD_REQUEST, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    if !is_e164(from) {
        return twilio_error(StatusCode::BAD_REQUEST, 21212, &format!("Invalid 'From' Phone Number: {from}"));
    }
    let message = SimMessage {
        sid: new_sid("SM"),
        direction: "outbound-api".to_string(),
        to: to.to_string(),
        from: from.to_string(),
        body: body.to_string(),
        params: params.clone(),
        status: "queued".to_string(),
        callbacks: vec![],
        replies: vec![],
        finished: false,
    };
    let json = message_json(&inner, &message, &now_rfc2822());
    let fails = inner.book.lock().unwrap().script_for(to).unwrap_or_else(|| inner.config.default_script.clone())
        == ClientScript::Fails;
    let callback = first(&params, "StatusCallback").map(str::to_string);
    let sid = message.sid.clone();
    inner.records.lock().unwrap().messages.push(message);
    spawn_tracked(&inner, deliver_message(inner.clone(), sid, callback, fails));
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn fetch_call(
    State(inner): Shared,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse(&inner, &headers, &account) {
        return r;
    }
    let sid = sid.trim_end_matches(".json");
    let call = inner.records.lock().unwrap().calls.iter().find(|c| c.sid == sid).cloned();
    match call {
        Some(c) => Json(call_json(&inner, &c, &now_rfc2822())).into_response(),
        None => twilio_error(StatusCode::NOT_FOUND, 20404, &format!("The requested resource {sid} was not found")),
    }
}

async fn fetch_message(
    State(inner): Shared,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse(&inner, &headers, &account) {
        return r;
    }
    let sid = sid.trim_end_matches(".json");
    let message = inner.records.lock().unwrap().messages.iter().find(|m| m.sid == sid).cloned();
    match message {
        Some(m) => Json(message_json(&inner, &m, &now_rfc2822())).into_response(),
        None => twilio_error(StatusCode::NOT_FOUND, 20404, &format!("The requested resource {sid} was not found")),
    }
}

/// A recording's media (`RecordingUrl` itself: a second of silence as WAV) or, with `.json`, its
/// metadata. Twilio serves media without auth by default, so does the simulator.
async fn fetch_recording(State(inner): Shared, Path((_account, sid)): Path<(String, String)>) -> Response {
    let (id, as_json) = match sid.strip_suffix(".json") {
        Some(id) => (id.to_string(), true),
        None => (sid.trim_end_matches(".wav").trim_end_matches(".mp3").to_string(), false),
    };
    let call = inner.records.lock().unwrap().calls.iter().find(|c| c.recording_sid.as_deref() == Some(&id)).cloned();
    let Some(call) = call else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, &format!("The requested resource {id} was not found"));
    };
    if as_json {
        return Json(json!({
            "account_sid": inner.config.account_sid,
            "api_version": API_VERSION,
            "call_sid": call.sid,
            "channels": 1,
            "duration": call.duration_secs.to_string(),
            "sid": id,
            "source": "DialVerb",
            "status": "completed",
        }))
        .into_response();
    }
    ([(header::CONTENT_TYPE, "audio/x-wav")], silent_wav()).into_response()
}

/// One second of 8 kHz 8-bit mono silence.
fn silent_wav() -> Vec<u8> {
    let samples = 8_000u32;
    let mut wav = Vec::with_capacity(44 + samples as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8_000u32.to_le_bytes());
    wav.extend_from_slice(&8_000u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&samples.to_le_bytes());
    wav.resize(44 + samples as usize, 128);
    wav
}

async fn sim_calls(State(inner): Shared) -> Json<Vec<SimCall>> {
    Json(inner.records.lock().unwrap().calls.clone())
}

async fn sim_messages(State(inner): Shared) -> Json<Vec<SimMessage>> {
    Json(inner.records.lock().unwrap().messages.clone())
}

async fn sim_inbound(State(inner): Shared) -> Json<Vec<SimMessage>> {
    Json(inner.records.lock().unwrap().inbound.clone())
}

#[derive(Deserialize)]
struct SmsTrigger {
    from: String,
    to: String,
    body: String,
}

async fn sim_sms(State(inner): Shared, Json(t): Json<SmsTrigger>) -> Response {
    match send_sms(&inner, &t.from, &t.to, &t.body).await {
        Ok((status, body)) => Json(json!({"status": status, "body": body})).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

fn spawn_tracked<F>(inner: &Arc<Inner>, work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    inner.active.fetch_add(1, Ordering::SeqCst);
    let guard = ActiveGuard(inner.clone());
    let handle = tokio::spawn(async move {
        let _guard = guard;
        work.await;
    });
    let mut tasks = inner.tasks.lock().unwrap();
    tasks.retain(|t| !t.is_finished());
    tasks.push(handle);
}

impl Inner {
    fn with_call<T>(&self, sid: &str, f: impl FnOnce(&mut SimCall) -> T) -> Option<T> {
        self.records.lock().unwrap().calls.iter_mut().find(|c| c.sid == sid).map(f)
    }

    fn with_message<T>(&self, sid: &str, f: impl FnOnce(&mut SimMessage) -> T) -> Option<T> {
        self.records.lock().unwrap().messages.iter_mut().find(|m| m.sid == sid).map(f)
    }

    /// Posts `params` form-encoded to `url`, signed with `X-Twilio-Signature` over the exact URL
    /// and the sorted parameters.
    async fn post_signed(&self, kind: CallbackKind, url: &str, params: Vec<(String, String)>) -> SimCallback {
        let signature = arflow_runtime::signature::twilio_signature(&self.config.auth_token, url, &params);
        let sent = self
            .http
            .post(url)
            .header("X-Twilio-Signature", signature)
            .header(header::ACCEPT, "*/*")
            .form(&params)
            .send()
            .await;
        let (status, body) = match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                (Some(status), r.text().await.unwrap_or_default())
            }
            Err(e) => (None, e.to_string()),
        };
        SimCallback { kind, url: url.to_string(), params, status, body }
    }
}

fn ok(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..300).contains(&s))
}

/// One call's playback, from `initiated` to the final status.
struct Playback {
    inner: Arc<Inner>,
    req: CallRequest,
    sequence: u32,
    answered_by: Option<String>,
    seconds: u32,
}

impl Playback {
    fn base_params(&self, call_status: &str) -> Vec<(String, String)> {
        let mut p = vec![
            ("CallSid".to_string(), self.req.sid.clone()),
            ("AccountSid".to_string(), self.inner.config.account_sid.clone()),
            ("From".to_string(), self.req.from.clone()),
            ("To".to_string(), self.req.to.clone()),
            ("CallStatus".to_string(), call_status.to_string()),
            ("Direction".to_string(), "outbound-api".to_string()),
            ("ApiVersion".to_string(), API_VERSION.to_string()),
        ];
        if let Some(a) = &self.answered_by {
            p.push(("AnsweredBy".to_string(), a.clone()));
        }
        p
    }

    fn set_status(&self, status: &str) {
        self.inner.with_call(&self.req.sid, |c| c.status = status.to_string());
    }

    async fn record(&self, cb: SimCallback) -> SimCallback {
        self.inner.with_call(&self.req.sid, |c| c.callbacks.push(cb.clone()));
        cb
    }

    /// A status callback: `event` is Twilio's event name (`initiated`, `ringing`, `answered`,
    /// `completed`), `call_status` the `CallStatus` it carries. Progress events go only when asked
    /// for in `StatusCallbackEvent`; the final one always (when there is a `StatusCallback`).
    async fn status(&mut self, event: &str, call_status: &str) {
        self.set_status(call_status);
        let Some(url) = self.req.status_callback.clone() else { return };
        if event != "completed" && !self.req.status_events.iter().any(|e| e == event) {
            return;
        }
        let mut params = self.base_params(call_status);
        params.push(("CallbackSource".to_string(), "call-progress-events".to_string()));
        params.push(("SequenceNumber".to_string(), self.sequence.to_string()));
        params.push(("Timestamp".to_string(), now_rfc2822()));
        if event == "completed" {
            params.push(("CallDuration".to_string(), self.seconds.to_string()));
            params.push(("Duration".to_string(), self.seconds.div_ceil(60).to_string()));
        }
        self.sequence += 1;
        let cb = self.inner.post_signed(CallbackKind::Status, &url, params).await;
        self.record(cb).await;
    }

    /// Posts to a TwiML URL; the verbs of the answer, or `None` when the call must end
    /// (non-2xx, no answer, or TwiML that does not parse: Twilio plays an application error).
    async fn fetch_twiml(&self, kind: CallbackKind, url: &str, extra: &[(&str, &str)]) -> Option<Vec<Verb>> {
        let mut params = self.base_params("in-progress");
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cb = self.record(self.inner.post_signed(kind, url, params).await).await;
        if !ok(cb.status) {
            return None;
        }
        match parse_twiml(&cb.body) {
            Ok(verbs) => Some(verbs),
            Err(e) => {
                tracing::warn!(call_sid = %self.req.sid, error = %e, "telephony sim: unparsable TwiML, hanging up");
                None
            }
        }
    }

    /// Runs the TwiML from the answer webhook on, answering gathers from `utterances`.
    async fn converse(&mut self, mut utterances: std::collections::VecDeque<String>) {
        let answer_url = self.req.url.clone();
        let Some(mut verbs) = self.fetch_twiml(CallbackKind::Answer, &answer_url, &[]).await else { return };
        let mut doc_url = answer_url;
        let mut round_trips = 1;
        let mut i = 0;
        while i < verbs.len() {
            let verb = verbs[i].clone();
            i += 1;
            let next = match verb {
                Verb::Say(text) => {
                    self.seconds += speech_secs(&text).max(1);
                    self.inner.with_call(&self.req.sid, |c| c.said.push(text));
                    continue;
                }
                Verb::Pause(length) => {
                    self.seconds += length;
                    continue;
                }
                Verb::Hangup => return,
                Verb::Gather { action, action_on_empty, language, says } => {
                    self.inner.with_call(&self.req.sid, |c| c.gather_languages.push(language));
                    for text in says {
                        self.seconds += speech_secs(&text).max(1);
                        self.inner.with_call(&self.req.sid, |c| c.said.push(text));
                    }
                    let speech = match utterances.pop_front() {
                        Some(u) => u,
                        None if action_on_empty => String::new(),
                        None => {
                            self.seconds += 5; // the gather's timeout
                            continue;
                        }
                    };
                    self.seconds += speech_secs(&speech) + 2;
                    if !speech.is_empty() {
                        let heard = speech.clone();
                        self.inner.with_call(&self.req.sid, |c| c.heard.push(heard));
                    }
                    let url = resolve(&doc_url, action.as_deref());
                    (CallbackKind::Gather, url, vec![("SpeechResult", speech), ("Confidence", CONFIDENCE.to_string())])
                }
                Verb::Redirect(target) => (CallbackKind::Redirect, resolve(&doc_url, Some(&target)), vec![]),
            };
            if round_trips >= MAX_ROUND_TRIPS {
                tracing::warn!(call_sid = %self.req.sid, "telephony sim: {MAX_ROUND_TRIPS} webhook round trips, hanging up");
                return;
            }
            round_trips += 1;
            let (kind, url, extra) = next;
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let Some(new_verbs) = self.fetch_twiml(kind, &url, &extra).await else { return };
            verbs = new_verbs;
            doc_url = url;
            i = 0;
        }
    }

    async fn recording(&mut self) {
        if !self.req.record {
            return;
        }
        let sid = new_sid("RE");
        self.inner.with_call(&self.req.sid, |c| c.recording_sid = Some(sid.clone()));
        let Some(url) = self.req.recording_callback.clone() else { return };
        let account = &self.inner.config.account_sid;
        let params = vec![
            ("AccountSid".to_string(), account.clone()),
            ("CallSid".to_string(), self.req.sid.clone()),
            ("RecordingSid".to_string(), sid.clone()),
            (
                "RecordingUrl".to_string(),
                format!("{}/{API_VERSION}/Accounts/{account}/Recordings/{sid}", self.inner.base_url),
            ),
            ("RecordingStatus".to_string(), "completed".to_string()),
            ("RecordingDuration".to_string(), self.seconds.to_string()),
            ("RecordingChannels".to_string(), "1".to_string()),
            ("RecordingStartTime".to_string(), now_rfc2822()),
            ("RecordingSource".to_string(), "DialVerb".to_string()),
        ];
        let cb = self.inner.post_signed(CallbackKind::Recording, &url, params).await;
        self.record(cb).await;
    }
}

/// Seconds to speak `text`: 0.4 s a word, rounded up.
fn speech_secs(text: &str) -> u32 {
    let words = text.split_whitespace().count() as u32;
    (words * 2).div_ceil(5)
}

/// `target` resolved against the current document's URL (Twilio resolves relative URLs so);
/// no target: the document's own URL.
fn resolve(doc_url: &str, target: Option<&str>) -> String {
    match target.map(str::trim).filter(|t| !t.is_empty()) {
        None => doc_url.to_string(),
        Some(t) => reqwest::Url::parse(doc_url).and_then(|base| base.join(t)).map_or(t.to_string(), |u| u.to_string()),
    }
}

async fn play_call(inner: Arc<Inner>, req: CallRequest, script: ClientScript) {
    let mut p = Playback { inner, req, sequence: 0, answered_by: None, seconds: 0 };
    p.status("initiated", "initiated").await;
    let final_status = match script {
        ClientScript::Fails => "failed",
        ClientScript::Busy => {
            p.status("ringing", "ringing").await;
            "busy"
        }
        ClientScript::NoAnswer => {
            p.status("ringing", "ringing").await;
            "no-answer"
        }
        ClientScript::Voicemail | ClientScript::Answer { .. } => {
            p.status("ringing", "ringing").await;
            let (by, utterances) = match script {
                ClientScript::Answer { utterances, .. } => ("human", utterances),
                _ => ("machine_end_beep", vec![]),
            };
            if p.req.machine_detection {
                p.answered_by = Some(by.to_string());
            }
            let answered_by = Some(by.to_string());
            p.inner.with_call(&p.req.sid, |c| c.answered_by = answered_by);
            p.status("answered", "in-progress").await;
            p.converse(utterances.into()).await;
            p.recording().await;
            "completed"
        }
    };
    let seconds = p.seconds;
    p.inner.with_call(&p.req.sid, |c| c.duration_secs = seconds);
    p.status("completed", final_status).await;
    p.inner.with_call(&p.req.sid, |c| c.finished = true);
}

async fn deliver_message(inner: Arc<Inner>, sid: String, callback: Option<String>, fails: bool) {
    let statuses: &[&str] = if fails { &["failed"] } else { &["sent", "delivered"] };
    for status in statuses {
        inner.with_message(&sid, |m| m.status = status.to_string());
        let Some(url) = &callback else { continue };
        let Some(m) = inner.with_message(&sid, |m| m.clone()) else { return };
        let mut params = vec![
            ("MessageSid".to_string(), sid.clone()),
            ("SmsSid".to_string(), sid.clone()),
            ("AccountSid".to_string(), inner.config.account_sid.clone()),
            ("From".to_string(), m.from.clone()),
            ("To".to_string(), m.to.clone()),
            ("MessageStatus".to_string(), status.to_string()),
            ("SmsStatus".to_string(), status.to_string()),
            ("ApiVersion".to_string(), API_VERSION.to_string()),
        ];
        if fails {
            // Twilio's "Unknown error" for a text the carrier could not take.
            params.push(("ErrorCode".to_string(), "30008".to_string()));
        }
        let cb = inner.post_signed(CallbackKind::Status, url, params).await;
        inner.with_message(&sid, |m| m.callbacks.push(cb));
    }
    inner.with_message(&sid, |m| m.finished = true);
}

async fn send_sms(inner: &Arc<Inner>, from: &str, to: &str, body: &str) -> Result<(u16, String), SimError> {
    let url = inner.config.sms_webhook_url.clone().ok_or(SimError::NoSmsWebhook)?;
    let sid = new_sid("SM");
    let account = inner.config.account_sid.clone();
    let params: Vec<(String, String)> = [
        ("ToCountry", "US"),
        ("SmsMessageSid", &sid),
        ("NumMedia", "0"),
        ("SmsSid", &sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", to),
        ("NumSegments", "1"),
        ("MessageSid", &sid),
        ("AccountSid", &account),
        ("From", from),
        ("ApiVersion", API_VERSION),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let message = SimMessage {
        sid: sid.clone(),
        direction: "inbound".to_string(),
        to: to.to_string(),
        from: from.to_string(),
        body: body.to_string(),
        params: vec![],
        status: "received".to_string(),
        callbacks: vec![],
        replies: vec![],
        finished: false,
    };
    inner.records.lock().unwrap().inbound.push(message);
    let cb = inner.post_signed(CallbackKind::InboundSms, &url, params).await;
    let replies = if ok(cb.status) { message_replies(&cb.body) } else { vec![] };
    let result = cb.status.map(|s| (s, cb.body.clone())).ok_or_else(|| SimError::Post { url, reason: cb.body.clone() });
    if let Some(m) = inner.records.lock().unwrap().inbound.iter_mut().find(|m| m.sid == sid) {
        m.callbacks.push(cb);
        m.replies = replies;
        m.finished = true;
    }
    result
}

/// A TwiML verb the simulator acts on (others are skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Say(String),
    Pause(u32),
    Gather { action: Option<String>, action_on_empty: bool, language: Option<String>, says: Vec<String> },
    Redirect(String),
    Hangup,
}

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        self.text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// A TwiML document that is not well-formed or has no `<Response>`.
#[derive(Debug, thiserror::Error)]
#[error("invalid TwiML: {0}")]
pub struct TwimlError(String);

fn element(e: &quick_xml::events::BytesStart<'_>) -> Result<Node, TwimlError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = vec![];
    for a in e.attributes() {
        let a = a.map_err(|err| TwimlError(err.to_string()))?;
        let raw = String::from_utf8_lossy(&a.value).into_owned();
        let value = quick_xml::escape::unescape(&raw).map_err(|err| TwimlError(err.to_string()))?.into_owned();
        attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), value));
    }
    Ok(Node { name, attrs, ..Node::default() })
}

fn parse_tree(xml: &str) -> Result<Node, TwimlError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    let err = |e: &dyn std::fmt::Display| TwimlError(e.to_string());
    loop {
        let event = reader.read_event().map_err(|e| err(&e))?;
        let top = stack.len() - 1;
        match event {
            Event::Start(e) => stack.push(element(&e)?),
            Event::Empty(e) => {
                let node = element(&e)?;
                stack[top].children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| TwimlError("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Err(TwimlError("unbalanced end tag".into())),
                }
            }
            Event::Text(t) => stack[top].text.push_str(&t.decode().map_err(|e| err(&e))?),
            Event::CData(t) => stack[top].text.push_str(&t.decode().map_err(|e| err(&e))?),
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| err(&e))?;
                let text = quick_xml::escape::unescape(&format!("&{name};")).map_err(|e| err(&e))?.into_owned();
                stack[top].text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(TwimlError("unclosed element".into()));
    }
    Ok(stack.remove(0))
}

/// The verbs of a TwiML `<Response>`, in order.
pub fn parse_twiml(xml: &str) -> Result<Vec<Verb>, TwimlError> {
    let root = parse_tree(xml)?;
    let response = root
        .children
        .into_iter()
        .find(|n| n.name == "Response")
        .ok_or_else(|| TwimlError("no <Response> element".into()))?;
    let pause = |n: &Node| n.attr("length").and_then(|l| l.trim().parse().ok()).unwrap_or(1);
    Ok(response
        .children
        .iter()
        .filter_map(|n| match n.name.as_str() {
            "Say" => Some(Verb::Say(n.text())),
            "Pause" => Some(Verb::Pause(pause(n))),
            "Hangup" | "Reject" => Some(Verb::Hangup),
            "Redirect" => Some(Verb::Redirect(n.text())),
            "Gather" => Some(Verb::Gather {
                action: n.attr("action").map(str::to_string),
                action_on_empty: n.attr("actionOnEmptyResult").is_some_and(|v| v.eq_ignore_ascii_case("true")),
                language: n.attr("language").map(str::to_string),
                says: n.children.iter().filter(|c| c.name == "Say").map(Node::text).collect(),
            }),
            _ => None,
        })
        .collect())
}

/// The `<Message>` texts of an SMS webhook's TwiML answer (empty when it has none or is not TwiML).
pub fn message_replies(xml: &str) -> Vec<String> {
    let Ok(root) = parse_tree(xml) else { return vec![] };
    root.children
        .iter()
        .filter(|n| n.name == "Response")
        .flat_map(|r| r.children.iter())
        .filter(|n| n.name == "Message")
        .map(|n| {
            // `<Message><Body>..</Body></Message>` or the text directly.
            n.children.iter().find(|c| c.name == "Body").map_or_else(|| n.text(), Node::text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_parses_the_verbs_the_voice_service_sends() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <Response>
              <Say voice="Polly.Joanna" language="en-US">Hello &amp; welcome, invoice &#35;42.</Say>
              <Pause length="2"/>
              <Gather input="speech" action="https://gw.test/webhooks/telephony/voice/c1/gather?turn=1&amp;x=y"
                      method="POST" speechTimeout="auto" language="en-US" actionOnEmptyResult="true">
                <Say>When can you
                   pay?</Say>
              </Gather>
              <Redirect method="POST">/next</Redirect>
              <Play>https://example.test/a.mp3</Play>
              <Hangup/>
            </Response>"#;
        assert_eq!(
            parse_twiml(xml).unwrap(),
            vec![
                Verb::Say("Hello & welcome, invoice #42.".into()),
                Verb::Pause(2),
                Verb::Gather {
                    action: Some("https://gw.test/webhooks/telephony/voice/c1/gather?turn=1&x=y".into()),
                    action_on_empty: true,
                    language: Some("en-US".into()),
                    says: vec!["When can you pay?".into()],
                },
                Verb::Redirect("/next".into()),
                Verb::Hangup,
            ]
        );
        assert_eq!(parse_twiml("<Response/>").unwrap(), vec![]);
        assert!(parse_twiml("<Response><Say>x</Response>").is_err());
        assert!(parse_twiml("not xml at all").is_err());
        assert_eq!(
            message_replies("<Response><Message>Reply HELP for help</Message></Response>"),
            vec!["Reply HELP for help".to_string()]
        );
        assert!(message_replies("<Response/>").is_empty());
    }

    #[test]
    fn relative_urls_resolve_against_the_document() {
        assert_eq!(resolve("https://gw.test/a/b/answer?x=1", Some("/c/gather")), "https://gw.test/c/gather");
        assert_eq!(resolve("https://gw.test/a/b/answer", Some("gather?turn=2")), "https://gw.test/a/b/gather?turn=2");
        assert_eq!(resolve("https://gw.test/a", None), "https://gw.test/a");
    }

    #[test]
    fn the_demo_book_chooses_the_persona_by_the_last_digit() {
        let book = ScriptBook::demo();
        assert_eq!(book.script_for("+15005550100"), Some(ClientScript::promises("on Friday")));
        assert_eq!(book.script_for("+15005550102"), Some(ClientScript::disputes()));
        assert_eq!(book.script_for("+15005550103"), Some(ClientScript::stop_calling()));
        assert_eq!(book.script_for("+15005550104"), Some(ClientScript::asks_for_person()));
        assert_eq!(book.script_for("+15005550105"), Some(ClientScript::spanish()));
        assert_eq!(book.script_for("+15005550106"), Some(ClientScript::Voicemail));
        assert_eq!(book.script_for("+15005550107"), Some(ClientScript::NoAnswer));
        assert_eq!(book.script_for("+15005550108"), Some(ClientScript::Busy));
        assert_eq!(book.script_for("+15005550109"), Some(ClientScript::silent()));
        assert_eq!(ScriptBook::new().script_for("+15005550109"), None);
        let mut book = ScriptBook::demo();
        book.set("+15005550109", ClientScript::Fails);
        assert_eq!(book.script_for("+15005550109"), Some(ClientScript::Fails));
    }

    #[test]
    fn personas_say_their_lines() {
        let line = |s: ClientScript| match s {
            ClientScript::Answer { utterances, language } => (utterances, language),
            other => panic!("{other:?} does not answer"),
        };
        assert_eq!(line(ClientScript::promises("on Friday")).0, vec!["I can pay it on Friday"]);
        assert_eq!(
            line(ClientScript::spanish()),
            (vec!["Lo siento, pagaré la factura el viernes".into()], "es-US".into())
        );
        assert_eq!(line(ClientScript::silent()).0, Vec::<String>::new());
    }

    #[test]
    fn e164_and_sids() {
        assert!(is_e164("+15005550006"));
        assert!(!is_e164("5005550006"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1 500 555"));
        let sid = new_sid("CA");
        assert_eq!(sid.len(), 34);
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
