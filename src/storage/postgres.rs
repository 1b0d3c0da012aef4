//! The production backend. Several servers may share one database.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: sqlx::PgPool,
    wakeup: std::sync::Arc<tokio::sync::Notify>,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("customer-list");
        let pool = PgPoolOptions::new()
            .max_connections(20)
            // A request waiting on an exhausted or unreachable database fails fast with
            // 503 rather than hanging (SPEC: no hangs while the database is down).
            .acquire_timeout(Duration::from_millis(800))
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            wakeup: Default::default(),
        })
    }
}

super::common::sql_store! {
    PostgresStore, sqlx::Postgres, sqlx::PgConnection;

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

async fn begin_write(
    store: &PostgresStore,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    store.pool.begin().await
}

impl PostgresStore {
    /// Writes share the one pool: Postgres handles concurrent writers itself.
    fn writer(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

/// `column` (a JSONB array of strings) contains `value`; served by its GIN index.
fn push_json_array_contains(
    sql: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>,
    column: &str,
    value: &str,
) {
    sql.push(format!(" AND {column} @> "))
        .push_bind(sqlx::types::Json(serde_json::json!([value])));
}

/// Locks the customer row read for a change (writers of one customer queue).
const LOCK_CUSTOMER_ROW: &str = " FOR UPDATE OF c";

/// Locks the selected delivery rows (alias `d`), skipping rows another transaction
/// holds: dispatchers share the work, and a writer superseding old deliveries never
/// waits on a dispatcher (which could wait on the writer: a deadlock).
const SKIP_LOCKED_DELIVERIES: &str = " FOR UPDATE OF d SKIP LOCKED";

/// The pending deliveries older than the claimed ones of the same (product, customer),
/// around a bound lease time and before the claimed ids: a `LATERAL` join, so the claimed
/// rows drive it whatever the planner believes about how many are pending (with stale
/// statistics it drove the join from every pending row: 29 ms per claim at 5,586).
const OLDER_PENDING: (&str, &str) = (
    " WHERE delivery_id IN (SELECT older.delivery_id FROM deliveries c CROSS JOIN LATERAL \
     (SELECT o.delivery_id FROM deliveries o WHERE o.customer_id = c.customer_id \
       AND o.product_id = c.product_id AND o.status = 'pending' AND o.version < c.version \
       AND (o.lease_until IS NULL OR o.lease_until < ",
    ")) older WHERE c.delivery_id IN (",
);

/// Only events of transactions older than every running one: no later commit can add
/// an event before them, so a feed reader's cursor never skips one.
const FEED_VISIBLE: &str = " AND e.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

const DELIVERY_CHANNEL: &str = "customer_list_deliveries";

/// `NOTIFY` on commit of the transaction that queued deliveries, for every server.
async fn signal_deliveries(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(DELIVERY_CHANNEL)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Dispatcher bookkeeping (leases, attempt records) commits without waiting for the WAL
/// flush: a claim or record lost in a crash only means the delivery is sent again, which
/// at-least-once delivery allows. Customer writes and their events stay synchronous.
const RELAX_COMMIT: &str = "SELECT set_config('synchronous_commit', 'off', true)";

/// A claim also takes a transaction-scoped advisory lock (the key spells "claims"), so
/// claims run one at a time across servers. A claim's checks (no newer version pending,
/// no version of the pair in flight) read its statement's snapshot, so two claims at
/// once could each miss the other's uncommitted lease and send two versions of one
/// customer together (the chaos run found it). Held until commit, the lock makes every
/// claim see the leases of the one before. One statement with the relaxed commit: no
/// extra round trip.
const RELAX_COMMIT_AND_LOCK_CLAIMS: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(109317141917043)";

/// The transaction of a claim (see `RELAX_COMMIT_AND_LOCK_CLAIMS`).
async fn begin_claim(
    store: &PostgresStore,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    begin_running(store, RELAX_COMMIT_AND_LOCK_CLAIMS).await
}

/// The transaction recording delivery attempts (see `RELAX_COMMIT`).
async fn begin_record(
    store: &PostgresStore,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    begin_running(store, RELAX_COMMIT).await
}

async fn begin_running<'a>(
    store: &'a PostgresStore,
    statement: &'static str,
) -> Result<sqlx::Transaction<'a, sqlx::Postgres>, sqlx::Error> {
    let mut tx = begin_write(store).await?;
    sqlx::query(statement).execute(&mut *tx).await?;
    Ok(tx)
}

/// `LISTEN`s for other servers' deliveries and wakes this one's dispatcher. The listener
/// reconnects by itself after a lost connection; the dispatcher's periodic sweep covers
/// the gap.
async fn forward_notifications(
    pool: &sqlx::PgPool,
    wakeup: &tokio::sync::Notify,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
            listener.listen(DELIVERY_CHANNEL).await?;
            loop {
                listener.recv().await?;
                wakeup.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = listener => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "delivery notifications interrupted; reconnecting");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
