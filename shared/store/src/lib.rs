//! PostgreSQL for arflow services. Each service owns one schema: its pool sets
//! `search_path` to it, so its migrations, inbox and outbox all live there.
pub mod chunk;
pub mod inbox;
pub mod outbox;

use arflow_runtime::DatabaseSettings;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, migrate::Migrator};
use std::str::FromStr;
use std::time::Duration;

pub use outbox::{Outbox, OutboxMessage};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL is invalid: {0}")]
    Url(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrations of schema {schema} failed: {source}")]
    Migrate {
        schema: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Tables every service has, created beside its own migrations (idempotent).
const COMMON_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    id         bigserial   PRIMARY KEY,
    subject    text        NOT NULL,
    msg_id     text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"#;

fn options(settings: &DatabaseSettings) -> Result<PgConnectOptions, StoreError> {
    let opts = PgConnectOptions::from_str(settings.connection_url().expose_secret()).map_err(StoreError::Url)?;
    Ok(opts
        .options([
            ("search_path", settings.schema.clone()),
            ("statement_timeout", settings.statement_timeout_ms.to_string()),
            ("lock_timeout", settings.lock_timeout_ms.to_string()),
        ])
        .application_name(&format!("arflow-{}", settings.schema))
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2)))
}

/// Creates the schema if needed, opens a pool on it, and runs the service's migrations.
pub async fn connect(settings: &DatabaseSettings, migrator: &Migrator) -> Result<PgPool, StoreError> {
    let opts = options(settings)?;
    let mut boot = opts.connect().await.map_err(StoreError::Connect)?;
    // PostgreSQL checks the right to create schemas before `IF NOT EXISTS`, so a role that owns
    // its schema but may not create schemas in the database (the production roles) would be
    // refused: only ask to create it when it is missing.
    let (exists,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(&settings.schema)
        .fetch_one(&mut boot)
        .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", settings.schema)))
            .execute(&mut boot)
            .await?;
    }
    boot.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(opts)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::raw_sql(COMMON_TABLES).execute(&pool).await?;
    migrator.run(&pool).await.map_err(|source| StoreError::Migrate { schema: settings.schema.clone(), source })?;
    Ok(pool)
}

/// Deletes inbox records older than `keep` (in batches, so no long lock): past every stream's
/// age limit a message can no longer be redelivered, so its id guards nothing any more.
pub async fn prune_inbox(pool: &PgPool, keep: Duration) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox \
             WHERE received_at < now() - make_interval(secs => $1) LIMIT 5000)",
        )
        .bind(keep.as_secs_f64())
        .execute(pool)
        .await?;
        total += done.rows_affected();
        if done.rows_affected() < 5000 {
            return Ok(total);
        }
    }
}

/// A second, small pool on the service's schema whose commits do not wait for the WAL flush
/// (`synchronous_commit = off`): for progress marks that must be visible to other processes at
/// once and cheap to write, and whose loss in a PostgreSQL crash (not a process crash) only
/// makes the judgement more cautious. Never for state that must survive.
pub async fn connect_unsynced(settings: &DatabaseSettings, max_connections: u32) -> Result<PgPool, StoreError> {
    let opts = options(settings)?.options([("synchronous_commit", "off")]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(opts)
        .await
        .map_err(StoreError::Connect)
}

/// Maps an error to what the consumer loop does with the message. A database that is
/// unreachable, restarting, busy or timing out is transient: the message waits (NAK, the
/// consumer pauses) for as long as the outage lasts. Data the database refuses (a constraint,
/// a value it cannot take) is permanent: the message is tried alone and dead-lettered.
/// Anything that is not a database error is treated as transient: waiting is always safe.
pub fn handler_error<E: std::error::Error + 'static>(e: E) -> arflow_bus::HandlerError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(db) = err.downcast_ref::<sqlx::Error>() {
            return if is_transient(db) {
                arflow_bus::HandlerError::Retry(e.to_string())
            } else {
                arflow_bus::HandlerError::Permanent(e.to_string())
            };
        }
        source = err.source();
    }
    arflow_bus::HandlerError::Retry(e.to_string())
}

/// Whether trying the same statement again later can succeed: the connection or the server
/// failed, not the data. SQLSTATE classes 22 (data exception) and 23 (integrity constraint)
/// and undecodable rows are the data's fault; everything else may pass once the database is
/// back (08 connection, 40 serialization/deadlock, 53 resources, 55P03 lock timeout, 57
/// operator intervention incl. statement timeout and shutdown, 58 system, XX internal, and
/// 42 while a migration rolls out).
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            !(code.starts_with("22") || code.starts_with("23"))
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => false,
        sqlx::Error::PoolTimedOut => {
            POOL_TIMEOUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
        _ => true,
    }
}

/// Pool acquires that timed out in this process (exported as `arflow_db_pool_timeouts`).
pub static POOL_TIMEOUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
