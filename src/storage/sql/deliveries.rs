//! Webhook deliveries: the dispatcher's claims and attempt records, the delivery log,
//! and the webhook's state on its product.

use super::{push_keyset_bound, Queued, SqlStore};
use crate::domain::tenants::{BREAKER_FAILURES, PROBE_FIRST_S, PROBE_MAX_S};
use crate::domain::time::Timestamp;
use crate::domain::wire::CUSTOMER_SNAPSHOT;
use crate::domain::{AccountId, CustomerId, ProductId};
use crate::storage::dialect::{Dialect, Sql, Tx};
use crate::storage::rows::{CustomerRow, CUSTOMER_COLUMNS};
use crate::storage::time::DbTime;
use crate::storage::StoredCustomer;
use crate::storage::{
    AttemptRecord, AttemptResult, AttemptView, ClaimedDelivery, DeliveryHour, DeliveryQuery,
    DeliveryStore, DeliveryView, StoreResult,
};
use async_trait::async_trait;
use sqlx::types::Json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(sqlx::FromRow)]
struct ClaimRow {
    delivery_id: String,
    product_id: String,
    customer_id: String,
    version: i64,
    attempts: i32,
    spared: i32,
    event_id: String,
    r#type: String,
    created: Timestamp,
    data: Json<serde_json::Value>,
    vendor_ids: Json<serde_json::Value>,
    webhook_url: Option<String>,
    webhook_secret: String,
    previous_webhook_secret: Option<String>,
    previous_secret_expires: Option<Timestamp>,
}

impl ClaimRow {
    fn into_claimed(self, now: Timestamp) -> ClaimedDelivery {
        let mut secrets = vec![self.webhook_secret];
        if let (Some(previous), Some(until)) =
            (self.previous_webhook_secret, self.previous_secret_expires)
        {
            if until > now {
                secrets.push(previous);
            }
        }
        ClaimedDelivery {
            delivery_id: self.delivery_id,
            product_id: ProductId::from_string(self.product_id),
            customer_id: CustomerId::from_string(self.customer_id),
            version: self.version,
            attempts: self.attempts,
            spared: self.spared,
            event_id: self.event_id,
            event_type: self.r#type,
            event_created: self.created,
            data: self.data.0,
            vendor_ids: self.vendor_ids.0,
            webhook_url: self.webhook_url,
            secrets,
            snapshot: None,
            probe: false,
        }
    }
}

/// The delivery log's rows: the ids a subquery picks (its filter, order and limit go
/// between the two halves; unfiltered, an index-only scan of the log's index), then
/// those deliveries with their events and products by primary key.
const DELIVERY_SELECT: &str = "SELECT d.delivery_id, d.product_id, p.name AS product_name, \
    d.customer_id, COALESCE(e.event_id, d.delivery_id) AS event_id, \
    COALESCE(e.type, 'customer.snapshot') AS type, d.version, d.status, d.attempts, \
    d.next_attempt, d.created, d.updated FROM (SELECT d.delivery_id FROM deliveries d";
/// A snapshot has no event row: its webhook-id is its delivery id.
const DELIVERY_JOIN: &str = ") page JOIN deliveries d ON d.delivery_id = page.delivery_id \
    LEFT JOIN events e ON e.seq = d.event_seq JOIN products p ON p.product_id = d.product_id";
const NEWEST_FIRST: &str = " ORDER BY d.created DESC, d.delivery_id DESC";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    delivery_id: String,
    product_id: String,
    product_name: String,
    customer_id: String,
    event_id: String,
    r#type: String,
    version: i64,
    status: String,
    attempts: i32,
    next_attempt: Timestamp,
    created: Timestamp,
    updated: Timestamp,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: String,
    attempt: i32,
    attempted_at: Timestamp,
    response_code: Option<i32>,
    latency_ms: i64,
    response_body: Option<String>,
    error: Option<String>,
}

