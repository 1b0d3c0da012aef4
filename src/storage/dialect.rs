//! What differs between the two backends, named once. The shared SQL under `sql/` is
//! generic over a [`Dialect`]; `postgres.rs` and `sqlite.rs` implement it. Everything
//! else (the statements themselves) is written once.
//!
//! sqlx's own generic bounds (`Encode<'q, DB>`, `FromRow<'r, DB::Row>`, executors over
//! `&mut DB::Connection`) cannot be implied by a trait, so they would have to be repeated
//! on every generic function. Instead a bound value is a [`Value`] and a decoded row a
//! [`DecodeRow`]: each proves once, for both drivers, what sqlx asks, and each backend's
//! `Dialect` runs statements with its concrete types.

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Database, Encode, FromRow, Postgres, Sqlite, Type};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A value that either backend can bind as a query parameter.
pub trait Value<'q>: Send + 'q {
    fn add_to_postgres(self, args: &mut PgArguments) -> Result<(), BoxDynError>;
    fn add_to_sqlite(self, args: &mut SqliteArguments<'q>) -> Result<(), BoxDynError>;
}

impl<'q, T> Value<'q> for T
where
    T: Send + 'q + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>,
{
    fn add_to_postgres(self, args: &mut PgArguments) -> Result<(), BoxDynError> {
        args.add(self)
    }

    fn add_to_sqlite(self, args: &mut SqliteArguments<'q>) -> Result<(), BoxDynError> {
        args.add(self)
    }
}

/// A row type that either backend can decode.
pub trait DecodeRow: Sized + Send + Unpin + 'static {
    fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error>;
    fn from_sqlite(row: &SqliteRow) -> Result<Self, sqlx::Error>;
}

impl<R> DecodeRow for R
where
    R: Send + Unpin + 'static + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow>,
{
    fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error> {
        R::from_row(row)
    }

    fn from_sqlite(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        R::from_row(row)
    }
}

pub type Tx<DB> = sqlx::Transaction<'static, DB>;

/// One backend: how it runs a statement, and each SQL difference between the backends.
pub trait Dialect: Database {
    /// `"sqlite"` or `"postgres"`.
    const NAME: &'static str;

    /// Locks the customer row (alias `c`) read for a change, so writers of one customer
    /// queue instead of losing updates.
    const LOCK_CUSTOMER_ROW: &'static str;

    /// Locks the selected delivery rows (alias `d`), skipping rows another transaction
    /// holds: dispatchers share the work, and a writer superseding old deliveries never
    /// waits on a dispatcher (which could wait on the writer: a deadlock).
    const SKIP_LOCKED_DELIVERIES: &'static str;

    /// Locks the selected row of a background job (a backfill), skipping one another
    /// server holds: the holder's transaction is its lease, released if it dies.
    const SKIP_LOCKED_JOB: &'static str;

    /// Closes a correlated `EXISTS` subquery that must run as an index probe per outer
    /// row (`… OFFSET 0)` on Postgres): see each backend.
    const PER_ROW: &'static str;

    /// Whether new customers go in one statement (`insert_customers_at_once`): Postgres'
    /// data-modifying `WITH` fills every table at once; SQLite has none.
    const ONE_STATEMENT_CREATES: bool;

    /// Whether other servers share the database and are told of queued deliveries
    /// (`signal_deliveries`); SQLite's is one process's.
    const SIGNALS_OTHER_SERVERS: bool;

    /// The feed position of now, as `(txid, seq)`: see each backend.
    const FEED_HEAD: &'static str;

    /// Only events a feed reader may see without ever skipping an earlier one (events
    /// alias `e`): see each backend.
    const FEED_VISIBLE: &'static str;

