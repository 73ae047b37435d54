//! Wires the service: shared start-up, the four consumers, the time sweep, the routes.
use crate::handlers::{Context, billing, consent, escalation, replies};
use crate::{Config, SERVICE, routes, sweep};
use arflow_bus::consumer::ConsumerSpec;
use arflow_contracts::subjects::reply;
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
use sqlx::migrate::Migrator;
use std::sync::Arc;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    base: Base,
}

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown.clone()).await?;
        let ctx = Arc::new(Context {
            pool: base.pool.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            metrics: base.metrics.clone(),
            settings: config.eligibility.clone(),
        });
        base.spawn_consumer(
            ConsumerSpec {
                durable: billing::CONSUMER.into(),
                stream: "BILLING".into(),
                filter_subjects: vec!["billing.>".into()],
            },
            config.consumer.clone(),
            Arc::new(billing::BillingHandler::new(ctx.clone())),
        );
        base.spawn_consumer(
            ConsumerSpec {
                durable: consent::CONSUMER.into(),
                stream: "CONSENT".into(),
                filter_subjects: vec!["consent.>".into()],
            },
            config.consumer.clone(),
            Arc::new(consent::ConsentHandler::new(ctx.clone())),
        );
        base.spawn_consumer(
            ConsumerSpec {
                durable: replies::CONSUMER.into(),
                stream: "REPLY".into(),
                filter_subjects: vec![format!("{}.>", reply::CLASSIFIED)],
            },
            config.consumer.clone(),
            Arc::new(replies::RepliesHandler::new(ctx.clone())),
        );
        base.spawn_consumer(
            ConsumerSpec {
                durable: escalation::CONSUMER.into(),
                stream: "ESCALATION".into(),
                filter_subjects: vec!["escalation.>".into()],
            },
            config.consumer.clone(),
            Arc::new(escalation::EscalationHandler::new(ctx.clone())),
        );
        base.spawn_task("time-sweep", sweep::run(ctx, config.eligibility.clone(), shutdown));
        Ok(Application { base })
    }

    pub fn port(&self) -> u16 {
        self.base.port()
    }

    pub async fn run(self) -> Result<(), StartupError> {
        let router = routes::router(self.base.pool.clone());
        self.base.run(router).await
    }
}
