//! The embedded default: one SQLite file in WAL mode, owned by one server process.

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: sqlx::SqlitePool,
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
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
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

/// Write transactions take SQLite's write lock up front (`BEGIN IMMEDIATE`), so two
/// writers queue on the busy timeout instead of deadlocking on a lock upgrade.
async fn begin_write(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
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

/// One process owns dispatch on SQLite: no row locks to skip.
const CLAIM_LOCK: &str = "";

/// Writers are serialized, so seq order is commit order: every event is visible.
const FEED_VISIBLE: &str = "";

/// Wake-ups are in-process only (`Store::delivery_wakeup`).
async fn signal_deliveries(_: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
    Ok(())
}

async fn forward_notifications(
    _: &sqlx::SqlitePool,
    _: &tokio::sync::Notify,
    shutdown: tokio_util::sync::CancellationToken,
) {
    shutdown.cancelled().await
}
