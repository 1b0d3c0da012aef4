//! The values storage takes and returns: plain data, no HTTP and no SQL.

use crate::domain::consent::{ConsentDetails, ConsentEntry};
use crate::domain::customer::{Customer, CustomerStatus, Identifier, Refusal};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, CustomerId, EventId, PartnerId, ProductId};

/// A page request over a tenant table in (created, id) order, optionally within one
/// partner: accounts, products, partners (whose `partner` is ignored).
#[derive(Clone, Debug)]
pub struct TenantPage<Id> {
    pub partner: Option<PartnerId>,
    pub after: Option<(Timestamp, Id)>,
    pub limit: i64,
}

impl<Id> Default for TenantPage<Id> {
    fn default() -> Self {
        Self {
            partner: None,
            after: None,
            limit: 0,
        }
    }
}

pub type AccountPage = TenantPage<AccountId>;
pub type ProductPage = TenantPage<ProductId>;
pub type PartnerPage = TenantPage<PartnerId>;

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
    /// Its permission to contact, when granted at creation.
    pub consent: Option<ConsentEntry>,
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
        /// The change of its permission to contact, when it changes.
        consent: Option<ConsentEntry>,
    },
    /// Change nothing.
    Keep,
    /// Change nothing, and fail the request for this reason.
    Refuse(Refusal),
}

pub type Decide = Box<dyn FnOnce(&StoredCustomer) -> Decision + Send>;

/// The result of `Store::modify_customer`.
#[allow(clippy::large_enum_variant)]
pub enum Modified {
    /// No such customer.
    Missing,
    /// Nothing was written; the customer as read.
    Kept(StoredCustomer),
    Refused(Refusal),
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
    /// Of those, failed probes of a paused product: they spend no retry.
    pub spared: i32,
    pub event_id: String,
    pub event_type: String,
    pub event_created: Timestamp,
    pub data: serde_json::Value,
    /// Every product's own id for the customer when the event was written.
    pub vendor_ids: serde_json::Value,
    pub webhook_url: Option<String>,
    /// The current signing secret, and the previous one while it is still valid.
    pub secrets: Vec<String>,
    /// A snapshot (SPEC section 11): the customer as it is now, with the receiving
    /// product's own id; its event is made from it when sent (`data` is then null).
    pub snapshot: Option<StoredCustomer>,
    /// The one attempt a paused product gets per probe interval (SPEC section 6): a
    /// failure spends none of the delivery's retries.
    pub probe: bool,
}

/// A backfill as activations show it (SPEC section 11). `sent` counts the snapshots
/// delivered (a 2xx); `total` the live customers of the account when it started.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BackfillView {
    #[serde(skip)]
    pub backfill_id: String,
    #[serde(skip)]
    pub product_id: String,
    /// `running`, `completed` or `cancelled` (`none` is the absence of one).
    pub status: String,
    pub total: i64,
    pub sent: i64,
    pub started: Option<Timestamp>,
    pub completed: Option<Timestamp>,
}

impl BackfillView {
    /// What an activation without any backfill shows.
    pub fn none(product_id: &str) -> Self {
        Self {
            backfill_id: String::new(),
            product_id: product_id.to_owned(),
            status: "none".into(),
            total: 0,
            sent: 0,
            started: None,
            completed: None,
        }
    }
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
    /// Of a snapshot delivery (its recording may let a backfill queue more).
    pub snapshot: bool,
    /// A paused product's probe (see `ClaimedDelivery::probe`).
    pub probe: bool,
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
    /// The receiving product's name, for people (the console).
    #[serde(skip)]
    pub product_name: String,
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

/// An erasure as one transaction writes it (`ErasureStore::erase_customer`).
pub struct ErasureWrite<'a> {
    pub erasure_id: &'a str,
    pub account: &'a AccountId,
    /// The record as erasure leaves it, written if its stored version is `expected_version`.
    pub customer: &'a Customer,
    pub expected_version: i64,
    /// `customer.erased` (none for a conflict record).
    pub event: Option<&'a NewEvent>,
    pub requested: Timestamp,
    pub requested_by_key: &'a str,
    pub requested_by_product: Option<&'a ProductId>,
    pub reason: Option<&'a str>,
    /// With `suppress`: the keyed hashes of its emails and phones, by kind.
    pub suppress: Option<&'a [(&'static str, String)]>,
    /// The products the receipt follows.
    pub products: &'a [ProductId],
    /// Keyed hashes of each product's released id for it, by product id.
    pub vendor_digests: &'a std::collections::HashMap<String, String>,
}

/// An erasure receipt (ids only).
#[derive(Clone, Debug)]
pub struct ErasureView {
    pub erasure_id: String,
    pub account_id: String,
    pub customer_id: String,
    pub requested: Timestamp,
    pub requested_by_key: String,
    pub requested_by_product: Option<String>,
    pub reason: Option<String>,
    pub suppressed: bool,
    pub completed: Option<Timestamp>,
    pub products: Vec<ErasureProductView>,
}

/// A suppressed email or phone: only its kind, its keyed hash and where it came from.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SuppressionView {
    pub kind: String,
    pub digest: String,
    pub erasure_id: Option<String>,
    pub created: Timestamp,
}

#[derive(Clone, Debug)]
pub struct ErasureProductView {
    pub product_id: String,
    pub status: String,
    pub acknowledged: Option<Timestamp>,
    pub error: Option<String>,
}

/// An entry of a customer's consent history, as read back.
#[derive(Clone, Debug)]
pub struct ConsentRecord {
    pub granted: bool,
    pub at: Timestamp,
    pub details: ConsentDetails,
    pub source_product_id: Option<String>,
    pub source_key_id: String,
    pub via: String,
}

