//! Customers (SPEC section 4, and the duplicate handling of section 5): one module per
//! use case — `access` (who reaches which customer), `create` (one or a batch),
//! `update` (patch and delete), `associations` (products' own ids), `resolve`
//! (conflict records and merges), `list` — over the helpers shared here. Every write
//! goes with its event in one transaction.

mod access;
mod associations;
mod create;
mod erase;
mod export;
pub mod input;
pub mod list;
mod list_export;
pub(crate) use create::NewIds;
pub use list_export::ExportChunk;
pub(crate) use list_export::{csv_lines, BOM};
pub mod resolve;
mod update;

pub use access::{CustomerPageFacts, PAGE_HISTORY};
pub use erase::{receipt, receipt_from_json, ErasureInput, Reapplied, SuppressedValue};
pub use list::{CustomerListParams, CustomerPage};

use self::input::identity_required;
use super::Hub;
use crate::domain::consent::{ConsentDetails, ConsentEntry, ConsentVia};
use crate::domain::customer::{Customer, CustomerScope, Identifier, MatchedOn, Refusal};
use crate::domain::tenancy::{Actor, Principal};
use crate::domain::tenants::{DedupePolicy, Region};
use crate::domain::wire::{self, CUSTOMER_DELETED};
use crate::domain::{AccountId, CustomerId, EventId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::input::Fields;
use crate::storage::{NewEvent, StoredCustomer, WriteOutcome};
use serde_json::{Map, Value};
use std::future::Future;

/// How many times a write is retried when a concurrent write got there first.
const WRITE_ATTEMPTS: usize = 20;

/// Waits before retry `attempt` (0-based): a random pause of up to 2^attempt ms, capped
/// at 50 ms, so writers racing for one customer spread out instead of colliding again.
async fn backoff(attempt: usize) {
    if attempt == 0 {
        return;
    }
    let cap = (1u64 << attempt.min(6)).min(50);
    let pause = rand::random::<u64>() % (cap + 1);
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
}

/// Runs one try of a write until it settles: `Ok(Some(_))` and errors end it, `Ok(None)`
/// means a concurrent write got there first and the try runs again, after a backoff, up
/// to `WRITE_ATTEMPTS` times.
async fn retrying<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<Option<T>>>,
{
    for round in 0..WRITE_ATTEMPTS {
        backoff(round).await;
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(retry_exhausted())
}

/// The error of a write that collided with what others hold: an identifier of a live
/// customer (`409 duplicate`) or the product's own id for another customer. A lost race
/// (`Stale`) is the caller's to retry; reaching here with one means it was lost too often.
fn collision(outcome: WriteOutcome, vendor_id: Option<&str>) -> ApiError {
    match outcome {
        WriteOutcome::Duplicate(matches) => duplicate(&matches[0].1, matched_on(&matches)),
        WriteOutcome::VendorIdTaken(other) => {
            vendor_id_taken(&other, vendor_id.unwrap_or_default())
        }
        WriteOutcome::Done | WriteOutcome::Stale => retry_exhausted(),
    }
}

/// Bulk requests take at most this many items.
pub const MAX_BULK_ITEMS: usize = 500;

/// Names a customer in a path: its hub id, or (`?id_type=vendor`) the calling product's
/// own id, optionally within one account.
#[derive(Clone, Debug)]
pub enum CustomerRef {
    Id(CustomerId),
    Vendor {
        vendor_customer_id: String,
        account: Option<AccountId>,
    },
}

/// A create's result: a new customer, or (`on_duplicate=merge`) the existing one.
pub enum Created {
    New(StoredCustomer),
    Merged(StoredCustomer),
}

/// Where a customer lives and the account settings that apply to it.
#[derive(Clone, Debug)]
pub struct ScopeSettings {
    pub scope: CustomerScope,
    pub region: Region,
    pub policy: DedupePolicy,
}

fn origin_of(who: &Principal) -> Option<&ProductId> {
    match who {
        Principal::Product(id) => Some(id),
        _ => None,
    }
}

/// The event of a change, for customers of an account (account-less customers are never
/// synced, so they have none).
fn event_for(
    customer: &Customer,
    kind: &'static str,
    origin: Option<&ProductId>,
) -> Option<NewEvent> {
    let account = customer.scope.account()?;
    let data = match kind {
        CUSTOMER_DELETED => wire::deleted_event_data(customer, &customer.updated),
        _ => wire::event_data(customer, origin),
    };
    Some(NewEvent {
        event_id: EventId::generate(),
        account_id: account.clone(),
        customer_id: customer.customer_id.clone(),
        kind,
        version: customer.version,
        origin: origin.cloned(),
        data,
        created: customer.updated,
    })
}

fn matched_on(identifiers: &[(Identifier, CustomerId)]) -> Vec<MatchedOn> {
    identifiers.iter().map(|(id, _)| id.matched_on()).collect()
}

/// `409 duplicate` for a create or update that collides with a live customer.
fn duplicate(existing: &CustomerId, matched: Vec<MatchedOn>) -> ApiError {
    ApiError::conflict(
        "duplicate",
        format!("matches the existing customer {existing}"),
    )
    .with("conflicting_customer_id", existing)
    .with("matched_on", matched)
}

pub(super) fn vendor_id_taken(existing: &CustomerId, vendor_id: &str) -> ApiError {
    duplicate(
        existing,
        vec![MatchedOn {
            field: "vendor_customer_id".into(),
            value: vendor_id.to_owned(),
        }],
    )
}

pub(super) fn precondition_failed(current: i64) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "Precondition failed",
        format!("the customer is at version {current}"),
    )
    .with("current_version", current)
}