    /// The pending deliveries older than the claimed ones of the same (product,
    /// customer), not leased past `lease`, as `WHERE delivery_id IN (…)`.
    fn push_older_pending<'q>(
        sql: &mut Sql<'q, Self>,
        lease: impl Value<'q>,
        claimed: &'q [String],
    );

    /// The UTC hour of a timestamp column as text, `YYYY-MM-DDTHH` (for grouping by hour).
    fn hour_of(column: &str) -> String;

    /// A JSON column as text (to look for an id anywhere in it with `LIKE`).
    fn json_text(column: &str) -> String;

    /// ` AND <column> contains <value>` for a JSON array of strings.
    fn push_json_array_contains<'q>(sql: &mut Sql<'q, Self>, column: &str, value: &'q str);

    /// Binds one value.
    fn add<'q>(args: &mut Self::Arguments<'q>, value: impl Value<'q>) -> Result<(), BoxDynError>;

    /// A transaction that writes customers or tenants.
    fn begin_write(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>>;

    /// The transaction of a delivery claim: claims run one at a time across servers.
    fn begin_claim(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>>;

    /// The transaction recording delivery attempts.
    fn begin_record(pools: &Pools<Self>) -> BoxFuture<'_, Result<Tx<Self>, sqlx::Error>>;

    /// After the commit of writes that queued deliveries: tells every server.
    fn signal_deliveries<'c>(
        pool: &'c sqlx::Pool<Self>,
        instance: &'c str,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>>;

    /// Forwards other servers' delivery signals to `wakeup` until `shutdown`.
    fn forward_notifications(
        pools: &Pools<Self>,
        wakeup: Arc<Notify>,
        instance: Arc<str>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'_, ()>;

    /// Applies the embedded migrations.
    fn migrate(pools: &Pools<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>>;

    /// How many migrations this build embeds.
    fn migrations() -> usize;

    fn execute<'c, 'q: 'c>(
        conn: &'c mut Self::Connection,
        sql: Sql<'q, Self>,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>>;

    /// Every row of a statement.
    fn fetch_rows<'c, 'q: 'c>(
        conn: &'c mut Self::Connection,
        sql: Sql<'q, Self>,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;

    fn decode<R: DecodeRow>(row: &Self::Row) -> Result<R, sqlx::Error>;
}

/// A backend's connection pools: readers, and the pool writes go through (on SQLite its
/// single connection; on Postgres the same pool).
pub struct Pools<DB: Database> {
    pub read: sqlx::Pool<DB>,
    pub write: sqlx::Pool<DB>,
}

/// One SQL statement and its bound values. Either written with `$N` placeholders and
/// `bind` (values in order), or assembled with `push` and `push_bind` (placeholders in
/// the backend's own syntax); never both in one statement.
pub struct Sql<'q, DB: Database> {
    text: String,
    args: DB::Arguments<'q>,
    /// The first value that failed to bind, reported when the statement runs.
    error: Option<BoxDynError>,
}

impl<'q, DB: Dialect> Sql<'q, DB> {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Default::default(),
            error: None,
        }
    }

    /// Binds the next `$N` of the text. A statement uses `$N` with `bind`, or
    /// `push_bind`/`push_list` alone, never both: SQLite numbers each pushed `?` after the
    /// highest `?N` so far, not after named `$N` ones, so mixed they bind the wrong values.
    pub fn bind(mut self, value: impl Value<'q>) -> Self {
        self.add(value);
        self
    }

    fn add(&mut self, value: impl Value<'q>) {
        if let Err(err) = DB::add(&mut self.args, value) {
            self.error.get_or_insert(err);
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds a value where the text now ends.
    pub fn push_bind(&mut self, value: impl Value<'q>) -> &mut Self {
        self.add(value);
        // Writing to a String cannot fail.
        let _ = self.args.format_placeholder(&mut self.text);
        self
    }

    /// Binds each value, separated by commas (for `IN (…)`).
    pub fn push_list<V: Value<'q>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_bind(value);
        }
        self
    }

    /// `VALUES (…), (…)`: one row per item, its values bound by `row`.
    pub fn push_values<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut row: impl FnMut(&mut Row<'_, 'q, DB>, I),
    ) -> &mut Self {
        self.text.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_tuple(item, &mut row);
        }
        self
    }

    /// `(…)`: one row value, its values bound by `row`.
    pub fn push_tuple<I>(
        &mut self,
        item: I,
        row: impl FnOnce(&mut Row<'_, 'q, DB>, I),
    ) -> &mut Self {
        self.text.push('(');
        row(
            &mut Row {
                sql: self,
                first: true,
            },
            item,
        );
        self.text.push(')');
        self
    }

    pub async fn execute(self, conn: &mut DB::Connection) -> Result<u64, sqlx::Error> {
        DB::execute(conn, self).await
    }

    pub async fn fetch_all<R: DecodeRow>(
        self,
        conn: &mut DB::Connection,
    ) -> Result<Vec<R>, sqlx::Error> {
        let rows = DB::fetch_rows(conn, self).await?;
        rows.iter().map(DB::decode).collect()
    }

    pub async fn fetch_optional<R: DecodeRow>(
        self,
        conn: &mut DB::Connection,
    ) -> Result<Option<R>, sqlx::Error> {
        // Used for statements of at most one row.
        let rows = DB::fetch_rows(conn, self).await?;
        rows.first().map(DB::decode).transpose()
    }

    pub async fn fetch_one<R: DecodeRow>(
        self,
        conn: &mut DB::Connection,
    ) -> Result<R, sqlx::Error> {
        self.fetch_optional(conn)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The first column of every row.
    pub async fn scalars<T>(self, conn: &mut DB::Connection) -> Result<Vec<T>, sqlx::Error>
    where
        (T,): DecodeRow,
    {
        let rows: Vec<(T,)> = self.fetch_all(conn).await?;
        Ok(rows.into_iter().map(|(value,)| value).collect())
    }

    /// The first column of the first row, if any.
    pub async fn scalar_optional<T>(
        self,
        conn: &mut DB::Connection,
    ) -> Result<Option<T>, sqlx::Error>
    where
        (T,): DecodeRow,
    {
        let row: Option<(T,)> = self.fetch_optional(conn).await?;
        Ok(row.map(|(value,)| value))
    }

    /// The first column of the one row.
    pub async fn scalar<T>(self, conn: &mut DB::Connection) -> Result<T, sqlx::Error>
    where
        (T,): DecodeRow,
    {
        let (value,): (T,) = self.fetch_one(conn).await?;
        Ok(value)
    }

    /// The statement's text and values, for a backend to run.
    pub(crate) fn into_parts(self) -> Result<(String, DB::Arguments<'q>), sqlx::Error> {
        match self.error {
            Some(err) => Err(sqlx::Error::Encode(err)),
            None => Ok((self.text, self.args)),
        }
    }
}

/// One row of a `VALUES` list.
pub struct Row<'s, 'q, DB: Database> {
    sql: &'s mut Sql<'q, DB>,
    first: bool,
}

impl<'q, DB: Dialect> Row<'_, 'q, DB> {
    pub fn bind(&mut self, value: impl Value<'q>) -> &mut Self {
        if !self.first {
            self.sql.text.push_str(", ");
        }
        self.first = false;
        self.sql.push_bind(value);
        self
    }
}
