//! Customers, their identifiers (the de-duplication claims) and products' own ids.

use super::consent::insert_consents;
use super::events::{insert_event, Receivers};
use super::{push_keyset_bound, Queued, SqlStore};
use crate::domain::consent::ConsentEntry;
use crate::domain::customer::{Customer, CustomerScope, Identifier};
use crate::domain::time::Timestamp;
use crate::domain::{CustomerId, ProductId};
use crate::storage::dialect::{Dialect, Row, Sql, Tx};
use crate::storage::rows::{CustomerRow, CUSTOMER_COLUMNS, VIEWER_JOIN};
use crate::storage::time::DbTime;
use crate::storage::{
    CustomerListQuery, CustomerStore, Decide, Decision, Modified, NewAssociation, NewCustomer,
    NewEvent, SortKey, StoreError, StoreResult, StoredCustomer, VendorIdOf, WriteOutcome,
};
use async_trait::async_trait;
use sqlx::types::Json;
use std::collections::HashSet;

/// Rows per multi-row statement: within both backends' bind-parameter limits
/// (SQLite: 32766; Postgres: 65535) at 25 columns a row.
pub(super) const ROW_CHUNK: usize = 500;
const IDENTIFIER_CHUNK: usize = 2000;

#[async_trait]
impl<DB: Dialect> CustomerStore for SqlStore<DB> {
    async fn insert_customers(&self, rows: &[NewCustomer]) -> StoreResult<Vec<WriteOutcome>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if DB::ONE_STATEMENT_CREATES && fits_one_statement(rows) {
            let written = insert_customers_at_once::<DB>(&mut *self.write().await?, rows).await?;
            if let Some(queued) = written {
                self.committed(queued);
                return Ok(rows.iter().map(|_| WriteOutcome::Done).collect());
            }
            // A row collided (a duplicate, a vendor id taken): nothing was written; the
            // transaction below finds out which and why.
        }
        let mut tx = self.begin_write().await?;
        let (outcomes, queued) = insert_customers_in(&mut tx, rows).await?;
        tx.commit().await?;
        self.committed(queued);
        Ok(outcomes)
    }

    async fn get_customer(
        &self,
        id: &CustomerId,
        viewer: Option<&ProductId>,
    ) -> StoreResult<Option<StoredCustomer>> {
        let row: Option<CustomerRow> = Sql::<DB>::new(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers c {VIEWER_JOIN} WHERE c.customer_id = $2"
        ))
        .bind(viewer.map(ProductId::as_str))
        .bind(id.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(StoredCustomer::try_from).transpose()
    }

    async fn vendor_ids_of(&self, customer: &CustomerId) -> StoreResult<Vec<VendorIdOf>> {
        // By the associations_customer index; one row per product.
        Ok(Sql::<DB>::new(
            "SELECT a.product_id, p.name AS product_name, a.vendor_customer_id, a.created \
             FROM associations a JOIN products p ON p.product_id = a.product_id \
             WHERE a.customer_id = $1 ORDER BY p.name, a.product_id",
        )
        .bind(customer.as_str())
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    async fn find_by_vendor_id(
        &self,
        product: &ProductId,
        vendor_customer_id: &str,
    ) -> StoreResult<Vec<CustomerId>> {
        let ids: Vec<String> = Sql::<DB>::new(
            "SELECT customer_id FROM associations \
             WHERE product_id = $1 AND vendor_customer_id = $2 ORDER BY customer_id",
        )
        .bind(product.as_str())
        .bind(vendor_customer_id)
        .scalars(&mut *self.read().await?)
        .await?;
        Ok(ids.into_iter().map(CustomerId::from_string).collect())
    }

    async fn modify_customer(
        &self,
        id: &CustomerId,
        viewer: Option<&ProductId>,
        decide: Decide,
    ) -> StoreResult<Modified> {
        let mut tx = self.begin_write().await?;
        let row: Option<CustomerRow> = Sql::<DB>::new(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers c {VIEWER_JOIN} WHERE c.customer_id = $2{}",
            DB::LOCK_CUSTOMER_ROW
        ))
        .bind(viewer.map(ProductId::as_str))
        .bind(id.as_str())
        .fetch_optional(&mut tx)
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
            Decision::Refuse(reason) => {
                tx.rollback().await?;
                Ok(Modified::Refused(reason))
            }
            Decision::Write {
                customer,
                identifiers,
                event,
                consent,
            } => {
                let outcome =
                    update_in(&mut tx, &customer, current.customer.version, &identifiers).await?;
                let outcome = self
                    .finish(
                        tx,
                        outcome,
                        event.as_ref(),
                        consent.as_ref(),
                        Queued::default(),
                    )
                    .await?;
                Ok(Modified::Written {
                    before: current,
                    after: customer,
                    outcome,
                })
            }
        }
    }

    async fn delete_customer(
        &self,
        customer: &Customer,
        expected_version: i64,
        event: Option<&NewEvent>,
    ) -> StoreResult<WriteOutcome> {
        let values = CustomerValues::of(customer);
        let mut tx = self.begin_write().await?;
        if !rewrite_customer(&mut tx, &values, expected_version).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Stale);
        }
        release_identifiers(&mut tx, &customer.customer_id).await?;
        // The event snapshots the vendor ids before they are released.
        let mut queued = Queued::default();
        if let Some(event) = event {
            queued = insert_event(&mut tx, event, Receivers::TwoWay).await?;
        }
        Sql::<DB>::new("DELETE FROM associations WHERE customer_id = $1")
            .bind(customer.customer_id.as_str())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.committed(queued);
        Ok(WriteOutcome::Done)
    }

    async fn put_association(&self, association: &NewAssociation) -> StoreResult<WriteOutcome> {
        let mut tx = self.begin_write().await?;
        Sql::<DB>::new("DELETE FROM associations WHERE product_id = $1 AND customer_id = $2")
            .bind(association.product_id.as_str())
            .bind(association.customer_id.as_str())
            .execute(&mut tx)
            .await?;
        let outcome = insert_association(&mut tx, association).await?;
        if outcome == WriteOutcome::Done {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(outcome)
    }

    async fn list_customers(
        &self,
        query: &CustomerListQuery,
    ) -> StoreResult<(Vec<StoredCustomer>, i64)> {
        let mut page = Sql::<DB>::new(format!("SELECT {CUSTOMER_COLUMNS} FROM customers c "));
        page.push("LEFT JOIN associations a ON a.customer_id = c.customer_id AND a.product_id = ")
            .push_bind(query.viewer.as_ref().map(ProductId::as_str))
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
            let columns = format!("{column}, c.customer_id");
            if query.sort == SortKey::Created {
                let at = key
                    .parse::<Timestamp>()
                    .map_err(|_| StoreError::corrupt("cursor time", key))?;
                push_keyset_bound(&mut page, &columns, direction, DbTime(at), id.as_str());
            } else {
                push_keyset_bound(&mut page, &columns, direction, key.as_str(), id.as_str());
            }
        }
        let order = if query.descending { "DESC" } else { "ASC" };
        page.push(&format!(
            " ORDER BY {column} {order}, c.customer_id {order} LIMIT "
        ))
        .push_bind(query.limit);
        let counted = async {
            if let Some(total) = query.known_total {
                return Ok(total);
            }
            let mut count = Sql::<DB>::new("SELECT COUNT(*) FROM customers c WHERE TRUE");
            push_list_filters(&mut count, query);
            Ok::<_, StoreError>(count.scalar::<i64>(&mut *self.read().await?).await?)
        };
        // The page and the count on two connections at once: a list costs the slower
        // of the two, not their sum.
        let listed = async {
            let rows: Vec<CustomerRow> = page.fetch_all(&mut *self.read().await?).await?;
            Ok::<_, StoreError>(rows)
        };
        let (rows, total) = tokio::try_join!(listed, counted)?;
        let customers = rows
            .into_iter()
            .map(StoredCustomer::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((customers, total))
    }
}

