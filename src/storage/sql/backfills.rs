//! Backfills (SPEC section 11): a job row per (account, product) backfill, and the
//! snapshot deliveries it queues. A chunk is one transaction that holds the job's row
//! (Postgres: `FOR UPDATE SKIP LOCKED`; SQLite: the write lock), reads the next live
//! customers by the live-by-created index after the job's keyset, queues one snapshot
//! delivery each (id `<backfill>.<customer>`, so a chunk written twice queues nothing
//! twice) and moves the keyset: a server that dies mid-chunk rolls it back whole, and
//! whichever server dispatches next resumes from the last chunk written.

use super::{Queued, SqlStore};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, ProductId};
use crate::storage::dialect::{Dialect, Sql, Tx};
use crate::storage::time::DbTime;
use crate::storage::{BackfillStore, BackfillView, StoreResult};
use async_trait::async_trait;

#[derive(sqlx::FromRow)]
struct JobRow {
    backfill_id: String,
    account_id: String,
    product_id: String,
    queued_created: Option<Timestamp>,
    queued_id: Option<String>,
    started: Timestamp,
}

const BACKFILL_COLUMNS: &str =
    "b.backfill_id, b.product_id, b.status, b.total, b.started, b.completed";

#[async_trait]
impl<DB: Dialect> BackfillStore for SqlStore<DB> {
    fn backfill_wakeup(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.backfill_wakeup.clone()
    }

    async fn start_backfill(
        &self,
        account: &AccountId,
        product: &ProductId,
        backfill_id: &str,
        now: Timestamp,
    ) -> StoreResult<BackfillView> {
        let mut tx = self.begin_write().await?;
        let id = open_backfill(&mut tx, account, product, backfill_id, now).await?;
        tx.commit().await?;
        self.backfill_wakeup.notify_one();
        let mut views = self.backfill_views("b.backfill_id = ", &id).await?;
        views.pop().ok_or(sqlx::Error::RowNotFound.into())
    }

