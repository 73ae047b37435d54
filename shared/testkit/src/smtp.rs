//! SMTP sink: a real SMTP server (`mailin-embedded`) in-process on a free port, which the
//! email service talks to with lettre. It keeps every message it accepts and can be told
//! to refuse the next N messages with a temporary (451) or permanent (554) failure.
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// `MAIL FROM` (envelope sender).
    pub from: String,
    /// `RCPT TO` (envelope recipients).
    pub to: Vec<String>,
    /// The message exactly as transmitted after `DATA` (dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
    /// Unfolded headers, in order, as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

impl ReceivedMail {
    /// The first header of that name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn subject(&self) -> Option<&str> {
        self.header("Subject")
    }

    pub fn step_id(&self) -> Option<&str> {
        self.header("X-Arflow-Step")
    }

    pub fn list_unsubscribe(&self) -> Option<&str> {
        self.header("List-Unsubscribe")
    }

    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The whole message with quoted-printable soft breaks and `=XX` escapes decoded: good
    /// enough to look for text in the bodies, whatever transfer encoding lettre picked.
    pub fn text(&self) -> String {
        let raw = self.raw().replace("=\r\n", "");
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&raw[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMail>,
    /// Refuse this many upcoming messages...
    fail_next: usize,
    /// ...with 554 (true) or 451 (false).
    permanent: bool,
    refused: usize,
    /// How long each accepted message waits before the server answers it (a slow server).
    answer_delay: std::time::Duration,
}

/// One SMTP session (mailin clones the handler per connection).
#[derive(Clone)]
struct Session {
    state: Arc<Mutex<State>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Session {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        // Refusing DATA (rather than after it) means the refused message was never taken.
        let mut state = self.state.lock().unwrap();
        if state.fail_next > 0 {
            state.fail_next -= 1;
            state.refused += 1;
            return if state.permanent {
                Response::custom(554, "5.7.1 Message refused (arflow sink: permanent failure)".into())
            } else {
                Response::custom(451, "4.3.0 Try again later (arflow sink: temporary failure)".into())
            };
        }
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let delay = self.state.lock().unwrap().answer_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let data = std::mem::take(&mut self.data);
        let mail = ReceivedMail {
            from: self.from.clone(),
            to: std::mem::take(&mut self.to),
            headers: parse_headers(&data),
            data,
        };
        self.state.lock().unwrap().messages.push(mail);
        response::OK
    }
}

fn parse_headers(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous header.
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

/// A running sink. The server thread lives until the test process ends (it only listens
/// on its own free port).
pub struct SmtpSink {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind SMTP sink");
        let port = listener.local_addr().expect("sink addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let handler = Session { state: state.clone(), from: String::new(), to: vec![], data: vec![] };
        let mut server = Server::new(handler);
        server.with_name("sink.arflow.test").with_num_threads(16).with_tcp_listener(listener);
        server.with_ssl(SslConfig::None).expect("sink without TLS");
        std::thread::Builder::new()
            .name(format!("smtp-sink-{port}"))
            .spawn(move || {
                let _ = server.serve();
            })
            .expect("spawn SMTP sink");
        SmtpSink { port, state }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().messages.len()
    }

    /// Makes the server wait `delay` before answering each message body (a slow server).
    pub fn answer_after(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().answer_delay = delay;
    }

    /// Messages refused so far by `fail_next`.
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// Refuse the next `n` messages: 554 when `permanent`, else 451.
    pub fn fail_next(&self, n: usize, permanent: bool) {
        let mut state = self.state.lock().unwrap();
        state.fail_next = n;
        state.permanent = permanent;
    }

    /// Waits until at least `n` messages arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(Instant::now() < deadline, "SMTP sink got {} of {n} messages in {timeout:?}", messages.len());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