impl<DB: Dialect> SqlStore<DB> {
    /// Commits with the event (and the consent change) when the write went through;
    /// rolls back otherwise. `before`: what the transaction queued already.
    pub(super) async fn finish(
        &self,
        mut tx: Tx<DB>,
        outcome: WriteOutcome,
        event: Option<&NewEvent>,
        consent: Option<&ConsentEntry>,
        before: Queued,
    ) -> StoreResult<WriteOutcome> {
        if outcome != WriteOutcome::Done {
            tx.rollback().await?;
            return Ok(outcome);
        }
        let mut queued = before;
        if let Some(event) = event {
            queued += insert_event(&mut tx, event, Receivers::TwoWay).await?;
        }
        if let Some(consent) = consent {
            insert_consents(&mut tx, &[consent]).await?;
        }
        tx.commit().await?;
        self.committed(queued);
        Ok(outcome)
    }
}

/// Rewrites a customer at `expected_version` and replaces its identifiers within `tx`:
/// releases those it no longer has, claims the new ones.
pub(super) async fn update_in<DB: Dialect>(
    tx: &mut Tx<DB>,
    customer: &Customer,
    expected_version: i64,
    identifiers: &[Identifier],
) -> StoreResult<WriteOutcome> {
    if !rewrite_customer(tx, &CustomerValues::of(customer), expected_version).await? {
        return Ok(WriteOutcome::Stale);
    }
    let mut keep = Sql::<DB>::new("DELETE FROM customer_identifiers WHERE customer_id = ");
    keep.push_bind(customer.customer_id.as_str());
    for id in identifiers {
        keep.push(" AND NOT (kind = ")
            .push_bind(id.kind)
            .push(" AND value = ")
            .push_bind(id.value.as_str())
            .push(")");
    }
    keep.execute(tx).await?;
    let scope = customer.scope.key();
    claim_identifiers(tx, &scope, identifiers, &customer.customer_id).await
}

