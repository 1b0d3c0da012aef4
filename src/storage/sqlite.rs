//! The embedded default: one SQLite file in WAL mode, owned by one server process.

use super::dialect::{DecodeRow, Dialect, Pools, Sql, Tx, Value};
use super::sql::SqlStore;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub type SqliteStore = SqlStore<Sqlite>;

pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Erased values are overwritten in the file, not left in free pages (SPEC 10).
        .pragma("secure_delete", "ON")
        // Writers queue on SQLite's single write lock instead of failing at once.
        .busy_timeout(Duration::from_secs(5));
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        // Writers wait their turn for the one connection.
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    // Readers (WAL lets them run beside the writer).
    let read = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?;
    Ok(SqlStore::new(Pools { read, write }))
}

/// Write transactions run on the single writer connection and take SQLite's write lock
/// up front (`BEGIN IMMEDIATE`): writers queue for the connection, in order and without
/// sleeping in SQLite's busy handler, and never deadlock on a lock upgrade.
async fn begin_immediate(pools: &Pools<Sqlite>) -> Result<Tx<Sqlite>, sqlx::Error> {
    pools.write.begin_with("BEGIN IMMEDIATE").await
}

impl Dialect for Sqlite {
    const NAME: &'static str = "sqlite";

    /// No row lock: `BEGIN IMMEDIATE` already holds the database's write lock.
    const LOCK_CUSTOMER_ROW: &'static str = "";

    /// One writer at a time: no row locks to skip.
    const SKIP_LOCKED_DELIVERIES: &'static str = "";

    /// One writer at a time: the write transaction is the lock.
    const SKIP_LOCKED_JOB: &'static str = "";

    /// SQLite runs a correlated `EXISTS` per row already (and allows no bare `OFFSET`).
    const PER_ROW: &'static str = ")";

    const ONE_STATEMENT_CREATES: bool = false;
    /// No `NOTIFY`: one process owns the file, and wakes its dispatcher itself.
    const SIGNALS_OTHER_SERVERS: bool = false;

    /// Writers are serialized, so seq order is commit order: every event is visible.
    const FEED_VISIBLE: &'static str = "";

    /// One writer at a time, committing in `seq` order: the newest event's position.
    const FEED_HEAD: &'static str = "SELECT 0, COALESCE(MAX(seq), 0) FROM events";

    /// SQLite has no `LATERAL`; its planner drives the join from the claimed ids.
    fn push_older_pending<'q>(
        sql: &mut Sql<'q, Self>,
        lease: impl Value<'q>,
        claimed: &'q [String],
    ) {
        sql.push(
            " WHERE delivery_id IN (SELECT o.delivery_id FROM deliveries c \
             JOIN deliveries o ON o.customer_id = c.customer_id AND o.product_id = c.product_id \
               AND o.status = 'pending' AND o.version < c.version \
             WHERE (o.lease_until IS NULL OR o.lease_until < ",
        )
        .push_bind(lease)
        .push(") AND c.delivery_id IN (")
        .push_list(claimed.iter().map(String::as_str))
        .push("))");
    }

    /// `column` holds a JSON array of strings, as text.
    /// Timestamps are fixed-width RFC 3339 text: the hour is its first 13 characters.
    fn json_text(column: &str) -> String {
        column.to_owned()
    }

    fn hour_of(column: &str) -> String {
        format!("substr({column}, 1, 13)")
    }

    fn push_json_array_contains<'q>(sql: &mut Sql<'q, Self>, column: &str, value: &'q str) {
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = "
        ))
        .push_bind(value)
        .push(")");
    }

    fn add<'q>(args: &mut Self::Arguments<'q>, value: impl Value<'q>) -> Result<(), BoxDynError> {
        value.add_to_sqlite(args)
    }

    fn begin_write(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>> {
        begin_immediate(pools).boxed()
    }

    /// `BEGIN IMMEDIATE` already runs claims one at a time (one writer), and commits like
    /// any other (WAL with synchronous=NORMAL).
    fn begin_claim(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>> {
        begin_immediate(pools).boxed()
    }

    /// Attempt records commit like any other write.
    fn begin_record(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>> {
        begin_immediate(pools).boxed()
    }

    /// Wake-ups are in-process only (the store's own `Notify`).
    fn signal_deliveries<'c>(
        _: &'c sqlx::Pool<Sqlite>,
        _: &'c str,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        async { Ok(()) }.boxed()
    }

    fn forward_notifications(
        _: &Pools<Self>,
        _: Arc<Notify>,
        _: Arc<str>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'_, ()> {
        async move { shutdown.cancelled().await }.boxed()
    }

    fn migrate(pools: &Pools<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>> {
        MIGRATOR.run(&pools.write).boxed()
    }

    fn migrations() -> usize {
        MIGRATOR.iter().count()
    }

    fn execute<'c, 'q: 'c>(
        conn: &'c mut SqliteConnection,
        sql: Sql<'q, Self>,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
        async move {
            let (text, args) = sql.into_parts()?;
            let done = sqlx::query_with(&text, args).execute(conn).await?;
            Ok(done.rows_affected())
        }
        .boxed()
    }

    fn fetch_rows<'c, 'q: 'c>(
        conn: &'c mut SqliteConnection,
        sql: Sql<'q, Self>,
    ) -> BoxFuture<'c, Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error>> {
        async move {
            let (text, args) = sql.into_parts()?;
            sqlx::query_with(&text, args).fetch_all(conn).await
        }
        .boxed()
    }

    fn decode<R: DecodeRow>(row: &sqlx::sqlite::SqliteRow) -> Result<R, sqlx::Error> {
        R::from_sqlite(row)
    }
}
