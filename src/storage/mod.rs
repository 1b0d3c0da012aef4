//! Storage: one trait, one implementation per backend, chosen by the URL scheme of
//! `CUSTOMER_LIST_DATABASE_URL`. Every customer-side table carries its account (or owning
//! product), so the Postgres backend can later be sharded by account.

mod common;
mod postgres;
mod rows;
mod sqlite;
mod time;

use crate::domain::customer::{Customer, CustomerStatus, Identifier};
use crate::domain::tenancy::ApiKey;
use crate::domain::tenants::{Account, Activation, Partner, Product};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, CustomerId, EventId, KeyId, PartnerId, ProductId};
use async_trait::async_trait;
use std::sync::Arc;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (down, pool exhausted, connection lost).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule of the store refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.constraint().unwrap_or("unique").to_owned())
            }
            sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => {
                Self::Unavailable(err.to_string())
            }
            _ => Self::Other(err.to_string()),
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

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Other(err.to_string())
    }
}

/// A page request over accounts, in (created, account_id) order.
#[derive(Clone, Debug, Default)]
pub struct AccountPage {
    pub partner: Option<PartnerId>,
    pub after: Option<(Timestamp, AccountId)>,
    pub limit: i64,
}

/// A customer as read, with the viewing product's own id for it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCustomer {
    pub customer: Customer,
    pub vendor_customer_id: Option<String>,
}

/// An event row, written in the same transaction as the change it records.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_id: EventId,
    pub account_id: AccountId,
    pub customer_id: CustomerId,
    pub kind: &'static str,
    pub version: i64,
    pub origin: Option<ProductId>,
    pub data: serde_json::Value,
    pub created: Timestamp,
}

/// A new customer with everything written alongside it.
#[derive(Clone, Debug)]
pub struct NewCustomer {
    pub customer: Customer,
    /// The identifiers de-duplication claims for it (per the account's policy).
    pub identifiers: Vec<Identifier>,
    pub association: Option<NewAssociation>,
    pub event: Option<NewEvent>,
}

/// A product's own id for a customer.
#[derive(Clone, Debug)]
pub struct NewAssociation {
    pub product_id: ProductId,
    pub customer_id: CustomerId,
    /// The customer's scope key: vendor ids are unique per (product, scope).
    pub scope: String,
    pub vendor_customer_id: String,
    pub created: Timestamp,
}

/// What a customer write did.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOutcome {
    Done,
    /// Nothing was written: these identifiers belong to live customers of the scope.
    Duplicate(Vec<(Identifier, CustomerId)>),
    /// Nothing was written: the product's vendor id already names this customer.
    VendorIdTaken(CustomerId),
    /// Nothing was written: the stored version is not the expected one.
    Stale,
}

/// Where an idempotency key stands when a request presents it.
#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyState {
    /// This request owns the key now and must finish or release it.
    Started,
    /// Another request with this key is still running.
    InProgress { request_hash: String },
    /// A first request finished with this response.
    Completed {
        request_hash: String,
        status: u16,
        response: serde_json::Value,
    },
}

/// What a locked update does with the customer it read.
// One short-lived value per request: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Write this new state of the customer, with its identifiers and event.
    Write {
        customer: Customer,
        identifiers: Vec<Identifier>,
        event: Option<NewEvent>,
    },
    /// Change nothing.
    Keep,
    /// Change nothing, and fail the request with this error.
    Refuse(crate::error::ApiError),
}

pub type Decide = Box<dyn FnOnce(&StoredCustomer) -> Decision + Send>;

/// The result of `Store::modify_customer`.
#[allow(clippy::large_enum_variant)]
pub enum Modified {
    /// No such customer.
    Missing,
    /// Nothing was written; the customer as read.
    Kept(StoredCustomer),
    Refused(crate::error::ApiError),
    /// The new state `after` was written (`WriteOutcome::Done`) or collided.
    Written {
        before: StoredCustomer,
        after: Customer,
        outcome: WriteOutcome,
    },
}

