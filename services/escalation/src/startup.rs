//! Wires the service: shared start-up, the four consumers, the sweep, the routes.
use crate::cases::Links;
use crate::handlers::{Context, billing, eligibility, outreach, replies};
use crate::{Config, SERVICE, routes, sweep};
use arflow_bus::consumer::ConsumerSpec;
use arflow_contracts::subjects;
use arflow_runtime::ServiceConfig;
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
use secrecy::SecretString;
use sqlx::migrate::Migrator;
use std::sync::Arc;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    base: Base,
    ctx: Arc<Context>,
    token: SecretString,
}

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        config.validate().map_err(|e| StartupError::Config(e.to_string()))?;
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown.clone()).await?;
        let ctx = Arc::new(Context {
            pool: base.pool.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            metrics: base.metrics.clone(),
            links: Links { base: config.escalation.public_base_url.clone() },
            settings: config.escalation.clone(),
        });
        let spec = |durable: &str, stream: &str, filters: Vec<String>| ConsumerSpec {
            durable: durable.into(),
            stream: stream.into(),
            filter_subjects: filters,
        };
        let c = config.consumer.clone();
        base.spawn_consumer(
            spec(billing::CONSUMER, "BILLING", vec!["billing.>".into()]),
            c.clone(),
            Arc::new(billing::BillingHandler::new(ctx.clone())),
        );
        base.spawn_consumer(
            spec(eligibility::CONSUMER, "ELIGIBILITY", vec!["eligibility.>".into()]),
            c.clone(),
            Arc::new(eligibility::EligibilityHandler::new(ctx.clone())),
        );
        base.spawn_consumer(
            spec(replies::CONSUMER, "REPLY", vec![format!("{}.>", subjects::reply::CLASSIFIED)]),
            c.clone(),
            Arc::new(replies::RepliesHandler::new(ctx.clone())),
        );
        let outreach_filters = vec![
            format!("{}.>", subjects::outreach::EMAIL_SENT),
            format!("{}.>", subjects::outreach::CADENCE_EXHAUSTED),
        ];
        base.spawn_consumer(
            spec(outreach::CONSUMER, "OUTREACH", outreach_filters),
            c,
            Arc::new(outreach::OutreachHandler::new(ctx.clone())),
        );
        base.spawn_task("escalation-sweep", sweep::run(ctx.clone(), shutdown));
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
