//! Wires the service: shared start-up, the three consumers, the consent API.
use crate::handlers::{Context, commands, contacts, replies};
use crate::{Config, SERVICE, routes};
use arflow_bus::consumer::ConsumerSpec;
use arflow_contracts::subjects::{billing, command, reply};
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
use secrecy::SecretString;
use sqlx::migrate::Migrator;
use std::sync::Arc;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    base: Base,
    ctx: Arc<Context>,
    internal_token: SecretString,
}

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(SERVICE, settings, &MIGRATOR, shutdown).await?;
        let ctx = Arc::new(Context {
            pool: base.pool.clone(),
            holds: base.bus.holds().clone(),
            clock: base.clock.clone(),
            outbox: base.outbox.clone(),
            metrics: base.metrics.clone(),
            settings: config.optout.clone(),
        });
        base.spawn_consumer(
            ConsumerSpec {
                durable: contacts::CONSUMER.into(),
                stream: "BILLING".into(),
                filter_subjects: vec![format!("{}.>", billing::CONTACT_UPSERTED)],
            },
            config.consumer.clone(),
            Arc::new(contacts::ContactsHandler::new(ctx.clone())),
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
                durable: commands::CONSUMER.into(),
                stream: "COMMAND".into(),
                filter_subjects: vec![
                    format!("{}.>", command::CONSENT_OPT_OUT),
                    format!("{}.>", command::CONSENT_OPT_IN),
                ],
            },
            config.consumer.clone(),
            Arc::new(commands::CommandsHandler::new(ctx.clone())),
        );
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
