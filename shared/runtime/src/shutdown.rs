//! One cancellation token per process: SIGTERM/SIGINT cancel it, every loop
//! stops fetching new work, finishes what is in flight, then returns.
use tokio_util::sync::CancellationToken;

pub type Shutdown = CancellationToken;

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn on_signals() -> Shutdown {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received: draining in-flight work");
        t.cancel();
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A background task that lives exactly as long as its owner: aborted when the guard is
/// dropped (the owner returned, or was itself aborted like a crash in tests), so a heartbeat
/// can never outlive the work it vouches for.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    pub fn spawn<F>(task: F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        AbortOnDrop(tokio::spawn(task))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