/// Lets go of every identifier of a customer (deleted, or merged away).
pub(super) async fn release_identifiers<DB: Dialect>(
    tx: &mut Tx<DB>,
    customer: &CustomerId,
) -> StoreResult<()> {
    Sql::<DB>::new("DELETE FROM customer_identifiers WHERE customer_id = $1")
        .bind(customer.as_str())
        .execute(tx)
        .await?;
    Ok(())
}

/// The SQLSTATE `customer_list_collided()` raises (migration 0014 on Postgres).
const COLLIDED: &str = "CLW01";

/// Whether rows fit one statement's bind parameters (Postgres: 65,535).
fn fits_one_statement(rows: &[NewCustomer]) -> bool {
    let identifiers: usize = rows.iter().map(|r| r.identifiers.len()).sum();
    rows.len() <= ROW_CHUNK && identifiers <= IDENTIFIER_CHUNK
}

/// New customers in one statement, committed on its own (Postgres, whose data-modifying
/// `WITH` lets one statement fill every table): the rows, their identifiers, the
/// associations, the events, the deliveries fanned out from the events' `RETURNING`
/// rows, the consent records and the `NOTIFY` — one round trip instead of a transaction
/// of eight. Every row must stand: when an identifier or a vendor id is taken (by
/// another customer or a row of the same batch) the statement raises `COLLIDED` and
/// nothing is written (`None`), for the transactional path to sort out.
async fn insert_customers_at_once<DB: Dialect>(
    conn: &mut DB::Connection,
    rows: &[NewCustomer],
) -> StoreResult<Option<Queued>> {
    let values: Vec<CustomerValues> = rows
        .iter()
        .map(|r| CustomerValues::of(&r.customer))
        .collect();
    let identifiers: Vec<(usize, &Identifier)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.identifiers.iter().map(move |id| (i, id)))
        .collect();
    let associations: Vec<&NewAssociation> =
        rows.iter().filter_map(|r| r.association.as_ref()).collect();
    let events: Vec<(&NewEvent, serde_json::Value)> = rows
        .iter()
        .filter_map(|r| {
            let vendor_ids = match &r.association {
                Some(a) => serde_json::json!({ a.product_id.as_str(): a.vendor_customer_id }),
                None => serde_json::json!({}),
            };
            r.event.as_ref().map(|e| (e, vendor_ids))
        })
        .collect();
    let consents: Vec<&ConsentEntry> = rows.iter().filter_map(|r| r.consent.as_ref()).collect();

    let mut sql = Sql::<DB>::new(format!(
        "WITH c AS (INSERT INTO customers ({CUSTOMER_WRITE_COLUMNS}) "
    ));
    sql.push_values(&values, push_customer_values);
    sql.push(" RETURNING 1)");
    sql.push(", i AS (");
    if identifiers.is_empty() {
        sql.push("SELECT 1 WHERE false)");
    } else {
        sql.push("INSERT INTO customer_identifiers (scope, kind, value, customer_id) ");
        sql.push_values(&identifiers, |row, (i, id)| {
            row.bind(values[*i].scope.as_str())
                .bind(id.kind)
                .bind(id.value.as_str())
                .bind(values[*i].id.as_str());
        });
        sql.push(" ON CONFLICT DO NOTHING RETURNING 1)");
    }
    sql.push(", a AS (");
    if associations.is_empty() {
        sql.push("SELECT 1 WHERE false)");
    } else {
        sql.push(
            "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) ",
        );
        sql.push_values(&associations, |row, a| push_association(row, a));
        sql.push(" ON CONFLICT DO NOTHING RETURNING 1)");
    }
    let fanned = !events.is_empty();
    if fanned {
        sql.push(", e AS (");
        sql.push(super::events::INSERT_EVENT_HEAD);
        sql.push_values(&events, |row, (e, vendor_ids)| {
            super::events::push_event(row, e, vendor_ids)
        });
        sql.push(
            " RETURNING seq, event_id, account_id, customer_id, version, origin_product_id, created)",
        );
        sql.push(", d AS (");
        sql.push(&super::events::fan_out("e", Receivers::TwoWay));
        sql.push(" RETURNING 1)");
    }
    if !consents.is_empty() {
        sql.push(", h AS (");
        sql.push(super::consent::INSERT_CONSENT_HEAD);
        sql.push_values(&consents, |row, e| super::consent::push_consent(row, e));
        sql.push(")");
    }
    // The guard is read first: a collision aborts the statement before anything commits.
    sql.push(" SELECT (CASE WHEN (SELECT COUNT(*) FROM i) = ")
        .push_bind(identifiers.len() as i64)
        .push(" AND (SELECT COUNT(*) FROM a) = ")
        .push_bind(associations.len() as i64)
        .push(" THEN 0 ELSE customer_list_collided() END)::bigint, ");
    sql.push(if fanned {
        "(SELECT COUNT(*) FROM d)"
    } else {
        "0::bigint"
    });
    match sql.fetch_one::<(i64, i64)>(conn).await {
        Ok((_, deliveries)) => Ok(Some(Queued {
            events: events.len(),
            deliveries: deliveries as u64,
        })),
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some(COLLIDED) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Inserts new customers within `tx` (see `CustomerStore::insert_customers`).
pub(super) async fn insert_customers_in<DB: Dialect>(
    tx: &mut Tx<DB>,
    rows: &[NewCustomer],
) -> StoreResult<(Vec<WriteOutcome>, Queued)> {
    let values: Vec<CustomerValues> = rows
        .iter()
        .map(|r| CustomerValues::of(&r.customer))
        .collect();
    insert_customer_rows(tx, &values).await?;

    // Claim identifiers; of racing writers (or of rows of this batch) exactly one gets
    // each, the rest learn they collided.
    let wanted: Vec<(usize, &Identifier)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.identifiers.iter().map(move |id| (i, id)))
        .collect();
    let mut claimed: HashSet<(String, String, String)> = HashSet::new();
    for chunk in wanted.chunks(IDENTIFIER_CHUNK) {
        let mut insert =
            Sql::<DB>::new("INSERT INTO customer_identifiers (scope, kind, value, customer_id) ");
        insert.push_values(chunk, |row, (i, id)| {
            row.bind(values[*i].scope.as_str())
                .bind(id.kind)
                .bind(id.value.as_str())
                .bind(values[*i].id.as_str());
        });
        insert.push(" ON CONFLICT DO NOTHING RETURNING customer_id, kind, value");
        let got: Vec<(String, String, String)> = insert.fetch_all(tx).await?;
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
        let mut insert = Sql::<DB>::new(
            "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) ",
        );
        insert.push_values(chunk, |row, (_, a)| push_association(row, a));
        insert.push(" ON CONFLICT DO NOTHING RETURNING customer_id");
        let got: Vec<String> = insert.scalars(tx).await?;
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
    let undone: Vec<&str> = (0..rows.len())
        .filter(|i| failed[*i])
        .map(|i| values[i].id.as_str())
        .collect();
    for chunk in undone.chunks(ROW_CHUNK) {
        for table in ["associations", "customer_identifiers", "customers"] {
            let mut delete = Sql::<DB>::new(format!("DELETE FROM {table} WHERE customer_id IN ("));
            delete.push_list(chunk.iter().copied()).push(")");
            delete.execute(tx).await?;
        }
    }
    let mut outcomes: Vec<WriteOutcome> = failed
        .iter()
        .map(|f| {
            if *f {
                WriteOutcome::Stale
            } else {
                WriteOutcome::Done
            }
        })
        .collect();
    for (i, id) in unclaimed {
        if let Some(owner) = identifier_owner(tx, &values[i].scope, id).await? {
            let hit = (id.clone(), owner);
            match &mut outcomes[i] {
                WriteOutcome::Duplicate(list) => list.push(hit),
                other => *other = WriteOutcome::Duplicate(vec![hit]),
            }
        }
    }
    for (i, a) in taken {
        if let Some(owner) = vendor_id_owner(tx, a).await? {
            outcomes[i] = WriteOutcome::VendorIdTaken(owner);
        }
    }

    // Events of the rows that stand; a new customer's only vendor id is its creator's.
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
    let queued = super::events::insert_new_customer_events(tx, &events).await?;
    let consents: Vec<&ConsentEntry> = rows
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == WriteOutcome::Done)
        .filter_map(|(r, _)| r.consent.as_ref())
        .collect();
    insert_consents(tx, &consents).await?;
    Ok((outcomes, queued))
}

