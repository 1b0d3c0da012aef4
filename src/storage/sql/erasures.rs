//! Erasure (SPEC section 10): one transaction that leaves no personal data of a customer
//! in the hub's tables, queues `customer.erased` and writes the receipt; receipts settled
//! from their deliveries' fate; suppressed identifiers; the hub's own secrets.

use super::customers::{release_identifiers, rewrite_customer, CustomerValues};
use super::events::{insert_event, Receivers};
use super::{push_keyset_bound, Queued, SqlStore};
use crate::domain::customer::Customer;
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, CustomerId, ProductId};
use crate::storage::dialect::{Dialect, Sql};
use crate::storage::rows::CustomerRow;
use crate::storage::time::DbTime;
use crate::storage::{
    ErasureProductView, ErasureStore, ErasureView, ErasureWrite, StoreResult, StoredCustomer,
    SuppressionView, WriteOutcome,
};
use async_trait::async_trait;
use sqlx::types::Json;
use std::collections::HashMap;

#[derive(sqlx::FromRow)]
struct ErasureRow {
    erasure_id: String,
    account_id: String,
    customer_id: String,
    requested: Timestamp,
    requested_by_key: String,
    requested_by_product: Option<String>,
    reason: Option<String>,
    suppressed: bool,
    completed: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct ErasureProductRow {
    erasure_id: String,
    product_id: String,
    status: String,
    acknowledged: Option<Timestamp>,
    error: Option<String>,
}

const ERASURE_COLUMNS: &str = "erasure_id, account_id, customer_id, requested, \
    requested_by_key, requested_by_product, reason, suppressed, completed";

#[async_trait]
impl<DB: Dialect> ErasureStore for SqlStore<DB> {
    async fn erase_customer(&self, e: &ErasureWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.begin_write().await?;
        let id = e.customer.customer_id.as_str();
        let now = DbTime(e.requested);
        // The record itself, at the version the request read (scrubbed by the service).
        if !rewrite_customer(&mut tx, &CustomerValues::of(e.customer), e.expected_version).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Stale);
        }
        Sql::<DB>::new("UPDATE customers SET erasure_id = $1 WHERE customer_id = $2")
            .bind(e.erasure_id)
            .bind(id)
            .execute(&mut tx)
            .await?;
        // Customers it absorbed keep only their pointer to it.
        let absorbed: Vec<String> = Sql::<DB>::new(
            "SELECT customer_id FROM customers WHERE merged_into = $1 AND scope = $2",
        )
        .bind(id)
        .bind(e.customer.scope.key())
        .scalars(&mut tx)
        .await?;
        let mut everyone: Vec<&str> = vec![id];
        everyone.extend(absorbed.iter().map(String::as_str));
        if !absorbed.is_empty() {
            let mut scrub = Sql::<DB>::new(format!(
                "UPDATE customers SET {} WHERE customer_id IN (",
                SCRUBBED_COLUMNS
            ));
            scrub
                .push_list(absorbed.iter().map(String::as_str))
                .push(")");
            scrub.execute(&mut tx).await?;
        }
        release_identifiers(&mut tx, &e.customer.customer_id).await?;
        for (table, column) in [("consent_history", "customer_id")] {
            let mut delete = Sql::<DB>::new(format!("DELETE FROM {table} WHERE {column} IN ("));
            delete.push_list(everyone.iter().copied()).push(")");
            delete.execute(&mut tx).await?;
        }
        // Past events keep their id, type, version and time.
        let mut events = Sql::<DB>::new("UPDATE events SET data = ");
        events
            .push_bind(Json(serde_json::json!({})))
            .push(", vendor_ids = ")
            .push_bind(Json(serde_json::json!({})))
            .push(" WHERE account_id = ")
            .push_bind(e.account.as_str())
            .push(" AND customer_id IN (")
            .push_list(everyone.iter().copied())
            .push(")");
        events.execute(&mut tx).await?;
        // Answers its products gave to its deliveries (by the log's index, per product).
        let mut answers = Sql::<DB>::new(
            "UPDATE delivery_attempts SET response_body = NULL WHERE response_body IS NOT NULL \
             AND delivery_id IN (SELECT d.delivery_id FROM deliveries d \
             WHERE d.product_id IN (SELECT product_id FROM products) AND d.customer_id IN (",
        );
        answers.push_list(everyone.iter().copied()).push("))");
        answers.execute(&mut tx).await?;
        // Nothing personal goes out after this: older versions still queued are dropped.
        let mut superseded =
            Sql::<DB>::new("UPDATE deliveries SET status = 'superseded', updated = ");
        superseded
            .push_bind(now)
            .push(" WHERE status = 'pending' AND customer_id IN (")
            .push_list(everyone.iter().copied())
            .push(")");
        superseded.execute(&mut tx).await?;
        // Conflict records it matched (they copy its values), and stored idempotent
        // answers that hold it.
        let conflict_text = DB::json_text("conflict");
        // The id alone: a stored response may hold it as escaped JSON text. Ids are
        // UUIDs, so no other id contains it.
        let pattern = format!("%{id}%");
        Sql::<DB>::new(format!(
            "DELETE FROM customers WHERE scope = $1 AND status = 'conflict' AND {conflict_text} LIKE $2"
        ))
        .bind(e.customer.scope.key())
        .bind(pattern.as_str())
        .execute(&mut tx)
        .await?;
        let response_text = DB::json_text("response");
        Sql::<DB>::new(format!(
            "DELETE FROM idempotency_keys WHERE {response_text} LIKE $1"
        ))
        .bind(pattern.as_str())
        .execute(&mut tx)
        .await?;
        // The event, to every product activated on the account (either mode) with an
        // enabled webhook but the requester; its vendor ids snapshot the associations,
        // which are then released.
        let mut signal = Queued::default();
        if let Some(event) = e.event {
            signal = insert_event(&mut tx, event, Receivers::AnyMode).await?;
        }
        // The event keeps only the ids of the products it goes to (each must find whom to
        // forget), until its receipt completes.
        if let Some(event) = e.event {
            let receivers: Vec<(String, String)> = Sql::<DB>::new(
                "SELECT a.product_id, a.vendor_customer_id FROM associations a \
                 JOIN deliveries d ON d.product_id = a.product_id \
                 JOIN events ev ON ev.seq = d.event_seq \
                 WHERE a.customer_id = $1 AND ev.event_id = $2",
            )
            .bind(id)
            .bind(event.event_id.as_str())
            .fetch_all(&mut tx)
            .await?;
            let kept: serde_json::Map<String, serde_json::Value> = receivers
                .into_iter()
                .map(|(p, v)| (p, serde_json::Value::String(v)))
                .collect();
            Sql::<DB>::new("UPDATE events SET vendor_ids = $1 WHERE event_id = $2")
                .bind(Json(serde_json::Value::Object(kept)))
                .bind(event.event_id.as_str())
                .execute(&mut tx)
                .await?;
        }
        let mut released = Sql::<DB>::new("DELETE FROM associations WHERE customer_id IN (");
        released.push_list(everyone.iter().copied()).push(")");
        released.execute(&mut tx).await?;
        // The receipt: every product activated on the account or that held an id for it.
        let queued: HashMap<String, String> = match e.event {
            Some(event) => Sql::<DB>::new(
                "SELECT d.product_id, d.delivery_id FROM deliveries d \
                 JOIN events ev ON ev.seq = d.event_seq WHERE ev.event_id = $1",
            )
            .bind(event.event_id.as_str())
            .fetch_all::<(String, String)>(&mut tx)
            .await?
            .into_iter()
            .collect(),
            None => HashMap::new(),
        };
        Sql::<DB>::new(format!(
            "INSERT INTO erasures ({ERASURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
        ))
        .bind(e.erasure_id)
        .bind(e.account.as_str())
        .bind(id)
        .bind(now)
        .bind(e.requested_by_key)
        .bind(e.requested_by_product.map(ProductId::as_str))
        .bind(e.reason)
        .bind(e.suppress.is_some())
        .execute(&mut tx)
        .await?;
        let mut pending = false;
        let rows: Vec<(String, &str, Option<String>)> = e
            .products
            .iter()
            .map(|p| {
                let status = if Some(p) == e.requested_by_product {
                    "requester"
                } else if queued.contains_key(p.as_str()) {
                    pending = true;
                    "pending"
                } else {
                    "unreachable"
                };
                (p.to_string(), status, queued.get(p.as_str()).cloned())
            })
            .collect();
        if !rows.is_empty() {
            let mut insert = Sql::<DB>::new(
                "INSERT INTO erasure_products (erasure_id, product_id, status, delivery_id, \
                 vendor_digest) ",
            );
            insert.push_values(&rows, |row, (product, status, delivery)| {
                row.bind(e.erasure_id)
                    .bind(product.as_str())
                    .bind(*status)
                    .bind(delivery.as_deref())
                    .bind(e.vendor_digests.get(product.as_str()).map(String::as_str));
            });
            insert.execute(&mut tx).await?;
        }
        if !pending {
            Sql::<DB>::new("UPDATE erasures SET completed = $1 WHERE erasure_id = $2")
                .bind(now)
                .bind(e.erasure_id)
                .execute(&mut tx)
                .await?;
        }
        if let Some(digests) = e.suppress {
            if !digests.is_empty() {
                let mut insert = Sql::<DB>::new(
                    "INSERT INTO suppressions (account_id, kind, digest, created, erasure_id) ",
                );
                insert.push_values(digests, |row, (kind, digest)| {
                    row.bind(e.account.as_str())
                        .bind(*kind)
                        .bind(digest.as_str())
                        .bind(now)
                        .bind(e.erasure_id);
                });
                insert.push(" ON CONFLICT DO NOTHING");
                insert.execute(&mut tx).await?;
            }
        }
        tx.commit().await?;
        self.committed(signal);
        Ok(WriteOutcome::Done)
    }

    async fn settle_erasures(&self, only: Option<&str>, now: Timestamp) -> StoreResult<u64> {
        // Each pending product follows its delivery: delivered is acknowledged, failed
        // for good is failed (with the last attempt's answer); then receipts with no
        // pending product are completed.
        let mut tx = self.begin_write().await?;
        let mut scope = String::from("p.status = 'pending'");
        if only.is_some() {
            scope.push_str(" AND p.erasure_id = $2");
        }
        let pending: Vec<(String, String, String, String, Timestamp)> = {
            let mut sql = Sql::<DB>::new(format!(
                "SELECT p.erasure_id, p.product_id, d.delivery_id, d.status, d.updated \
                 FROM erasure_products p JOIN deliveries d ON d.delivery_id = p.delivery_id \
                 WHERE d.status IN ('delivered', 'failed') AND {}",
                scope.replace("$2", "$1")
            ));
            if let Some(id) = only {
                sql = sql.bind(id);
            }
            sql.fetch_all(&mut tx).await?
        };
        let mut changed = 0;
        for (erasure, product, delivery, status, at) in &pending {
            let (new_status, error) = if status == "delivered" {
                ("acknowledged", None)
            } else {
                let answer: Option<(Option<i32>, Option<String>)> = Sql::<DB>::new(
                    "SELECT response_code, error FROM delivery_attempts WHERE delivery_id = $1 \
                     ORDER BY attempt DESC LIMIT 1",
                )
                .bind(delivery.as_str())
                .fetch_optional(&mut tx)
                .await?;
                let error = match answer {
                    Some((_, Some(error))) => error,
                    Some((Some(code), None)) => format!("HTTP {code}"),
                    _ => "failed".to_owned(),
                };
                ("failed", Some(error))
            };
            changed += Sql::<DB>::new(
                "UPDATE erasure_products SET status = $1, acknowledged = $2, error = $3 \
                 WHERE erasure_id = $4 AND product_id = $5 AND status = 'pending'",
            )
            .bind(new_status)
            .bind((new_status == "acknowledged").then_some(DbTime(*at)))
            .bind(error)
            .bind(erasure.as_str())
            .bind(product.as_str())
            .execute(&mut tx)
            .await?;
        }
        let mut done = Sql::<DB>::new(
            "SELECT e.customer_id FROM erasures e WHERE e.completed IS NULL \
             AND NOT EXISTS (SELECT 1 FROM erasure_products p \
               WHERE p.erasure_id = e.erasure_id AND p.status = 'pending')",
        );
        if let Some(id) = only {
            done.push(" AND e.erasure_id = ").push_bind(id);
        }
        let done: Vec<String> = done.scalars(&mut tx).await?;
        if !done.is_empty() {
            let mut complete = Sql::<DB>::new("UPDATE erasures SET completed = ");
            complete
                .push_bind(DbTime(now))
                .push(" WHERE completed IS NULL AND customer_id IN (")
                .push_list(done.iter().map(String::as_str))
                .push(")");
            changed += complete.execute(&mut tx).await?;
            // Every product has its answer: the event no longer needs their ids.
            let mut forget = Sql::<DB>::new("UPDATE events SET vendor_ids = ");
            forget
                .push_bind(Json(serde_json::json!({})))
                .push(" WHERE type = 'customer.erased' AND customer_id IN (")
                .push_list(done.iter().map(String::as_str))
                .push(")");
            forget.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn get_erasure(&self, id: &str) -> StoreResult<Option<ErasureView>> {
        let mut sql = Sql::<DB>::new(format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures WHERE erasure_id = $1"
        ));
        sql = sql.bind(id);
        Ok(self.with_products(sql).await?.pop())
    }

    async fn erasure_of_customer(&self, customer: &CustomerId) -> StoreResult<Option<String>> {
        Ok(
            Sql::<DB>::new("SELECT erasure_id FROM customers WHERE customer_id = $1")
                .bind(customer.as_str())
                .scalar_optional::<Option<String>>(&mut *self.read().await?)
                .await?
                .flatten(),
        )
    }

    async fn erasure_of_vendor_id(
        &self,
        product: &ProductId,
        digest: &str,
    ) -> StoreResult<Option<String>> {
        Ok(Sql::<DB>::new(
            "SELECT erasure_id FROM erasure_products WHERE product_id = $1 AND vendor_digest = $2 \
             ORDER BY erasure_id DESC LIMIT 1",
        )
        .bind(product.as_str())
        .bind(digest)
        .scalar_optional(&mut *self.read().await?)
        .await?)
    }

    async fn list_erasures(
        &self,
        account: &AccountId,
        after: Option<(Timestamp, String)>,
        newest_first: bool,
        limit: i64,
    ) -> StoreResult<Vec<ErasureView>> {
        let (op, order) = if newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let mut sql = Sql::<DB>::new(format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures WHERE account_id = "
        ));
        sql.push_bind(account.as_str());
        if let Some((at, id)) = &after {
            push_keyset_bound(&mut sql, "requested, erasure_id", op, DbTime(*at), id);
        }
        sql.push(&format!(
            " ORDER BY requested {order}, erasure_id {order} LIMIT "
        ))
        .push_bind(limit);
        self.with_products(sql).await
    }

    async fn erasures_since(
        &self,
        since: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ErasureView>> {
        let mut sql = Sql::<DB>::new(format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures WHERE requested >= "
        ));
        sql.push_bind(DbTime(since));
        if let Some((at, id)) = &after {
            push_keyset_bound(&mut sql, "requested, erasure_id", ">", DbTime(*at), id);
        }
        sql.push(" ORDER BY requested, erasure_id LIMIT ")
            .push_bind(limit);
        self.with_products(sql).await
    }

    async fn open_erasures(&self) -> StoreResult<i64> {
        Ok(
            Sql::<DB>::new("SELECT COUNT(*) FROM erasures WHERE completed IS NULL")
                .scalar(&mut *self.read().await?)
                .await?,
        )
    }

    async fn suppressed(
        &self,
        account: &AccountId,
        digests: &[(&'static str, String)],
    ) -> StoreResult<Vec<(String, String)>> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::<DB>::new("SELECT kind, digest FROM suppressions WHERE account_id = ");
        sql.push_bind(account.as_str()).push(" AND digest IN (");
        sql.push_list(digests.iter().map(|(_, d)| d.as_str()))
            .push(")");
        Ok(sql.fetch_all(&mut *self.read().await?).await?)
    }

    async fn lift_suppression(
        &self,
        account: &AccountId,
        kind: &str,
        digest: &str,
    ) -> StoreResult<bool> {
        Ok(Sql::<DB>::new(
            "DELETE FROM suppressions WHERE account_id = $1 AND kind = $2 AND digest = $3",
        )
        .bind(account.as_str())
        .bind(kind)
        .bind(digest)
        .execute(&mut *self.write().await?)
        .await?
            > 0)
    }

    async fn list_suppressions(
        &self,
        account: &AccountId,
        limit: i64,
    ) -> StoreResult<(Vec<SuppressionView>, i64)> {
        let mut conn = self.read().await?;
        let rows = Sql::<DB>::new(
            "SELECT kind, digest, erasure_id, created FROM suppressions WHERE account_id = $1 \
             ORDER BY created DESC, kind DESC, digest DESC LIMIT $2",
        )
        .bind(account.as_str())
        .bind(limit)
        .fetch_all(&mut conn)
        .await?;
        let total = Sql::<DB>::new("SELECT COUNT(*) FROM suppressions WHERE account_id = $1")
            .bind(account.as_str())
            .scalar(&mut conn)
            .await?;
        Ok((rows, total))
    }

    async fn customer_relations(
        &self,
        customer: &Customer,
    ) -> StoreResult<(Vec<String>, Vec<StoredCustomer>)> {
        let mut conn = self.read().await?;
        let id = customer.customer_id.as_str();
        let merged: Vec<String> = Sql::<DB>::new(
            "SELECT customer_id FROM customers WHERE merged_into = $1 AND scope = $2 ORDER BY customer_id",
        )
        .bind(id)
        .bind(customer.scope.key())
        .scalars(&mut conn)
        .await?;
        // The id alone: a stored response may hold it as escaped JSON text. Ids are
        // UUIDs, so no other id contains it.
        let pattern = format!("%{id}%");
        let rows: Vec<CustomerRow> = Sql::<DB>::new(format!(
            "SELECT {} FROM customers c {} WHERE c.scope = $2 AND c.status = 'conflict' \
             AND {} LIKE $3 ORDER BY c.created, c.customer_id",
            crate::storage::rows::CUSTOMER_COLUMNS,
            crate::storage::rows::VIEWER_JOIN,
            DB::json_text("c.conflict"),
        ))
        .bind(None::<&str>)
        .bind(customer.scope.key())
        .bind(pattern.as_str())
        .fetch_all(&mut conn)
        .await?;
        let conflicts = rows
            .into_iter()
            .map(StoredCustomer::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((merged, conflicts))
    }

    async fn hub_secret(&self, name: &str, generated: &str) -> StoreResult<String> {
        // The first writer's value stands; every server reads the same one.
        let mut conn = self.write().await?;
        Sql::<DB>::new(
            "INSERT INTO hub_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(generated)
        .execute(&mut conn)
        .await?;
        Ok(
            Sql::<DB>::new("SELECT value FROM hub_secrets WHERE name = $1")
                .bind(name)
                .scalar(&mut conn)
                .await?,
        )
    }
}

impl<DB: Dialect> SqlStore<DB> {
    /// The receipts `sql` selects, each with its products, in one more query.
    async fn with_products(&self, sql: Sql<'_, DB>) -> StoreResult<Vec<ErasureView>> {
        let mut conn = self.read().await?;
        let rows: Vec<ErasureRow> = sql.fetch_all(&mut conn).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut products = Sql::<DB>::new(
            "SELECT erasure_id, product_id, status, acknowledged, error FROM erasure_products \
             WHERE erasure_id IN (",
        );
        products
            .push_list(rows.iter().map(|r| r.erasure_id.as_str()))
            .push(") ORDER BY erasure_id, product_id");
        let mut by_erasure: HashMap<String, Vec<ErasureProductView>> = HashMap::new();
        for p in products.fetch_all::<ErasureProductRow>(&mut conn).await? {
            by_erasure
                .entry(p.erasure_id)
                .or_default()
                .push(ErasureProductView {
                    product_id: p.product_id,
                    status: p.status,
                    acknowledged: p.acknowledged,
                    error: p.error,
                });
        }
        Ok(rows
            .into_iter()
            .map(|r| ErasureView {
                products: by_erasure.remove(&r.erasure_id).unwrap_or_default(),
                erasure_id: r.erasure_id,
                account_id: r.account_id,
                customer_id: r.customer_id,
                requested: r.requested,
                requested_by_key: r.requested_by_key,
                requested_by_product: r.requested_by_product,
                reason: r.reason,
                suppressed: r.suppressed,
                completed: r.completed,
            })
            .collect())
    }
}

/// What an absorbed customer keeps when the customer it went into is erased.
const SCRUBBED_COLUMNS: &str = "first_name = NULL, last_name = NULL, emails = '[]', \
    phones = '[]', address = NULL, city = NULL, state = NULL, country = NULL, tags = '[]', \
    permission_to_contact = NULL, conflict = NULL, first_name_sort = '', \
    last_name_sort = '', search = ''";
