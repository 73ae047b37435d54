//! One stack for one run: its own nats-server (behind the proxy), a database on the suite's
//! PostgreSQL cluster, an SMTP sink, the Stripe and telephony simulators, and each arflow service
//! as its own OS process (`arflow serve <service>`), kept running by a supervisor as Kubernetes
//! would: a process that exits is started again (and counted).
use crate::proxy::Proxy;
use arflow_bus::Bus;
use arflow_runtime::{Metrics, NatsSettings};
use arflow_testkit::smtp::SmtpSink;
use arflow_testkit::telephony::{ClientScript, SimConfig, TelephonySim};
use arflow_testkit::{TestNats, free_port, stripe::StripeSim};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SERVICES: [&str; 8] =
    ["gateway", "eligibility", "scheduler", "email", "optout", "escalation", "notification", "voice"];
pub const ADMIN: &str = "chaos-admin-token";
pub const INTERNAL_TOKEN: &str = "chaos-internal-token-0123456789";
pub const UNSUB_SECRET: &str = "chaos-unsubscribe-secret";
pub const REPLY_DOMAIN: &str = "in.chaos.test";
const TELEPHONY_ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TELEPHONY_TOKEN: &str = "chaos-telephony-token";

/// Monday 2 March 2026, 00:00 UTC.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).single().expect("a valid start")
}

/// `$CARGO_TARGET_DIR/debug/arflow` (default `$HOME/.cache/arflow-target`): the suite never
/// skips; without the binary it fails and says how to build it.
pub fn arflow_binary() -> PathBuf {
    binary("arflow")
}

fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cache/arflow-target"));
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "the fault suite runs every service as its own process and needs {}: build it first with \
         `cargo build --locked -p arflow-cli` (`just chaos` and `just test` do)",
        bin.display()
    );
    bin
}

/// The command that runs one service: `arflow serve <service>`, as the image does.
fn service_command(arflow: &Path, name: &str) -> (PathBuf, Vec<String>) {
    (arflow.to_path_buf(), vec!["serve".into(), name.into()])
}

struct Proc {
    child: Option<Child>,
    /// Held down on purpose (a kill -9 round): the supervisor leaves it alone.
    down: bool,
}

