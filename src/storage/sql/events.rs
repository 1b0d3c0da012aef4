//! Events: written in the transaction of the change they record, each queueing its
//! deliveries; read back as a product's feed; forgotten after 30 days.

use super::customers::ROW_CHUNK;
use super::{Queued, SqlStore};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, CustomerId, ProductId};
use crate::storage::dialect::{Dialect, Sql, Tx};
use crate::storage::time::DbTime;
use crate::storage::{CustomerEvent, EventStore, FeedEvent, NewEvent, StoreResult};
use async_trait::async_trait;
use sqlx::types::Json;

pub(super) const INSERT_EVENT_HEAD: &str =
    "INSERT INTO events (event_id, account_id, customer_id, \
    type, version, origin_product_id, data, vendor_ids, created) ";

#[derive(sqlx::FromRow)]
struct FeedRow {
    txid: i64,
    seq: i64,
    event_id: String,
    r#type: String,
    data: Json<serde_json::Value>,
    vendor_ids: Json<serde_json::Value>,
    created: Timestamp,
}

#[derive(sqlx::FromRow)]
struct CustomerEventRow {
    event_id: String,
    r#type: String,
    version: i64,
    origin_product_id: Option<String>,
    origin_name: Option<String>,
    data: Json<serde_json::Value>,
    created: Timestamp,
}

#[async_trait]
impl<DB: Dialect> EventStore for SqlStore<DB> {
    async fn feed(
        &self,
        product: &ProductId,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<FeedEvent>> {
        let rows: Vec<FeedRow> = Sql::<DB>::new(format!(
            "SELECT e.txid, e.seq, e.event_id, e.type, e.data, e.vendor_ids, e.created FROM events e \
             JOIN activations a ON a.account_id = e.account_id AND a.product_id = $1 AND a.sync = 'two_way' \
             WHERE (e.txid, e.seq) > ($2, $3) \
               AND (e.origin_product_id IS NULL OR e.origin_product_id <> $1){} \
             ORDER BY e.txid, e.seq LIMIT $4",
            DB::FEED_VISIBLE
        ))
        .bind(product.as_str())
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FeedEvent {
                position: (r.txid, r.seq),
                event_id: r.event_id,
                event_type: r.r#type,
                data: r.data.0,
                vendor_ids: r.vendor_ids.0,
                created: r.created,
            })
            .collect())
    }

    async fn feed_head(&self) -> StoreResult<(i64, i64)> {
        Ok(Sql::<DB>::new(DB::FEED_HEAD)
            .fetch_one(&mut *self.read().await?)
            .await?)
    }

    async fn customer_events(
        &self,
        account: &AccountId,
        customer: &CustomerId,
        limit: i64,
    ) -> StoreResult<Vec<CustomerEvent>> {
        let rows: Vec<CustomerEventRow> = Sql::<DB>::new(
            "SELECT e.event_id, e.type, e.version, e.origin_product_id, p.name AS origin_name, \
             e.data, e.created \
             FROM events e LEFT JOIN products p ON p.product_id = e.origin_product_id \
             WHERE e.customer_id = $1 AND e.account_id = $2 ORDER BY e.seq DESC LIMIT $3",
        )
        .bind(customer.as_str())
        .bind(account.as_str())
        .bind(limit)
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CustomerEvent {
                event_id: r.event_id,
                event_type: r.r#type,
                version: r.version,
                origin_product_id: r.origin_product_id,
                origin_name: r.origin_name,
                data: r.data.0,
                created: r.created,
            })
            .collect())
    }

    async fn purge_history(&self, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let mut removed = 0;
        for statement in [
            "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE created < $1)",
            "DELETE FROM deliveries WHERE created < $1",
            "DELETE FROM events WHERE created < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)",
        ] {
            removed += Sql::<DB>::new(statement)
                .bind(DbTime(before))
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}

/// Which activated products an event goes to (with an enabled webhook, never back to the
/// product that caused it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Receivers {
    /// Those activated two-way: every change.
    TwoWay,
    /// Those activated either way: `customer.erased`, which one-way products must hear too.
    AnyMode,
}

/// Writes an event with a snapshot of every product's id for the customer, and queues
/// its deliveries.
pub(super) async fn insert_event<DB: Dialect>(
    tx: &mut Tx<DB>,
    e: &NewEvent,
    receivers: Receivers,
) -> StoreResult<Queued> {
    let vendor_ids: Vec<(String, String)> = Sql::<DB>::new(
        "SELECT product_id, vendor_customer_id FROM associations WHERE customer_id = $1",
    )
    .bind(e.customer_id.as_str())
    .fetch_all(tx)
    .await?;
    let vendor_ids: serde_json::Map<String, serde_json::Value> = vendor_ids
        .into_iter()
        .map(|(p, v)| (p, serde_json::Value::String(v)))
        .collect();
    let vendor_ids = serde_json::Value::Object(vendor_ids);
    let mut insert = Sql::<DB>::new(INSERT_EVENT_HEAD);
    insert.push_values([(e, &vendor_ids)], |row, (e, vendor_ids)| {
        push_event(row, e, vendor_ids)
    });
    insert.execute(tx).await?;
    // A first version has no older delivery to supersede.
    let supersede_at = (e.version > 1).then_some(e.created);
    let deliveries =
        enqueue_deliveries(tx, &[e.event_id.as_str()], supersede_at, receivers).await?;
    Ok(Queued {
        events: 1,
        deliveries,
    })
}