    async fn cancel_backfills(
        &self,
        account: &AccountId,
        product: &ProductId,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = Sql::<DB>::new(
            "UPDATE backfills SET status = 'cancelled', completed = $3 \
             WHERE account_id = $1 AND product_id = $2 AND status = 'running' \
             RETURNING backfill_id",
        )
        .bind(account.as_str())
        .bind(product.as_str())
        .bind(DbTime(now))
        .scalars(&mut tx)
        .await?;
        if !ids.is_empty() {
            let mut cancel =
                Sql::<DB>::new("UPDATE deliveries SET status = 'superseded', updated = ");
            cancel
                .push_bind(DbTime(now))
                .push(" WHERE status = 'pending' AND backfill_id IN (")
                .push_list(ids.iter().map(String::as_str))
                .push(")");
            cancel.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn queue_backfill_chunk(
        &self,
        now: Timestamp,
        chunk: i64,
        max_pending: i64,
    ) -> StoreResult<Option<u64>> {
        let mut tx = self.begin_write().await?;
        // The oldest running backfill with room for another chunk, that no other server
        // is queuing.
        let job: Option<JobRow> = Sql::<DB>::new(format!(
            "SELECT b.backfill_id, b.account_id, b.product_id, b.queued_created, b.queued_id, \
             b.started \
             FROM backfills b WHERE b.status = 'running' AND b.all_queued = $1 \
               AND (SELECT COUNT(*) FROM deliveries d WHERE d.backfill_id = b.backfill_id \
                    AND d.status = 'pending') < $2 \
             ORDER BY b.started LIMIT 1{}",
            DB::SKIP_LOCKED_JOB
        ))
        .bind(false)
        .bind(max_pending)
        .fetch_optional(&mut tx)
        .await?;
        let Some(job) = job else {
            tx.commit().await?;
            return Ok(None);
        };
        // The next live customers after the keyset (by the live-by-created index)...
        let mut next =
            Sql::<DB>::new("SELECT c.customer_id, c.created FROM customers c WHERE c.scope = ");
        next.push_bind(job.account_id.as_str())
            .push(" AND c.status = 'live'");
        if let (Some(created), Some(id)) = (&job.queued_created, &job.queued_id) {
            next.push(" AND (c.created, c.customer_id) > (")
                .push_bind(DbTime(*created))
                .push(", ")
                .push_bind(id.as_str())
                .push(")");
        }
        next.push(" ORDER BY c.created, c.customer_id LIMIT ")
            .push_bind(chunk);
        let customers: Vec<(String, Timestamp)> = next.fetch_all(&mut tx).await?;
        // ...each queued as a snapshot of its current version, unless the product has or
        // will have that version anyway since the backfill started: a live delivery of it
        // (or newer) queued since is pending or delivered, or the product made that
        // version itself since. So a product activated while others write receives each
        // customer once, live or as a snapshot; a resync (the product lost its data) sends
        // everything it had before.
        let mut queued = 0;
        if !customers.is_empty() {
            // Every value by push_bind: SQLite numbers a `?` after the highest `?N` so
            // far, not after named `$N`, so the two must not mix in one statement.
            let (id, product, at) = (
                job.backfill_id.as_str(),
                job.product_id.as_str(),
                DbTime(now),
            );
            let mut insert = Sql::<DB>::new(
                "INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, \
                 event_seq, version, status, attempts, next_attempt, lease_until, created, \
                 updated, backfill_id) SELECT ",
            );
            insert
                .push_bind(id)
                .push(" || '.' || c.customer_id, ")
                .push_bind(product)
                .push(", c.account_id, c.customer_id, NULL, c.version, 'pending', 0, ")
                .push_bind(at)
                .push(", NULL, ")
                .push_bind(at)
                .push(", ")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(
                    " FROM customers c WHERE c.status = 'live' \
                     AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.product_id = ",
                )
                .push_bind(product)
                .push(
                    " AND o.customer_id = c.customer_id AND o.backfill_id IS NULL \
                     AND o.status IN ('pending', 'delivered') AND o.version >= c.version \
                     AND o.created >= ",
                )
                .push_bind(DbTime(job.started))
                .push(DB::PER_ROW)
                .push(
                    " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.customer_id \
                     AND e.version = c.version AND e.origin_product_id = ",
                )
                .push_bind(product)
                .push(" AND e.created >= ")
                .push_bind(DbTime(job.started))
                .push(DB::PER_ROW)
                .push(" AND c.customer_id IN (")
                .push_list(customers.iter().map(|(id, _)| id.as_str()))
                .push(") ON CONFLICT DO NOTHING");
            queued = insert.execute(&mut tx).await?;
        }
        let last = customers.last();
        Sql::<DB>::new(
            "UPDATE backfills SET queued = queued + $2, \
             queued_created = COALESCE($3, queued_created), queued_id = COALESCE($4, queued_id), \
             all_queued = $5, total = CASE WHEN $5 THEN queued + $2 ELSE total END \
             WHERE backfill_id = $1",
        )
        .bind(job.backfill_id.as_str())
        .bind(queued as i64)
        .bind(last.map(|(_, created)| DbTime(*created)))
        .bind(last.map(|(id, _)| id.as_str()))
        .bind((customers.len() as i64) < chunk)
        .execute(&mut tx)
        .await?;
        let signal = Queued {
            events: 0,
            deliveries: queued as u64,
        };
        tx.commit().await?;
        self.committed(signal);
        Ok(Some(queued))
    }

    async fn settle_backfills(&self, now: Timestamp) -> StoreResult<u64> {
        Ok(Sql::<DB>::new(format!(
            "UPDATE backfills SET status = 'completed', completed = $1 \
             WHERE status = 'running' AND all_queued = $2 \
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.backfill_id = backfills.backfill_id \
                   AND d.status = 'pending'{}",
            DB::PER_ROW
        ))
        .bind(DbTime(now))
        .bind(true)
        .execute(&mut *self.write().await?)
        .await?)
    }

    async fn latest_backfills(&self, account: &AccountId) -> StoreResult<Vec<BackfillView>> {
        self.backfill_views(
            "b.started = (SELECT MAX(n.started) FROM backfills n \
             WHERE n.account_id = b.account_id AND n.product_id = b.product_id) \
             AND b.account_id = ",
            account.as_str(),
        )
        .await
    }

    async fn backfill_stats(&self) -> StoreResult<(i64, i64)> {
        Ok(Sql::<DB>::new(
            "SELECT (SELECT COUNT(*) FROM backfills WHERE status = 'running'), \
                    (SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND backfill_id IS NOT NULL)",
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }
}

/// In `tx`: the pair's running backfill, or a new one with id `backfill_id` over the
/// account's live customers. Returns the backfill's id. Callers signal
/// `backfill_wakeup` after the commit.
pub(super) async fn open_backfill<DB: Dialect>(
    tx: &mut Tx<DB>,
    account: &AccountId,
    product: &ProductId,
    backfill_id: &str,
    now: Timestamp,
) -> StoreResult<String> {
    let running: Option<String> = Sql::<DB>::new(
        "SELECT backfill_id FROM backfills \
         WHERE account_id = $1 AND product_id = $2 AND status = 'running'",
    )
    .bind(account.as_str())
    .bind(product.as_str())
    .scalar_optional(&mut *tx)
    .await?;
    Ok(match running {
        Some(id) => id,
        None => {
            let total: i64 = Sql::<DB>::new(
                "SELECT COUNT(*) FROM customers WHERE scope = $1 AND status = 'live'",
            )
            .bind(account.as_str())
            .scalar(&mut *tx)
            .await?;
            Sql::<DB>::new(
                "INSERT INTO backfills (backfill_id, account_id, product_id, status, total, \
                 queued, queued_created, queued_id, all_queued, started, completed) \
                 VALUES ($1, $2, $3, 'running', $4, 0, NULL, NULL, $5, $6, NULL)",
            )
            .bind(backfill_id)
            .bind(account.as_str())
            .bind(product.as_str())
            .bind(total)
            .bind(false)
            .bind(DbTime(now))
            .execute(&mut *tx)
            .await?;
            backfill_id.to_owned()
        }
    })
}

impl<DB: Dialect> SqlStore<DB> {
    /// The backfills `filter` (ending in a bound value) selects, each with the snapshots
    /// it delivered, counted by the (backfill, status) index.
    async fn backfill_views(&self, filter: &str, value: &str) -> StoreResult<Vec<BackfillView>> {
        let mut sql = Sql::<DB>::new(format!(
            "SELECT {BACKFILL_COLUMNS}, (SELECT COUNT(*) FROM deliveries d \
               WHERE d.backfill_id = b.backfill_id AND d.status = 'delivered') AS sent \
             FROM backfills b WHERE {filter}"
        ));
        sql.push_bind(value);
        let rows: Vec<(
            String,
            String,
            String,
            i64,
            Timestamp,
            Option<Timestamp>,
            i64,
        )> = sql.fetch_all(&mut *self.read().await?).await?;
        Ok(rows
            .into_iter()
            .map(
                |(backfill_id, product_id, status, total, started, completed, sent)| BackfillView {
                    backfill_id,
                    product_id,
                    status,
                    total,
                    sent,
                    started: Some(started),
                    completed,
                },
            )
            .collect())
    }
}
