//! Customer List: a hub that keeps one customer list per business and keeps it in sync
//! across every product the business uses. See `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod input;
pub mod service;
pub mod storage;

use crate::config::Config;
use crate::http::AppState;
use crate::service::Hub;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A hub ready to serve: storage connected and migrated, an admin key in place.
pub struct App {
    hub: Arc<Hub>,
    /// The admin key generated on this first start, to be shown once.
    pub generated_admin_key: Option<String>,
}

impl App {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = storage::connect(&config.database_url).await?;
        store.migrate().await?;
        let hub = Hub::new(store);
        let generated_admin_key = hub.bootstrap_admin_key(config.admin_key.as_deref()).await?;
        Ok(Self {
            hub: Arc::new(hub),
            generated_admin_key,
        })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn router(&self) -> axum::Router {
        http::router(AppState {
            hub: self.hub.clone(),
        })
    }

    /// Serves on `listener` until `shutdown` is cancelled, then finishes in-flight
    /// requests and closes the database.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let maintenance = tokio::spawn(maintain(self.hub.clone(), shutdown.clone()));
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        shutdown.cancel();
        let _ = maintenance.await;
        self.hub.store().close().await;
        Ok(())
    }
}

/// Housekeeping until `shutdown`: forgets idempotency keys past their 24 hours.
async fn maintain(hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                let cutoff = domain::time::now()
                    - chrono::Duration::hours(http::IDEMPOTENCY_RETENTION_HOURS);
                match hub.store().idempotency_purge(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "idempotency purge failed"),
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