fn push_association<'q, DB: Dialect>(row: &mut Row<'_, 'q, DB>, a: &'q NewAssociation) {
    row.bind(a.product_id.as_str())
        .bind(a.customer_id.as_str())
        .bind(a.scope.as_str())
        .bind(a.vendor_customer_id.as_str())
        .bind(DbTime(a.created));
}

/// The live customer of `scope` that holds an identifier.
async fn identifier_owner<DB: Dialect>(
    tx: &mut Tx<DB>,
    scope: &str,
    id: &Identifier,
) -> StoreResult<Option<CustomerId>> {
    let owner: Option<String> = Sql::<DB>::new(
        "SELECT customer_id FROM customer_identifiers WHERE scope = $1 AND kind = $2 AND value = $3",
    )
    .bind(scope)
    .bind(id.kind)
    .bind(id.value.as_str())
    .scalar_optional(tx)
    .await?;
    Ok(owner.map(CustomerId::from_string))
}

/// The customer that a product's vendor id names within a scope.
async fn vendor_id_owner<DB: Dialect>(
    tx: &mut Tx<DB>,
    a: &NewAssociation,
) -> StoreResult<Option<CustomerId>> {
    let owner: Option<String> = Sql::<DB>::new(
        "SELECT customer_id FROM associations \
         WHERE product_id = $1 AND scope = $2 AND vendor_customer_id = $3",
    )
    .bind(a.product_id.as_str())
    .bind(a.scope.as_str())
    .bind(a.vendor_customer_id.as_str())
    .scalar_optional(tx)
    .await?;
    Ok(owner.map(CustomerId::from_string))
}

