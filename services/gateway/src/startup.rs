//! Start-up: the shared base, the activity consumers, and the routes.
use crate::config::{Config, GatewaySettings};
use crate::handlers::activity::ActivityHandler;
use crate::routes;
use arflow_bus::consumer::ConsumerSpec;
use arflow_runtime::ServiceConfig;
use arflow_runtime::Shutdown;
use arflow_service::{Base, Settings, StartupError};
use sqlx::migrate::Migrator;
use std::sync::Arc;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub base: Arc<BaseHandles>,
    pub config: Arc<GatewaySettings>,
    /// `/v1/consent`, `/v1/escalations`, `/v1/notifications` go to their services.
    pub forward: Arc<crate::routes::forward::Forwarder>,
    /// The auth token that signs telephony callbacks.
    pub telephony: Arc<crate::config::TelephonyCallbacks>,
    /// Rate limits and the request deadline.
    pub limiter: Arc<crate::limits::Limiter>,
    /// The secret that signs one-click unsubscribe links (shared with the email service).
    pub unsubscribe: Arc<arflow_runtime::UnsubscribeSettings>,
}

/// The parts of [`Base`] handlers use (Base itself is consumed by `run`).
pub struct BaseHandles {
    pub pool: sqlx::PgPool,
    pub bus: arflow_bus::Bus,
    pub clock: arflow_core::Clock,
    pub outbox: arflow_store::Outbox,
    pub metrics: arflow_runtime::Metrics,
}

pub struct Application {
    base: Base,
    state: AppState,
}

/// The durable name of the activity consumers (one per stream).
pub const ACTIVITY_CONSUMER: &str = "gateway-activity";

impl Application {
    pub async fn build(config: Config, shutdown: Shutdown) -> Result<Self, StartupError> {
        config.validate().map_err(|e| StartupError::Config(e.to_string()))?;
        let settings =
            Settings { nats: &config.nats, database: &config.database, http: &config.http, clock: &config.clock };
        let mut base = Base::start(crate::SERVICE, settings, &MIGRATOR, shutdown).await?;
        let handler = Arc::new(ActivityHandler::new(base.pool.clone()));
        for (stream, filter) in
            [("ELIGIBILITY", "eligibility.>"), ("OUTREACH", "outreach.>"), ("REPLY", "reply.classified.>")]
        {
            let spec = ConsumerSpec {
                durable: ACTIVITY_CONSUMER.to_string(),
                stream: stream.to_string(),
                filter_subjects: vec![filter.to_string()],
            };
            base.spawn_consumer(spec, config.consumer.clone(), handler.clone());
        }
        let state = AppState {
            base: Arc::new(BaseHandles {
                pool: base.pool.clone(),
                bus: base.bus.clone(),
                clock: base.clock.clone(),
                outbox: base.outbox.clone(),
                metrics: base.metrics.clone(),
            }),
            forward: Arc::new(
                crate::routes::forward::Forwarder::new(config.gateway.upstreams.clone(), config.internal.token.clone())
                    .map_err(|e| StartupError::Config(format!("HTTP client for forwarding: {e}")))?,
            ),
            telephony: Arc::new(config.telephony),
            limiter: crate::limits::Limiter::new(config.gateway.limits.clone()),
            unsubscribe: Arc::new(config.unsubscribe),
            config: Arc::new(config.gateway),
        };
        let (limiter, token) = (state.limiter.clone(), base.shutdown.clone());
        base.spawn_task("rate-limit-forget", async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => limiter.forget_quiet(),
                }
            }
        });
        // Reconciliation needs the same handles as the API (it applies what Stripe says).
        let reconcile = crate::handlers::reconcile::ReconcileHandler { state: state.clone() };
        base.spawn_consumer(
            ConsumerSpec {
                durable: crate::handlers::reconcile::CONSUMER.to_string(),
                stream: "REPLY".to_string(),
                filter_subjects: vec!["reply.classified.>".to_string()],
            },
            config.consumer.clone(),
            Arc::new(reconcile),
        );
        // Stripe calls other services ask for (only the gateway holds the firm's Stripe key).
        let commands = crate::handlers::stripe_commands::StripeCommandHandler { state: state.clone() };
        base.spawn_consumer(
            ConsumerSpec {
                durable: crate::handlers::stripe_commands::CONSUMER.to_string(),
                stream: "COMMAND".to_string(),
                filter_subjects: vec![format!("{}.>", arflow_contracts::subjects::command::STRIPE_MARK_UNCOLLECTIBLE)],
            },
            config.consumer.clone(),
            Arc::new(commands),
        );
        let (pool, bus, clock, token) =
            (base.pool.clone(), base.bus.clone(), base.clock.clone(), base.shutdown.clone());
        base.spawn_task("retention", crate::retention::run(pool, bus, clock, token));
        Ok(Application { base, state })
    }

    pub fn port(&self) -> u16 {
        self.base.port()
    }

    pub async fn run(self) -> Result<(), StartupError> {
        let router = routes::router(self.state);
        self.base.run(router).await
    }
}
