//! The embedded default: one SQLite file in WAL mode, owned by one server process.

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: sqlx::SqlitePool,
    /// The one connection that writes.
    writer: sqlx::SqlitePool,
    wakeup: std::sync::Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Writers queue on SQLite's single write lock instead of failing at once.
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // Writers wait their turn for the one connection.
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer,
            wakeup: Default::default(),
        })
    }
}

super::common::sql_store! {
    SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection;

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// Write transactions run on the single writer connection and take SQLite's write lock
/// up front (`BEGIN IMMEDIATE`): writers queue for the connection, in order and without
/// sleeping in SQLite's busy handler, and never deadlock on a lock upgrade.
async fn begin_write(
    store: &SqliteStore,
) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
    store.writer.begin_with("BEGIN IMMEDIATE").await
}

impl SqliteStore {
    fn writer(&self) -> &sqlx::SqlitePool {
        &self.writer
    }
}

/// `column` (a JSON array of strings, as text) contains `value`.
fn push_json_array_contains(
    sql: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>,
    column: &str,
    value: &str,
) {
    sql.push(format!(
        " AND EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = "
    ))
    .push_bind(value.to_owned())
    .push(")");
}

/// SQLite needs no row lock: `BEGIN IMMEDIATE` already holds the database's write lock.
const LOCK_CUSTOMER_ROW: &str = "";

/// The pending deliveries older than the claimed ones of the same (product, customer)
/// (SQLite has no `LATERAL`; its planner drives the join from the claimed ids).
const OLDER_PENDING: (&str, &str) = (
    " WHERE delivery_id IN (SELECT o.delivery_id FROM deliveries c \
     JOIN deliveries o ON o.customer_id = c.customer_id AND o.product_id = c.product_id \
       AND o.status = 'pending' AND o.version < c.version \
     WHERE (o.lease_until IS NULL OR o.lease_until < ",
    ") AND c.delivery_id IN (",
);

/// One writer at a time on SQLite: no row locks to skip.
const SKIP_LOCKED_DELIVERIES: &str = "";

/// Writers are serialized, so seq order is commit order: every event is visible.
const FEED_VISIBLE: &str = "";

/// Wake-ups are in-process only (`Store::delivery_wakeup`).
async fn signal_deliveries(_: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
    Ok(())
}

/// `BEGIN IMMEDIATE` already runs claims one at a time (one writer), and commits like
/// any other (WAL with synchronous=NORMAL).
async fn begin_claim(
    store: &SqliteStore,
) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
    begin_write(store).await
}

/// Attempt records commit like any other write on SQLite.
async fn begin_record(
    store: &SqliteStore,
) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
    begin_write(store).await
}

async fn forward_notifications(
    _: &sqlx::SqlitePool,
    _: &tokio::sync::Notify,
    shutdown: tokio_util::sync::CancellationToken,
) {
    shutdown.cancelled().await
}
