//! A TCP proxy between the services and NATS: every byte passes through it, so the suite can
//! slow the network (a delay on every chunk, in both directions, order kept) and cut every open
//! connection at once (a reset; the clients reconnect through it).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    /// Bumped to cut every connection open at that moment.
    resets: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream_port: u16) -> Self {
        let port = arflow_testkit::free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the NATS proxy");
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (resets, _) = watch::channel(0u64);
        let (d, r) = (delay_ms.clone(), resets.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let (d, mut reset) = (d.clone(), r.subscribe());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    reset.mark_unchanged();
                    tokio::select! {
                        _ = pump(cr, sw, d.clone()) => {}
                        _ = pump(sr, cw, d) => {}
                        _ = reset.changed() => {}
                    }
                    // Dropping both halves closes both sockets: the client sees the connection cut.
                });
            }
        });
        Proxy { port, delay_ms, resets, task }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Every chunk waits `ms` before it is passed on (0: no delay).
    pub fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Cuts every connection open now.
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let ms = delay.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
