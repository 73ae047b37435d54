//! The test harness: everything a test needs, real and fresh for each test.
//! Dev-only: panics (`expect`) here are test failures with a message.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod db;
pub mod idle;
pub mod nats;
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

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 0").local_addr().expect("addr").port()
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