/// A delivery claimed by a dispatcher, with what it needs to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub delivery_id: String,
    pub product_id: ProductId,
    pub customer_id: CustomerId,
    pub version: i64,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub event_id: String,
    pub event_type: String,
    pub event_created: Timestamp,
    pub data: serde_json::Value,
    /// Every product's own id for the customer when the event was written.
    pub vendor_ids: serde_json::Value,
    pub webhook_url: Option<String>,
    /// The current signing secret, and the previous one while it is still valid.
    pub secrets: Vec<String>,
}

/// What became of one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptResult {
    Delivered,
    /// Failed; try again at this time.
    Retry(Timestamp),
    /// Failed for the last time.
    GiveUp,
    /// The receiver answered `410 Gone`: its webhook is disabled.
    Gone,
}

#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub product_id: ProductId,
    pub attempt: i32,
    pub at: Timestamp,
    pub response_code: Option<i32>,
    pub latency_ms: i64,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub result: AttemptResult,
    /// A webhook failing since before this moment, with no success, is disabled.
    pub disable_if_failing_since: Timestamp,
}

/// One attempt as the delivery log shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttemptView {
    pub attempt: i32,
    pub attempted_at: Timestamp,
    pub response_code: Option<i32>,
    pub latency_ms: i64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A delivery as the delivery log shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub product_id: String,
    pub customer_id: String,
    pub event_id: String,
    pub event_type: String,
    pub version: i64,
    pub status: String,
    pub attempts: i32,
    pub next_attempt: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub attempt_log: Vec<AttemptView>,
}

/// A page of a product's delivery log, newest first.
#[derive(Clone, Debug)]
pub struct DeliveryQuery {
    pub product_id: ProductId,
    pub status: Option<String>,
    pub customer_id: Option<String>,
    /// (created, delivery_id) of the last row of the previous page.
    pub before: Option<(Timestamp, String)>,
    pub limit: i64,
}

/// An event of a product's feed.
#[derive(Clone, Debug)]
pub struct FeedEvent {
    pub position: (i64, i64),
    pub event_id: String,
    pub event_type: String,
    pub data: serde_json::Value,
    pub vendor_ids: serde_json::Value,
    pub created: Timestamp,
}

/// Sort orders of the customer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Created,
    LastName,
    FirstName,
}

/// One page of an account's live customers.
#[derive(Clone, Debug)]
pub struct CustomerListQuery {
    pub scope: String,
    /// Live customers, or pending conflict records.
    pub status: CustomerStatus,
    pub viewer: Option<ProductId>,
    pub sort: SortKey,
    pub descending: bool,
    /// The sort key and id of the last row of the previous page.
    pub after: Option<(String, CustomerId)>,
    pub limit: i64,
    /// A lower-cased `LIKE` pattern over the search text.
    pub search: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub updated_since: Option<Timestamp>,
    pub tag: Option<String>,
    pub origin: Option<String>,
    pub vendor_customer_id: Option<String>,
    /// The total already counted for an earlier page of this listing (from its cursor):
    /// no need to count again.
    pub known_total: Option<i64>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Applies this backend's embedded migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Ok when the database answers and every embedded migration is applied.
    async fn check_ready(&self) -> StoreResult<bool>;
    async fn close(&self);

