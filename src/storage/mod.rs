//! Storage: a narrow trait per concern, implemented once in `sql/` over a [`Dialect`]
//! that each backend (`postgres.rs`, `sqlite.rs`) implements; the backend is chosen by
//! the URL scheme of `CUSTOMER_LIST_DATABASE_URL`. Every customer-side table carries its
//! account (or owning product), so the Postgres backend can later be sharded by account.
//! Storage knows nothing of HTTP: it answers with the plain values of `model.rs`.

mod cache;
mod dialect;
mod error;
mod model;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod time;

pub use cache::TENANCY_TTL;
pub use error::{StoreError, StoreResult};
pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::domain::customer::Customer;
use crate::domain::tenancy::{ApiKey, Principal};
use crate::domain::tenants::{Account, Activation, Partner, Product};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, CustomerId, KeyId, PartnerId, ProductId};
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Partners, accounts, products, activations and API keys.
#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn insert_partner(&self, partner: &Partner) -> StoreResult<()>;
    async fn get_partner(&self, id: &PartnerId) -> StoreResult<Option<Partner>>;
    async fn list_partners(&self, page: &PartnerPage) -> StoreResult<Vec<Partner>>;

    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self, page: &AccountPage) -> StoreResult<Vec<Account>>;

    /// Stores a new product together with its first API key, atomically.
    async fn insert_product(&self, product: &Product, key: &ApiKey, hash: &str) -> StoreResult<()>;
    async fn get_product(&self, id: &ProductId) -> StoreResult<Option<Product>>;
    async fn list_products(&self, page: &ProductPage) -> StoreResult<Vec<Product>>;
    /// The names of these products, by id (one query).
    async fn product_names(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, String>>;
    /// Writes `name`, `webhook_url` and `updated`.
    async fn update_product(&self, product: &Product) -> StoreResult<()>;

    /// Creates the activation, or changes its sync mode; returns the stored row. With
    /// `backfill` (a new backfill's id), starts the pair's backfill in the same
    /// transaction (or keeps the one running): an activation is never stored without
    /// the backfill it asked for, whatever fails between them.
    async fn upsert_activation(
        &self,
        activation: &Activation,
        backfill: Option<&str>,
    ) -> StoreResult<Activation>;
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
    /// Every key (revoked ones too) of one principal, oldest first.
    async fn list_keys(&self, subject: &Principal) -> StoreResult<Vec<ApiKey>>;
    /// Returns whether a live key was revoked.
    async fn revoke_key(&self, id: &KeyId, at: Timestamp) -> StoreResult<bool>;
    async fn has_active_admin_key(&self) -> StoreResult<bool>;
    /// Stores `hash` as the key with id `id`, replacing any earlier digest and revocation
    /// (the bootstrap key from `CUSTOMER_LIST_ADMIN_KEY` is always the one configured).
    async fn put_admin_key(&self, id: &KeyId, hash: &str, at: Timestamp) -> StoreResult<()>;
}

/// Customers, their identifiers (the de-duplication claims) and products' own ids.
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Inserts live customers, each with its identifiers, its creating product's
    /// association and its event, in one transaction with multi-row statements. A row
    /// that collides (an identifier or vendor id already taken, by a live customer or an
    /// earlier row of the same call) is not written and reports what it collided with.
    async fn insert_customers(&self, rows: &[NewCustomer]) -> StoreResult<Vec<WriteOutcome>>;
    /// Any customer or conflict record, whatever its status.
    async fn get_customer(
        &self,
        id: &CustomerId,
        viewer: Option<&ProductId>,
    ) -> StoreResult<Option<StoredCustomer>>;
    /// Every product's own id for a customer, with the product's name, by name.
    async fn vendor_ids_of(&self, customer: &CustomerId) -> StoreResult<Vec<VendorIdOf>>;
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
    /// Sets a product's own id for a customer.
    async fn put_association(&self, association: &NewAssociation) -> StoreResult<WriteOutcome>;
    /// A page of live customers and the total number matching the filters.
    async fn list_customers(
        &self,
        query: &CustomerListQuery,
    ) -> StoreResult<(Vec<StoredCustomer>, i64)>;
}