#[async_trait]
impl<DB: Dialect> DeliveryStore for SqlStore<DB> {
    fn delivery_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.wakeup.clone()
    }

    async fn forward_notifications(&self, shutdown: CancellationToken) {
        DB::forward_notifications(
            &self.pools,
            self.wakeup.clone(),
            self.instance.clone(),
            shutdown,
        )
        .await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
        snapshot_limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = DB::begin_claim(&self.pools).await?;
        // A paused product's probe (SPEC section 6), then live deliveries, then snapshots
        // with the room left (section 11).
        let probes = claim_probes::<DB>(&mut tx, now, lease_until).await?;
        let mut live: Vec<String> = Vec::new();
        let mut snapshots: Vec<String> = Vec::new();
        for (id, snapshot) in &probes {
            match snapshot {
                true => snapshots.push(id.clone()),
                false => live.push(id.clone()),
            }
        }
        let room = limit - probes.len() as i64;
        if room > 0 {
            live.extend(claim_due::<DB>(&mut tx, now, lease_until, room, false).await?);
        }
        let room = (limit - (live.len() + snapshots.len()) as i64).min(snapshot_limit);
        if room > 0 {
            snapshots.extend(claim_due::<DB>(&mut tx, now, lease_until, room, true).await?);
        }
        if live.is_empty() && snapshots.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let claimed: Vec<String> = live.iter().chain(&snapshots).cloned().collect();
        // Older pending versions of the claimed pairs will never be sent. Driven from the
        // claimed rows (a few index probes), not from every pending row of the database.
        let mut supersede =
            Sql::<DB>::new("UPDATE deliveries SET status = 'superseded', updated = ");
        supersede.push_bind(DbTime(now));
        DB::push_older_pending(&mut supersede, DbTime(now), &claimed);
        supersede.execute(&mut tx).await?;

        let mut deliveries = Vec::with_capacity(claimed.len());
        if !live.is_empty() {
            let mut details = Sql::<DB>::new(
                "SELECT d.delivery_id, d.product_id, d.customer_id, d.version, d.attempts, d.spared, \
                 e.event_id, e.type, e.created, e.data, e.vendor_ids, p.webhook_url, \
                 p.webhook_secret, p.previous_webhook_secret, p.previous_secret_expires \
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                 JOIN products p ON p.product_id = d.product_id WHERE d.delivery_id IN (",
            );
            details.push_list(live.iter().map(String::as_str)).push(")");
            let rows: Vec<ClaimRow> = details.fetch_all(&mut tx).await?;
            deliveries.extend(rows.into_iter().map(|r| r.into_claimed(now)));
        }
        if !snapshots.is_empty() {
            deliveries.extend(claim_snapshots::<DB>(&mut tx, now, &snapshots).await?);
        }
        tx.commit().await?;
        for d in &mut deliveries {
            d.probe = probes.iter().any(|(id, _)| id == &d.delivery_id);
        }
        Ok(deliveries)
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = DB::begin_record(&self.pools).await?;
        let mut attempts = Sql::<DB>::new(
            "INSERT INTO delivery_attempts (delivery_id, product_id, attempt, attempted_at, \
             response_code, latency_ms, response_body, error) ",
        );
        attempts.push_values(records, |row, r| {
            row.bind(r.delivery_id.as_str())
                .bind(r.product_id.as_str())
                .bind(r.attempt)
                .bind(DbTime(r.at))
                .bind(r.response_code)
                .bind(r.latency_ms)
                .bind(r.response_body.as_deref())
                .bind(r.error.as_deref());
        });
        attempts.push(" ON CONFLICT DO NOTHING");
        attempts.execute(&mut tx).await?;

        let delivered: Vec<&AttemptRecord> = records
            .iter()
            .filter(|r| matches!(r.result, AttemptResult::Delivered))
            .collect();
        record_successes(&mut tx, &delivered).await?;
        // A batch holds many attempts per product: only failures after the product's last
        // success in it are consecutive failures (the breaker's count, SPEC section 6).
        let mut last_success: HashMap<&str, Timestamp> = HashMap::new();
        for r in &delivered {
            let at = last_success.entry(r.product_id.as_str()).or_insert(r.at);
            *at = (*at).max(r.at);
        }
        for r in records
            .iter()
            .filter(|r| !matches!(r.result, AttemptResult::Delivered))
        {
            let consecutive = last_success
                .get(r.product_id.as_str())
                .is_none_or(|success| r.at > *success);
            record_failure(&mut tx, r, consecutive).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_due(&self, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        // Each kind by its own index, in due order, to the first that is neither in flight
        // (a live lease: the sends in flight are at most the dispatchers' concurrency) nor
        // a paused product's (those wait for its probe): a MIN() over the filter read every
        // pending row (4.5 ms at 2,000 pending snapshots).
        let running = format!(
            "(d.lease_until IS NULL OR d.lease_until < $1) \
             AND NOT EXISTS (SELECT 1 FROM products p WHERE p.product_id = d.product_id \
             AND p.breaker_failures >= {BREAKER_FAILURES}{}",
            DB::PER_ROW
        );
        let (live, snapshot, probe): (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>) =
            Sql::<DB>::new(format!(
                "SELECT (SELECT d.next_attempt FROM deliveries d \
                         WHERE d.status = 'pending' AND d.backfill_id IS NULL AND {running} \
                         ORDER BY d.next_attempt LIMIT 1), \
                        (SELECT d.next_attempt FROM deliveries d \
                         WHERE d.status = 'pending' AND d.backfill_id IS NOT NULL AND {running} \
                         ORDER BY d.next_attempt LIMIT 1), \
                        (SELECT MIN(breaker_probe_at) FROM products \
                         WHERE breaker_failures >= {BREAKER_FAILURES})"
            ))
            .bind(DbTime(now))
            .fetch_one(&mut *self.read().await?)
            .await?;
        Ok(live.into_iter().chain(snapshot).chain(probe).min())
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryView>> {
        let mut sql = Sql::<DB>::new(DELIVERY_SELECT);
        sql.push(" WHERE d.product_id = ")
            .push_bind(q.product_id.as_str());
        if let Some(status) = &q.status {
            sql.push(" AND d.status = ").push_bind(status.as_str());
        }
        if let Some(customer) = &q.customer_id {
            sql.push(" AND d.customer_id = ")
                .push_bind(customer.as_str());
        }
        if let Some((created, id)) = &q.before {
            push_keyset_bound(
                &mut sql,
                "d.created, d.delivery_id",
                "<",
                DbTime(*created),
                id,
            );
        }
        sql.push(NEWEST_FIRST)
            .push(" LIMIT ")
            .push_bind(q.limit)
            .push(DELIVERY_JOIN)
            .push(NEWEST_FIRST);
        self.with_attempts(sql).await
    }

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<DeliveryView>> {
        let mut sql = Sql::<DB>::new(DELIVERY_SELECT);
        sql.push(" WHERE d.delivery_id = ")
            .push_bind(id)
            .push(DELIVERY_JOIN);
        Ok(self.with_attempts(sql).await?.pop())
    }

    async fn customer_deliveries(
        &self,
        account: &AccountId,
        customer: &CustomerId,
        only: Option<&ProductId>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryView>> {
        // By the log's (product, customer, created) index, once per product of the
        // account: a handful of short index scans.
        let mut sql = Sql::<DB>::new(DELIVERY_SELECT);
        match only {
            Some(product) => sql.push(" WHERE d.product_id = ").push_bind(product.as_str()),
            None => sql
                .push(" WHERE d.product_id IN (SELECT product_id FROM activations WHERE account_id = ")
                .push_bind(account.as_str())
                .push(")"),
        };
        sql.push(" AND d.customer_id = ")
            .push_bind(customer.as_str())
            .push(" AND d.account_id = ")
            .push_bind(account.as_str())
            .push(NEWEST_FIRST)
            .push(" LIMIT ")
            .push_bind(limit)
            .push(DELIVERY_JOIN)
            .push(NEWEST_FIRST);
        self.with_attempts(sql).await
    }

    async fn retry_delivery(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let retried = Sql::<DB>::new(
            "UPDATE deliveries SET status = 'pending', next_attempt = $2, lease_until = NULL, updated = $2 \
             WHERE delivery_id = $1 AND status <> 'superseded' \
               AND (lease_until IS NULL OR lease_until < $2) \
               AND NOT EXISTS (SELECT 1 FROM deliveries n WHERE n.product_id = deliveries.product_id \
                   AND n.customer_id = deliveries.customer_id AND n.version > deliveries.version \
                   AND n.status IN ('pending', 'delivered'))",
        )
        .bind(id)
        .bind(DbTime(now))
        .execute(&mut tx)
        .await?
            > 0;
        let queued = Queued {
            events: 0,
            deliveries: u64::from(retried),
        };
        tx.commit().await?;
        self.committed(queued);
        Ok(retried)
    }

    async fn set_webhook_status(
        &self,
        product: &ProductId,
        enabled: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        if enabled {
            Sql::<DB>::new(
                "UPDATE products SET webhook_status = 'enabled', webhook_disabled_reason = NULL, \
                 webhook_failing_since = NULL, breaker_failures = 0, breaker_probe_at = NULL, \
                 breaker_interval_s = NULL, updated = $2 WHERE product_id = $1",
            )
            .bind(product.as_str())
            .bind(DbTime(now))
            .execute(&mut tx)
            .await?;
        } else {
            disable_webhook(&mut tx, product.as_str(), reason.unwrap_or("disabled"), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_webhook_secret(
        &self,
        product: &ProductId,
        secret: &str,
        previous_expires: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()> {
        Sql::<DB>::new(
            "UPDATE products SET previous_webhook_secret = webhook_secret, webhook_secret = $2, \
             previous_secret_expires = $3, updated = $4 WHERE product_id = $1",
        )
        .bind(product.as_str())
        .bind(secret)
        .bind(DbTime(previous_expires))
        .bind(DbTime(now))
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn delivery_hours(
        &self,
        product: &ProductId,
        since: Timestamp,
    ) -> StoreResult<Vec<DeliveryHour>> {
        // The product's attempts of the window, by their (product_id, attempted_at) index.
        let ok = "a.response_code BETWEEN 200 AND 299";
        let hour = DB::hour_of("a.attempted_at");
        Ok(Sql::<DB>::new(format!(
            "SELECT {hour} AS hour, \
               CAST(SUM(CASE WHEN {ok} THEN 1 ELSE 0 END) AS BIGINT) AS delivered, \
               CAST(SUM(CASE WHEN {ok} THEN 0 ELSE 1 END) AS BIGINT) AS failed, \
               CAST(SUM(a.latency_ms) AS BIGINT) AS latency_sum_ms, \
               CAST(MAX(a.latency_ms) AS BIGINT) AS latency_max_ms \
             FROM delivery_attempts a \
             WHERE a.product_id = $1 AND a.attempted_at >= $2 \
             GROUP BY 1 ORDER BY 1"
        ))
        .bind(product.as_str())
        .bind(DbTime(since))
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    async fn delivery_stats(&self) -> StoreResult<(i64, i64)> {
        Ok(Sql::<DB>::new(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'pending'), \
                    (SELECT COUNT(*) FROM products WHERE webhook_status = 'disabled')",
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }
}

impl<DB: Dialect> SqlStore<DB> {
    /// The delivery log rows `sql` selects, with their attempts, in one more query.
    async fn with_attempts(&self, sql: Sql<'_, DB>) -> StoreResult<Vec<DeliveryView>> {
        let mut conn = self.read().await?;
        let rows: Vec<DeliveryRow> = sql.fetch_all(&mut conn).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempts = Sql::<DB>::new(
            "SELECT delivery_id, attempt, attempted_at, response_code, latency_ms, response_body, error \
             FROM delivery_attempts WHERE delivery_id IN (",
        );
        attempts
            .push_list(rows.iter().map(|r| r.delivery_id.as_str()))
            .push(") ORDER BY delivery_id, attempt");
        let attempts: Vec<AttemptRow> = attempts.fetch_all(&mut conn).await?;
        // Each delivery's attempts, in attempt order (as selected).
        let mut logs: HashMap<String, Vec<AttemptView>> = HashMap::new();
        for a in attempts {
            logs.entry(a.delivery_id).or_default().push(AttemptView {
                attempt: a.attempt,
                attempted_at: a.attempted_at,
                response_code: a.response_code,
                latency_ms: a.latency_ms,
                response_body: a.response_body,
                error: a.error,
            });
        }
        Ok(rows
            .into_iter()
            .map(|r| DeliveryView {
                attempt_log: logs.remove(&r.delivery_id).unwrap_or_default(),
                next_attempt: (r.status == "pending").then_some(r.next_attempt),
                delivery_id: r.delivery_id,
                product_id: r.product_id,
                product_name: r.product_name,
                customer_id: r.customer_id,
                event_id: r.event_id,
                event_type: r.r#type,
                version: r.version,
                status: r.status,
                attempts: r.attempts,
                created: r.created,
                updated: r.updated,
            })
            .collect())
    }
}

/// Leases up to `limit` due deliveries of one kind (live, or snapshots), by that kind's
/// index: for each (product, customer) only the newest pending version, none while
/// another of the pair is in flight, none to a disabled webhook.
async fn claim_due<DB: Dialect>(
    tx: &mut Tx<DB>,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
    snapshots: bool,
) -> StoreResult<Vec<String>> {
    let kind = if snapshots {
        "d.backfill_id IS NOT NULL"
    } else {
        "d.backfill_id IS NULL"
    };
    Ok(Sql::<DB>::new(format!(
        "UPDATE deliveries SET lease_until = $2, attempts = attempts + 1, updated = $1 \
         WHERE delivery_id IN ( \
           SELECT d.delivery_id FROM deliveries d \
           JOIN products p ON p.product_id = d.product_id \
           WHERE d.status = 'pending' AND {kind} AND d.next_attempt <= $1 \
             AND (d.lease_until IS NULL OR d.lease_until < $1) \
             AND p.webhook_status = 'enabled' AND p.breaker_failures < {BREAKER_FAILURES} \
             AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.product_id = d.product_id \
                 AND o.customer_id = d.customer_id AND o.status = 'pending' AND o.version > d.version{per_row} \
             AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.product_id = d.product_id \
                 AND o.customer_id = d.customer_id AND o.status = 'pending' \
                 AND o.lease_until >= $1 AND o.delivery_id <> d.delivery_id{per_row} \
           ORDER BY d.next_attempt LIMIT $3{skip_locked}) \
         RETURNING delivery_id",
        per_row = DB::PER_ROW,
        skip_locked = DB::SKIP_LOCKED_DELIVERIES
    ))
    .bind(DbTime(now))
    .bind(DbTime(lease_until))
    .bind(limit)
    .scalars(tx)
    .await?)
}

/// The probes due (SPEC section 6): for each paused product whose probe time has come
/// and that has nothing in flight, its pending delivery due first, even if its own retry
/// is later (the probe is what finds the receiver back; as claimable as any other: the
/// newest pending version of its pair); the product's next probe is pushed out, the
/// interval doubling up to its longest. Each probe's id, and whether it is a snapshot.
async fn claim_probes<DB: Dialect>(
    tx: &mut Tx<DB>,
    now: Timestamp,
    lease_until: Timestamp,
) -> StoreResult<Vec<(String, bool)>> {
    let due: Vec<(String, Option<i32>)> = Sql::<DB>::new(format!(
        "SELECT p.product_id, p.breaker_interval_s FROM products p \
         WHERE p.breaker_failures >= {BREAKER_FAILURES} AND p.breaker_probe_at <= $1 \
           AND p.webhook_status = 'enabled' \
           AND NOT EXISTS (SELECT 1 FROM deliveries l WHERE l.product_id = p.product_id \
               AND l.status = 'pending' AND l.lease_until >= $1{}",
        DB::PER_ROW
    ))
    .bind(DbTime(now))
    .fetch_all(tx)
    .await?;
    let mut probes = Vec::new();
    for (product, interval) in due {
        // Live first, by each kind's product-led index.
        let mut claimed: Vec<(String, Option<String>)> = Vec::new();
        for kind in ["d.backfill_id IS NULL", "d.backfill_id IS NOT NULL"] {
            claimed = Sql::<DB>::new(format!(
                "UPDATE deliveries SET lease_until = $2, attempts = attempts + 1, updated = $1 \
                 WHERE delivery_id IN ( \
                   SELECT d.delivery_id FROM deliveries d \
                   WHERE d.product_id = $3 AND d.status = 'pending' AND {kind} \
                     AND (d.lease_until IS NULL OR d.lease_until < $1) \
                     AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.product_id = d.product_id \
                         AND o.customer_id = d.customer_id AND o.status = 'pending' \
                         AND o.version > d.version{per_row} \
                   ORDER BY d.next_attempt LIMIT 1{skip_locked}) \
                 RETURNING delivery_id, backfill_id",
                per_row = DB::PER_ROW,
                skip_locked = DB::SKIP_LOCKED_DELIVERIES
            ))
            .bind(DbTime(now))
            .bind(DbTime(lease_until))
            .bind(product.as_str())
            .fetch_all(tx)
            .await?;
            if !claimed.is_empty() {
                break;
            }
        }
        let next = (i64::from(interval.unwrap_or(PROBE_FIRST_S as i32)) * 2).min(PROBE_MAX_S);
        Sql::<DB>::new(
            "UPDATE products SET breaker_interval_s = $2, breaker_probe_at = $3 WHERE product_id = $1",
        )
        .bind(product.as_str())
        .bind(next as i32)
        .bind(DbTime(now + chrono::Duration::seconds(next)))
        .execute(tx)
        .await?;
        probes.extend(claimed.into_iter().map(|(id, b)| (id, b.is_some())));
    }
    Ok(probes)
}

/// A claimed snapshot and what it is sent with: the customer as it is now, with the
/// receiving product's own id.
#[derive(sqlx::FromRow)]
struct SnapshotRow {
    #[sqlx(flatten)]
    customer: CustomerRow,
    claimed_id: String,
    claimed_product: String,
    claimed_attempts: i32,
    claimed_spared: i32,
    webhook_url: Option<String>,
    webhook_secret: String,
    previous_webhook_secret: Option<String>,
    previous_secret_expires: Option<Timestamp>,
}

/// The claimed snapshots' customers, read now; then, after that read, every snapshot
/// whose customer is not live any more, or that has a newer pending delivery of its
/// pair (which carries newer state), is superseded and not sent. Read first, checked
/// second: a change committed after the check is newer than what was read, so it is
/// delivered after the snapshot, never before.
async fn claim_snapshots<DB: Dialect>(
    tx: &mut Tx<DB>,
    now: Timestamp,
    claimed: &[String],
) -> StoreResult<Vec<ClaimedDelivery>> {
    let mut read = Sql::<DB>::new(format!(
        "SELECT {CUSTOMER_COLUMNS}, d.delivery_id AS claimed_id, d.product_id AS claimed_product, \
         d.attempts AS claimed_attempts, d.spared AS claimed_spared, p.webhook_url, p.webhook_secret, \
         p.previous_webhook_secret, p.previous_secret_expires \
         FROM deliveries d JOIN customers c ON c.customer_id = d.customer_id \
         LEFT JOIN associations a ON a.customer_id = c.customer_id AND a.product_id = d.product_id \
         JOIN products p ON p.product_id = d.product_id WHERE d.delivery_id IN ("
    ));
    read.push_list(claimed.iter().map(String::as_str)).push(")");
    let rows: Vec<SnapshotRow> = read.fetch_all(tx).await?;
    let mut stale = Sql::<DB>::new(
        "SELECT d.delivery_id FROM deliveries d JOIN customers c ON c.customer_id = d.customer_id \
         WHERE d.delivery_id IN (",
    );
    stale
        .push_list(claimed.iter().map(String::as_str))
        .push(
            ") AND (c.status <> 'live' OR EXISTS (SELECT 1 FROM deliveries o \
           WHERE o.product_id = d.product_id AND o.customer_id = d.customer_id \
           AND o.status = 'pending' AND o.delivery_id <> d.delivery_id AND o.version > d.version",
        )
        .push(DB::PER_ROW)
        .push(")");
    let stale: Vec<String> = stale.scalars(tx).await?;
    if !stale.is_empty() {
        let mut drop = Sql::<DB>::new(
            "UPDATE deliveries SET status = 'superseded', lease_until = NULL, updated = ",
        );
        drop.push_bind(DbTime(now))
            .push(" WHERE delivery_id IN (")
            .push_list(stale.iter().map(String::as_str))
            .push(")");
        drop.execute(tx).await?;
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if stale.contains(&row.claimed_id) {
            continue;
        }
        let customer = StoredCustomer::try_from(row.customer)?;
        let mut secrets = vec![row.webhook_secret];
        if let (Some(previous), Some(until)) =
            (row.previous_webhook_secret, row.previous_secret_expires)
        {
            if until > now {
                secrets.push(previous);
            }
        }
        out.push(ClaimedDelivery {
            event_id: row.claimed_id.clone(),
            delivery_id: row.claimed_id,
            product_id: ProductId::from_string(row.claimed_product),
            customer_id: customer.customer.customer_id.clone(),
            version: customer.customer.version,
            attempts: row.claimed_attempts,
            spared: row.claimed_spared,
            event_type: CUSTOMER_SNAPSHOT.to_owned(),
            event_created: now,
            data: serde_json::Value::Null,
            vendor_ids: serde_json::Value::Null,
            webhook_url: row.webhook_url,
            secrets,
            snapshot: Some(customer),
            probe: false,
        });
    }
    Ok(out)
}

/// The common case, successes, in two statements for the whole batch.
async fn record_successes<DB: Dialect>(
    tx: &mut Tx<DB>,
    delivered: &[&AttemptRecord],
) -> StoreResult<()> {
    let Some(last) = delivered.iter().map(|r| r.at).max() else {
        return Ok(());
    };
    let mut done = Sql::<DB>::new(
        "UPDATE deliveries SET status = 'delivered', lease_until = NULL, updated = ",
    );
    done.push_bind(DbTime(last))
        .push(" WHERE status = 'pending' AND delivery_id IN (")
        .push_list(delivered.iter().map(|r| r.delivery_id.as_str()))
        .push(")");
    done.execute(tx).await?;
    let mut products: Vec<&str> = delivered.iter().map(|r| r.product_id.as_str()).collect();
    products.sort_unstable();
    products.dedup();
    // A paused product answered (SPEC section 6): every pending delivery of it is due
    // now, not at its own next retry. Found first by the products' keys: an update
    // filtered by a subquery read the due index of every product.
    let mut paused = Sql::<DB>::new(format!(
        "SELECT product_id FROM products WHERE breaker_failures >= {BREAKER_FAILURES} \
         AND product_id IN ("
    ));
    paused.push_list(products.iter().copied()).push(")");
    let paused: Vec<String> = paused.scalars(&mut *tx).await?;
    if !paused.is_empty() {
        let mut resume = Sql::<DB>::new("UPDATE deliveries SET next_attempt = ");
        resume
            .push_bind(DbTime(last))
            .push(" WHERE status = 'pending' AND next_attempt > ")
            .push_bind(DbTime(last))
            .push(" AND product_id IN (")
            .push_list(paused.iter().map(String::as_str))
            .push(")");
        resume.execute(tx).await?;
    }
    // Only products that were failing: a no-op update would still write a row version
    // and queue every delivery of a product on one lock.
    let mut healthy = Sql::<DB>::new(
        "UPDATE products SET webhook_failing_since = NULL, breaker_failures = 0, \
         breaker_probe_at = NULL, breaker_interval_s = NULL \
         WHERE (webhook_failing_since IS NOT NULL OR breaker_failures > 0) AND product_id IN (",
    );
    healthy.push_list(products).push(")");
    healthy.execute(tx).await?;
    Ok(())
}

/// A failed attempt: the delivery's next try (or its end), and the webhook's health: one
/// more consecutive failure, which at the fifth pauses the product (SPEC section 6). A
/// probe's failure spends nothing: the delivery stays due, its attempt logged but spared
/// from its retries. A
/// failure followed by a success (not `consecutive`) changes only its delivery.
async fn record_failure<DB: Dialect>(
    tx: &mut Tx<DB>,
    r: &AttemptRecord,
    consecutive: bool,
) -> StoreResult<()> {
    let gone = matches!(r.result, AttemptResult::Gone);
    if r.probe && !gone {
        Sql::<DB>::new(
            "UPDATE deliveries SET spared = spared + 1, lease_until = NULL, updated = $2 \
             WHERE delivery_id = $1 AND status = 'pending'",
        )
        .bind(r.delivery_id.as_str())
        .bind(DbTime(r.at))
        .execute(tx)
        .await?;
    } else {
        let (status, next): (&str, Option<Timestamp>) = match &r.result {
            AttemptResult::Retry(at) => ("pending", Some(*at)),
            _ => ("failed", None),
        };
        Sql::<DB>::new(
            "UPDATE deliveries SET status = $2, next_attempt = COALESCE($3, next_attempt), \
             lease_until = NULL, updated = $4 WHERE delivery_id = $1 AND status = 'pending'",
        )
        .bind(r.delivery_id.as_str())
        .bind(status)
        .bind(next.map(DbTime))
        .bind(DbTime(r.at))
        .execute(tx)
        .await?;
    }
    let product = r.product_id.as_str();
    if gone {
        return disable_webhook(tx, product, "the receiver answered 410 Gone", r.at).await;
    }
    if !consecutive {
        return Ok(());
    }
    let since: Option<Timestamp> = Sql::<DB>::new(format!(
        "UPDATE products SET webhook_failing_since = COALESCE(webhook_failing_since, $2), \
         breaker_failures = breaker_failures + 1, \
         breaker_probe_at = CASE WHEN breaker_failures + 1 = {BREAKER_FAILURES} THEN $3 \
           ELSE breaker_probe_at END, \
         breaker_interval_s = CASE WHEN breaker_failures + 1 = {BREAKER_FAILURES} THEN $4 \
           ELSE breaker_interval_s END \
         WHERE product_id = $1 RETURNING webhook_failing_since"
    ))
    .bind(product)
    .bind(DbTime(r.at))
    .bind(DbTime(r.at + chrono::Duration::seconds(PROBE_FIRST_S)))
    .bind(PROBE_FIRST_S as i32)
    .scalar(tx)
    .await?;
    if since.is_some_and(|t| t < r.disable_if_failing_since) {
        disable_webhook(tx, product, "failing for 5 days without a success", r.at).await?;
    }
    Ok(())
}

/// Disables a product's webhook and fails its pending deliveries (the feed keeps the
/// events).
async fn disable_webhook<DB: Dialect>(
    tx: &mut Tx<DB>,
    product: &str,
    reason: &str,
    now: Timestamp,
) -> StoreResult<()> {
    Sql::<DB>::new(
        "UPDATE products SET webhook_status = 'disabled', webhook_disabled_reason = $2, updated = $3 \
         WHERE product_id = $1",
    )
    .bind(product)
    .bind(reason)
    .bind(DbTime(now))
    .execute(tx)
    .await?;
    Sql::<DB>::new(
        "UPDATE deliveries SET status = 'failed', lease_until = NULL, updated = $2 \
         WHERE product_id = $1 AND status = 'pending'",
    )
    .bind(product)
    .bind(DbTime(now))
    .execute(tx)
    .await?;
    Ok(())
}
