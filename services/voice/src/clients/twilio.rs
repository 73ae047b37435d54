//! Twilio's REST API 2010-04-01 over reqwest: `Calls.json` and `Messages.json`, form-encoded,
//! HTTP Basic auth (AccountSid:AuthToken). The token is a `SecretString` and appears in no log,
//! error or event.
use super::{
    CallRequest, FetchedCall, MessageRequest, ProviderCall, ProviderError, ProviderFuture, ProviderMessage, Telephony,
};
use arflow_runtime::TelephonySettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

pub struct TwilioClient {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: SecretString,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
    #[serde(default)]
    status: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

impl TwilioClient {
    pub fn new(settings: &TelephonySettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .connect_timeout(Duration::from_secs(settings.request_timeout_secs.min(5)))
            .build()?;
        Ok(TwilioClient {
            http,
            api_base: settings.api_base.trim_end_matches('/').to_string(),
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
        })
    }

    fn url(&self, resource: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/{resource}", self.api_base, self.account_sid)
    }

    async fn post(&self, resource: &str, form: &[(&str, String)]) -> Result<Created, ProviderError> {
        let response = self
            .http
            .post(self.url(resource))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(form)
            .send()
            .await
            // Without the URL: reqwest's errors name it, and it holds nothing secret, but keep it short.
            .map_err(|e| ProviderError::Transient(describe(e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ProviderError::Transient(describe(e)))?;
        if status.is_success() {
            return serde_json::from_slice::<Created>(&body)
                .map_err(|e| ProviderError::Transient(format!("unreadable {resource} answer: {e}")));
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        // Twilio names the number in its messages ("The 'To' number +1415... is not a valid
        // phone number."); the error is logged and published, so the number is masked.
        let message = parsed.as_ref().map(|b| mask_numbers(&b.message)).unwrap_or_else(|| format!("HTTP {status}"));
        let code = parsed.and_then(|b| b.code);
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(ProviderError::Permanent { status: status.as_u16(), code, message })
        } else {
            Err(ProviderError::Transient(format!("HTTP {}: {message}", status.as_u16())))
        }
    }
}

/// `text` with every phone-number-like run (7 or more digits, a leading `+` kept with it)
/// masked like `arflow_core::mask::phone`.
pub fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if digits >= 7 {
            out.push_str(&arflow_core::mask::phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A reqwest error in words, without its URL.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let inner = e.without_url().to_string();
    format!("{kind}: {inner}")
}

/// The form of a `Calls.json` request (exact Twilio parameter names).
pub fn call_form(r: &CallRequest) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("To", r.to.clone()),
        ("From", r.from.clone()),
        ("Url", r.answer_url.clone()),
        ("Method", "POST".into()),
        ("StatusCallback", r.status_url.clone()),
        ("StatusCallbackMethod", "POST".into()),
    ];
    for event in ["initiated", "ringing", "answered", "completed"] {
        form.push(("StatusCallbackEvent", event.into()));
    }
    form.push(("MachineDetection", "DetectMessageEnd".into()));
    form.push(("Timeout", r.ring_timeout_secs.to_string()));
    if let Some(url) = &r.recording_url {
        form.push(("Record", "true".into()));
        form.push(("RecordingStatusCallback", url.clone()));
        form.push(("RecordingStatusCallbackMethod", "POST".into()));
    }
    form
}

/// The form of a `Messages.json` request.
pub fn message_form(r: &MessageRequest) -> Vec<(&'static str, String)> {
    vec![
        ("To", r.to.clone()),
        ("From", r.from.clone()),
        ("Body", r.body.clone()),
        ("StatusCallback", r.status_url.clone()),
    ]
}

impl Telephony for TwilioClient {
    fn create_call(&self, request: CallRequest) -> ProviderFuture<'_, ProviderCall> {
        Box::pin(async move {
            let created = self.post("Calls.json", &call_form(&request)).await?;
            Ok(ProviderCall { sid: created.sid, status: created.status })
        })
    }

    fn send_message(&self, request: MessageRequest) -> ProviderFuture<'_, ProviderMessage> {
        Box::pin(async move {
            let created = self.post("Messages.json", &message_form(&request)).await?;
            Ok(ProviderMessage { sid: created.sid, status: created.status })
        })
    }