/// The error of a change refused under the customer's row lock.
fn refused(reason: Refusal) -> ApiError {
    match reason {
        Refusal::NotLive => ApiError::not_found("customer"),
        Refusal::ChangedMeanwhile => retry_exhausted(),
        Refusal::VersionMismatch { current } => precondition_failed(current),
        Refusal::NoIdentity => identity_required(),
        Refusal::ConsentWithoutChange => {
            ApiError::invalid_field("consent", input::CONSENT_WITHOUT_CHANGE)
        }
    }
}

/// The consent history's entry for a write that takes `before` (none: a new customer) to
/// `after`, when it changes whether the person may be contacted.
fn consent_change(
    before: Option<&Customer>,
    after: &Customer,
    details: Option<&ConsentDetails>,
    who: &Actor,
    via: ConsentVia,
) -> Option<ConsentEntry> {
    let was = before.is_some_and(|c| c.permission_to_contact.is_some());
    let granted = after.permission_to_contact.is_some();
    (was != granted).then(|| ConsentEntry {
        customer_id: after.customer_id.clone(),
        scope: after.scope.key(),
        granted,
        at: after.updated,
        details: details.cloned().unwrap_or_default(),
        source_product_id: origin_of(who).cloned(),
        source_key_id: who.key_id.clone(),
        via,
    })
}

fn retry_exhausted() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "the customer changed repeatedly while this request ran; try again",
    )
}

/// The array of a bulk body (`{"<name>": [...]}`), 1 to 500 items.
fn bulk_items(body: Map<String, Value>, name: &'static str) -> ApiResult<Vec<Value>> {
    let mut f = Fields::new(body);
    let items = f.required(name, |value| match value {
        Value::Array(items) if items.is_empty() => Err("must hold at least one item".into()),
        Value::Array(items) if items.len() > MAX_BULK_ITEMS => {
            Err(format!("must hold at most {MAX_BULK_ITEMS} items"))
        }
        Value::Array(items) => Ok(items.clone()),
        _ => Err("must be an array".into()),
    });
    f.finish()?;
    Ok(items.unwrap_or_default())
}

impl StoredCustomer {
    /// The REST record as this viewer sees it.
    pub fn record(&self) -> Value {
        wire::record(&self.customer, self.vendor_customer_id.as_deref())
    }
}
