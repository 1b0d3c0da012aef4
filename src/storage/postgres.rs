//! The production backend. Several servers may share one database.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("customer-list");
        let pool = PgPoolOptions::new()
            .max_connections(20)
            // A request waiting on an exhausted or unreachable database fails fast with
            // 503 rather than hanging.
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(Self { pool })
    }
}

super::common::sql_store! {
    PostgresStore, sqlx::Postgres, sqlx::PgConnection;

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

async fn begin_write(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
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
