//! The store against a real PostgreSQL and nats-server: schema, migrations, inbox, outbox relay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::Envelope;
use arflow_runtime::{DatabaseSettings, Metrics, NatsSettings};
use arflow_store::{Outbox, OutboxMessage, inbox, outbox};
use arflow_testkit::{TestDb, TestNats};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

/// A pool on `schema` at `url` with the production timeouts.
fn settings(url: impl Into<String>, schema: &str, max_connections: u32) -> DatabaseSettings {
    DatabaseSettings {
        url: Some(url.into().into()),
        host: String::new(),
        port: 0,
        username: String::new(),
        password: None,
        database_name: String::new(),
        require_tls: false,
        schema: schema.into(),
        max_connections,
        statement_timeout_ms: 30_000,
        lock_timeout_ms: 10_000,
        acquire_timeout_ms: 10_000,
        inbox_retention_days: 100,
    }
}

#[tokio::test]
async fn inbox_dedups_and_outbox_publishes() {
    let db = TestDb::create().await;
    let nats = TestNats::start();
    let settings = settings(db.url(), "svc", 4);
    let pool = arflow_store::connect(&settings, &MIGRATOR).await.unwrap();
    // Migrations went into the service's schema.
    let n: (i64,) = sqlx::query_as("SELECT count(*) FROM svc.things").fetch_one(&pool).await.unwrap();
    assert_eq!(n.0, 0);
    let again = arflow_store::connect(&settings, &MIGRATOR).await;
    assert!(again.is_ok(), "migrating twice is harmless");

    let ids = [Uuid::now_v7(), Uuid::now_v7()];
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(inbox::record_new(&mut tx, "c", &ids).await.unwrap().len(), 2);
    assert_eq!(inbox::record_new(&mut tx, "c", &ids[..1]).await.unwrap().len(), 0);
    let firm = Uuid::now_v7();
    let env = Envelope::new("billing.x", "svc", chrono::Utc::now(), firm, firm, None, 7u32);
    let msg = OutboxMessage::new(format!("billing.x.{firm}"), "x:1".into(), env).unwrap();
    outbox::enqueue(&mut tx, &[msg.clone(), msg]).await.unwrap();
    tx.commit().await.unwrap();

    // Pruning keeps what is younger than the retention and removes the rest.
    let old = Uuid::now_v7();
    sqlx::query("INSERT INTO inbox (consumer, event_id, received_at) VALUES ('c', $1, now() - interval '101 days')")
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
    let pruned = arflow_store::prune_inbox(&pool, std::time::Duration::from_secs(100 * 86_400)).await.unwrap();
    assert_eq!(pruned, 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox").fetch_one(&pool).await.unwrap();
    assert_eq!(left, 2, "the recent ids stay");

    let bus = Bus::connect(&NatsSettings::at(nats.url()), "svc", Metrics::new("svc")).await.unwrap();
    let relay = Outbox::new(pool.clone(), bus.clone());
    assert_eq!(relay.publish_batch().await.unwrap(), 2);
    assert_eq!(relay.publish_batch().await.unwrap(), 0);
    // Same msg id twice: stored once.
    let info = bus.js.get_stream("BILLING").await.unwrap().get_info().await.unwrap();
    assert_eq!(info.state.messages, 1);
}

/// The production roles own their schema but may not create schemas in the database (the
/// CloudNativePG cluster grants them only CONNECT): connecting and migrating must still work.
#[tokio::test]
async fn a_role_that_owns_its_schema_but_cannot_create_schemas_migrates() {
    use sqlx::Connection;
    let db = TestDb::create().await;
    let role = format!("arflow_t_{}", Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("REVOKE CREATE ON DATABASE \"{}\" FROM PUBLIC", db.url().rsplit('/').next().unwrap()),
        format!("CREATE SCHEMA owned AUTHORIZATION {role}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
    let url = db.url().replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let settings = settings(url, "owned", 2);
    let result = arflow_store::connect(&settings, &MIGRATOR).await;
    if let Ok(pool) = &result {
        pool.close().await;
    }
    for sql in ["DROP SCHEMA owned CASCADE".to_string(), format!("DROP ROLE {role}")] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
    result.expect("the schema's owner migrates without CREATE on the database");
}

#[tokio::test]
async fn an_unreachable_or_slow_database_is_transient_and_refused_data_is_permanent() {
    use arflow_bus::HandlerError;
    let db = TestDb::create().await;
    let settings = DatabaseSettings {
        statement_timeout_ms: 300,
        lock_timeout_ms: 200,
        acquire_timeout_ms: 500,
        ..settings(db.url(), "svc", 2)
    };
    let pool = arflow_store::connect(&settings, &MIGRATOR).await.unwrap();
    let is_retry = |e: HandlerError| matches!(e, HandlerError::Retry(_));
    // Every pool has a statement timeout and a lock timeout.
    let e = sqlx::query("SELECT pg_sleep(2)").execute(&pool).await.unwrap_err();
    assert!(is_retry(arflow_store::handler_error(e)), "a statement timeout waits");
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(42)").execute(&mut *holder).await.unwrap();
    let e = sqlx::query("SELECT pg_advisory_xact_lock(42)").execute(&pool).await.unwrap_err();
    assert!(is_retry(arflow_store::handler_error(e)), "a lock timeout waits");
    // Both connections busy: the acquire times out, which waits too.
    let _second = pool.acquire().await.unwrap();
    let e = pool.acquire().await.unwrap_err();
    assert!(is_retry(arflow_store::handler_error(e)), "a pool timeout waits");
    drop(_second);
    holder.rollback().await.unwrap();
    // A constraint the data violates can never pass: permanent.
    let e = sqlx::query("SELECT 1/0").execute(&pool).await.unwrap_err();
    assert!(matches!(arflow_store::handler_error(e), HandlerError::Permanent(_)), "a data error is permanent");
    // Nothing listening: transient.
    let gone = DatabaseSettings {
        url: Some(format!("postgres://postgres@127.0.0.1:{}/x", arflow_testkit::free_port()).into()),
        ..settings
    };
    let e = arflow_store::connect(&gone, &MIGRATOR).await.unwrap_err();
    assert!(is_retry(arflow_store::handler_error(e)), "a database that is down waits");
}
