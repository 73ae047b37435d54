//! Wires the service: shared start-up, one consumer per stream, the delivery worker, the
//! digest, the routes.
use crate::channels::Channels;
use crate::handlers::{CONSUMERS, Context, events::EventHandler};
use crate::{Config, SERVICE, digest, routes, worker};
use arflow_bus::consumer::ConsumerSpec;
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
use secrecy::SecretString;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tokio::sync::Notify;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    base: Base,
    ctx: Arc<Context>,
    token: SecretString,
}

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        config.internal.validate("internal.token").map_err(StartupError::Config)?;
        let channels = Arc::new(Channels::new(&config).map_err(|e| StartupError::Config(e.to_string()))?);
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown.clone()).await?;
        let ctx = Arc::new(Context {
            pool: base.pool.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            metrics: base.metrics.clone(),
            settings: config.notification.clone(),
            wake: Arc::new(Notify::new()),
        });
        for (durable, stream, filters) in CONSUMERS {
            base.spawn_consumer(
                ConsumerSpec {
                    durable: (*durable).into(),
                    stream: (*stream).into(),
                    filter_subjects: filters.iter().map(|f| (*f).to_string()).collect(),
                },
                config.consumer.clone(),
                Arc::new(EventHandler::new(ctx.clone(), durable)),
            );
        }
        base.spawn_task("delivery-worker", worker::run(ctx.clone(), channels, shutdown.clone()));
        base.spawn_task("daily-digest", digest::run(ctx.clone(), shutdown));
        Ok(Application { base, ctx, token: config.internal.token.clone() })
    }

    pub fn port(&self) -> u16 {
        self.base.port()
    }

    pub async fn run(self) -> Result<(), StartupError> {
        let router = routes::router(self.ctx, self.token);
        self.base.run(router).await
    }
}