    fn fetch_call<'a>(&'a self, sid: &'a str) -> ProviderFuture<'a, FetchedCall> {
        Box::pin(async move {
            let response = self
                .http
                .get(self.url(&format!("Calls/{sid}.json")))
                .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
                .send()
                .await
                .map_err(|e| ProviderError::Transient(describe(e)))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| ProviderError::Transient(describe(e)))?;
            if !status.is_success() {
                let message = serde_json::from_slice::<ErrorBody>(&body)
                    .map(|b| mask_numbers(&b.message))
                    .unwrap_or_else(|_| format!("HTTP {status}"));
                return Err(if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                    ProviderError::Permanent { status: status.as_u16(), code: None, message }
                } else {
                    ProviderError::Transient(format!("HTTP {}: {message}", status.as_u16()))
                });
            }
            let call: Fetched = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Transient(format!("unreadable call answer: {e}")))?;
            Ok(FetchedCall {
                status: call.status,
                answered_by: call.answered_by.filter(|a| !a.is_empty()),
                // Twilio sends the duration as a string of seconds (null while the call goes on).
                duration_secs: call.duration.and_then(|d| d.parse().ok()),
            })
        })
    }
}

#[derive(Debug, Deserialize)]
struct Fetched {
    #[serde(default)]
    status: String,
    #[serde(default)]
    answered_by: Option<String>,
    #[serde(default)]
    duration: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_form_has_the_documented_parameters() {
        let r = CallRequest {
            to: "+14155552671".into(),
            from: "+12025550100".into(),
            answer_url: "https://gw/webhooks/telephony/voice/x/answer".into(),
            status_url: "https://gw/webhooks/telephony/voice/x/status".into(),
            recording_url: Some("https://gw/webhooks/telephony/voice/x/recording".into()),
            ring_timeout_secs: 25,
        };
        let form = call_form(&r);
        let events: Vec<&str> =
            form.iter().filter(|(k, _)| *k == "StatusCallbackEvent").map(|(_, v)| v.as_str()).collect();
        assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
        for key in [
            "To",
            "From",
            "Url",
            "Method",
            "StatusCallback",
            "StatusCallbackMethod",
            "MachineDetection",
            "Timeout",
            "Record",
            "RecordingStatusCallback",
            "RecordingStatusCallbackMethod",
        ] {
            assert!(form.iter().any(|(k, _)| *k == key), "{key}");
        }
        let no_rec = call_form(&CallRequest { recording_url: None, ..r });
        assert!(!no_rec.iter().any(|(k, _)| *k == "Record"));
    }

    #[tokio::test]
    async fn a_refusal_naming_the_number_is_masked() {
        let app = axum::Router::new().fallback(|| async {
            let body = serde_json::json!({"code": 21211, "message": "The 'To' number +14155552671 is not a valid phone number.", "status": 400});
            (axum::http::StatusCode::BAD_REQUEST, axum::Json(body))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let settings = TelephonySettings {
            api_base: format!("http://127.0.0.1:{port}"),
            account_sid: "AC123".into(),
            auth_token: "super-secret-token".to_string().into(),
            from_number: "+12025550100".into(),
            callback_base_url: "http://127.0.0.1:8080".into(),
            ring_timeout_secs: 25,
            request_timeout_secs: 5,
        };
        let request = CallRequest {
            to: "+14155552671".into(),
            from: "+12025550100".into(),
            answer_url: "http://gw/answer".into(),
            status_url: "http://gw/status".into(),
            recording_url: None,
            ring_timeout_secs: 25,
        };
        let err = TwilioClient::new(&settings).unwrap().create_call(request).await.unwrap_err();
        let said = err.to_string();
        assert!(err.is_permanent());
        assert!(!said.contains("4155552671"), "{said}");
        assert!(said.contains("+1******2671") && said.contains("21211"), "{said}");
        assert_eq!(
            mask_numbers("call 555-0100 or 14155552671, code 21211"),
            "call 555-0100 or 14*****2671, code 21211"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let settings = TelephonySettings {
            api_base: "http://127.0.0.1:1".into(),
            account_sid: "AC123".into(),
            auth_token: "super-secret-token".to_string().into(),
            from_number: "+12025550100".into(),
            callback_base_url: "http://127.0.0.1:8080".into(),
            ring_timeout_secs: 25,
            request_timeout_secs: 1,
        };
        let c = TwilioClient::new(&settings).unwrap();
        assert!(!format!("{c:?}").contains("super-secret"));
    }
}
