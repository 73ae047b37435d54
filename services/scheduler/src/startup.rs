//! Wires the scheduler: its migrations, four consumers, the timer loop and its routes.
use crate::config::Config;
use crate::handlers::Apply;
use crate::handlers::{
    Context, billing::BillingHandler, consent::ConsentHandler, eligibility::EligibilityHandler,
    outcomes::OutcomeHandler,
};
use crate::timer::Timer;
use crate::{SERVICE, routes};
use arflow_bus::consumer::ConsumerSpec;
use arflow_contracts::subjects::{self, billing, consent, eligibility};
use arflow_runtime::ServiceConfig;
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
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
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown.clone()).await?;
        let ctx = Context {
            pool: base.pool.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            timer: Arc::new(Notify::new()),
        };
        let spec = |durable: &str, stream: &str, kinds: &[&str]| ConsumerSpec {
            durable: durable.to_string(),
            stream: stream.to_string(),
            filter_subjects: kinds.iter().map(|k| subjects::all_firms(k)).collect(),
        };
        base.spawn_consumer(
            spec("scheduler-eligibility", "ELIGIBILITY", &[eligibility::CHANGED]),
            config.consumer.clone(),
            Arc::new(EligibilityHandler { ctx: ctx.clone() }),
        );
        base.spawn_consumer(
            spec(
                "scheduler-billing",
                "BILLING",
                &[billing::INVOICE_PAID, billing::INVOICE_VOIDED, billing::INVOICE_UNCOLLECTIBLE],
            ),
            config.consumer.clone(),
            Arc::new(BillingHandler { ctx: ctx.clone() }),
        );
        base.spawn_consumer(
            spec("scheduler-consent", "CONSENT", &[consent::OPTED_OUT, consent::OPTED_IN]),
            config.consumer.clone(),
            Arc::new(ConsentHandler { ctx: ctx.clone() }),
        );
        // How calls and texts ended: retries and email fallbacks (`outreach.voice.>`, `outreach.sms.>`).
        base.spawn_consumer(
            ConsumerSpec {
                durable: OutcomeHandler::CONSUMER.to_string(),
                stream: "OUTREACH".to_string(),
                filter_subjects: vec!["outreach.voice.>".to_string(), "outreach.sms.>".to_string()],
            },
            config.consumer.clone(),
            Arc::new(OutcomeHandler { ctx: ctx.clone() }),
        );
        let timer = Timer { ctx, settings: config.scheduler.clone(), metrics: base.metrics.clone() };
        base.spawn_task("timer", timer.run(shutdown));
        let router = routes::router(base.pool.clone());
        Ok(Application { base, router })
    }

    pub fn port(&self) -> u16 {
        self.base.port()
    }

    pub async fn run(self) -> Result<(), StartupError> {
        self.base.run(self.router).await
    }
}
