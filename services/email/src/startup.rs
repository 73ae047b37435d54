//! Wires the email service: its migrations, the step consumer, the SMTP sender loop.
use crate::config::Config;
use crate::handlers::replies::{DURABLE as REPLIES_DURABLE, RepliesHandler};
use crate::handlers::steps::{DURABLE, StepsHandler};
use crate::mail::Mailer;
use crate::sender::Sender;
use crate::{SERVICE, routes};
use arflow_bus::consumer::ConsumerSpec;
use arflow_contracts::subjects::{outreach, reply};
use arflow_runtime::ServiceConfig;
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tokio::sync::Notify;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    base: Base,
    router: axum::Router,
}

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        config.validate().map_err(|e| StartupError::Config(e.to_string()))?;
        // Check the SMTP and DKIM set-up before connecting anything.
        let mailer =
            Arc::new(Mailer::new(&config.smtp, &config.email).map_err(|e| StartupError::Config(e.to_string()))?);
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown.clone()).await?;
        let wake = Arc::new(Notify::new());
        let handler = StepsHandler {
            pool: base.pool.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            sender: wake.clone(),
            unsubscribe_base_url: config.email.unsubscribe_base_url.clone(),
            unsubscribe_secret: config.unsubscribe.secret.clone(),
        };
        base.spawn_consumer(
            ConsumerSpec {
                durable: DURABLE.to_string(),
                stream: "OUTREACH".to_string(),
                filter_subjects: vec![format!("{}.>", outreach::STEP_DUE_EMAIL)],
            },
            config.consumer.clone(),
            Arc::new(handler),
        );
        let assist = config.email.assist.as_ref().map(|a| {
            let backend = arflow_replies::assist::OpenAiCompatible {
                base_url: a.base_url.clone(),
                api_key: a.api_key.as_ref().map(|k| k.expose_secret().to_string()).unwrap_or_default(),
                model: a.model.clone(),
                timeout: std::time::Duration::from_millis(a.timeout_ms),
            };
            Arc::new(backend) as Arc<dyn arflow_replies::assist::Assist>
        });
        let replies = RepliesHandler {
            pool: base.pool.clone(),
            bus: base.bus.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            assist,
        };
        base.spawn_consumer(
            ConsumerSpec {
                durable: REPLIES_DURABLE.to_string(),
                stream: "REPLY".to_string(),
                filter_subjects: vec![format!("{}.>", reply::RECEIVED)],
            },
            config.consumer.clone(),
            Arc::new(replies),
        );
        let progress = arflow_store::connect_unsynced(&config.database, 4).await?;
        // The pod (or host) name for people reading the rows; the UUID makes each process unique.
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let sender = Sender {
            pool: base.pool.clone(),
            progress,
            owner: format!("{host}:{}", uuid::Uuid::now_v7()),
            bus: base.bus.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            metrics: base.metrics.clone(),
            mailer,
            settings: config.email.clone(),
            concurrency: usize::try_from(config.smtp.pool_size).unwrap_or(1),
            wake,
            waited_for_database: Default::default(),
        };
        let routes = Arc::new(routes::RoutesState {
            pool: base.pool.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            wake: sender.wake.clone(),
        });
        base.spawn_task("email-sender", sender.run(shutdown));
        Ok(Application { base, router: routes::router(routes, config.internal.token.clone()) })
    }

    pub fn port(&self) -> u16 {
        self.base.port()
    }

    pub async fn run(self) -> Result<(), StartupError> {
        self.base.run(self.router).await
    }
}
