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
    /// The database refused a value of the request as data it cannot hold (a character
    /// its encoding lacks, a value past a type's or an index's limit). The edge refuses
    /// such input first; this is the backstop for what slips past it, and the client's
    /// fault, not the hub's.
    #[error("the database cannot store a value of this request")]
    Refused(#[source] sqlx::Error),
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
            sqlx::Error::Database(db) if is_refused_value(db.code().as_deref()) => {
                Self::Refused(err)
            }
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

/// A value the database cannot hold: Postgres' data exceptions (class 22: bad encoding,
/// out-of-range numbers and times, over-long strings) and program limits (class 54: an
/// index row too large); SQLite's SQLITE_TOOBIG and SQLITE_MISMATCH.
fn is_refused_value(code: Option<&str>) -> bool {
    match code {
        Some("18" | "20") => true,
        Some(code) => code.len() == 5 && (code.starts_with("22") || code.starts_with("54")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_the_database_refuses_is_told_apart_from_faults() {
        assert!(is_refused_value(Some("22021")), "invalid byte sequence");
        assert!(is_refused_value(Some("54000")), "index row too large");
        assert!(is_refused_value(Some("18")), "SQLITE_TOOBIG");
        assert!(
            !is_refused_value(Some("42P01")),
            "undefined table is our fault"
        );
        assert!(
            !is_refused_value(Some("23505")),
            "a unique violation is a conflict"
        );
        assert!(!is_refused_value(None));
    }
}