/// Every column of a customer row, in the order `push_customer_values` binds.
const CUSTOMER_WRITE_COLUMNS: &str = "customer_id, scope, account_id, owner_product_id, \
    status, first_name, last_name, emails, phones, address, city, state, country, tags, \
    permission_to_contact, origins, version, created, updated, deleted, merged_into, \
    conflict, first_name_sort, last_name_sort, search";

fn push_customer_values<'q, DB: Dialect>(b: &mut Row<'_, 'q, DB>, v: &'q CustomerValues) {
    b.bind(v.id.as_str())
        .bind(v.scope.as_str())
        .bind(v.account_id.as_deref())
        .bind(v.owner_product_id.as_deref())
        .bind(v.status)
        .bind(v.first_name.as_deref())
        .bind(v.last_name.as_deref())
        .bind(Json(&v.emails))
        .bind(Json(&v.phones))
        .bind(v.address.as_deref())
        .bind(v.city.as_deref())
        .bind(v.state.as_deref())
        .bind(v.country.as_deref())
        .bind(Json(&v.tags))
        .bind(v.permission)
        .bind(Json(&v.origins))
        .bind(v.version)
        .bind(v.created)
        .bind(v.updated)
        .bind(v.deleted)
        .bind(v.merged_into.as_deref())
        .bind(v.conflict.as_ref().map(Json))
        .bind(v.first_name_sort.as_str())
        .bind(v.last_name_sort.as_str())
        .bind(v.search.as_str());
}

