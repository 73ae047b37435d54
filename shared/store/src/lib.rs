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
        .options([("search_path", settings.schema.as_str())])
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
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::raw_sql(COMMON_TABLES).execute(&pool).await?;
    migrator.run(&pool).await.map_err(|source| StoreError::Migrate { schema: settings.schema.clone(), source })?;
    Ok(pool)
}

/// Maps a database error to what the consumer loop should do with the message.
pub fn retry(e: impl std::fmt::Display) -> arflow_bus::HandlerError {
    arflow_bus::HandlerError::Retry(e.to_string())
}