/// An event of one customer, as its history on the console shows it.
#[derive(Clone, Debug)]
pub struct CustomerEvent {
    pub event_id: String,
    pub event_type: String,
    pub version: i64,
    /// The product whose key made the change, and its name; `None` for other keys.
    pub origin_product_id: Option<String>,
    pub origin_name: Option<String>,
    pub data: serde_json::Value,
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

/// A conflict record folded into the customer it matched (`ConflictStore::merge_conflict_record`).
pub struct ConflictMergeWrite<'a> {
    pub conflict: &'a CustomerId,
    /// The survivor's new state, written if its stored version is `expected_version`.
    pub survivor: &'a Customer,
    pub expected_version: i64,
    pub identifiers: &'a [Identifier],
    /// The record's product's id for the survivor, unless it already has one.
    pub association: Option<&'a NewAssociation>,
    pub event: Option<&'a NewEvent>,
    pub consent: Option<&'a ConsentEntry>,
}

/// Two live customers merged (`ConflictStore::merge_customers`).
pub struct CustomerMergeWrite<'a> {
    pub survivor: &'a Customer,
    pub survivor_version: i64,
    /// Already marked merged into the survivor.
    pub absorbed: &'a Customer,
    pub absorbed_version: i64,
    pub identifiers: &'a [Identifier],
    pub event: Option<&'a NewEvent>,
    pub consent: Option<&'a ConsentEntry>,
}

/// A request claiming an idempotency key (`IdempotencyStore::idempotency_begin`).
pub struct IdempotencyClaim<'a> {
    pub principal: &'a str,
    pub key: &'a str,
    pub request_hash: &'a str,
    pub now: Timestamp,
    /// Keys created before this are forgotten.
    pub expired_before: Timestamp,
    /// Claims never finished that were started before this are taken over.
    pub abandoned_before: Timestamp,
}

/// A console session to store: the hash of its id (the id itself is only the browser's),
/// the key it acts as, its CSRF token and its end.
#[derive(Clone, Debug)]
pub struct NewSession<'a> {
    pub session_hash: &'a str,
    pub key_id: &'a crate::domain::KeyId,
    pub csrf_token: &'a str,
    pub created: Timestamp,
    pub expires: Timestamp,
}

/// A live session, as found: its key (not revoked), CSRF token and end.
#[derive(Clone, Debug)]
pub struct StoredSession {
    pub key: crate::domain::tenancy::ApiKey,
    pub csrf_token: String,
    pub expires: Timestamp,
}

/// One hour of a product's delivery attempts: how many were answered 2xx and how many
/// not, and their latencies.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DeliveryHour {
    /// `YYYY-MM-DDTHH`, UTC.
    pub hour: String,
    pub delivered: i64,
    pub failed: i64,
    pub latency_sum_ms: i64,
    pub latency_max_ms: i64,
}

/// A product's own id for a customer, as the customer's page lists it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct VendorIdOf {
    pub product_id: String,
    pub product_name: String,
    pub vendor_customer_id: String,
    pub created: Timestamp,
}

/// A new import (SPEC section 12): the file as sent and how to read it.
pub struct NewImport<'a> {
    pub import_id: &'a crate::domain::ImportId,
    pub account: &'a AccountId,
    pub actor: &'a crate::domain::tenancy::Actor,
    /// `conflict`, `reject` or `merge`.
    pub on_duplicate: &'a str,
    pub content: &'a [u8],
    pub layout: &'a crate::domain::import_file::ImportLayout,
    pub started: Timestamp,
}

/// An import's counters: rows written so far, by what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ImportCounts {
    pub processed: i64,
    pub created: i64,
    pub merged: i64,
    pub conflicts: i64,
    pub failed: i64,
}

impl ImportCounts {
    pub fn add(&mut self, other: &ImportCounts) {
        self.processed += other.processed;
        self.created += other.created;
        self.merged += other.merged;
        self.conflicts += other.conflicts;
        self.failed += other.failed;
    }
}

/// An import as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportView {
    pub import_id: String,
    pub account_id: String,
    /// Who started it.
    pub principal: crate::domain::tenancy::Principal,
    pub on_duplicate: String,
    /// `running` or `completed`.
    pub status: String,
    /// The file's header row.
    pub header: Vec<String>,
    pub rows: i64,
    pub counts: ImportCounts,
    pub started: Timestamp,
    pub completed: Option<Timestamp>,
}

/// An import a worker holds the lease of: where to resume, and all it needs to.
pub struct LeasedImport {
    pub view: ImportView,
    pub key_id: crate::domain::KeyId,
    pub content: Vec<u8>,
    pub delimiter: u8,
    pub fields: Vec<Option<String>>,
    /// Where the next unwritten row starts: byte offset and line.
    pub resume_byte: u64,
    pub resume_line: u64,
}

/// A failed row of an import, as sent, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportErrorRow {
    pub line: i64,
    pub cells: Vec<String>,
    pub problem: String,
}

/// What a worker records after writing a batch of rows.
pub struct ImportProgress<'a> {
    pub import_id: &'a str,
    /// The lease holder: nothing is recorded if another holds the lease now.
    pub owner: &'a str,
    /// The counters after the batch (not increments).
    pub counts: ImportCounts,
    pub resume_byte: u64,
    pub resume_line: u64,
    pub errors: &'a [ImportErrorRow],
    /// The last batch: the import completes (and its file is dropped).
    pub done: bool,
    pub now: Timestamp,
    pub lease_until: Timestamp,
}
