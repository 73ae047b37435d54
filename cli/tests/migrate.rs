//! `arflow migrate <service>` on a real PostgreSQL: every service's schema and migrations in one
//! database (as in Kubernetes: one database, one schema and role per service), then again as a
//! no-op; under a service's own role; and a clear failure for an unknown service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_testkit::db::TestDb;
use sqlx::Row;
use std::process::{Command, Output};

const SERVICES: [&str; 8] =
    ["gateway", "eligibility", "scheduler", "email", "optout", "escalation", "notification", "voice"];

/// The binary with nothing from the caller's environment but the variables given.
fn arflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arflow"));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Each migration's version, checksum and install time, plus every table, in `schema`.
async fn snapshot(db: &TestDb, schema: &str) -> (Vec<(i64, Vec<u8>, String)>, Vec<String>) {
    let mut conn = db.connect().await;
    let migrations = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT version, checksum, installed_on::text AS at, success FROM \"{schema}\"._sqlx_migrations ORDER BY version"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        assert!(r.get::<bool, _>("success"));
        (r.get("version"), r.get("checksum"), r.get("at"))
    })
    .collect();
    let tables =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1")
            .bind(schema)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    (migrations, tables)
}

fn migration_files(service: &str) -> usize {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services").join(service).join("migrations");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count()
}

#[tokio::test]
async fn every_service_migrates_its_own_schema_once() {
    let db = TestDb::create().await;
    let url = db.url();
    let mut first = Vec::new();
    for service in SERVICES {
        let out = ok(&arflow(&["migrate", service], &[("ARFLOW__DATABASE__URL", &url)]));
        let want = migration_files(service);
        assert!(out.contains(&format!("applied {want} of {want} migrations")), "{service}: {out}");
        let (migrations, tables) = snapshot(&db, service).await;
        assert_eq!(migrations.len(), want, "{service}: every migration recorded in its own schema");
        for common in ["inbox", "outbox", "_sqlx_migrations"] {
            assert!(tables.iter().any(|t| t == common), "{service}: {common} missing from {tables:?}");
        }
        first.push((migrations, tables));
    }
    // Only that service's schema: nothing of one service lands in another's.
    let mut conn = db.connect().await;
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut expected: Vec<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(schemas, expected);
    let public: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(public, 0, "nothing is created in public");

    // Twice: a no-op (same versions, checksums and install times, same tables).
    for (service, before) in SERVICES.iter().zip(first) {
        let out = ok(&arflow(&["migrate", service], &[("ARFLOW__DATABASE__URL", &url)]));
        assert!(out.contains("is up to date"), "{service}: {out}");
        assert_eq!(snapshot(&db, service).await, before, "{service}: the second run changed something");
    }
}

#[tokio::test]
async fn migrates_under_the_services_own_role_with_the_schema_set_by_env() {
    let db = TestDb::create().await;
    let role = format!("arflow_voice_{}", &db.name[db.name.len() - 8..]);
    let mut conn = db.connect().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'pw'; GRANT CREATE ON DATABASE {} TO {role};",
        db.name
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    // The same URL the service gets, but as the role; and a schema name set the way a ConfigMap would.
    let url = db.url().replacen("postgres://postgres@", &format!("postgres://{role}:pw@"), 1);
    assert!(url.contains(&role), "{url}");
    let env = [("ARFLOW__DATABASE__URL", url.as_str()), ("ARFLOW__DATABASE__SCHEMA", "voice_k8s")];
    ok(&arflow(&["migrate", "voice"], &env));
    let owner: String =
        sqlx::query_scalar("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'voice_k8s'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(owner, role, "the schema belongs to the service's role");
    let (migrations, _) = snapshot(&db, "voice_k8s").await;
    assert_eq!(migrations.len(), migration_files("voice"));
    let again = ok(&arflow(&["migrate", "voice"], &env));
    assert!(again.contains("is up to date"), "{again}");
    drop(conn);
    // Leave no role behind (the database is dropped by TestDb).
    let mut conn = db.connect().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA voice_k8s CASCADE; REVOKE CREATE ON DATABASE {} FROM {role};",
        db.name
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let admin = db.url().rsplit_once('/').map(|(base, _)| format!("{base}/postgres")).unwrap();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}"))).execute(&mut admin).await.unwrap();
}

#[test]
fn unknown_service_and_unreachable_database_fail() {
    let out = arflow(&["migrate", "billing"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown service") && err.contains("voice"), "{err}");

    let out = arflow(&["migrate", "gateway"], &[("ARFLOW__DATABASE__URL", "postgres://postgres@127.0.0.1:1/none")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PostgreSQL"), "{err}");
}
