//! The test harness: everything a test needs, real and fresh for each test.
//! Dev-only: panics (`expect`) here are test failures with a message.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod db;
pub mod idle;
pub mod nats;
pub mod openapi;
pub mod smtp;
pub mod standard_webhooks;
pub mod stripe;
pub mod telephony;

pub use db::TestDb;
pub use nats::{NatsUser, TestNats};

/// The repository root (for `.tools/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// A port for a test server, reserved for this test process.
///
/// Asking the kernel for port 0 returns a port from the ephemeral range, which any outgoing
/// connection of any process (hundreds of them while tests run in parallel) may take as its
/// source port before the server binds it: CI once saw `AddrInUse` that way. So ports come
/// from below the ephemeral range (32768+ on Linux), and each is reserved across the parallel
/// test processes by an exclusive lock on a file named after it, held until the process exits.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let dir = std::env::temp_dir().join("arflow-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock folder");
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let start = (std::process::id().wrapping_mul(7_919) ^ nanos) % SPAN;
    for i in 0..SPAN {
        let port = u16::try_from(FIRST + (start + i * 7) % SPAN).expect("port");
        let Ok(file) = std::fs::File::create(dir.join(port.to_string())) else { continue };
        if file.try_lock().is_err() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock().expect("port locks").push(file);
        return port;
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// Polls `check` every 50 ms until it returns `Some`, failing the test after `within`: for
/// "eventually" waits on real components, never for timing assertions.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
