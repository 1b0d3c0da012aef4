//! Stored responses of requests sent with an `Idempotency-Key`.

use super::SqlStore;
use crate::domain::time::Timestamp;
use crate::storage::dialect::{Dialect, Sql};
use crate::storage::time::DbTime;
use crate::storage::{IdempotencyClaim, IdempotencyState, IdempotencyStore, StoreResult};
use async_trait::async_trait;
use sqlx::types::Json;

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    status: Option<i32>,
    response: Option<Json<serde_json::Value>>,
}

#[async_trait]
impl<DB: Dialect> IdempotencyStore for SqlStore<DB> {
    async fn idempotency_begin(&self, c: IdempotencyClaim<'_>) -> StoreResult<IdempotencyState> {
        let mut tx = self.begin_write().await?;
        Sql::<DB>::new(
            "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2 \
             AND (created < $3 OR (status IS NULL AND created < $4))",
        )
        .bind(c.principal)
        .bind(c.key)
        .bind(DbTime(c.expired_before))
        .bind(DbTime(c.abandoned_before))
        .execute(&mut tx)
        .await?;
        let claimed: Option<String> = Sql::<DB>::new(
            "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, created) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING request_hash",
        )
        .bind(c.principal)
        .bind(c.key)
        .bind(c.request_hash)
        .bind(DbTime(c.now))
        .scalar_optional(&mut tx)
        .await?;
        let state = if claimed.is_some() {
            IdempotencyState::Started
        } else {
            let row: KeyRow = Sql::<DB>::new(
                "SELECT request_hash, status, response FROM idempotency_keys \
                 WHERE principal = $1 AND idempotency_key = $2",
            )
            .bind(c.principal)
            .bind(c.key)
            .fetch_one(&mut tx)
            .await?;
            match (row.status, row.response) {
                (Some(status), Some(response)) => IdempotencyState::Completed {
                    request_hash: row.request_hash,
                    status: status as u16,
                    response: response.0,
                },
                _ => IdempotencyState::InProgress {
                    request_hash: row.request_hash,
                },
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    async fn idempotency_finish(
        &self,
        principal: &str,
        key: &str,
        status: u16,
        response: &serde_json::Value,
    ) -> StoreResult<()> {
        Sql::<DB>::new(
            "UPDATE idempotency_keys SET status = $3, response = $4 \
             WHERE principal = $1 AND idempotency_key = $2",
        )
        .bind(principal)
        .bind(key)
        .bind(i32::from(status))
        .bind(Json(response))
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn idempotency_release(&self, principal: &str, key: &str) -> StoreResult<()> {
        Sql::<DB>::new(
            "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2",
        )
        .bind(principal)
        .bind(key)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn idempotency_purge(&self, before: Timestamp) -> StoreResult<u64> {
        Ok(
            Sql::<DB>::new("DELETE FROM idempotency_keys WHERE created < $1")
                .bind(DbTime(before))
                .execute(&mut *self.write().await?)
                .await?,
        )
    }
}
