//! The SQL both backends share: standard SQL with `$N` placeholders, timestamps bound
//! as [`DbTime`](super::time::DbTime). `sql_store!` implements [`Store`](super::Store)
//! for a backend from these shared methods plus the backend's own items (its name and
//! its `MIGRATOR`), so each query is written once and still runs on both.

macro_rules! sql_store {
    ($store:ident, $db:ty, $conn:ty; $($specific:tt)*) => {
        mod sql_store {
            #[allow(unused_imports)]
            use super::*;
            use $crate::domain::tenancy::{ApiKey, KeyKind};
            use $crate::domain::tenants::{Account, Activation, Partner, Product};
            use $crate::domain::time::Timestamp;
            use $crate::domain::{AccountId, KeyId, PartnerId, ProductId};
            use $crate::storage::rows::{
                principal_columns, AccountRow, ActivationRow, KeyRow, PartnerRow, ProductRow,
                ACCOUNT_COLUMNS, ACTIVATION_COLUMNS, KEY_COLUMNS, PARTNER_COLUMNS, PRODUCT_COLUMNS,
            };
            use $crate::storage::time::DbTime;
            use $crate::storage::rows::{CustomerRow, CUSTOMER_COLUMNS, VIEWER_JOIN};
            use std::collections::HashSet;
            use $crate::storage::{
                AccountPage, AttemptRecord, AttemptResult, AttemptView, ClaimedDelivery, CustomerListQuery,
                Decide, Decision, DeliveryQuery, DeliveryView, FeedEvent, IdempotencyState, Modified, NewAssociation, NewCustomer, NewEvent, SortKey, Store,
                StoreResult, StoredCustomer, WriteOutcome,
            };
            use $crate::domain::customer::{Customer, CustomerScope, Identifier};
            use $crate::domain::CustomerId;
            use sqlx::types::Json;
            use sqlx::QueryBuilder;

            type Tx<'a> = sqlx::Transaction<'a, $db>;

            #[async_trait::async_trait]
            impl Store for super::$store {
                $($specific)*

                async fn migrate(&self) -> StoreResult<()> {
                    super::MIGRATOR.run(self.writer()).await?;
                    Ok(())
                }

                async fn check_ready(&self) -> StoreResult<bool> {
                    let applied: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                            .fetch_one(&self.pool)
                            .await?;
                    Ok(applied as usize >= super::MIGRATOR.iter().count())
                }

                async fn insert_customers(&self, rows: &[NewCustomer]) -> StoreResult<Vec<WriteOutcome>> {
                    if rows.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut tx = super::begin_write(self).await?;
                    let outcomes = insert_customers_in(&mut tx, rows).await?;
                    tx.commit().await?;
                    let written = rows
                        .iter()
                        .zip(&outcomes)
                        .filter(|(r, o)| r.event.is_some() && **o == WriteOutcome::Done)
                        .count();
                    if written > 0 {
                        metrics::counter!("customer_list_events_written_total").increment(written as u64);
                        self.wakeup.notify_one();
                    }
                    Ok(outcomes)
                }

                async fn insert_conflict_record(&self, record: &Customer) -> StoreResult<()> {
                    let mut tx = super::begin_write(self).await?;
                    insert_customer_rows(&mut tx, &[CustomerValues::of(record)]).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn get_customer(
                    &self,
                    id: &CustomerId,
                    viewer: Option<&ProductId>,
                ) -> StoreResult<Option<StoredCustomer>> {
                    let sql = format!(
                        "SELECT {CUSTOMER_COLUMNS} FROM customers c {VIEWER_JOIN} WHERE c.customer_id = $2"
                    );
                    let row: Option<CustomerRow> = sqlx::query_as(&sql)
                        .bind(viewer.map(ProductId::as_str))
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(StoredCustomer::try_from).transpose()
                }

                async fn find_by_vendor_id(
                    &self,
                    product: &ProductId,
                    vendor_customer_id: &str,
                ) -> StoreResult<Vec<CustomerId>> {
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT customer_id FROM associations \
                         WHERE product_id = $1 AND vendor_customer_id = $2 ORDER BY customer_id",
                    )
                    .bind(product.as_str())
                    .bind(vendor_customer_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids.into_iter().map(CustomerId::from_string).collect())
                }

                async fn modify_customer(
                    &self,
                    id: &CustomerId,
                    viewer: Option<&ProductId>,
                    decide: Decide,
                ) -> StoreResult<Modified> {
                    let mut tx = super::begin_write(self).await?;
                    let sql = format!(
                        "SELECT {CUSTOMER_COLUMNS} FROM customers c {VIEWER_JOIN} WHERE c.customer_id = $2{}",
                        super::LOCK_CUSTOMER_ROW
                    );
                    let row: Option<CustomerRow> = sqlx::query_as(&sql)
                        .bind(viewer.map(ProductId::as_str))
                        .bind(id.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(current) = row.map(StoredCustomer::try_from).transpose()? else {
                        tx.rollback().await?;
                        return Ok(Modified::Missing);
                    };
                    match decide(&current) {
                        Decision::Keep => {
                            tx.rollback().await?;
                            Ok(Modified::Kept(current))
                        }
                        Decision::Refuse(err) => {
                            tx.rollback().await?;
                            Ok(Modified::Refused(err))
                        }
                        Decision::Write { customer, identifiers, event } => {
                            let outcome =
                                update_in(&mut tx, &customer, current.customer.version, &identifiers).await?;
                            let outcome = finish(tx, outcome, event.as_ref(), &self.wakeup).await?;
                            Ok(Modified::Written { before: current, after: customer, outcome })
                        }
                    }
                }

                async fn keep_conflict_record(
                    &self,
                    conflict: &CustomerId,
                    row: &NewCustomer,
                ) -> StoreResult<WriteOutcome> {
                    let mut tx = super::begin_write(self).await?;
                    if !remove_conflict_record(&mut tx, conflict).await? {
                        tx.rollback().await?;
                        return Ok(WriteOutcome::Stale);
                    }
                    let outcome = insert_customers_in(&mut tx, std::slice::from_ref(row))
                        .await?
                        .pop()
                        .unwrap_or(WriteOutcome::Stale);
                    finish(tx, outcome, None, &self.wakeup).await
                }

                async fn merge_conflict_record(
                    &self,
                    conflict: &CustomerId,
                    survivor: &Customer,
                    expected_version: i64,
                    identifiers: &[Identifier],
                    association: Option<&NewAssociation>,
                    event: Option<&NewEvent>,
                ) -> StoreResult<WriteOutcome> {
                    let mut tx = super::begin_write(self).await?;
                    if !remove_conflict_record(&mut tx, conflict).await? {
                        tx.rollback().await?;
                        return Ok(WriteOutcome::Stale);
                    }
                    let mut outcome = update_in(&mut tx, survivor, expected_version, identifiers).await?;
                    if let (WriteOutcome::Done, Some(association)) = (&outcome, association) {
                        outcome = match insert_association(&mut tx, association).await? {
                            // The product already has its own id for the survivor: it wins.
                            WriteOutcome::Stale => WriteOutcome::Done,
                            other => other,
                        };
                    }
                    finish(tx, outcome, event, &self.wakeup).await
                }

                async fn merge_customers(
                    &self,
                    survivor: &Customer,
                    survivor_version: i64,
                    absorbed: &Customer,
                    absorbed_version: i64,
                    identifiers: &[Identifier],
                    event: Option<&NewEvent>,
                ) -> StoreResult<WriteOutcome> {
                    let mut tx = super::begin_write(self).await?;
                    // The absorbed customer lets go of its identifiers first, so the
                    // survivor can claim them.
                    if !rewrite_customer(&mut tx, &CustomerValues::of(absorbed), absorbed_version).await? {
                        tx.rollback().await?;
                        return Ok(WriteOutcome::Stale);
                    }
                    sqlx::query("DELETE FROM customer_identifiers WHERE customer_id = $1")
                        .bind(absorbed.customer_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    let outcome = update_in(&mut tx, survivor, survivor_version, identifiers).await?;
                    if outcome == WriteOutcome::Done {
                        // Every product's id follows the survivor, unless the product
                        // already has one for it (the survivor's own wins).
                        sqlx::query(
                            "UPDATE associations SET customer_id = $1 WHERE customer_id = $2 \
                             AND product_id NOT IN (SELECT product_id FROM associations WHERE customer_id = $1)",
                        )
                        .bind(survivor.customer_id.as_str())
                        .bind(absorbed.customer_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query("DELETE FROM associations WHERE customer_id = $1")
                            .bind(absorbed.customer_id.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                    finish(tx, outcome, event, &self.wakeup).await
                }

                async fn delete_customer(
                    &self,
                    customer: &Customer,
                    expected_version: i64,
                    event: Option<&NewEvent>,
                ) -> StoreResult<WriteOutcome> {
                    let values = CustomerValues::of(customer);
                    let mut tx = super::begin_write(self).await?;
                    if !rewrite_customer(&mut tx, &values, expected_version).await? {
                        tx.rollback().await?;
                        return Ok(WriteOutcome::Stale);
                    }
                    sqlx::query("DELETE FROM customer_identifiers WHERE customer_id = $1")
                        .bind(customer.customer_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    // The event snapshots the vendor ids before they are released.
                    if let Some(event) = event {
                        insert_event(&mut tx, event).await?;
                    }
                    sqlx::query("DELETE FROM associations WHERE customer_id = $1")
                        .bind(customer.customer_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    if event.is_some() {
                        self.wakeup.notify_one();
                    }
                    Ok(WriteOutcome::Done)
                }

                async fn discard_conflict_record(&self, id: &CustomerId) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "DELETE FROM customers WHERE customer_id = $1 AND status = 'conflict'",
                    )
                    .bind(id.as_str())
                    .execute(self.writer())
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn put_association(&self, association: &NewAssociation) -> StoreResult<WriteOutcome> {
                    let mut tx = super::begin_write(self).await?;
                    sqlx::query("DELETE FROM associations WHERE product_id = $1 AND customer_id = $2")
                        .bind(association.product_id.as_str())
                        .bind(association.customer_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    let outcome = insert_association(&mut tx, association).await?;
                    if outcome == WriteOutcome::Done {
                        tx.commit().await?;
                    } else {
                        tx.rollback().await?;
                    }
                    Ok(outcome)
                }

                async fn idempotency_begin(
                    &self,
                    principal: &str,
                    key: &str,
                    request_hash: &str,
                    now: Timestamp,
                    expired_before: Timestamp,
                    abandoned_before: Timestamp,
                ) -> StoreResult<IdempotencyState> {
                    let mut tx = super::begin_write(self).await?;
                    sqlx::query(
                        "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2 \
                         AND (created < $3 OR (status IS NULL AND created < $4))",
                    )
                    .bind(principal)
                    .bind(key)
                    .bind(DbTime(expired_before))
                    .bind(DbTime(abandoned_before))
                    .execute(&mut *tx)
                    .await?;
                    let claimed: Option<String> = sqlx::query_scalar(
                        "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, created) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING request_hash",
                    )
                    .bind(principal)
                    .bind(key)
                    .bind(request_hash)
                    .bind(DbTime(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let state = if claimed.is_some() {
                        IdempotencyState::Started
                    } else {
                        let (request_hash, status, response): (String, Option<i32>, Option<Json<serde_json::Value>>) =
                            sqlx::query_as(
                                "SELECT request_hash, status, response FROM idempotency_keys \
                                 WHERE principal = $1 AND idempotency_key = $2",
                            )
                            .bind(principal)
                            .bind(key)
                            .fetch_one(&mut *tx)
                            .await?;
                        match (status, response) {
                            (Some(status), Some(response)) => IdempotencyState::Completed {
                                request_hash,
                                status: status as u16,
                                response: response.0,
                            },
                            _ => IdempotencyState::InProgress { request_hash },
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
                    sqlx::query(
                        "UPDATE idempotency_keys SET status = $3, response = $4 \
                         WHERE principal = $1 AND idempotency_key = $2",
                    )
                    .bind(principal)
                    .bind(key)
                    .bind(status as i32)
                    .bind(Json(response))
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn idempotency_release(&self, principal: &str, key: &str) -> StoreResult<()> {
                    sqlx::query("DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2")
                        .bind(principal)
                        .bind(key)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn idempotency_purge(&self, before: Timestamp) -> StoreResult<u64> {
                    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created < $1")
                        .bind(DbTime(before))
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected())
                }

                async fn list_customers(
                    &self,
                    query: &CustomerListQuery,
                ) -> StoreResult<(Vec<StoredCustomer>, i64)> {
                    let mut page = QueryBuilder::<$db>::new(format!("SELECT {CUSTOMER_COLUMNS} FROM customers c "));
                    page.push("LEFT JOIN associations a ON a.customer_id = c.customer_id AND a.product_id = ")
                        .push_bind(query.viewer.as_ref().map(|p| p.as_str().to_owned()))
                        .push(" WHERE TRUE");
                    push_list_filters(&mut page, query);
                    let (column, direction) = match (query.sort, query.descending) {
                        (SortKey::Created, false) => ("c.created", ">"),
                        (SortKey::Created, true) => ("c.created", "<"),
                        (SortKey::LastName, false) => ("c.last_name_sort", ">"),
                        (SortKey::LastName, true) => ("c.last_name_sort", "<"),
                        (SortKey::FirstName, false) => ("c.first_name_sort", ">"),
                        (SortKey::FirstName, true) => ("c.first_name_sort", "<"),
                    };
                    if let Some((key, id)) = &query.after {
                        page.push(format!(" AND ({column}, c.customer_id) {direction} ("));
                        if query.sort == SortKey::Created {
                            let at = key
                                .parse::<Timestamp>()
                                .map_err(|_| $crate::storage::StoreError::Other("bad cursor time".into()))?;
                            page.push_bind(DbTime(at));
                        } else {
                            page.push_bind(key.clone());
                        }
                        page.push(", ").push_bind(id.as_str().to_owned()).push(")");
                    }
                    let order = if query.descending { "DESC" } else { "ASC" };
                    page.push(format!(" ORDER BY {column} {order}, c.customer_id {order} LIMIT "))
                        .push_bind(query.limit);
                    let counted = async {
                        if let Some(total) = query.known_total {
                            return Ok(total);
                        }
                        let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM customers c WHERE TRUE");
                        push_list_filters(&mut count, query);
                        count.build_query_scalar::<i64>().fetch_one(&self.pool).await
                    };
                    // The page and the count on two connections at once: a list costs the
                    // slower of the two, not their sum.
                    let (rows, total): (Vec<CustomerRow>, i64) = tokio::try_join!(
                        page.build_query_as().fetch_all(&self.pool),
                        counted,
                    )?;
                    let customers = rows
                        .into_iter()
                        .map(StoredCustomer::try_from)
                        .collect::<StoreResult<Vec<_>>>()?;
                    Ok((customers, total))
                }

                fn delivery_wakeup(&self) -> std::sync::Arc<tokio::sync::Notify> {
                    self.wakeup.clone()
                }

                async fn forward_notifications(&self, shutdown: tokio_util::sync::CancellationToken) {
                    super::forward_notifications(&self.pool, &self.wakeup, shutdown).await
                }

                async fn claim_deliveries(
                    &self,
                    now: Timestamp,
                    lease_until: Timestamp,
                    limit: i64,
                ) -> StoreResult<Vec<ClaimedDelivery>> {
                    let mut tx = super::begin_claim(self).await?;
                    let sql = format!(
                        "UPDATE deliveries SET lease_until = $2, attempts = attempts + 1, updated = $1 \
                         WHERE delivery_id IN ( \
                           SELECT d.delivery_id FROM deliveries d \
                           JOIN products p ON p.product_id = d.product_id \
                           WHERE d.status = 'pending' AND d.next_attempt <= $1 \
                             AND (d.lease_until IS NULL OR d.lease_until < $1) \
                             AND p.webhook_status = 'enabled' \
                             AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.product_id = d.product_id \
                                 AND o.customer_id = d.customer_id AND o.status = 'pending' AND o.version > d.version) \
                             AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.product_id = d.product_id \
                                 AND o.customer_id = d.customer_id AND o.status = 'pending' \
                                 AND o.lease_until >= $1 AND o.delivery_id <> d.delivery_id) \
                           ORDER BY d.next_attempt LIMIT $3{}) \
                         RETURNING delivery_id",
                        super::SKIP_LOCKED_DELIVERIES
                    );
                    let claimed: Vec<String> = sqlx::query_scalar(&sql)
                        .bind(DbTime(now))
                        .bind(DbTime(lease_until))
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                    if claimed.is_empty() {
                        tx.commit().await?;
                        return Ok(Vec::new());
                    }
                    // Older pending versions of the claimed pairs will never be sent.
                    let mut supersede = QueryBuilder::<$db>::new("UPDATE deliveries SET status = 'superseded', updated = ");
                    // Driven from the claimed rows (a few index probes), not from every
                    // pending row of the database (see OLDER_PENDING).
                    supersede
                        .push_bind(DbTime(now))
                        .push(super::OLDER_PENDING.0)
                        .push_bind(DbTime(now))
                        .push(super::OLDER_PENDING.1);
                    let mut ids = supersede.separated(", ");
                    for id in &claimed {
                        ids.push_bind(id.as_str());
                    }
                    supersede.push("))");
                    supersede.build().execute(&mut *tx).await?;

                    let mut details = QueryBuilder::<$db>::new(
                        "SELECT d.delivery_id, d.product_id, d.customer_id, d.version, d.attempts, \
                         e.event_id, e.type, e.created, e.data, e.vendor_ids, p.webhook_url, \
                         p.webhook_secret, p.previous_webhook_secret, p.previous_secret_expires \
                         FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                         JOIN products p ON p.product_id = d.product_id WHERE d.delivery_id IN (",
                    );
                    let mut ids = details.separated(", ");
                    for id in &claimed {
                        ids.push_bind(id.as_str());
                    }
                    details.push(")");
                    let rows: Vec<ClaimRow> = details.build_query_as().fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(rows
                        .into_iter()
                        .map(|r| {
                            let mut secrets = vec![r.webhook_secret];
                            if let (Some(previous), Some(until)) = (r.previous_webhook_secret, r.previous_secret_expires) {
                                if until > now {
                                    secrets.push(previous);
                                }
                            }
                            ClaimedDelivery {
                                delivery_id: r.delivery_id,
                                product_id: ProductId::from_string(r.product_id),
                                customer_id: CustomerId::from_string(r.customer_id),
                                version: r.version,
                                attempts: r.attempts,
                                event_id: r.event_id,
                                event_type: r.r#type,
                                event_created: r.created,
                                data: r.data.0,
                                vendor_ids: r.vendor_ids.0,
                                webhook_url: r.webhook_url,
                                secrets,
                            }
                        })
                        .collect())
                }

                async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()> {
                    if records.is_empty() {
                        return Ok(());
                    }
                    let mut tx = super::begin_record(self).await?;
                    let mut attempts = QueryBuilder::<$db>::new(
                        "INSERT INTO delivery_attempts (delivery_id, attempt, attempted_at, response_code, \
                         latency_ms, response_body, error) ",
                    );
                    attempts.push_values(records, |mut row, r| {
                        row.push_bind(r.delivery_id.as_str())
                            .push_bind(r.attempt)
                            .push_bind(DbTime(r.at))
                            .push_bind(r.response_code)
                            .push_bind(r.latency_ms)
                            .push_bind(r.response_body.as_deref())
                            .push_bind(r.error.as_deref());
                    });
                    attempts.push(" ON CONFLICT DO NOTHING");
                    attempts.build().execute(&mut *tx).await?;

                    // The common case, successes, in two statements for the whole batch.
                    let delivered: Vec<&AttemptRecord> = records
                        .iter()
                        .filter(|r| matches!(r.result, AttemptResult::Delivered))
                        .collect();
                    if let Some(last) = delivered.iter().map(|r| r.at).max() {
                        let mut done = QueryBuilder::<$db>::new(
                            "UPDATE deliveries SET status = 'delivered', lease_until = NULL, updated = ",
                        );
                        done.push_bind(DbTime(last))
                            .push(" WHERE status = 'pending' AND delivery_id IN (");
                        let mut ids = done.separated(", ");
                        for r in &delivered {
                            ids.push_bind(r.delivery_id.as_str());
                        }
                        done.push(")");
                        done.build().execute(&mut *tx).await?;
                        let mut products: Vec<&str> = delivered.iter().map(|r| r.product_id.as_str()).collect();
                        products.sort_unstable();
                        products.dedup();
                        // Only products that were failing: a no-op update would still write
                        // a row version and queue every delivery of a product on one lock.
                        let mut healthy = QueryBuilder::<$db>::new(
                            "UPDATE products SET webhook_failing_since = NULL \
                             WHERE webhook_failing_since IS NOT NULL AND product_id IN (",
                        );
                        let mut ids = healthy.separated(", ");
                        for product in products {
                            ids.push_bind(product);
                        }
                        healthy.push(")");
                        healthy.build().execute(&mut *tx).await?;
                    }

                    for r in records.iter().filter(|r| !matches!(r.result, AttemptResult::Delivered)) {
                        let (status, next): (&str, Option<Timestamp>) = match &r.result {
                            AttemptResult::Retry(at) => ("pending", Some(*at)),
                            _ => ("failed", None),
                        };
                        sqlx::query(
                            "UPDATE deliveries SET status = $2, next_attempt = COALESCE($3, next_attempt), \
                             lease_until = NULL, updated = $4 WHERE delivery_id = $1 AND status = 'pending'",
                        )
                        .bind(r.delivery_id.as_str())
                        .bind(status)
                        .bind(next.map(DbTime))
                        .bind(DbTime(r.at))
                        .execute(&mut *tx)
                        .await?;
                        let product = r.product_id.as_str();
                        if matches!(r.result, AttemptResult::Gone) {
                            disable_webhook(&mut tx, product, "the receiver answered 410 Gone", r.at).await?;
                            continue;
                        }
                        sqlx::query(
                            "UPDATE products SET webhook_failing_since = $2 \
                             WHERE product_id = $1 AND webhook_failing_since IS NULL",
                        )
                        .bind(product)
                        .bind(DbTime(r.at))
                        .execute(&mut *tx)
                        .await?;
                        let since: Option<Timestamp> = sqlx::query_scalar(
                            "SELECT webhook_failing_since FROM products WHERE product_id = $1",
                        )
                        .bind(product)
                        .fetch_one(&mut *tx)
                        .await?;
                        if since.is_some_and(|t| t < r.disable_if_failing_since) {
                            disable_webhook(&mut tx, product, "failing for 5 days without a success", r.at).await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
                    let due: Option<Timestamp> = sqlx::query_scalar(
                        "SELECT MIN(next_attempt) FROM deliveries WHERE status = 'pending'",
                    )
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(due)
                }

                async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryView>> {
                    let mut sql = QueryBuilder::<$db>::new(DELIVERY_SELECT);
                    sql.push(" WHERE d.product_id = ").push_bind(q.product_id.as_str().to_owned());
                    if let Some(status) = &q.status {
                        sql.push(" AND d.status = ").push_bind(status.clone());
                    }
                    if let Some(customer) = &q.customer_id {
                        sql.push(" AND d.customer_id = ").push_bind(customer.clone());
                    }
                    if let Some((created, id)) = &q.before {
                        push_keyset_bound(&mut sql, "d.created, d.delivery_id", "<", *created, id);
                    }
                    sql.push(" ORDER BY d.created DESC, d.delivery_id DESC LIMIT ").push_bind(q.limit);
                    let rows: Vec<DeliveryRow> = sql.build_query_as().fetch_all(&self.pool).await?;
                    with_attempts(&self.pool, rows).await
                }

                async fn get_delivery(&self, id: &str) -> StoreResult<Option<DeliveryView>> {
                    let mut sql = QueryBuilder::<$db>::new(DELIVERY_SELECT);
                    sql.push(" WHERE d.delivery_id = ").push_bind(id.to_owned());
                    let rows: Vec<DeliveryRow> = sql.build_query_as().fetch_all(&self.pool).await?;
                    Ok(with_attempts(&self.pool, rows).await?.pop())
                }

                async fn retry_delivery(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
                    let mut tx = super::begin_write(self).await?;
                    let done = sqlx::query(
                        "UPDATE deliveries SET status = 'pending', next_attempt = $2, lease_until = NULL, updated = $2 \
                         WHERE delivery_id = $1 AND status <> 'superseded' \
                           AND (lease_until IS NULL OR lease_until < $2) \
                           AND NOT EXISTS (SELECT 1 FROM deliveries n WHERE n.product_id = deliveries.product_id \
                               AND n.customer_id = deliveries.customer_id AND n.version > deliveries.version \
                               AND n.status IN ('pending', 'delivered'))",
                    )
                    .bind(id)
                    .bind(DbTime(now))
                    .execute(&mut *tx)
                    .await?;
                    let retried = done.rows_affected() > 0;
                    if retried {
                        super::signal_deliveries(&mut tx).await?;
                    }
                    tx.commit().await?;
                    if retried {
                        self.wakeup.notify_one();
                    }
                    Ok(retried)
                }

                async fn set_webhook_status(
                    &self,
                    product: &ProductId,
                    enabled: bool,
                    reason: Option<&str>,
                    now: Timestamp,
                ) -> StoreResult<()> {
                    let mut tx = super::begin_write(self).await?;
                    if enabled {
                        sqlx::query(
                            "UPDATE products SET webhook_status = 'enabled', webhook_disabled_reason = NULL, \
                             webhook_failing_since = NULL, updated = $2 WHERE product_id = $1",
                        )
                        .bind(product.as_str())
                        .bind(DbTime(now))
                        .execute(&mut *tx)
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
                    sqlx::query(
                        "UPDATE products SET previous_webhook_secret = webhook_secret, webhook_secret = $2, \
                         previous_secret_expires = $3, updated = $4 WHERE product_id = $1",
                    )
                    .bind(product.as_str())
                    .bind(secret)
                    .bind(DbTime(previous_expires))
                    .bind(DbTime(now))
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn feed(
                    &self,
                    product: &ProductId,
                    after: (i64, i64),
                    limit: i64,
                ) -> StoreResult<Vec<FeedEvent>> {
                    let sql = format!(
                        "SELECT e.txid, e.seq, e.event_id, e.type, e.data, e.vendor_ids, e.created FROM events e \
                         JOIN activations a ON a.account_id = e.account_id AND a.product_id = $1 AND a.sync = 'two_way' \
                         WHERE (e.txid, e.seq) > ($2, $3) \
                           AND (e.origin_product_id IS NULL OR e.origin_product_id <> $1){} \
                         ORDER BY e.txid, e.seq LIMIT $4",
                        super::FEED_VISIBLE
                    );
                    let rows: Vec<(i64, i64, String, String, Json<serde_json::Value>, Json<serde_json::Value>, Timestamp)> =
                        sqlx::query_as(&sql)
                            .bind(product.as_str())
                            .bind(after.0)
                            .bind(after.1)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(txid, seq, event_id, event_type, data, vendor_ids, created)| FeedEvent {
                            position: (txid, seq),
                            event_id,
                            event_type,
                            data: data.0,
                            vendor_ids: vendor_ids.0,
                            created,
                        })
                        .collect())
                }

                async fn delivery_stats(&self) -> StoreResult<(i64, i64)> {
                    let stats: (i64, i64) = sqlx::query_as(
                        "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'pending'), \
                                (SELECT COUNT(*) FROM products WHERE webhook_status = 'disabled')",
                    )
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(stats)
                }

                fn pool_stats(&self) -> (u32, usize) {
                    (self.pool.size(), self.pool.num_idle())
                }

                async fn purge_history(&self, before: Timestamp) -> StoreResult<u64> {
                    let mut tx = super::begin_write(self).await?;
                    let mut removed = 0;
                    for sql in [
                        "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE created < $1)",
                        "DELETE FROM deliveries WHERE created < $1",
                        "DELETE FROM events WHERE created < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)",
                    ] {
                        removed += sqlx::query(sql).bind(DbTime(before)).execute(&mut *tx).await?.rows_affected();
                    }
                    tx.commit().await?;
                    Ok(removed)
                }

                async fn close(&self) {
                    self.pool.close().await;
                    self.writer().close().await;
                }

    async fn insert_partner(&self, partner: &Partner) -> StoreResult<()> {
        sqlx::query("INSERT INTO partners (partner_id, name, created) VALUES ($1, $2, $3)")
            .bind(partner.partner_id.as_str())
            .bind(partner.name.as_str())
            .bind(DbTime(partner.created))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn get_partner(&self, id: &PartnerId) -> StoreResult<Option<Partner>> {
        let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE partner_id = $1");
        let row: Option<PartnerRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Partner::from))
    }

    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (account_id, partner_id, name, default_region, dedupe_policy, \
             created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(account.account_id.as_str())
        .bind(account.partner_id.as_str())
        .bind(account.name.as_str())
        .bind(account.default_region.as_str())
        .bind(account.dedupe_policy.as_str())
        .bind(DbTime(account.created))
        .bind(DbTime(account.updated))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1");
        let row: Option<AccountRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Account::try_from).transpose()
    }

    async fn list_accounts(&self, page: &AccountPage) -> StoreResult<Vec<Account>> {
        // Conditions are added only when present, so the planner sees a plain range
        // over the (partner_id, created, account_id) index.
        let mut sql = QueryBuilder::<$db>::new(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE TRUE"));
        if let Some(partner) = &page.partner {
            sql.push(" AND partner_id = ").push_bind(partner.as_str());
        }
        if let Some((created, id)) = &page.after {
            push_keyset_bound(&mut sql, "created, account_id", ">", *created, id.as_str());
        }
        sql.push(" ORDER BY created, account_id LIMIT ").push_bind(page.limit);
        let rows: Vec<AccountRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    async fn insert_product(&self, product: &Product, key: &ApiKey, hash: &str) -> StoreResult<()> {
        let mut tx = super::begin_write(self).await?;
        sqlx::query(
            "INSERT INTO products (product_id, partner_id, name, webhook_url, webhook_secret, \
             webhook_status, webhook_disabled_reason, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(product.product_id.as_str())
        .bind(product.partner_id.as_ref().map(PartnerId::as_str))
        .bind(product.name.as_str())
        .bind(product.webhook_url.as_ref().map(|u| u.as_str()))
        .bind(&product.webhook_secret)
        .bind(product.webhook_status.as_str())
        .bind(product.webhook_disabled_reason.as_deref())
        .bind(DbTime(product.created))
        .bind(DbTime(product.updated))
        .execute(&mut *tx)
        .await?;
        insert_key(&mut tx, key, hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_product(&self, id: &ProductId) -> StoreResult<Option<Product>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id = $1");
        let row: Option<ProductRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Product::try_from).transpose()
    }

    async fn update_product(&self, product: &Product) -> StoreResult<()> {
        sqlx::query(
            "UPDATE products SET name = $2, webhook_url = $3, updated = $4 WHERE product_id = $1",
        )
        .bind(product.product_id.as_str())
        .bind(product.name.as_str())
        .bind(product.webhook_url.as_ref().map(|u| u.as_str()))
        .bind(DbTime(product.updated))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn upsert_activation(&self, activation: &Activation) -> StoreResult<Activation> {
        let sql = format!(
            "INSERT INTO activations (account_id, product_id, sync, created, updated) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (account_id, product_id) DO UPDATE \
               SET sync = excluded.sync, \
                   updated = CASE WHEN activations.sync = excluded.sync \
                                  THEN activations.updated ELSE excluded.updated END \
             RETURNING {ACTIVATION_COLUMNS}"
        );
        let row: ActivationRow = sqlx::query_as(&sql)
            .bind(activation.account_id.as_str())
            .bind(activation.product_id.as_str())
            .bind(activation.sync.as_str())
            .bind(DbTime(activation.updated))
            .fetch_one(self.writer())
            .await?;
        Activation::try_from(row)
    }

    async fn get_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<Option<Activation>> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE account_id = $1 AND product_id = $2"
        );
        let row: Option<ActivationRow> = sqlx::query_as(&sql)
            .bind(account.as_str())
            .bind(product.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Activation::try_from).transpose()
    }

    async fn delete_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM activations WHERE account_id = $1 AND product_id = $2")
            .bind(account.as_str())
            .bind(product.as_str())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_activations(&self, account: &AccountId) -> StoreResult<Vec<Activation>> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE account_id = $1 \
             ORDER BY created, product_id"
        );
        let rows: Vec<ActivationRow> = sqlx::query_as(&sql)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Activation::try_from).collect()
    }

    async fn insert_key(&self, key: &ApiKey, hash: &str) -> StoreResult<()> {
        let mut conn = self.writer().acquire().await?;
        insert_key(&mut conn, key, hash).await
    }

    async fn find_active_key(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked IS NULL");
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(ApiKey::try_from).transpose()
    }

    async fn get_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1");
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(ApiKey::try_from).transpose()
    }

    async fn revoke_key(&self, id: &KeyId, at: Timestamp) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked = $2 WHERE key_id = $1 AND revoked IS NULL")
                .bind(id.as_str())
                .bind(DbTime(at))
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn has_active_admin_key(&self) -> StoreResult<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM api_keys WHERE kind = $1 AND revoked IS NULL LIMIT 1",
        )
        .bind(KeyKind::Admin.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn put_admin_key(&self, id: &KeyId, hash: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, kind, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_id) DO UPDATE SET key_hash = excluded.key_hash, revoked = NULL",
        )
        .bind(id.as_str())
        .bind(hash)
        .bind(KeyKind::Admin.as_str())
        .bind(DbTime(at))
        .execute(self.writer())
        .await?;
        Ok(())
    }
            }


            /// Rows per multi-row statement: within both backends' bind-parameter limits
            /// (SQLite: 32766; Postgres: 65535) at 25 columns a row.
            const ROW_CHUNK: usize = 500;
            const IDENTIFIER_CHUNK: usize = 2000;

            const INSERT_EVENT_HEAD: &str = "INSERT INTO events (event_id, account_id, customer_id, \
                type, version, origin_product_id, data, vendor_ids, created) ";

            /// Rewrites a customer at `expected_version` and replaces its identifiers
            /// within `tx`: releases those it no longer has, claims the new ones.
            async fn update_in(
                tx: &mut Tx<'_>,
                customer: &Customer,
                expected_version: i64,
                identifiers: &[Identifier],
            ) -> StoreResult<WriteOutcome> {
                if !rewrite_customer(tx, &CustomerValues::of(customer), expected_version).await? {
                    return Ok(WriteOutcome::Stale);
                }
                let mut keep = QueryBuilder::<$db>::new("DELETE FROM customer_identifiers WHERE customer_id = ");
                keep.push_bind(customer.customer_id.as_str());
                for id in identifiers {
                    keep.push(" AND NOT (kind = ")
                        .push_bind(id.kind)
                        .push(" AND value = ")
                        .push_bind(id.value.as_str())
                        .push(")");
                }
                keep.build().execute(&mut **tx).await?;
                let scope = customer.scope.key();
                claim_identifiers(tx, &scope, identifiers, &customer.customer_id).await
            }

            /// Commits with the event when the write went through; rolls back otherwise.
            async fn finish(
                tx: Tx<'_>,
                outcome: WriteOutcome,
                event: Option<&NewEvent>,
                wakeup: &tokio::sync::Notify,
            ) -> StoreResult<WriteOutcome> {
                let mut tx = tx;
                if outcome != WriteOutcome::Done {
                    tx.rollback().await?;
                    return Ok(outcome);
                }
                if let Some(event) = event {
                    insert_event(&mut tx, event).await?;
                }
                tx.commit().await?;
                if event.is_some() {
                    metrics::counter!("customer_list_events_written_total").increment(1);
                    wakeup.notify_one();
                }
                Ok(outcome)
            }

            /// Deletes a pending conflict record; false when there is none (any more).
            async fn remove_conflict_record(tx: &mut Tx<'_>, id: &CustomerId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM customers WHERE customer_id = $1 AND status = 'conflict'")
                    .bind(id.as_str())
                    .execute(&mut **tx)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            /// Inserts new customers within `tx` (see `Store::insert_customers`).
            async fn insert_customers_in(tx: &mut Tx<'_>, rows: &[NewCustomer]) -> StoreResult<Vec<WriteOutcome>> {
                    let values: Vec<CustomerValues> = rows.iter().map(|r| CustomerValues::of(&r.customer)).collect();
                    insert_customer_rows(tx, &values).await?;

                    // Claim identifiers; of racing writers (or of rows of this batch) exactly
                    // one gets each, the rest learn they collided.
                    let wanted: Vec<(usize, &Identifier)> = rows
                        .iter()
                        .enumerate()
                        .flat_map(|(i, r)| r.identifiers.iter().map(move |id| (i, id)))
                        .collect();
                    let mut claimed: HashSet<(String, String, String)> = HashSet::new();
                    for chunk in wanted.chunks(IDENTIFIER_CHUNK) {
                        let mut insert = QueryBuilder::<$db>::new(
                            "INSERT INTO customer_identifiers (scope, kind, value, customer_id) ",
                        );
                        insert.push_values(chunk, |mut b, (i, id)| {
                            b.push_bind(values[*i].scope.as_str())
                                .push_bind(id.kind)
                                .push_bind(id.value.as_str())
                                .push_bind(values[*i].id.as_str());
                        });
                        insert.push(" ON CONFLICT DO NOTHING RETURNING customer_id, kind, value");
                        let got: Vec<(String, String, String)> =
                            insert.build_query_as().fetch_all(&mut **tx).await?;
                        claimed.extend(got);
                    }
                    let mut failed = vec![false; rows.len()];
                    let mut unclaimed: Vec<(usize, &Identifier)> = Vec::new();
                    for (i, id) in &wanted {
                        let key = (values[*i].id.clone(), id.kind.to_owned(), id.value.clone());
                        if !claimed.contains(&key) {
                            failed[*i] = true;
                            unclaimed.push((*i, id));
                        }
                    }

                    // Associate the creating product's id where the identifiers were free.
                    let associations: Vec<(usize, &NewAssociation)> = rows
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !failed[*i])
                        .filter_map(|(i, r)| r.association.as_ref().map(|a| (i, a)))
                        .collect();
                    let mut associated: HashSet<String> = HashSet::new();
                    for chunk in associations.chunks(ROW_CHUNK) {
                        let mut insert = QueryBuilder::<$db>::new(
                            "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) ",
                        );
                        insert.push_values(chunk, |mut b, (_, a)| {
                            b.push_bind(a.product_id.as_str())
                                .push_bind(a.customer_id.as_str())
                                .push_bind(a.scope.as_str())
                                .push_bind(a.vendor_customer_id.as_str())
                                .push_bind(DbTime(a.created));
                        });
                        insert.push(" ON CONFLICT DO NOTHING RETURNING customer_id");
                        let got: Vec<String> = insert.build_query_scalar().fetch_all(&mut **tx).await?;
                        associated.extend(got);
                    }
                    let mut taken: Vec<(usize, &NewAssociation)> = Vec::new();
                    for (i, a) in associations {
                        if !associated.contains(a.customer_id.as_str()) {
                            failed[i] = true;
                            taken.push((i, a));
                        }
                    }

                    // Undo the rows that collided, then see who owns what they wanted.
                    let undone: Vec<&str> = (0..rows.len()).filter(|i| failed[*i]).map(|i| values[i].id.as_str()).collect();
                    for chunk in undone.chunks(ROW_CHUNK) {
                        for table in ["associations", "customer_identifiers", "customers"] {
                            let mut delete = QueryBuilder::<$db>::new(format!("DELETE FROM {table} WHERE customer_id IN ("));
                            let mut list = delete.separated(", ");
                            for id in chunk {
                                list.push_bind(*id);
                            }
                            delete.push(")");
                            delete.build().execute(&mut **tx).await?;
                        }
                    }
                    let mut outcomes: Vec<WriteOutcome> = failed
                        .iter()
                        .map(|f| if *f { WriteOutcome::Stale } else { WriteOutcome::Done })
                        .collect();
                    for (i, id) in unclaimed {
                        let owner: Option<String> = sqlx::query_scalar(
                            "SELECT customer_id FROM customer_identifiers \
                             WHERE scope = $1 AND kind = $2 AND value = $3",
                        )
                        .bind(values[i].scope.as_str())
                        .bind(id.kind)
                        .bind(id.value.as_str())
                        .fetch_optional(&mut **tx)
                        .await?;
                        if let Some(owner) = owner {
                            let hit = (id.clone(), CustomerId::from_string(owner));
                            match &mut outcomes[i] {
                                WriteOutcome::Duplicate(list) => list.push(hit),
                                other => *other = WriteOutcome::Duplicate(vec![hit]),
                            }
                        }
                    }
                    for (i, a) in taken {
                        let owner: Option<String> = sqlx::query_scalar(
                            "SELECT customer_id FROM associations \
                             WHERE product_id = $1 AND scope = $2 AND vendor_customer_id = $3",
                        )
                        .bind(a.product_id.as_str())
                        .bind(a.scope.as_str())
                        .bind(a.vendor_customer_id.as_str())
                        .fetch_optional(&mut **tx)
                        .await?;
                        if let Some(owner) = owner {
                            outcomes[i] = WriteOutcome::VendorIdTaken(CustomerId::from_string(owner));
                        }
                    }

                    // Events of the rows that stand; a new customer's only vendor id is its
                    // creator's.
                    let events: Vec<(&NewEvent, serde_json::Value)> = rows
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, o)| **o == WriteOutcome::Done)
                        .filter_map(|(r, _)| {
                            let vendor_ids = match &r.association {
                                Some(a) => serde_json::json!({ a.product_id.as_str(): a.vendor_customer_id }),
                                None => serde_json::json!({}),
                            };
                            r.event.as_ref().map(|e| (e, vendor_ids))
                        })
                        .collect();
                    for chunk in events.chunks(ROW_CHUNK) {
                        let mut insert = QueryBuilder::<$db>::new(INSERT_EVENT_HEAD);
                        insert.push_values(chunk, |mut b, (e, vendor_ids)| {
                            b.push_bind(e.event_id.as_str())
                                .push_bind(e.account_id.as_str())
                                .push_bind(e.customer_id.as_str())
                                .push_bind(e.kind)
                                .push_bind(e.version)
                                .push_bind(e.origin.as_ref().map(ProductId::as_str))
                                .push_bind(Json(&e.data))
                                .push_bind(Json(vendor_ids))
                                .push_bind(DbTime(e.created));
                        });
                        insert.build().execute(&mut **tx).await?;
                        let ids: Vec<&str> = chunk.iter().map(|(e, _)| e.event_id.as_str()).collect();
                        let now = chunk.first().map(|(e, _)| e.created).unwrap_or_else($crate::domain::time::now);
                        // New customers: no older delivery of theirs to supersede.
                        enqueue_deliveries(tx, &ids, now, false).await?;
                    }
                    Ok(outcomes)
            }


            #[derive(sqlx::FromRow)]
            struct ClaimRow {
                delivery_id: String,
                product_id: String,
                customer_id: String,
                version: i64,
                attempts: i32,
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

            const DELIVERY_SELECT: &str = "SELECT d.delivery_id, d.product_id, d.customer_id, \
                e.event_id, e.type, d.version, d.status, d.attempts, d.next_attempt, d.created, d.updated \
                FROM deliveries d JOIN events e ON e.seq = d.event_seq";

            #[derive(sqlx::FromRow)]
            struct DeliveryRow {
                delivery_id: String,
                product_id: String,
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

            /// The delivery log rows with their attempts, in one more query.
            async fn with_attempts(
                pool: &sqlx::Pool<$db>,
                rows: Vec<DeliveryRow>,
            ) -> StoreResult<Vec<DeliveryView>> {
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let mut sql = QueryBuilder::<$db>::new(
                    "SELECT delivery_id, attempt, attempted_at, response_code, latency_ms, response_body, error \
                     FROM delivery_attempts WHERE delivery_id IN (",
                );
                let mut ids = sql.separated(", ");
                for row in &rows {
                    ids.push_bind(row.delivery_id.clone());
                }
                sql.push(") ORDER BY delivery_id, attempt");
                let attempts: Vec<(String, i32, Timestamp, Option<i32>, i64, Option<String>, Option<String>)> =
                    sql.build_query_as().fetch_all(pool).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| DeliveryView {
                        attempt_log: attempts
                            .iter()
                            .filter(|a| a.0 == r.delivery_id)
                            .map(|a| AttemptView {
                                attempt: a.1,
                                attempted_at: a.2,
                                response_code: a.3,
                                latency_ms: a.4,
                                response_body: a.5.clone(),
                                error: a.6.clone(),
                            })
                            .collect(),
                        next_attempt: (r.status == "pending").then_some(r.next_attempt),
                        delivery_id: r.delivery_id,
                        product_id: r.product_id,
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

            /// Disables a product's webhook and fails its pending deliveries (the feed
            /// keeps the events).
            async fn disable_webhook(tx: &mut Tx<'_>, product: &str, reason: &str, now: Timestamp) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE products SET webhook_status = 'disabled', webhook_disabled_reason = $2, updated = $3 \
                     WHERE product_id = $1",
                )
                .bind(product)
                .bind(reason)
                .bind(DbTime(now))
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE deliveries SET status = 'failed', lease_until = NULL, updated = $2 \
                     WHERE product_id = $1 AND status = 'pending'",
                )
                .bind(product)
                .bind(DbTime(now))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Queues a delivery of each event to every product activated two-way on its
            /// account with an enabled webhook, except the product that caused it, and
            /// supersedes older pending deliveries of the same (product, customer).
            async fn enqueue_deliveries(
                tx: &mut Tx<'_>,
                event_ids: &[&str],
                now: Timestamp,
                supersede_older: bool,
            ) -> StoreResult<()> {
                if event_ids.is_empty() {
                    return Ok(());
                }
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, \
                     version, status, attempts, next_attempt, lease_until, created, updated) \
                     SELECT e.event_id || '.' || a.product_id, a.product_id, e.account_id, e.customer_id, \
                     e.seq, e.version, 'pending', 0, e.created, NULL, e.created, e.created \
                     FROM events e \
                     JOIN activations a ON a.account_id = e.account_id AND a.sync = 'two_way' \
                     JOIN products p ON p.product_id = a.product_id \
                       AND p.webhook_url IS NOT NULL AND p.webhook_status = 'enabled' \
                     WHERE (e.origin_product_id IS NULL OR a.product_id <> e.origin_product_id) \
                       AND e.event_id IN (",
                );
                let mut ids = insert.separated(", ");
                for id in event_ids {
                    ids.push_bind(*id);
                }
                insert.push(")");
                let queued = insert.build().execute(&mut **tx).await?.rows_affected();
                if queued == 0 {
                    return Ok(());
                }
                if !supersede_older {
                    super::signal_deliveries(tx).await?;
                    return Ok(());
                }
                let mut supersede = QueryBuilder::<$db>::new("UPDATE deliveries SET status = 'superseded', updated = ");
                // Rows a dispatcher holds are skipped, not waited for: its claim supersedes
                // them itself, and a stale pending row is never claimed while a newer one
                // is pending.
                supersede
                    .push_bind(DbTime(now))
                    .push(
                        " WHERE delivery_id IN (SELECT d.delivery_id FROM deliveries d \
                         WHERE d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until < ",
                    )
                    .push_bind(DbTime(now))
                    .push(") AND d.customer_id IN (SELECT customer_id FROM events WHERE event_id IN (");
                let mut ids = supersede.separated(", ");
                for id in event_ids {
                    ids.push_bind(*id);
                }
                supersede.push(
                    ")) AND EXISTS (SELECT 1 FROM deliveries n WHERE n.product_id = d.product_id \
                     AND n.customer_id = d.customer_id AND n.status = 'pending' \
                     AND n.version > d.version)",
                );
                supersede.push(super::SKIP_LOCKED_DELIVERIES).push(")");
                supersede.build().execute(&mut **tx).await?;
                super::signal_deliveries(tx).await?;
                Ok(())
            }

            /// Adds ` AND (<columns>) <op> (<at>, <id>)`: where a keyset page starts.
            fn push_keyset_bound(
                sql: &mut QueryBuilder<'_, $db>,
                columns: &str,
                op: &str,
                at: Timestamp,
                id: &str,
            ) {
                sql.push(format!(" AND ({columns}) {op} ("))
                    .push_bind(DbTime(at))
                    .push(", ")
                    .push_bind(id.to_owned())
                    .push(")");
            }

            /// Every column of a customer row, in the order `push_customer_values` binds.
            const CUSTOMER_WRITE_COLUMNS: &str = "customer_id, scope, account_id, owner_product_id, \
                status, first_name, last_name, emails, phones, address, city, state, country, tags, \
                permission_to_contact, origins, version, created, updated, deleted, merged_into, \
                conflict, first_name_sort, last_name_sort, search";

            fn push_customer_values<'args>(
                mut b: sqlx::query_builder::Separated<'_, 'args, $db, &'static str>,
                v: &'args CustomerValues,
            ) {
                b.push_bind(v.id.as_str())
                    .push_bind(v.scope.as_str())
                    .push_bind(v.account_id.as_deref())
                    .push_bind(v.owner_product_id.as_deref())
                    .push_bind(v.status)
                    .push_bind(v.first_name.as_deref())
                    .push_bind(v.last_name.as_deref())
                    .push_bind(Json(&v.emails))
                    .push_bind(Json(&v.phones))
                    .push_bind(v.address.as_deref())
                    .push_bind(v.city.as_deref())
                    .push_bind(v.state.as_deref())
                    .push_bind(v.country.as_deref())
                    .push_bind(Json(&v.tags))
                    .push_bind(v.permission)
                    .push_bind(Json(&v.origins))
                    .push_bind(v.version)
                    .push_bind(v.created)
                    .push_bind(v.updated)
                    .push_bind(v.deleted)
                    .push_bind(v.merged_into.as_deref())
                    .push_bind(v.conflict.as_ref().map(Json))
                    .push_bind(v.first_name_sort.as_str())
                    .push_bind(v.last_name_sort.as_str())
                    .push_bind(v.search.as_str());
            }

            /// Rewrites a customer row if its stored version is `expected_version`.
            /// Returns whether it did.
            async fn rewrite_customer(
                tx: &mut Tx<'_>,
                values: &CustomerValues,
                expected_version: i64,
            ) -> StoreResult<bool> {
                let mut update =
                    QueryBuilder::<$db>::new(format!("UPDATE customers SET ({CUSTOMER_WRITE_COLUMNS}) = ("));
                push_customer_values(update.separated(", "), values);
                update
                    .push(") WHERE customer_id = ")
                    .push_bind(values.id.as_str())
                    .push(" AND version = ")
                    .push_bind(expected_version);
                let done = update.build().execute(&mut **tx).await?;
                Ok(done.rows_affected() > 0)
            }

            /// Inserts customer rows with multi-row statements.
            async fn insert_customer_rows(tx: &mut Tx<'_>, values: &[CustomerValues]) -> StoreResult<()> {
                for chunk in values.chunks(ROW_CHUNK) {
                    let mut insert =
                        QueryBuilder::<$db>::new(format!("INSERT INTO customers ({CUSTOMER_WRITE_COLUMNS}) "));
                    insert.push_values(chunk, push_customer_values);
                    insert.build().execute(&mut **tx).await?;
                }
                Ok(())
            }


            /// A customer's column values, owned so queries can borrow them.
            struct CustomerValues {
                id: String,
                scope: String,
                account_id: Option<String>,
                owner_product_id: Option<String>,
                status: &'static str,
                first_name: Option<String>,
                last_name: Option<String>,
                emails: serde_json::Value,
                phones: serde_json::Value,
                address: Option<String>,
                city: Option<String>,
                state: Option<String>,
                country: Option<String>,
                tags: serde_json::Value,
                permission: Option<DbTime>,
                origins: serde_json::Value,
                version: i64,
                created: DbTime,
                updated: DbTime,
                deleted: Option<DbTime>,
                merged_into: Option<String>,
                conflict: Option<serde_json::Value>,
                first_name_sort: String,
                last_name_sort: String,
                search: String,
            }

            impl CustomerValues {
                fn of(c: &Customer) -> Self {
                    let f = &c.fields;
                    let text = |v: Option<&str>| v.map(str::to_owned);
                    Self {
                        id: c.customer_id.to_string(),
                        scope: c.scope.key(),
                        account_id: c.scope.account().map(|a| a.to_string()),
                        owner_product_id: match &c.scope {
                            CustomerScope::Product(p) => Some(p.to_string()),
                            CustomerScope::Account(_) => None,
                        },
                        status: c.status.as_str(),
                        first_name: text(f.first_name.as_ref().map(|n| n.as_str())),
                        last_name: text(f.last_name.as_ref().map(|n| n.as_str())),
                        emails: serde_json::json!(f.email),
                        phones: serde_json::json!(f.phone),
                        address: text(f.address.as_ref().map(|t| t.as_str())),
                        city: text(f.city.as_ref().map(|t| t.as_str())),
                        state: text(f.state.as_ref().map(|t| t.as_str())),
                        country: text(f.country.as_ref().map(|t| t.as_str())),
                        tags: serde_json::json!(f.tags),
                        permission: c.permission_to_contact.map(DbTime),
                        origins: serde_json::json!(c.origins),
                        version: c.version,
                        created: DbTime(c.created),
                        updated: DbTime(c.updated),
                        deleted: c.deleted.map(DbTime),
                        merged_into: c.merged_into.as_ref().map(|m| m.to_string()),
                        conflict: c.conflict.as_ref().map(|x| serde_json::json!(x)),
                        first_name_sort: f.first_name.as_ref().map(|n| n.as_str().to_lowercase()).unwrap_or_default(),
                        last_name_sort: f.last_name.as_ref().map(|n| n.as_str().to_lowercase()).unwrap_or_default(),
                        search: f.search_text(),
                    }
                }
            }


            /// Claims identifiers for a customer. Of racing writers exactly one inserts
            /// each (scope, kind, value); the others learn who owns it.
            async fn claim_identifiers(
                tx: &mut Tx<'_>,
                scope: &str,
                identifiers: &[Identifier],
                customer: &CustomerId,
            ) -> StoreResult<WriteOutcome> {
                if identifiers.is_empty() {
                    return Ok(WriteOutcome::Done);
                }
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO customer_identifiers (scope, kind, value, customer_id) ",
                );
                insert.push_values(identifiers, |mut row, id| {
                    row.push_bind(scope)
                        .push_bind(id.kind)
                        .push_bind(id.value.as_str())
                        .push_bind(customer.as_str());
                });
                insert.push(" ON CONFLICT DO NOTHING RETURNING kind, value");
                let claimed: Vec<(String, String)> =
                    insert.build_query_as().fetch_all(&mut **tx).await?;
                if claimed.len() == identifiers.len() {
                    return Ok(WriteOutcome::Done);
                }
                let mut owners = Vec::new();
                for id in identifiers {
                    if claimed.iter().any(|(k, v)| k == id.kind && *v == id.value) {
                        continue;
                    }
                    let owner: Option<String> = sqlx::query_scalar(
                        "SELECT customer_id FROM customer_identifiers \
                         WHERE scope = $1 AND kind = $2 AND value = $3",
                    )
                    .bind(scope)
                    .bind(id.kind)
                    .bind(id.value.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                    // Our own identifier (an update re-claiming it) is no collision.
                    match owner {
                        Some(owner) if owner != customer.as_str() => {
                            owners.push((id.clone(), CustomerId::from_string(owner)))
                        }
                        _ => {}
                    }
                }
                Ok(if owners.is_empty() {
                    WriteOutcome::Done
                } else {
                    WriteOutcome::Duplicate(owners)
                })
            }

            async fn insert_association(
                tx: &mut Tx<'_>,
                a: &NewAssociation,
            ) -> StoreResult<WriteOutcome> {
                let inserted: Option<String> = sqlx::query_scalar(
                    "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING customer_id",
                )
                .bind(a.product_id.as_str())
                .bind(a.customer_id.as_str())
                .bind(a.scope.as_str())
                .bind(a.vendor_customer_id.as_str())
                .bind(DbTime(a.created))
                .fetch_optional(&mut **tx)
                .await?;
                if inserted.is_some() {
                    return Ok(WriteOutcome::Done);
                }
                let owner: Option<String> = sqlx::query_scalar(
                    "SELECT customer_id FROM associations \
                     WHERE product_id = $1 AND scope = $2 AND vendor_customer_id = $3",
                )
                .bind(a.product_id.as_str())
                .bind(a.scope.as_str())
                .bind(a.vendor_customer_id.as_str())
                .fetch_optional(&mut **tx)
                .await?;
                Ok(match owner {
                    // A concurrent request made the very same association: done.
                    Some(owner) if owner == a.customer_id.as_str() => WriteOutcome::Done,
                    Some(owner) => WriteOutcome::VendorIdTaken(CustomerId::from_string(owner)),
                    None => WriteOutcome::Stale,
                })
            }

            /// Writes an event with a snapshot of every product's id for the customer.
            async fn insert_event(tx: &mut Tx<'_>, e: &NewEvent) -> StoreResult<()> {
                let vendor_ids: Vec<(String, String)> = sqlx::query_as(
                    "SELECT product_id, vendor_customer_id FROM associations WHERE customer_id = $1",
                )
                .bind(e.customer_id.as_str())
                .fetch_all(&mut **tx)
                .await?;
                let vendor_ids: serde_json::Map<String, serde_json::Value> = vendor_ids
                    .into_iter()
                    .map(|(p, v)| (p, serde_json::Value::String(v)))
                    .collect();
                let sql = format!("{INSERT_EVENT_HEAD}VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
                sqlx::query(&sql)
                .bind(e.event_id.as_str())
                .bind(e.account_id.as_str())
                .bind(e.customer_id.as_str())
                .bind(e.kind)
                .bind(e.version)
                .bind(e.origin.as_ref().map(ProductId::as_str))
                .bind(Json(&e.data))
                .bind(Json(&vendor_ids))
                .bind(DbTime(e.created))
                .execute(&mut **tx)
                .await?;
                enqueue_deliveries(tx, &[e.event_id.as_str()], e.created, e.version > 1).await?;
                Ok(())
            }

            /// The WHERE clause of a customer list (everything but the cursor).
            fn push_list_filters(sql: &mut QueryBuilder<'_, $db>, q: &CustomerListQuery) {
                sql.push(" AND c.scope = ")
                    .push_bind(q.scope.clone())
                    // A literal, not a parameter: it must match the partial indexes'
                    // predicates for the planner to use them.
                    .push(format!(" AND c.status = '{}'", q.status.as_str()));
                if let Some(pattern) = &q.search {
                    sql.push(" AND c.search LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                }
                if let Some(t) = q.created_after {
                    sql.push(" AND c.created > ").push_bind(DbTime(t));
                }
                if let Some(t) = q.created_before {
                    sql.push(" AND c.created < ").push_bind(DbTime(t));
                }
                if let Some(t) = q.updated_since {
                    sql.push(" AND c.updated >= ").push_bind(DbTime(t));
                }
                if let Some(tag) = &q.tag {
                    super::push_json_array_contains(sql, "c.tags", tag);
                }
                if let Some(origin) = &q.origin {
                    super::push_json_array_contains(sql, "c.origins", origin);
                }
                if let Some(vendor_id) = &q.vendor_customer_id {
                    sql.push(
                        " AND EXISTS (SELECT 1 FROM associations v WHERE v.customer_id = c.customer_id \
                         AND v.vendor_customer_id = ",
                    )
                    .push_bind(vendor_id.clone());
                    if let Some(viewer) = &q.viewer {
                        sql.push(" AND v.product_id = ").push_bind(viewer.as_str().to_owned());
                    }
                    sql.push(")");
                }
            }

async fn insert_key(conn: &mut $conn, key: &ApiKey, hash: &str) -> StoreResult<()> {
    let (kind, partner, account, product) = principal_columns(&key.principal);
    sqlx::query(
        "INSERT INTO api_keys (key_id, key_hash, kind, partner_id, account_id, product_id, \
         created, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(key.key_id.as_str())
    .bind(hash)
    .bind(kind)
    .bind(partner)
    .bind(account)
    .bind(product)
    .bind(DbTime(key.created))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

        }
    };
}

pub(super) use sql_store;