/// Conflict records (SPEC section 5) and merges.
#[async_trait]
pub trait ConflictStore: Send + Sync {
    /// Inserts a conflict record: no identifiers, no association, no event.
    async fn insert_conflict_record(&self, record: &Customer) -> StoreResult<()>;
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
    async fn merge_conflict_record(
        &self,
        merge: ConflictMergeWrite<'_>,
    ) -> StoreResult<WriteOutcome>;
    /// Merges two live customers in one transaction: the absorbed one (already marked
    /// merged) releases its identifiers, the survivor claims `identifiers`, every
    /// product's id moves to the survivor unless it has its own, and the event is written.
    async fn merge_customers(&self, merge: CustomerMergeWrite<'_>) -> StoreResult<WriteOutcome>;
    /// Removes a conflict record for good. Returns whether one was removed.
    async fn discard_conflict_record(&self, id: &CustomerId) -> StoreResult<bool>;
}

/// Events: the feed a product reads, and the history kept for 30 days.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// A product's events after `after` (the position of the last one read): those of
    /// accounts where it is activated two-way, not caused by itself.
    async fn feed(
        &self,
        product: &ProductId,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<FeedEvent>>;
    /// The feed position of now (SPEC section 11): every event the feed shows after it
    /// is of a change not committed yet when it was read, so a product that reads the
    /// head, then lists the customers, then reads the feed from the head misses nothing.
    async fn feed_head(&self) -> StoreResult<(i64, i64)>;
    /// A customer's events on its account, newest first.
    async fn customer_events(
        &self,
        account: &AccountId,
        customer: &CustomerId,
        limit: i64,
    ) -> StoreResult<Vec<CustomerEvent>>;
    /// Forgets events and deliveries created before `before`. Returns how many rows.
    async fn purge_history(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Webhook deliveries: what the dispatcher claims and records, and the delivery log.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Signalled after a commit that queued deliveries (in this process; Postgres also
    /// forwards other servers' `NOTIFY`s here while `forward_notifications` runs).
    fn delivery_wakeup(&self) -> Arc<tokio::sync::Notify>;
    /// Forwards the database's wake-ups to `delivery_wakeup` until `shutdown`.
    async fn forward_notifications(&self, shutdown: CancellationToken);
    /// Leases up to `limit` due deliveries until `lease_until`: for each (product,
    /// customer) only the newest pending version, and none while an older one is in
    /// flight. Older pending versions of the claimed pairs are superseded.
    /// Live deliveries first; then up to `snapshot_limit` snapshots with the room left.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
        snapshot_limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records attempts and their consequences (next try, give up, webhook disabled), in
    /// one transaction: the dispatcher writes what it sent in batches.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()>;
    /// Records one attempt.
    async fn record_attempt(&self, record: &AttemptRecord) -> StoreResult<()> {
        self.record_attempts(std::slice::from_ref(record)).await
    }
    /// When the next pending delivery not in flight falls due (`now` or earlier: one is
    /// due now). Deliveries under a lease are left out, a dead server's too: the
    /// dispatcher's idle look (at least every second) claims those once the lease lapses.
    async fn next_due(&self, now: Timestamp) -> StoreResult<Option<Timestamp>>;
    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<DeliveryView>>;
    async fn get_delivery(&self, id: &str) -> StoreResult<Option<DeliveryView>>;
    /// A customer's deliveries to the products activated on its account (or to `only`),
    /// newest first.
    async fn customer_deliveries(
        &self,
        account: &AccountId,
        customer: &CustomerId,
        only: Option<&ProductId>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryView>>;
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
    /// (pending deliveries, disabled webhooks), for metrics.
    async fn delivery_stats(&self) -> StoreResult<(i64, i64)>;
    /// A product's delivery attempts since `since`, by hour (attempts of deliveries made
    /// up to a day before `since`: the retry schedule ends well within that).
    async fn delivery_hours(
        &self,
        product: &ProductId,
        since: Timestamp,
    ) -> StoreResult<Vec<DeliveryHour>>;
}

/// Stored responses of requests sent with an `Idempotency-Key`.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `(principal, key)` for a request, unless a live claim exists: rows created
    /// before `expired_before` are forgotten, and claims never finished that were started
    /// before `abandoned_before` (their server died) are taken over.
    async fn idempotency_begin(&self, claim: IdempotencyClaim<'_>)
        -> StoreResult<IdempotencyState>;
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
}

/// Console sessions (SPEC section 9).
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()>;
    /// The session, if it has not ended by `now` and its key is not revoked.
    async fn find_session(
        &self,
        session_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<StoredSession>>;
    async fn delete_session(&self, session_hash: &str) -> StoreResult<()>;
    /// Removes sessions that ended before `ended_before`; returns how many.
    async fn purge_sessions(&self, ended_before: Timestamp) -> StoreResult<u64>;
}

/// Backfills (SPEC section 11): a durable job per activation that queues a snapshot
/// delivery of each live customer of the account, a chunk at a time, by whichever server
/// dispatches (the chunk's transaction holds the job's row, so two never queue the same
/// chunk; a restart resumes from the last chunk written).
#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// Signalled in this process when a backfill starts or snapshots were recorded (other
    /// servers' backfill stages find new work on their sweep).
    fn backfill_wakeup(&self) -> Arc<tokio::sync::Notify>;
    /// Starts a backfill of the account's live customers to the product, or answers the
    /// one running for the pair.
    async fn start_backfill(
        &self,
        account: &AccountId,
        product: &ProductId,
        backfill_id: &str,
        now: Timestamp,
    ) -> StoreResult<BackfillView>;
    /// Cancels the pair's running backfill, superseding its pending snapshots.
    async fn cancel_backfills(
        &self,
        account: &AccountId,
        product: &ProductId,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Queues the next chunk (at most `chunk` customers) of one running backfill whose
    /// pending snapshots are fewer than `max_pending`; how many were queued, `None` when
    /// no backfill had work.
    async fn queue_backfill_chunk(
        &self,
        now: Timestamp,
        chunk: i64,
        max_pending: i64,
    ) -> StoreResult<Option<u64>>;
    /// Completes every running backfill that has queued all and has nothing pending.
    async fn settle_backfills(&self, now: Timestamp) -> StoreResult<u64>;
    /// The newest backfill of each product of the account.
    async fn latest_backfills(&self, account: &AccountId) -> StoreResult<Vec<BackfillView>>;
    /// Backfills running, and snapshots pending.
    async fn backfill_stats(&self) -> StoreResult<(i64, i64)>;
}

/// Imports (SPEC section 12): a durable job per uploaded file, leased by one worker at a
/// time (any server's), which writes its rows in order and records each batch with the
/// counters and the resume point, so that a restart resumes after the last batch.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Signalled in this process when an import is stored (other servers' workers find
    /// it on their sweep).
    fn import_wakeup(&self) -> Arc<tokio::sync::Notify>;
    async fn insert_import(&self, import: &NewImport<'_>) -> StoreResult<()>;
    async fn get_import(&self, id: &str) -> StoreResult<Option<ImportView>>;
    /// An account's imports, newest first (only those `principal` started, when given),
    /// after the (started, id) of `before`.
    async fn list_imports(
        &self,
        account: &AccountId,
        principal: Option<&crate::domain::tenancy::Principal>,
        before: Option<(Timestamp, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ImportView>>;
    /// Leases the oldest running import no one holds (or whose lease ran out) to `owner`
    /// until `until` (only the import `only`, when given).
    async fn lease_import(
        &self,
        owner: &str,
        only: Option<&str>,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<LeasedImport>>;
    /// Records a written batch (counters, resume point, failed rows, a longer lease) in
    /// one transaction, if `owner` still holds the lease; whether it did.
    async fn record_import_batch(&self, progress: &ImportProgress<'_>) -> StoreResult<bool>;
    /// Which of these customer or conflict record ids of the account are stored, with
    /// their status: the rows of a batch a worker that died had written already.
    async fn stored_records(
        &self,
        account: &AccountId,
        ids: &[String],
    ) -> StoreResult<Vec<(String, String)>>;
    /// An import's failed rows in line order, after line `after`.
    async fn import_errors(
        &self,
        id: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ImportErrorRow>>;
    /// Forgets imports started before `before` (their failed rows hold personal data).
    async fn purge_imports(&self, before: Timestamp) -> StoreResult<u64>;
}

/// What the dispatcher works on: deliveries, and the backfills that queue snapshots.
pub trait DispatchStore: DeliveryStore + BackfillStore {}
impl<T: DeliveryStore + BackfillStore + ?Sized> DispatchStore for T {}

/// The consent history (SPEC section 10); appended by the customer writes themselves.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// A customer's consent history, oldest first.
    async fn consent_history(&self, customer: &CustomerId) -> StoreResult<Vec<ConsentRecord>>;
}

/// Erasure (SPEC section 10): the one-transaction erase, receipts, suppressions, and the
/// hub's own secrets.
#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Erases a customer; `Stale` when it changed since it was read.
    async fn erase_customer(&self, erasure: &ErasureWrite<'_>) -> StoreResult<WriteOutcome>;
    /// Brings receipts (one, or all in progress) up to their deliveries' fate.
    async fn settle_erasures(&self, only: Option<&str>, now: Timestamp) -> StoreResult<u64>;
    async fn get_erasure(&self, id: &str) -> StoreResult<Option<ErasureView>>;
    /// The erasure of an erased customer.
    async fn erasure_of_customer(&self, customer: &CustomerId) -> StoreResult<Option<String>>;
    /// The erasure that released a product's id (by its keyed hash).
    async fn erasure_of_vendor_id(
        &self,
        product: &ProductId,
        digest: &str,
    ) -> StoreResult<Option<String>>;
    /// An account's receipts in (requested, id) order, oldest first or newest first,
    /// after the (requested, id) of `after` in that order.
    async fn list_erasures(
        &self,
        account: &AccountId,
        after: Option<(Timestamp, String)>,
        newest_first: bool,
        limit: i64,
    ) -> StoreResult<Vec<ErasureView>>;
    /// Every account's receipts requested at or after `since`, oldest first, after the
    /// (requested, id) of `after`: what a restore from backup must erase again.
    async fn erasures_since(
        &self,
        since: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ErasureView>>;
    /// Receipts not yet completed.
    async fn open_erasures(&self) -> StoreResult<i64>;
    /// Which of these (kind, keyed hash) are suppressed in the account.
    async fn suppressed(
        &self,
        account: &AccountId,
        digests: &[(&'static str, String)],
    ) -> StoreResult<Vec<(String, String)>>;
    async fn lift_suppression(
        &self,
        account: &AccountId,
        kind: &str,
        digest: &str,
    ) -> StoreResult<bool>;
    /// An account's newest `limit` suppressions, and how many it has.
    async fn list_suppressions(
        &self,
        account: &AccountId,
        limit: i64,
    ) -> StoreResult<(Vec<SuppressionView>, i64)>;
    /// The hub's secret `name`, made from `generated` by the first caller to ask.
    async fn hub_secret(&self, name: &str, generated: &str) -> StoreResult<String>;
    /// The ids a customer absorbed, and the conflict records that matched it.
    async fn customer_relations(
        &self,
        customer: &Customer,
    ) -> StoreResult<(Vec<String>, Vec<StoredCustomer>)>;
}

/// The whole store: every concern, plus the database's own lifecycle.
#[async_trait]
pub trait Store:
    TenantStore
    + BackfillStore
    + DispatchStore
    + CustomerStore
    + ConflictStore
    + ConsentStore
    + ErasureStore
    + EventStore
    + DeliveryStore
    + IdempotencyStore
    + SessionStore
    + ImportStore
    + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Applies this backend's embedded migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Ok when the database answers and every embedded migration is applied.
    async fn check_ready(&self) -> StoreResult<bool>;
    async fn close(&self);
    /// (open connections, idle connections) of the pool(s), for metrics.
    fn pool_stats(&self) -> (u32, usize);
}

pub type DynStore = Arc<dyn Store>;

/// Opens the backend named by the URL scheme: `sqlite:` or `postgres:`/`postgresql:`.
pub async fn connect(url: &str) -> anyhow::Result<DynStore> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::connect(url)?)),
        other => anyhow::bail!(
            "unsupported database URL scheme {other:?}: use sqlite://<file> or postgres://..."
        ),
    }
}
