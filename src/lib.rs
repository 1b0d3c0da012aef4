//! Customer List: a hub that keeps one customer list per business and keeps it in sync
//! across every product the business uses. See `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod console;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod http;
pub mod input;
pub mod jobs;
pub mod service;
pub mod storage;

use crate::config::Config;
use crate::delivery::Dispatcher;
use crate::http::AppState;
use crate::service::Hub;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A hub ready to serve: storage connected and migrated, an admin key in place, and a
/// webhook dispatcher.
pub struct App {
    hub: Arc<Hub>,
    dispatcher: Arc<Dispatcher>,
    limits: Arc<http::limits::RateLimits>,
    sign_ins: Arc<http::limits::RateLimits>,
    cors_origins: Vec<String>,
    /// Whether `run` also runs the dispatcher (`serve --no-dispatcher` says no).
    pub dispatch: bool,
    /// The admin key generated on this first start, to be shown once.
    pub generated_admin_key: Option<String>,
}

impl App {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        http::metrics::handle();
        let store = storage::connect(&config.database_url).await?;
        store.migrate().await?;
        let dispatcher = Arc::new(Dispatcher::new(store.clone(), config.dispatch())?);
        let hub = Hub::new(store);
        let generated_admin_key = hub.bootstrap_admin_key(config.admin_key.as_deref()).await?;
        Ok(Self {
            hub: Arc::new(hub),
            dispatcher,
            limits: Arc::new(http::limits::RateLimits::per_second(config.rate_limit)),
            sign_ins: Arc::new(http::limits::RateLimits::per_second(
                console::SIGN_INS_PER_SECOND,
            )),
            cors_origins: config.cors_origins.clone(),
            dispatch: true,
            generated_admin_key,
        })
    }

    /// The dispatcher, for running it alone (`customer-list dispatch`) or stepping it.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn router(&self) -> axum::Router {
        http::router(
            AppState {
                hub: self.hub.clone(),
                limits: self.limits.clone(),
                sign_ins: self.sign_ins.clone(),
            },
            &self.cors_origins,
        )
    }

    /// Serves on `listener` until `shutdown` is cancelled, then finishes in-flight
    /// requests and closes the database.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let maintenance = tokio::spawn(maintain(
            self.hub.clone(),
            self.limits.clone(),
            shutdown.clone(),
        ));
        let dispatcher = self
            .dispatch
            .then(|| tokio::spawn(self.dispatcher.clone().run(shutdown.clone())));
        // Imports go with the dispatcher: a `--no-dispatcher` server does no background work.
        let imports = self.dispatch.then(|| {
            tokio::spawn(jobs::imports::ImportWorker::new(self.hub.clone()).run(shutdown.clone()))
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        shutdown.cancel();
        let _ = maintenance.await;
        if let Some(imports) = imports {
            // The batch in hand is written and recorded, and its lease given up.
            let _ = imports.await;
        }
        if let Some(dispatcher) = dispatcher {
            // In-flight deliveries finish and are recorded before the process exits.
            let _ = dispatcher.await;
        }
        self.hub.store().close().await;
        Ok(())
    }
}

/// How often erasure receipts are brought up to their deliveries' fate.
pub const ERASURE_SETTLE_SECONDS: u64 = 10;

/// Events (and their deliveries) are kept this long.
pub const EVENT_RETENTION_DAYS: i64 = 30;

/// Completed imports (and their failed rows, which hold personal data) are kept this long.
pub const IMPORT_RETENTION_DAYS: i64 = 30;

/// Housekeeping until `shutdown`: forgets idempotency keys past their 24 hours, events
/// and deliveries past their 30 days, and console sessions that ended.
async fn maintain(
    hub: Arc<Hub>,
    limits: Arc<http::limits::RateLimits>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    let mut receipts =
        tokio::time::interval(std::time::Duration::from_secs(ERASURE_SETTLE_SECONDS));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // Erasure receipts follow their deliveries (and so survive their purge).
            _ = receipts.tick() => {
                if let Err(err) = hub.settle_erasures(domain::time::now()).await {
                    tracing::warn!(error = %err.detail, "settling erasure receipts failed");
                }
            }
            _ = every.tick() => {
                if let Err(err) = hub.settle_erasures(domain::time::now()).await {
                    tracing::warn!(error = %err.detail, "settling erasure receipts failed");
                }
                limits.forget_idle();
                let cutoff = domain::time::now()
                    - chrono::Duration::hours(http::IDEMPOTENCY_RETENTION_HOURS);
                match hub.store().idempotency_purge(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "idempotency purge failed"),
                }
                let cutoff = domain::time::now() - chrono::Duration::days(EVENT_RETENTION_DAYS);
                match hub.store().purge_history(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "events and deliveries past retention removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "event purge failed"),
                }
                let cutoff = domain::time::now() - chrono::Duration::days(IMPORT_RETENTION_DAYS);
                match hub.store().purge_imports(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "imports past retention removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "import purge failed"),
                }
                match hub.store().purge_sessions(domain::time::now()).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "ended console sessions removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "session purge failed"),
                }
            }
        }
    }
}

/// Cancels `token` on SIGTERM or SIGINT.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
        token.cancel();
    });
}