/// Writes the events of new customers (each with its creator's id as its only vendor
/// id) and queues their deliveries, in multi-row statements.
pub(super) async fn insert_new_customer_events<DB: Dialect>(
    tx: &mut Tx<DB>,
    events: &[(&NewEvent, serde_json::Value)],
) -> StoreResult<Queued> {
    let mut queued = Queued::default();
    for chunk in events.chunks(ROW_CHUNK) {
        let mut insert = Sql::<DB>::new(INSERT_EVENT_HEAD);
        insert.push_values(chunk, |row, (e, vendor_ids)| push_event(row, e, vendor_ids));
        insert.execute(tx).await?;
        let ids: Vec<&str> = chunk.iter().map(|(e, _)| e.event_id.as_str()).collect();
        // New customers: no older delivery of theirs to supersede.
        queued += Queued {
            events: chunk.len(),
            deliveries: enqueue_deliveries(tx, &ids, None, Receivers::TwoWay).await?,
        };
    }
    Ok(queued)
}

pub(super) fn push_event<'q, DB: Dialect>(
    row: &mut crate::storage::dialect::Row<'_, 'q, DB>,
    e: &'q NewEvent,
    vendor_ids: &'q serde_json::Value,
) {
    row.bind(e.event_id.as_str())
        .bind(e.account_id.as_str())
        .bind(e.customer_id.as_str())
        .bind(e.kind)
        .bind(e.version)
        .bind(e.origin.as_ref().map(ProductId::as_str))
        .bind(Json(&e.data))
        .bind(Json(vendor_ids))
        .bind(DbTime(e.created));
}

/// `INSERT INTO deliveries … SELECT … WHERE …`: a delivery of each event of `events` (a
/// table or a statement's `RETURNING` rows, alias `e`) to every product activated on its
/// account (two-way, or either mode) with an enabled webhook, except the product that
/// caused it. Callers add conditions with `AND`.
pub(super) fn fan_out(events: &str, receivers: Receivers) -> String {
    let modes = match receivers {
        Receivers::TwoWay => "a.sync = 'two_way'",
        Receivers::AnyMode => "a.sync IN ('two_way', 'one_way')",
    };
    format!(
        "INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, \
         version, status, attempts, next_attempt, lease_until, created, updated) \
         SELECT e.event_id || '.' || a.product_id, a.product_id, e.account_id, e.customer_id, \
         e.seq, e.version, 'pending', 0, e.created, NULL, e.created, e.created \
         FROM {events} e \
         JOIN activations a ON a.account_id = e.account_id AND {modes} \
         JOIN products p ON p.product_id = a.product_id \
           AND p.webhook_url IS NOT NULL AND p.webhook_status = 'enabled' \
         WHERE (e.origin_product_id IS NULL OR a.product_id <> e.origin_product_id)"
    )
}

/// Queues a delivery of each event to every product activated two-way on its account
/// with an enabled webhook, except the product that caused it; with `supersede_at`,
/// supersedes (at that time) older pending deliveries of the same (product, customer).
async fn enqueue_deliveries<DB: Dialect>(
    tx: &mut Tx<DB>,
    event_ids: &[&str],
    supersede_at: Option<Timestamp>,
    receivers: Receivers,
) -> StoreResult<u64> {
    if event_ids.is_empty() {
        return Ok(0);
    }
    let mut insert = Sql::<DB>::new(format!(
        "{} AND e.event_id IN (",
        fan_out("events", receivers)
    ));
    insert.push_list(event_ids.iter().copied()).push(")");
    let queued = insert.execute(tx).await?;
    if queued == 0 {
        return Ok(0);
    }
    if let Some(now) = supersede_at {
        // Rows a dispatcher holds are skipped, not waited for: its claim supersedes them
        // itself, and a stale pending row is never claimed while a newer one is pending.
        let mut supersede =
            Sql::<DB>::new("UPDATE deliveries SET status = 'superseded', updated = ");
        supersede
            .push_bind(DbTime(now))
            .push(
                " WHERE delivery_id IN (SELECT d.delivery_id FROM deliveries d \
                 WHERE d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until < ",
            )
            .push_bind(DbTime(now))
            .push(") AND d.customer_id IN (SELECT customer_id FROM events WHERE event_id IN (")
            .push_list(event_ids.iter().copied())
            .push(
                ")) AND EXISTS (SELECT 1 FROM deliveries n WHERE n.product_id = d.product_id \
                 AND n.customer_id = d.customer_id AND n.status = 'pending' \
                 AND n.version > d.version)",
            )
            .push(DB::SKIP_LOCKED_DELIVERIES)
            .push(")");
        supersede.execute(tx).await?;
    }
    Ok(queued)
}