/// Rewrites a customer row if its stored version is `expected_version`. Returns whether
/// it did.
pub(super) async fn rewrite_customer<DB: Dialect>(
    tx: &mut Tx<DB>,
    values: &CustomerValues,
    expected_version: i64,
) -> StoreResult<bool> {
    let mut update = Sql::<DB>::new(format!(
        "UPDATE customers SET ({CUSTOMER_WRITE_COLUMNS}) = "
    ));
    update
        .push_tuple(values, push_customer_values)
        .push(" WHERE customer_id = ")
        .push_bind(values.id.as_str())
        .push(" AND version = ")
        .push_bind(expected_version);
    Ok(update.execute(tx).await? > 0)
}

/// Inserts customer rows with multi-row statements.
pub(super) async fn insert_customer_rows<DB: Dialect>(
    tx: &mut Tx<DB>,
    values: &[CustomerValues],
) -> StoreResult<()> {
    for chunk in values.chunks(ROW_CHUNK) {
        let mut insert =
            Sql::<DB>::new(format!("INSERT INTO customers ({CUSTOMER_WRITE_COLUMNS}) "));
        insert.push_values(chunk, push_customer_values);
        insert.execute(tx).await?;
    }
    Ok(())
}

/// A customer's column values, owned so queries can borrow them.
pub(super) struct CustomerValues {
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
    pub(super) fn of(c: &Customer) -> Self {
        let f = &c.fields;
        let text = |v: Option<&str>| v.map(str::to_owned);
        let sort_key = |v: Option<&str>| v.map(str::to_lowercase).unwrap_or_default();
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
            first_name_sort: sort_key(f.first_name.as_ref().map(|n| n.as_str())),
            last_name_sort: sort_key(f.last_name.as_ref().map(|n| n.as_str())),
            search: f.search_text(),
        }
    }
}

