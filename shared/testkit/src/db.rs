//! A fresh database per test on the PostgreSQL server at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), or, when none is reachable, on a
//! throwaway cluster started once per test process with `initdb`/`pg_ctl`.
use sqlx::{Connection, PgConnection};
use std::process::Command;
use std::sync::OnceLock;

pub struct TestDb {
    /// URL of the server's maintenance database.
    admin_url: String,
    pub name: String,
}

static SERVER: OnceLock<String> = OnceLock::new();

fn admin_url() -> String {
    SERVER
        .get_or_init(|| {
            let url =
                std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            if reachable(&url) {
                return url;
            }
            start_throwaway_cluster()
        })
        .clone()
}

fn reachable(url: &str) -> bool {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(3), PgConnection::connect(&url))
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false)
        })
    })
    .join()
    .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// `initdb` + `pg_ctl start` in a temp dir (as `postgres` when we are root).
fn start_throwaway_cluster() -> String {
    let port = crate::free_port();
    let dir = std::env::temp_dir().join(format!("arflow-pg-{port}"));
    std::fs::create_dir_all(&dir).expect("pg dir");
    let run = |args: &[&str]| {
        let bin = find_pg_bin(args[0]);
        let mut cmd = if is_root() {
            let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        let status = cmd.args(&args[1..]).status().expect("run postgres tool");
        assert!(status.success(), "{} failed", args[0]);
    };
    let data = dir.join("data");
    let d = data.to_string_lossy().to_string();
    let sock = dir.to_string_lossy().to_string();
    run(&["initdb", "-D", &d, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]);
    let opts = format!("-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300");
    let log = dir.join("server.log").to_string_lossy().to_string();
    run(&["pg_ctl", "-D", &d, "-l", &log, "-o", &opts, "-w", "start"]);
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

fn find_pg_bin(name: &str) -> String {
    for dir in ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"] {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    name.to_string()
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = tokio::task::spawn_blocking(admin_url).await.expect("admin url");
        let name = format!("arflow_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.expect("connect to PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        TestDb { admin_url: admin, name }
    }

    pub fn url(&self) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{}", self.name),
            None => self.admin_url.clone(),
        }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url()).await.expect("connect to test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Nothing left behind: drop the database from a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
