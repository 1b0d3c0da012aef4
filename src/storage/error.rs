//! What a storage call can fail with. The source error is kept for the logs; nothing of
//! it (SQL text, constraint names) is meant for a client.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (down, pool exhausted, connection lost), or it
    /// refused the transaction in a way worth a retry (busy, deadlock, serialization).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness or reference rule refused the write.
    #[error("a stored row already holds these values, or a referenced row is gone")]
    Conflict(#[source] sqlx::Error),
    /// A stored value does not read back as its domain type.
    #[error("stored {what} {value:?} is not valid")]
    Corrupt { what: &'static str, value: String },
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, value: &str) -> Self {
        Self::Corrupt {
            what,
            value: value.to_owned(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() =>
            {
                Self::Conflict(err)
            }
            sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => Self::Unavailable(err),
            _ => Self::Database(err),
        }
    }
}

/// Transient refusals worth a retry by the caller: SQLite's SQLITE_BUSY /
/// SQLITE_LOCKED, Postgres' "cannot connect now" family, and a transaction Postgres
/// aborted to break a deadlock or a serialization conflict (or a lock wait timed out).
fn is_busy(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("5" | "6" | "517" | "57P01" | "57P03" | "40P01" | "40001" | "55P03")
    )
}
