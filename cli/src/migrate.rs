//! `arflow migrate <service>`: creates the service's schema if it is missing, runs that service's
//! migrations (and the inbox/outbox tables every service has), then exits. Kubernetes runs it as
//! each Deployment's init container under the service's own database role; running it again is
//! a no-op.
//!
//! It reads the same configuration as `arflow serve <service>` (the compiled-in defaults,
//! `$ARFLOW_CONFIG`, `ARFLOW__...`), but only its `[database]` section, so it needs the
//! database URL (or typed fields) and schema and none of the service's other secrets.
use anyhow::{Context, bail};
use arflow_runtime::{DatabaseSettings, ServiceConfig};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sqlx::{Connection, PgConnection, migrate::Migrator};
use std::collections::BTreeSet;

use crate::serve::SERVICES;

#[derive(Deserialize)]
struct DatabaseOnly {
    database: DatabaseSettings,
}

/// A service's compiled-in config defaults and its migrations.
fn service(name: &str) -> anyhow::Result<(&'static str, &'static Migrator)> {
    Ok(match name {
        "gateway" => (arflow_gateway::Config::DEFAULTS, &arflow_gateway::startup::MIGRATOR),
        "eligibility" => (arflow_eligibility::Config::DEFAULTS, &arflow_eligibility::startup::MIGRATOR),
        "scheduler" => (arflow_scheduler::Config::DEFAULTS, &arflow_scheduler::startup::MIGRATOR),
        "email" => (arflow_email::Config::DEFAULTS, &arflow_email::startup::MIGRATOR),
        "optout" => (arflow_optout::Config::DEFAULTS, &arflow_optout::startup::MIGRATOR),
        "escalation" => (arflow_escalation::Config::DEFAULTS, &arflow_escalation::startup::MIGRATOR),
        "notification" => (arflow_notification::Config::DEFAULTS, &arflow_notification::startup::MIGRATOR),
        "voice" => (arflow_voice::Config::DEFAULTS, &arflow_voice::startup::MIGRATOR),
        other => bail!("unknown service {other:?}: expected one of {}", SERVICES.join(", ")),
    })
}

pub async fn run(name: &str) -> anyhow::Result<()> {
    let (defaults, migrator) = service(name)?;
    let mut database = arflow_runtime::config::load::<DatabaseOnly>(defaults)
        .with_context(|| format!("{name} service: configuration"))?
        .database;
    database.validate().with_context(|| format!("{name} service: configuration"))?;
    // One connection migrates; the second covers the pool's own start-up query.
    database.max_connections = 2;
    let schema = database.schema.clone();

    let before = applied(&database).await.with_context(|| format!("{name}: cannot read schema {schema:?}"))?;
    let pool = arflow_store::connect(&database, migrator)
        .await
        .with_context(|| format!("{name}: migrating schema {schema:?}"))?;
    pool.close().await;
    let after = applied(&database).await.with_context(|| format!("{name}: cannot read schema {schema:?}"))?;

    let now: Vec<String> = after.difference(&before).map(i64::to_string).collect();
    let total = migrator.iter().filter(|m| !m.migration_type.is_down_migration()).count();
    if now.is_empty() {
        println!("{name}: schema {schema} is up to date ({total} migrations)");
    } else {
        println!("{name}: schema {schema}: applied {} of {total} migrations ({})", now.len(), now.join(", "));
    }
    Ok(())
}

/// The versions recorded as applied in `<schema>._sqlx_migrations` (none when the schema or the
/// table does not exist yet).
async fn applied(database: &DatabaseSettings) -> anyhow::Result<BTreeSet<i64>> {
    let mut conn = PgConnection::connect(database.connection_url().expose_secret())
        .await
        .context("cannot connect to PostgreSQL")?;
    let table = format!("{}._sqlx_migrations", quote_ident(&database.schema));
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&table).fetch_one(&mut conn).await?;
    let versions = if exists {
        let sql = format!("SELECT version FROM {table} WHERE success");
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await?
    } else {
        Vec::new()
    };
    conn.close().await?;
    Ok(versions.into_iter().collect())
}

/// The schema name is already restricted to `[a-z0-9_]` by `DatabaseSettings::validate`.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