/// Claims identifiers for a customer. Of racing writers exactly one inserts each
/// (scope, kind, value); the others learn who owns it.
async fn claim_identifiers<DB: Dialect>(
    tx: &mut Tx<DB>,
    scope: &str,
    identifiers: &[Identifier],
    customer: &CustomerId,
) -> StoreResult<WriteOutcome> {
    if identifiers.is_empty() {
        return Ok(WriteOutcome::Done);
    }
    let mut insert =
        Sql::<DB>::new("INSERT INTO customer_identifiers (scope, kind, value, customer_id) ");
    insert.push_values(identifiers, |row, id| {
        row.bind(scope)
            .bind(id.kind)
            .bind(id.value.as_str())
            .bind(customer.as_str());
    });
    insert.push(" ON CONFLICT DO NOTHING RETURNING kind, value");
    let claimed: Vec<(String, String)> = insert.fetch_all(tx).await?;
    if claimed.len() == identifiers.len() {
        return Ok(WriteOutcome::Done);
    }
    let mut owners = Vec::new();
    for id in identifiers {
        if claimed.iter().any(|(k, v)| k == id.kind && *v == id.value) {
            continue;
        }
        // Our own identifier (an update re-claiming it) is no collision.
        match identifier_owner(tx, scope, id).await? {
            Some(owner) if owner != *customer => owners.push((id.clone(), owner)),
            _ => {}
        }
    }
    Ok(if owners.is_empty() {
        WriteOutcome::Done
    } else {
        WriteOutcome::Duplicate(owners)
    })
}

pub(super) async fn insert_association<DB: Dialect>(
    tx: &mut Tx<DB>,
    a: &NewAssociation,
) -> StoreResult<WriteOutcome> {
    let mut insert = Sql::<DB>::new(
        "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) ",
    );
    insert.push_values([a], push_association);
    insert.push(" ON CONFLICT DO NOTHING RETURNING customer_id");
    let inserted: Option<String> = insert.scalar_optional(tx).await?;
    if inserted.is_some() {
        return Ok(WriteOutcome::Done);
    }
    Ok(match vendor_id_owner(tx, a).await? {
        // A concurrent request made the very same association: done.
        Some(owner) if owner == a.customer_id => WriteOutcome::Done,
        Some(owner) => WriteOutcome::VendorIdTaken(owner),
        None => WriteOutcome::Stale,
    })
}

/// The WHERE clause of a customer list (everything but the cursor).
fn push_list_filters<'q, DB: Dialect>(sql: &mut Sql<'q, DB>, q: &'q CustomerListQuery) {
    sql.push(" AND c.scope = ")
        .push_bind(q.scope.as_str())
        // A literal, not a parameter: it must match the partial indexes' predicates for
        // the planner to use them.
        .push(&format!(" AND c.status = '{}'", q.status.as_str()));
    if let Some(pattern) = &q.search {
        sql.push(" AND c.search LIKE ")
            .push_bind(pattern.as_str())
            .push(" ESCAPE '\\'");
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
        DB::push_json_array_contains(sql, "c.tags", tag);
    }
    if let Some(origin) = &q.origin {
        DB::push_json_array_contains(sql, "c.origins", origin);
    }
    if let Some(vendor_id) = &q.vendor_customer_id {
        sql.push(
            " AND EXISTS (SELECT 1 FROM associations v WHERE v.customer_id = c.customer_id \
             AND v.vendor_customer_id = ",
        )
        .push_bind(vendor_id.as_str());
        if let Some(viewer) = &q.viewer {
            sql.push(" AND v.product_id = ").push_bind(viewer.as_str());
        }
        sql.push(")");
    }
}
