//! Console sessions (SPEC section 9): stored by the hash of their id, read through their
//! key, which must not be revoked.

use super::SqlStore;
use crate::domain::tenancy::ApiKey;
use crate::domain::time::Timestamp;
use crate::storage::dialect::{Dialect, Sql};
use crate::storage::rows::{KeyRow, KEY_COLUMNS};
use crate::storage::time::DbTime;
use crate::storage::{NewSession, SessionStore, StoreResult, StoredSession};
use async_trait::async_trait;

#[derive(sqlx::FromRow)]
struct SessionRow {
    csrf_token: String,
    expires: Timestamp,
    #[sqlx(flatten)]
    key: KeyRow,
}

#[async_trait]
impl<DB: Dialect> SessionStore for SqlStore<DB> {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        Sql::<DB>::new(
            "INSERT INTO console_sessions (session_hash, key_id, csrf_token, created, expires) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.session_hash)
        .bind(session.key_id.as_str())
        .bind(session.csrf_token)
        .bind(DbTime(session.created))
        .bind(DbTime(session.expires))
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn find_session(
        &self,
        session_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<StoredSession>> {
        let columns = KEY_COLUMNS
            .split(", ")
            .map(|c| format!("k.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let row: Option<SessionRow> = Sql::<DB>::new(format!(
            "SELECT s.csrf_token, s.expires, {columns} FROM console_sessions s \
             JOIN api_keys k ON k.key_id = s.key_id \
             WHERE s.session_hash = $1 AND s.expires > $2 AND k.revoked IS NULL"
        ))
        .bind(session_hash)
        .bind(DbTime(now))
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|row| {
            Ok(StoredSession {
                key: ApiKey::try_from(row.key)?,
                csrf_token: row.csrf_token,
                expires: row.expires,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        Sql::<DB>::new("DELETE FROM console_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, ended_before: Timestamp) -> StoreResult<u64> {
        Ok(
            Sql::<DB>::new("DELETE FROM console_sessions WHERE expires <= $1")
                .bind(DbTime(ended_before))
                .execute(&mut *self.write().await?)
                .await?,
        )
    }
}
