//! The start-up every arflow service shares, so each service's `startup.rs` only
//! says what is its own: its migrations, its consumers and its routes.
pub mod api;

use arflow_bus::{Bus, BusError, ConsumerSettings, Handler, consumer::ConsumerSpec};
use arflow_core::Clock;
use arflow_runtime::{
    ClockSettings, DatabaseSettings, HttpSettings, Metrics, NatsSettings, Shutdown,
    http::{Probes, bind, health_routes, serve},
};
use arflow_store::{Outbox, StoreError};
use sqlx::{PgPool, migrate::Migrator};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{task} stopped with an error: {reason}")]
    Task { task: String, reason: String },
}

/// Publishes the pool's size and saturation every second (sqlx has no acquire hook to count
/// waits, so a second in which every connection was busy is counted instead).
async fn sample_pool(pool: PgPool, metrics: Metrics, max: u32, shutdown: Shutdown) {
    metrics.db_pool_max.set(i64::from(max));
    loop {
        let (size, idle) = (pool.size(), pool.num_idle());
        metrics.db_pool_connections.set(i64::from(size));
        metrics.db_pool_idle.set(i64::try_from(idle).unwrap_or(0));
        if size >= max && idle == 0 {
            metrics.db_pool_saturated_seconds.inc();
        }
        let timeouts = arflow_store::POOL_TIMEOUTS.load(std::sync::atomic::Ordering::Relaxed);
        let seen = metrics.db_pool_timeouts.get();
        if timeouts > seen {
            metrics.db_pool_timeouts.inc_by(timeouts - seen);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Housekeeping every service does: stream sizes for the disk alert (every 30 s) and inbox
/// pruning past its retention (every hour, the first a minute after start).
async fn upkeep(pool: PgPool, bus: Bus, inbox_days: u32, shutdown: Shutdown) {
    let keep = std::time::Duration::from_secs(u64::from(inbox_days) * 86_400);
    let mut next_prune = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        bus.sample_streams().await;
        if tokio::time::Instant::now() >= next_prune {
            match arflow_store::prune_inbox(&pool, keep).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "inbox pruned past its retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "inbox pruning failed; next hour"),
            }
            next_prune = tokio::time::Instant::now() + std::time::Duration::from_secs(3_600);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The connections and background tasks of one running service.
pub struct Base {
    pub service: &'static str,
    pub bus: Bus,
    pub pool: PgPool,
    pub clock: Clock,
    pub outbox: Outbox,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
    listener: TcpListener,
    port: u16,
    tasks: JoinSet<Result<(), StartupError>>,
}

pub struct Settings<'a> {
    pub nats: &'a NatsSettings,
    pub database: &'a DatabaseSettings,
    pub http: &'a HttpSettings,
    pub clock: &'a ClockSettings,
}

impl Base {
    /// Connects to NATS (provisioning streams and buckets), starts the clock, opens the
    /// database on the service's schema and migrates it, binds the HTTP listener, and
    /// starts the outbox relay.
    pub async fn start(
        service: &'static str,
        settings: Settings<'_>,
        migrator: &Migrator,
        shutdown: Shutdown,
    ) -> Result<Self, StartupError> {
        settings.database.validate().map_err(|e| StartupError::Config(e.to_string()))?;
        let metrics = Metrics::new(service);
        let bus = Bus::connect(settings.nats, service, metrics.clone()).await?;
        let clock = arflow_bus::clock::start(&bus, settings.clock, shutdown.clone()).await?;
        let pool = arflow_store::connect(settings.database, migrator).await?;
        let addr = settings.http.addr();
        let (listener, local) = bind(&addr).await.map_err(|source| StartupError::Listen { addr, source })?;
        let outbox = Outbox::new(pool.clone(), bus.clone());
        let mut tasks = JoinSet::new();
        let relay = outbox.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            relay.run(token).await;
            Ok(())
        });
        tokio::spawn(sample_pool(pool.clone(), metrics.clone(), settings.database.max_connections, shutdown.clone()));
        tokio::spawn(upkeep(pool.clone(), bus.clone(), settings.database.inbox_retention_days, shutdown.clone()));
        tracing::info!(service, port = local.port(), "service started");
        Ok(Base { service, bus, pool, clock, outbox, metrics, shutdown, listener, port: local.port(), tasks })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn probes(&self) -> Probes {
        Probes { nats: Some(self.bus.client.clone()), db: Some(self.pool.clone()), metrics: self.metrics.clone() }
    }

    /// Runs a durable consumer in the background until shutdown.
    pub fn spawn_consumer<H: Handler>(&mut self, spec: ConsumerSpec, settings: ConsumerSettings, handler: Arc<H>) {
        let bus = self.bus.clone();
        let token = self.shutdown.clone();
        self.tasks.spawn(async move {
            let name = spec.durable.clone();
            arflow_bus::consumer::run(bus, spec, settings, handler, token)
                .await
                .map_err(|e| StartupError::Task { task: name, reason: e.to_string() })
        });
    }

    /// Runs any other background loop (timers, watchers) until it returns.
    pub fn spawn_task<F>(&mut self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.tasks
            .spawn(async move { task.await.map_err(|reason| StartupError::Task { task: name.to_string(), reason }) });
    }

    /// Serves `routes` (plus `/healthz`, `/readyz`, `/metrics`) and waits until shutdown
    /// has drained every task. A task that fails stops the whole service.
    pub async fn run(mut self, routes: axum::Router) -> Result<(), StartupError> {
        let router = routes
            .merge(health_routes(self.probes()))
            .layer(axum::middleware::from_fn_with_state(self.metrics.clone(), arflow_runtime::http::track));
        let token = self.shutdown.clone();
        let listener = self.listener;
        self.tasks.spawn(async move {
            serve(listener, router, token)
                .await
                .map_err(|e| StartupError::Task { task: "http".into(), reason: e.to_string() })
        });
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(|e| StartupError::Task { task: "task".into(), reason: e.to_string() });
            if let Err(e) | Ok(Err(e)) = result {
                tracing::error!(service = self.service, error = %e, "a task failed; shutting the service down");
                self.shutdown.cancel();
                first_error.get_or_insert(e);
            }
        }
        self.pool.close().await;
        tracing::info!(service = self.service, "service stopped");
        first_error.map_or(Ok(()), Err)
    }
}
