//! The SQL of every concern, written once for both backends: standard SQL with `$N`
//! placeholders (or assembled with `push_bind`), timestamps bound as
//! [`DbTime`](super::time::DbTime), and each difference asked of the [`Dialect`]. One
//! file per concern, each implementing that concern's trait for [`SqlStore`].

mod backfills;
mod conflicts;
mod consent;
mod customers;
mod deliveries;
mod erasures;
mod events;
mod idempotency;
mod imports;
mod sessions;
mod tenants;

use super::cache::TenancyCache;
use super::dialect::{Dialect, Pools, Sql, Tx, Value};
use super::{Store, StoreResult};
use crate::domain::tenancy::ApiKey;
use crate::domain::tenants::{Account, Activation};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use std::sync::Arc;
use tokio::sync::Notify;

/// The store over one backend's pools.
pub struct SqlStore<DB: Dialect> {
    pools: Pools<DB>,
    /// Woken after a commit that queued deliveries.
    wakeup: Arc<Notify>,
    /// This store's name on its delivery signals (`NOTIFY` payload), so that its own
    /// listener skips them: its dispatcher was woken in-process already.
    instance: Arc<str>,
    /// Wakes this process's backfill stage (a backfill started, snapshots sent).
    backfill_wakeup: Arc<Notify>,
    /// Wakes this process's import worker (an import was stored).
    import_wakeup: Arc<Notify>,
    /// Keys, accounts and activations as last read, for a moment (`storage::cache`).
    tenancy: TenancyCache<ApiKey, Account, Activation>,
    /// Requests to the task that signals the other servers, started on first use.
    signals: std::sync::OnceLock<tokio::sync::mpsc::Sender<()>>,
}

impl<DB: Dialect> SqlStore<DB> {
    pub(super) fn new(pools: Pools<DB>) -> Self {
        Self {
            pools,
            wakeup: Default::default(),
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
            backfill_wakeup: Default::default(),
            import_wakeup: Default::default(),
            tenancy: Default::default(),
            signals: Default::default(),
        }
    }

    /// A connection for reads.
    async fn read(&self) -> StoreResult<PoolConnection<DB>> {
        Ok(self.pools.read.acquire().await?)
    }

    /// A connection for a single-statement write.
    async fn write(&self) -> StoreResult<PoolConnection<DB>> {
        Ok(self.pools.write.acquire().await?)
    }

    async fn begin_write(&self) -> StoreResult<Tx<DB>> {
        Ok(DB::begin_write(&self.pools).await?)
    }

    /// After the commit of a write: counts the events, and when a delivery was queued,
    /// wakes this server's dispatcher and has the other servers told (an event no
    /// product receives by webhook wakes nobody).
    fn committed(&self, queued: Queued) {
        if queued.events > 0 {
            metrics::counter!("customer_list_events_written_total").increment(queued.events as u64);
        }
        if queued.deliveries > 0 {
            self.wakeup.notify_one();
            self.signal_other_servers();
        }
    }

    /// Asks the signaller to tell the other servers (`DB::signal_deliveries`), outside
    /// the write's transaction. The signaller sends one signal at a time, and the
    /// requests made meanwhile wait as one (a channel of one place): under load, one
    /// signal announces many writes. A server that dies between a commit and its signal
    /// leaves the others to find the deliveries by their next look (at most 1 s).
    fn signal_other_servers(&self) {
        if !DB::SIGNALS_OTHER_SERVERS {
            return;
        }
        let requests = self.signals.get_or_init(|| {
            let (requests, mut pending) = tokio::sync::mpsc::channel::<()>(1);
            let (pool, instance) = (self.pools.write.clone(), self.instance.clone());
            // Ends when the store (the only sender) is dropped.
            tokio::spawn(async move {
                while pending.recv().await.is_some() {
                    if let Err(err) = DB::signal_deliveries(&pool, &instance).await {
                        tracing::warn!(error = %err, "could not signal the other servers; they find the deliveries by their next look");
                    }
                }
            });
            requests
        });
        // Full: a signal is already waiting to go, and it covers this write too.
        let _ = requests.try_send(());
    }
}

/// What a write transaction queued: events, and deliveries of them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Queued {
    pub events: usize,
    pub deliveries: u64,
}

impl std::ops::AddAssign for Queued {
    fn add_assign(&mut self, other: Self) {
        self.events += other.events;
        self.deliveries += other.deliveries;
    }
}

#[async_trait]
impl<DB: Dialect> Store for SqlStore<DB> {
    fn backend(&self) -> &'static str {
        <DB as Dialect>::NAME
    }

    async fn migrate(&self) -> StoreResult<()> {
        DB::migrate(&self.pools).await?;
        Ok(())
    }

    async fn check_ready(&self) -> StoreResult<bool> {
        let applied: i64 = Sql::<DB>::new("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .scalar(&mut *self.read().await?)
            .await?;
        Ok(applied as usize >= DB::migrations())
    }

    async fn close(&self) {
        self.pools.read.close().await;
        self.pools.write.close().await;
    }

    fn pool_stats(&self) -> (u32, usize) {
        (self.pools.read.size(), self.pools.read.num_idle())
    }
}

/// Adds ` AND (<columns>) <op> (<key>, <id>)`: where a keyset page starts.
fn push_keyset_bound<'q, DB: Dialect>(
    sql: &mut Sql<'q, DB>,
    columns: &str,
    op: &str,
    key: impl Value<'q>,
    id: &'q str,
) {
    sql.push(&format!(" AND ({columns}) {op} ("))
        .push_bind(key)
        .push(", ")
        .push_bind(id)
        .push(")");
}