    async fn insert_partner(&self, partner: &Partner) -> StoreResult<()>;
    async fn get_partner(&self, id: &PartnerId) -> StoreResult<Option<Partner>>;

    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self, page: &AccountPage) -> StoreResult<Vec<Account>>;

    /// Stores a new product together with its first API key, atomically.
    async fn insert_product(&self, product: &Product, key: &ApiKey, hash: &str) -> StoreResult<()>;
    async fn get_product(&self, id: &ProductId) -> StoreResult<Option<Product>>;
    /// Writes `name`, `webhook_url` and `updated`.
    async fn update_product(&self, product: &Product) -> StoreResult<()>;

    /// Creates the activation, or changes its sync mode; returns the stored row.
    async fn upsert_activation(&self, activation: &Activation) -> StoreResult<Activation>;
    async fn get_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<Option<Activation>>;
    /// Returns whether an activation was removed.
    async fn delete_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<bool>;
    async fn list_activations(&self, account: &AccountId) -> StoreResult<Vec<Activation>>;

    async fn insert_key(&self, key: &ApiKey, hash: &str) -> StoreResult<()>;
    /// The unrevoked key with this digest.
    async fn find_active_key(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn get_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>>;
    /// Returns whether a live key was revoked.
    async fn revoke_key(&self, id: &KeyId, at: Timestamp) -> StoreResult<bool>;
    async fn has_active_admin_key(&self) -> StoreResult<bool>;
    /// Stores `hash` as the key with id `id`, replacing any earlier digest and revocation
    /// (the bootstrap key from `CUSTOMER_LIST_ADMIN_KEY` is always the one configured).
    async fn put_admin_key(&self, id: &KeyId, hash: &str, at: Timestamp) -> StoreResult<()>;

    /// Inserts live customers, each with its identifiers, its creating product's
    /// association and its event, in one transaction with multi-row statements. A row
    /// that collides (an identifier or vendor id already taken, by a live customer or an
    /// earlier row of the same call) is not written and reports what it collided with.
    async fn insert_customers(&self, rows: &[NewCustomer]) -> StoreResult<Vec<WriteOutcome>>;
    /// Inserts a conflict record: no identifiers, no association, no event.
    async fn insert_conflict_record(&self, record: &Customer) -> StoreResult<()>;
    /// Any customer or conflict record, whatever its status.
    async fn get_customer(
        &self,
        id: &CustomerId,
        viewer: Option<&ProductId>,
    ) -> StoreResult<Option<StoredCustomer>>;
    /// The customers a product's vendor id names (one per scope at most).
    async fn find_by_vendor_id(
        &self,
        product: &ProductId,
        vendor_customer_id: &str,
    ) -> StoreResult<Vec<CustomerId>>;
    /// Changes a customer under a row lock: reads it (as `viewer` sees it) in a write
    /// transaction that keeps concurrent writers of the same customer waiting, lets
    /// `decide` choose, and writes what it chose with its identifiers and event. No lost
    /// updates and no retries, however many writers race.
    async fn modify_customer(
        &self,
        id: &CustomerId,
        viewer: Option<&ProductId>,
        decide: Decide,
    ) -> StoreResult<Modified>;
    /// Tombstones a customer (already marked deleted in `customer`) if its stored version
    /// is `expected_version`: its identifiers and associations are released.
    async fn delete_customer(
        &self,
        customer: &Customer,
        expected_version: i64,
        event: Option<&NewEvent>,
    ) -> StoreResult<WriteOutcome>;
    /// Turns a pending conflict record into a live customer (`row`, with a new id), in
    /// one transaction; `Stale` when the record is no longer pending.
    async fn keep_conflict_record(
        &self,
        conflict: &CustomerId,
        row: &NewCustomer,
    ) -> StoreResult<WriteOutcome>;
    /// Folds a pending conflict record into the customer it matched: removes the record,
    /// rewrites the survivor at `expected_version` with its identifiers, gives the
    /// record's product its id for the survivor unless it has one, and writes the event.
    #[allow(clippy::too_many_arguments)]
    async fn merge_conflict_record(
        &self,
        conflict: &CustomerId,
        survivor: &Customer,
        expected_version: i64,
        identifiers: &[Identifier],
        association: Option<&NewAssociation>,
        event: Option<&NewEvent>,
    ) -> StoreResult<WriteOutcome>;
    /// Merges two live customers in one transaction: the absorbed one (already marked
    /// merged) releases its identifiers, the survivor claims `identifiers`, every
    /// product's id moves to the survivor unless it has its own, and the event is written.
    #[allow(clippy::too_many_arguments)]
    async fn merge_customers(
        &self,
        survivor: &Customer,
        survivor_version: i64,
        absorbed: &Customer,
        absorbed_version: i64,
        identifiers: &[Identifier],
        event: Option<&NewEvent>,
    ) -> StoreResult<WriteOutcome>;
    /// Removes a conflict record for good. Returns whether one was removed.
    async fn discard_conflict_record(&self, id: &CustomerId) -> StoreResult<bool>;
    /// Sets a product's own id for a customer.
    async fn put_association(&self, association: &NewAssociation) -> StoreResult<WriteOutcome>;
    /// Claims `(principal, key)` for a request, unless a live claim exists: rows created
    /// before `expired_before` are forgotten, and claims never finished that were started
    /// before `abandoned_before` (their server died) are taken over.
    async fn idempotency_begin(
        &self,
        principal: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        expired_before: Timestamp,
        abandoned_before: Timestamp,
    ) -> StoreResult<IdempotencyState>;
    /// Records the response of a claimed key.
    async fn idempotency_finish(
        &self,
        principal: &str,
        key: &str,
        status: u16,
        response: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Releases a claimed key without a response (the request failed in a way worth
    /// retrying).
    async fn idempotency_release(&self, principal: &str, key: &str) -> StoreResult<()>;
    /// Forgets keys created before `before`. Returns how many.
    async fn idempotency_purge(&self, before: Timestamp) -> StoreResult<u64>;

    /// Signalled after a commit that queued deliveries (in this process; Postgres also
    /// forwards other servers' `NOTIFY`s here while `forward_notifications` runs).
    fn delivery_wakeup(&self) -> Arc<tokio::sync::Notify>;
    /// Forwards the database's wake-ups to `delivery_wakeup` until `shutdown`.
    async fn forward_notifications(&self, shutdown: tokio_util::sync::CancellationToken);
    /// Leases up to `limit` due deliveries until `lease_until`: for each (product,
    /// customer) only the newest pending version, and none while an older one is in
    /// flight. Older pending versions of the claimed pairs are superseded.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records attempts and their consequences (next try, give up, webhook disabled), in
    /// one transaction: the dispatcher writes what it sent in batches.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()>;
    /// Records one attempt.
    async fn record_attempt(&self, record: &AttemptRecord) -> StoreResult<()> {
        self.record_attempts(std::slice::from_ref(record)).await
    }
    /// When the next pending delivery falls due.
    async fn next_due(&self) -> StoreResult<Option<Timestamp>>;
    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<DeliveryView>>;
    async fn get_delivery(&self, id: &str) -> StoreResult<Option<DeliveryView>>;
    /// Makes a delivery due now, if it is the newest of its (product, customer).
    async fn retry_delivery(&self, id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Enables or disables a product's webhook; disabling fails its pending deliveries.
    async fn set_webhook_status(
        &self,
        product: &ProductId,
        enabled: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Replaces the signing secret; the old one stays valid until `previous_expires`.
    async fn rotate_webhook_secret(
        &self,
        product: &ProductId,
        secret: &str,
        previous_expires: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// A product's events after `after` (the position of the last one read): those of
    /// accounts where it is activated two-way, not caused by itself.
    async fn feed(
        &self,
        product: &ProductId,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<FeedEvent>>;
    /// (pending deliveries, disabled webhooks), for metrics.
    async fn delivery_stats(&self) -> StoreResult<(i64, i64)>;
    /// (open connections, idle connections) of the pool(s), for metrics.
    fn pool_stats(&self) -> (u32, usize);
    /// Forgets events and deliveries created before `before`. Returns how many rows.
    async fn purge_history(&self, before: Timestamp) -> StoreResult<u64>;

    /// A page of live customers and the total number matching the filters.
    async fn list_customers(
        &self,
        query: &CustomerListQuery,
    ) -> StoreResult<(Vec<StoredCustomer>, i64)>;
}

pub type DynStore = Arc<dyn Store>;

/// Opens the backend named by the URL scheme: `sqlite:` or `postgres:`/`postgresql:`.
pub async fn connect(url: &str) -> anyhow::Result<DynStore> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::connect(url).await?)),
        other => anyhow::bail!(
            "unsupported database URL scheme {other:?}: use sqlite://<file> or postgres://..."
        ),
    }
}
