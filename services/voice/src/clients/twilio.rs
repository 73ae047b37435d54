//! Twilio's REST API 2010-04-01 over reqwest: `Calls.json` and `Messages.json`, form-encoded,
//! HTTP Basic auth (AccountSid:AuthToken). The token is a `SecretString` and appears in no log,
//! error or event.
use super::{CallRequest, MessageRequest, ProviderCall, ProviderError, ProviderFuture, ProviderMessage, Telephony};
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
        let message = parsed.as_ref().map(|b| b.message.clone()).unwrap_or_else(|| format!("HTTP {status}"));
        let code = parsed.and_then(|b| b.code);
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(ProviderError::Permanent { status: status.as_u16(), code, message })
        } else {
            Err(ProviderError::Transient(format!("HTTP {}: {message}", status.as_u16())))
        }
    }
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
