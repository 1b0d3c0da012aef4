//! The production backend. Several servers may share one database.

use super::dialect::{DecodeRow, Dialect, Pools, Sql, Tx, Value};
use super::sql::SqlStore;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, Postgres};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub type PostgresStore = SqlStore<Postgres>;

pub fn connect(url: &str) -> anyhow::Result<PostgresStore> {
    let options = PgConnectOptions::from_str(url)?.application_name("customer-list");
    let pool = PgPoolOptions::new()
        .max_connections(20)
        // A request waiting on an exhausted or unreachable database fails fast with
        // 503 rather than hanging (SPEC: no hangs while the database is down).
        .acquire_timeout(Duration::from_millis(800))
        .connect_lazy_with(options);
    // Writes share the one pool: Postgres handles concurrent writers itself.
    Ok(SqlStore::new(Pools {
        read: pool.clone(),
        write: pool,
    }))
}

const DELIVERY_CHANNEL: &str = "customer_list_deliveries";

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

async fn begin_running(
    pools: &Pools<Postgres>,
    statement: &'static str,
) -> Result<Tx<Postgres>, sqlx::Error> {
    let mut tx = pools.write.begin().await?;
    sqlx::query(statement).execute(&mut *tx).await?;
    Ok(tx)
}

impl Dialect for Postgres {
    const NAME: &'static str = "postgres";

    const LOCK_CUSTOMER_ROW: &'static str = " FOR UPDATE OF c";

    const SKIP_LOCKED_DELIVERIES: &'static str = " FOR UPDATE OF d SKIP LOCKED";

    const SKIP_LOCKED_JOB: &'static str = " FOR UPDATE SKIP LOCKED";

    /// `OFFSET 0` keeps an `EXISTS` a per-row subplan. Flattened into an anti-join, its
    /// plan follows the statistics, and statistics taken while few deliveries were
    /// pending (a backfill then adds 100,000 at once) made the planner scan the whole
    /// pending index for every candidate row: 1,042 ms per snapshot claim, 1.2 ms as a
    /// subplan, on the bench database.
    const PER_ROW: &'static str = " OFFSET 0)";

    const ONE_STATEMENT_CREATES: bool = true;
    const SIGNALS_OTHER_SERVERS: bool = true;

    /// Just before the oldest running transaction: every event the feed shows later is of
    /// a transaction that was running or had not begun (its txid is at least that one).
    const FEED_HEAD: &'static str =
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1, 9223372036854775807";

    /// Only events of transactions older than every running one: no later commit can add
    /// an event before them, so a feed reader's cursor never skips one.
    const FEED_VISIBLE: &'static str =
        " AND e.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

    /// A `LATERAL` join kept one by `OFFSET 0`, so the claimed rows drive it whatever the
    /// planner believes about how many are pending: with stale statistics it drove the
    /// join from every pending row (29 ms per claim at 5,586), and a plain `LATERAL` is
    /// flattened into that same join (15 ms at 2,000 pending snapshots; 0.12 ms kept).
    fn push_older_pending<'q>(
        sql: &mut Sql<'q, Self>,
        lease: impl Value<'q>,
        claimed: &'q [String],
    ) {
        sql.push(
            " WHERE delivery_id IN (SELECT older.delivery_id FROM deliveries c CROSS JOIN LATERAL \
             (SELECT o.delivery_id FROM deliveries o WHERE o.customer_id = c.customer_id \
               AND o.product_id = c.product_id AND o.status = 'pending' AND o.version < c.version \
               AND (o.lease_until IS NULL OR o.lease_until < ",
        )
        .push_bind(lease)
        .push(") OFFSET 0) older WHERE c.delivery_id IN (")
        .push_list(claimed.iter().map(String::as_str))
        .push("))");
    }

    /// `@>`, served by the column's GIN index.
    fn json_text(column: &str) -> String {
        format!("{column}::text")
    }

    fn hour_of(column: &str) -> String {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')")
    }

    fn push_json_array_contains<'q>(sql: &mut Sql<'q, Self>, column: &str, value: &'q str) {
        sql.push(&format!(" AND {column} @> "))
            .push_bind(sqlx::types::Json(serde_json::json!([value])));
    }

    fn add<'q>(args: &mut Self::Arguments<'q>, value: impl Value<'q>) -> Result<(), BoxDynError> {
        value.add_to_postgres(args)
    }

    fn begin_write(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>> {
        pools.write.begin().boxed()
    }

    fn begin_claim(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>> {
        begin_running(pools, RELAX_COMMIT_AND_LOCK_CLAIMS).boxed()
    }

    fn begin_record(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>> {
        begin_running(pools, RELAX_COMMIT).boxed()
    }

    /// `NOTIFY` every server, in a transaction of its own and after the commit of the
    /// writes it announces, committed without waiting for the WAL flush. A `NOTIFY`
    /// holds the database's notification lock from its commit until the flush: inside
    /// each create's transaction it serialized every create's commit (measured: the
    /// create waiting on `Lock:object`). The payload names the store that sent it.
    fn signal_deliveries<'c>(
        pool: &'c sqlx::Pool<Postgres>,
        instance: &'c str,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        async move {
            sqlx::query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)")
                .bind(DELIVERY_CHANNEL)
                .bind(instance)
                .execute(pool)
                .await?;
            Ok(())
        }
        .boxed()
    }

    /// `LISTEN`s for other servers' deliveries and wakes this one's dispatcher. The
    /// listener reconnects by itself after a lost connection; the dispatcher's periodic
    /// sweep covers the gap.
    fn forward_notifications(
        pools: &Pools<Self>,
        wakeup: Arc<Notify>,
        instance: Arc<str>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'_, ()> {
        async move {
            loop {
                let listener = async {
                    let mut listener =
                        sqlx::postgres::PgListener::connect_with(&pools.read).await?;
                    listener.listen(DELIVERY_CHANNEL).await?;
                    loop {
                        // Its own signals: the dispatcher was woken when they were sent.
                        if listener.recv().await?.payload() != &*instance {
                            wakeup.notify_one();
                        }
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
        .boxed()
    }

    fn migrate(pools: &Pools<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>> {
        MIGRATOR.run(&pools.write).boxed()
    }

    fn migrations() -> usize {
        MIGRATOR.iter().count()
    }

    fn execute<'c, 'q: 'c>(
        conn: &'c mut PgConnection,
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
        conn: &'c mut PgConnection,
        sql: Sql<'q, Self>,
    ) -> BoxFuture<'c, Result<Vec<sqlx::postgres::PgRow>, sqlx::Error>> {
        async move {
            let (text, args) = sql.into_parts()?;
            sqlx::query_with(&text, args).fetch_all(conn).await
        }
        .boxed()
    }

    fn decode<R: DecodeRow>(row: &sqlx::postgres::PgRow) -> Result<R, sqlx::Error> {
        R::from_postgres(row)
    }
}
