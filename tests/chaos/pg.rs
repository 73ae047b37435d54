//! A PostgreSQL cluster of the suite's own (initdb + pg_ctl in a temp dir), so the suite can stop
//! it (`pg_ctl stop -m fast`) and start it again on the same port and data. As root, the server
//! runs as `postgres` (runuser), as `shared/testkit/src/db.rs` does for its throwaway cluster.
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct PgCluster {
    pub port: u16,
    dir: PathBuf,
    running: AtomicBool,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin").join(name)).filter(|p| p.exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| PathBuf::from(name))
}

impl PgCluster {
    /// `initdb` and start, in `parent/pg`.
    pub fn start(parent: &Path) -> Self {
        let dir = parent.join("pg");
        std::fs::create_dir_all(&dir).expect("pg dir");
        let pg = PgCluster { port: arflow_testkit::free_port(), dir, running: AtomicBool::new(false) };
        let data = pg.data();
        pg.run(&["initdb", "-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], true);
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().to_string()
    }

    fn run(&self, args: &[&str], quiet: bool) -> bool {
        let bin = pg_bin(args[0]);
        let mut cmd = if is_root() {
            let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.dir).status();
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        if quiet {
            cmd.stdout(std::process::Stdio::null());
        }
        let status = cmd.args(&args[1..]).status().unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        status.success()
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    pub fn start_server(&self) {
        let data = self.data();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").to_string_lossy().to_string();
        assert!(
            self.run(&["pg_ctl", "-D", &data, "-l", &log, "-o", &opts, "-w", "start"], true),
            "pg_ctl start failed"
        );
        self.running.store(true, Ordering::SeqCst);
    }

    /// `pg_ctl stop -m fast`: every connection is cut, nothing is accepted until `start_server`.
    pub fn stop_server(&self) {
        let data = self.data();
        assert!(self.run(&["pg_ctl", "-D", &data, "-m", "fast", "-w", "stop"], true), "pg_ctl stop failed");
        self.running.store(false, Ordering::SeqCst);
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running.load(Ordering::SeqCst) {
            let data = self.data();
            let _ = self.run(&["pg_ctl", "-D", &data, "-m", "immediate", "-w", "stop"], true);
        }
    }
}

/// Creates a fresh database on the cluster of `admin_url` and returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("connect to the suite's cluster");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut conn)
        .await
        .expect("drop database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => admin_url.to_string(),
    }
}