pub struct Stack {
    pub nats: Arc<Mutex<TestNats>>,
    pub proxy: Proxy,
    pub smtp: SmtpSink,
    pub stripe: StripeSim,
    pub telephony: TelephonySim,
    pub bus: Bus,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub ports: HashMap<&'static str, u16>,
    pub db_url: String,
    pub dir: PathBuf,
    bin: PathBuf,
    procs: Arc<Mutex<HashMap<&'static str, Proc>>>,
    /// Exits nobody asked for, by service (a crash the supervisor restarted).
    pub unexpected_exits: Arc<Mutex<BTreeMap<&'static str, u32>>>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Stack {
    pub async fn start(dir: &Path, db_url: String) -> Self {
        let bin = arflow_binary();
        std::fs::create_dir_all(dir).expect("run dir");
        let nats = TestNats::start();
        let proxy = Proxy::start(nats.port).await;
        let nats_url = nats.url();
        let smtp = SmtpSink::start();
        let stripe = StripeSim::start().await;
        let ports: HashMap<&'static str, u16> = SERVICES.iter().map(|s| (*s, free_port())).collect();
        let telephony = TelephonySim::start(SimConfig {
            account_sid: TELEPHONY_ACCOUNT.into(),
            auth_token: TELEPHONY_TOKEN.into(),
            sms_webhook_url: Some(format!("http://127.0.0.1:{}/webhooks/telephony/sms/inbound", ports["gateway"])),
            default_script: ClientScript::NoAnswer,
        })
        .await;
        let settings = NatsSettings::at(nats_url);
        let bus = Bus::connect(&settings, "chaos", Metrics::new("chaos")).await.expect("the suite's bus");
        arflow_bus::clock::set(&bus, start_time()).await.expect("clock");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(3))
            .connect(&db_url)
            .await
            .expect("the suite's pool");
        let procs: Arc<Mutex<HashMap<&'static str, Proc>>> = Arc::default();
        let unexpected_exits: Arc<Mutex<BTreeMap<&'static str, u32>>> = Arc::default();
        let mut stack = Stack {
            nats: Arc::new(Mutex::new(nats)),
            proxy,
            smtp,
            stripe,
            telephony,
            bus,
            pool,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            ports,
            db_url,
            dir: dir.to_path_buf(),
            bin,
            procs: procs.clone(),
            unexpected_exits: unexpected_exits.clone(),
            supervisor: tokio::spawn(async {}),
        };
        for s in SERVICES {
            let child = stack.spawn(s);
            procs.lock().unwrap().insert(s, Proc { child: Some(child), down: false });
        }
        // The supervisor: restarts a process that exited on its own.
        let spawner = stack.spawner();
        stack.supervisor = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut procs = procs.lock().unwrap();
                for (name, p) in procs.iter_mut() {
                    if p.down {
                        continue;
                    }
                    let exited = matches!(p.child.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))) | None);
                    if exited {
                        *unexpected_exits.lock().unwrap().entry(name).or_default() += 1;
                        p.child = Some(spawner(name));
                    }
                }
            }
        });
        for s in SERVICES {
            stack.wait_ready(s).await;
        }
        stack
    }

    /// A function that starts one service's process (for the supervisor's task).
    fn spawner(&self) -> impl Fn(&'static str) -> Child + Send + 'static {
        let (bin, dir, env) = (self.bin.clone(), self.dir.clone(), self.env_by_service());
        move |name| spawn_process(&bin, &dir, name, &env[name])
    }

    fn spawn(&self, name: &'static str) -> Child {
        spawn_process(&self.bin, &self.dir, name, &self.env_by_service()[name])
    }

    /// Each service's `ARFLOW__...` variables (as `deploy/local/stack.sh` sets them), its NATS
    /// through the proxy.
    fn env_by_service(&self) -> HashMap<&'static str, Vec<(String, String)>> {
        let url = |s: &str| format!("http://127.0.0.1:{}", self.ports[s]);
        let gateway = url("gateway");
        SERVICES
            .iter()
            .map(|name| {
                let mut env: Vec<(&str, String)> = vec![
                    ("ARFLOW__NATS__URL", self.proxy.url()),
                    ("ARFLOW__DATABASE__URL", self.db_url.clone()),
                    ("ARFLOW__DATABASE__MAX_CONNECTIONS", "5".into()),
                    ("ARFLOW__HTTP__PORT", self.ports[name].to_string()),
                    ("ARFLOW__CLOCK__MODE", "simulated".into()),
                    ("ARFLOW__CLOCK__START", start_time().to_rfc3339()),
                    ("ARFLOW__LOG__LEVEL", "warn".into()),
                    // A message whose ack was lost with a killed process comes back in seconds.
                    ("ARFLOW__CONSUMER__ACK_WAIT_SECS", "5".into()),
                    ("ARFLOW__INTERNAL__TOKEN", INTERNAL_TOKEN.into()),
                ];
                match *name {
                    "gateway" => env.extend([
                        ("ARFLOW__GATEWAY__ADMIN_TOKEN", ADMIN.into()),
                        ("ARFLOW__UNSUBSCRIBE__SECRET", UNSUB_SECRET.into()),
                        ("ARFLOW__GATEWAY__PUBLIC_BASE_URL", gateway.clone()),
                        ("ARFLOW__GATEWAY__STRIPE_API_BASE", self.stripe.base_url()),
                        ("ARFLOW__GATEWAY__UPSTREAMS__OPTOUT", url("optout")),
                        ("ARFLOW__GATEWAY__UPSTREAMS__ESCALATION", url("escalation")),
                        ("ARFLOW__GATEWAY__UPSTREAMS__NOTIFICATION", url("notification")),
                        ("ARFLOW__GATEWAY__UPSTREAMS__VOICE", url("voice")),
                        ("ARFLOW__GATEWAY__UPSTREAMS__EMAIL", url("email")),
                        ("ARFLOW__TELEPHONY__AUTH_TOKEN", TELEPHONY_TOKEN.into()),
                    ]),
                    "email" => env.extend([
                        ("ARFLOW__SMTP__PORT", self.smtp.port().to_string()),
                        ("ARFLOW__UNSUBSCRIBE__SECRET", UNSUB_SECRET.into()),
                        ("ARFLOW__EMAIL__UNSUBSCRIBE_BASE_URL", gateway.clone()),
                        ("ARFLOW__EMAIL__RETRY_BACKOFF_MS", "100,200".into()),
                        ("ARFLOW__EMAIL__POLL_MS", "50".into()),
                        ("ARFLOW__EMAIL__LEASE_SECS", "5".into()),
                        ("ARFLOW__EMAIL__REPLY_DOMAIN", REPLY_DOMAIN.into()),
                    ]),
                    "voice" => env.extend([
                        ("ARFLOW__TELEPHONY__API_BASE", self.telephony.base_url()),
                        ("ARFLOW__TELEPHONY__ACCOUNT_SID", TELEPHONY_ACCOUNT.into()),
                        ("ARFLOW__TELEPHONY__AUTH_TOKEN", TELEPHONY_TOKEN.into()),
                        ("ARFLOW__TELEPHONY__FROM_NUMBER", "+12025550100".into()),
                        ("ARFLOW__TELEPHONY__CALLBACK_BASE_URL", gateway.clone()),
                        ("ARFLOW__VOICE__POLL_MS", "50".into()),
                        ("ARFLOW__TELEPHONY__REQUEST_TIMEOUT_SECS", "5".into()),
                        ("ARFLOW__VOICE__UNCERTAIN_AFTER_SECS", "10".into()),
                        // A status callback lost while the gateway was down is asked for soon.
                        ("ARFLOW__VOICE__RECONCILE_AFTER_SECS", "5".into()),
                    ]),
                    "notification" => env.extend([
                        ("ARFLOW__SMTP__PORT", self.smtp.port().to_string()),
                        ("ARFLOW__NOTIFICATION__POLL_MS", "50".into()),
                        ("ARFLOW__NOTIFICATION__ALLOW_PRIVATE_TARGETS", "true".into()),
                        ("ARFLOW__NOTIFICATION__API_BASE_URL", gateway.clone()),
                    ]),
                    "escalation" => env.extend([
                        ("ARFLOW__ESCALATION__POLL_INTERVAL_SECS", "1".into()),
                        ("ARFLOW__ESCALATION__PUBLIC_BASE_URL", gateway.clone()),
                    ]),
                    _ => {}
                }
                (*name, env.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            })
            .collect()
    }

    pub fn gateway(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports["gateway"])
    }

    /// Waits until the service answers `/readyz` (the supervisor restarts it if it exited);
    /// fails with the end of its log after 10 minutes.
    pub async fn wait_ready(&self, name: &'static str) {
        let url = format!("http://127.0.0.1:{}/readyz", self.ports[name]);
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        loop {
            if self.http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "{name} was not ready after 10 minutes; the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`: the process gets no chance to finish anything. It stays down until `revive`.
    pub fn kill9(&self, name: &'static str) {
        let mut procs = self.procs.lock().unwrap();
        let p = procs.get_mut(name).expect("a known service");
        p.down = true;
        if let Some(mut c) = p.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Starts a service killed by `kill9` again.
    pub fn revive(&self, name: &'static str) {
        let child = self.spawn(name);
        let mut procs = self.procs.lock().unwrap();
        let p = procs.get_mut(name).expect("a known service");
        p.child = Some(child);
        p.down = false;
    }

    pub fn exits(&self) -> BTreeMap<&'static str, u32> {
        self.unexpected_exits.lock().unwrap().clone()
    }

    /// Stops every process (SIGKILL; the run is over).
    pub fn shutdown(&self) {
        self.supervisor.abort();
        let mut procs = self.procs.lock().unwrap();
        for p in procs.values_mut() {
            p.down = true;
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn spawn_process(bin: &Path, dir: &Path, name: &str, env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("service log file");
    let err = log.try_clone().expect("log file");
    let (program, args) = service_command(bin, name);
    Command::new(&program)
        .args(&args)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} {args:?}: {e}", program.display()))
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown();
    }
}
