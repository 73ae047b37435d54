//! Wires the voice service: its migrations, the step consumer, the dialer, the callbacks and API.
use crate::SERVICE;
use crate::clients::{Telephony, TwilioClient};
use crate::config::Config;
use crate::dialer::Dialer;
use crate::handlers::invoices::{self, InvoicesHandler};
use crate::handlers::steps::{DURABLE, StepsHandler};
use crate::routes::{self, Context};
use arflow_bus::consumer::ConsumerSpec;
use arflow_contracts::subjects::{billing, outreach};
use arflow_runtime::ServiceConfig;
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
    internal_token: SecretString,
}

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        let provider = TwilioClient::new(&config.telephony).map_err(|e| StartupError::Config(e.to_string()))?;
        Self::build_with(config, shutdown, Arc::new(provider)).await
    }

    /// With another provider (a test double speaking no HTTP at all, for example).
    pub async fn build_with(
        config: Config,
        shutdown: Shutdown,
        provider: Arc<dyn Telephony>,
    ) -> Result<Self, StartupError> {
        config.validate().map_err(|e| StartupError::Config(e.to_string()))?;
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown.clone()).await?;
        let wake = Arc::new(Notify::new());
        let handler = StepsHandler { pool: base.pool.clone(), clock: base.clock.clone(), dialer: wake.clone() };
        base.spawn_consumer(
            ConsumerSpec {
                durable: DURABLE.to_string(),
                stream: "OUTREACH".to_string(),
                filter_subjects: vec![
                    format!("{}.>", outreach::STEP_DUE_VOICE),
                    format!("{}.>", outreach::STEP_DUE_SMS),
                ],
            },
            config.consumer.clone(),
            Arc::new(handler),
        );
        base.spawn_consumer(
            ConsumerSpec {
                durable: invoices::DURABLE.to_string(),
                stream: "BILLING".to_string(),
                filter_subjects: vec![format!("{}.>", billing::INVOICE_UPSERTED)],
            },
            config.consumer.clone(),
            Arc::new(InvoicesHandler { pool: base.pool.clone() }),
        );
        let dialer = Dialer {
            pool: base.pool.clone(),
            bus: base.bus.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            metrics: base.metrics.clone(),
            provider,
            telephony: config.telephony.clone(),
            settings: config.voice.clone(),
            wake,
            lease: crate::store::Lease {
                owner: format!(
                    "{}:{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
                    uuid::Uuid::now_v7()
                ),
                secs: config.voice.uncertain_after_secs as f64,
            },
            in_flight: Default::default(),
        };
        base.spawn_task("voice-dialer", dialer.run(shutdown));
        let ctx = Arc::new(Context {
            pool: base.pool.clone(),
            bus: base.bus.clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            settings: config.voice.clone(),
            callback_base_url: config.telephony.callback_base_url.clone(),
        });
        Ok(Application { base, ctx, internal_token: config.internal.token.clone() })
    }

    pub fn port(&self) -> u16 {
        self.base.port()
    }

    pub async fn run(self) -> Result<(), StartupError> {
        let router = routes::router(self.ctx, self.internal_token);
        self.base.run(router).await
    }
}
