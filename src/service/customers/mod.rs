//! Customers (SPEC section 4, and the duplicate handling of section 5 at create time):
//! who may reach which customer, and every write with its event in one transaction.

pub mod input;
pub mod list;
pub mod resolve;

pub use list::{CustomerListParams, CustomerPage};

use self::input::{
    identity_required, parse_draft, parse_patch, vendor_id, CustomerDraft, OnDuplicate,
};
use super::{reachable, Hub};
use crate::domain::customer::{
    ConflictInfo, Customer, CustomerScope, CustomerStatus, Identifier, MatchedOn, Refusal,
};
use crate::domain::tenancy::{Principal, ANY_KEY};
use crate::domain::tenants::{DedupePolicy, Region};
use crate::domain::wire::{self, CUSTOMER_CREATED, CUSTOMER_DELETED, CUSTOMER_UPDATED};
use crate::domain::{time, AccountId, CustomerId, EventId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::input::{any_text, text, Fields};
use crate::storage::{
    Decide, Decision, Modified, NewAssociation, NewCustomer, NewEvent, StoredCustomer, WriteOutcome,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

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

fn precondition_failed(current: i64) -> ApiError {
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
    }
}

fn retry_exhausted() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "the customer changed repeatedly while this request ran; try again",
    )
}

impl Hub {
    /// The settings of a scope: its account's region and dedupe policy; account-less
    /// customers use the defaults.
    async fn scope_settings(&self, scope: &CustomerScope) -> ApiResult<ScopeSettings> {
        let (region, policy) = match scope {
            CustomerScope::Account(id) => {
                let account = self.store.get_account(id).await?;
                let account = reachable(account, "account", |_| true)?;
                (account.default_region, account.dedupe_policy)
            }
            CustomerScope::Product(_) => (Region::default(), DedupePolicy::default()),
        };
        Ok(ScopeSettings {
            scope: scope.clone(),
            region,
            policy,
        })
    }

    /// Whether `who` may reach the customers of `scope` (SPEC section 2).
    pub(crate) async fn reaches_scope(
        &self,
        who: &Principal,
        scope: &CustomerScope,
    ) -> ApiResult<bool> {
        Ok(match (who, scope) {
            (Principal::Admin, _) => true,
            (Principal::Product(me), CustomerScope::Product(owner)) => me == owner,
            (_, CustomerScope::Product(_)) => false,
            (Principal::Account(me), CustomerScope::Account(id)) => me == id,
            (Principal::Partner(me), CustomerScope::Account(id)) => self
                .store
                .get_account(id)
                .await?
                .is_some_and(|a| a.partner_id == *me),
            (Principal::Product(me), CustomerScope::Account(id)) => {
                self.store.get_activation(id, me).await?.is_some()
            }
        })
    }

    /// The scope a create writes to, checked against the caller.
    async fn create_scope(
        &self,
        who: &Principal,
        account: Option<AccountId>,
    ) -> ApiResult<ScopeSettings> {
        who.require(ANY_KEY)?;
        let scope = match (who, account) {
            (_, Some(account)) => CustomerScope::Account(account),
            (Principal::Product(me), None) => CustomerScope::Product(me.clone()),
            (Principal::Account(me), None) => CustomerScope::Account(me.clone()),
            (_, None) => {
                return Err(ApiError::invalid_field(
                    "account_id",
                    "is required unless the key is a product or account key",
                ))
            }
        };
        if !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("account"));
        }
        self.scope_settings(&scope).await
    }

    /// Resolves a path reference to a customer `who` may reach, in any status but
    /// deleted. A merged-away id answers `404` with `merged_into`.
    async fn reachable_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<StoredCustomer> {
        who.require(ANY_KEY)?;
        let viewer = origin_of(who);
        let id = match target {
            CustomerRef::Id(id) => id.clone(),
            CustomerRef::Vendor {
                vendor_customer_id,
                account,
            } => {
                let Some(product) = viewer else {
                    return Err(ApiError::invalid_field(
                        "id_type",
                        "only a product key addresses customers by its own id",
                    ));
                };
                let mut found = Vec::new();
                for id in self
                    .store
                    .find_by_vendor_id(product, vendor_customer_id)
                    .await?
                {
                    if let Some(stored) = self.store.get_customer(&id, viewer).await? {
                        let in_account = account
                            .as_ref()
                            .is_none_or(|a| stored.customer.scope.account() == Some(a));
                        if in_account && self.reaches_scope(who, &stored.customer.scope).await? {
                            found.push(stored);
                        }
                    }
                }
                return match found.len() {
                    0 => Err(ApiError::not_found("customer")),
                    1 => Ok(found.remove(0)),
                    _ => Err(ApiError::invalid_field(
                        "account_id",
                        "this id names customers in several accounts: add ?account_id=",
                    )),
                };
            }
        };
        let stored = self.store.get_customer(&id, viewer).await?;
        let Some(stored) = stored else {
            return Err(ApiError::not_found("customer"));
        };
        if !self.reaches_scope(who, &stored.customer.scope).await? {
            return Err(ApiError::not_found("customer"));
        }
        match stored.customer.status {
            CustomerStatus::Live => Ok(stored),
            // The product that made a conflict record sees its own id on it.
            CustomerStatus::Conflict => {
                let mut stored = stored;
                if viewer.is_some() && stored.customer.origins.first() == viewer {
                    stored.vendor_customer_id = stored
                        .customer
                        .conflict
                        .as_ref()
                        .and_then(|c| c.vendor_customer_id.clone());
                }
                Ok(stored)
            }
            CustomerStatus::Deleted => Err(ApiError::not_found("customer")),
            CustomerStatus::Merged => {
                Err(ApiError::not_found("customer")
                    .with("merged_into", &stored.customer.merged_into))
            }
        }
    }

    /// A live customer (not a conflict record) `who` may reach.
    async fn live_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<StoredCustomer> {
        let stored = self.reachable_customer(who, target).await?;
        if stored.customer.status != CustomerStatus::Live {
            return Err(ApiError::not_found("customer")
                .with("hint", "conflict records are resolved under /v1/conflicts"));
        }
        Ok(stored)
    }

    pub async fn get_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<StoredCustomer> {
        self.reachable_customer(who, target).await
    }

    /// `POST /v1/customers`.
    pub async fn create_customer(
        &self,
        who: &Principal,
        body: Map<String, Value>,
        on_duplicate: OnDuplicate,
    ) -> ApiResult<Created> {
        let (settings, draft) = self.prepare_create(who, body, &mut HashMap::new()).await?;
        self.create_parsed(who, &settings, draft, on_duplicate)
            .await
    }

    /// Creates a validated customer in a checked scope.
    pub(crate) async fn create_parsed(
        &self,
        who: &Principal,
        settings: &ScopeSettings,
        draft: CustomerDraft,
        on_duplicate: OnDuplicate,
    ) -> ApiResult<Created> {
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            let row = new_customer_row(who, settings, &draft)?;
            let outcome = self
                .store
                .insert_customers(std::slice::from_ref(&row))
                .await?
                .pop()
                .unwrap_or(WriteOutcome::Stale);
            match self
                .settle_create(who, settings, &draft, row, outcome, on_duplicate)
                .await
            {
                Some(result) => return result,
                // The identifier's owner vanished between the collision and its lookup.
                None => continue,
            }
        }
        Err(retry_exhausted())
    }

    /// The result of a create from its write outcome; `None` asks for another attempt.
    async fn settle_create(
        &self,
        who: &Principal,
        settings: &ScopeSettings,
        draft: &CustomerDraft,
        row: NewCustomer,
        outcome: WriteOutcome,
        on_duplicate: OnDuplicate,
    ) -> Option<ApiResult<Created>> {
        Some(match outcome {
            WriteOutcome::Done => Ok(Created::New(StoredCustomer {
                vendor_customer_id: row.association.map(|a| a.vendor_customer_id),
                customer: row.customer,
            })),
            WriteOutcome::VendorIdTaken(existing) => {
                let id = row
                    .association
                    .map(|a| a.vendor_customer_id)
                    .unwrap_or_default();
                Err(vendor_id_taken(&existing, &id))
            }
            WriteOutcome::Duplicate(matches) => {
                self.on_duplicate(who, settings, draft, row.customer, matches, on_duplicate)
                    .await
            }
            WriteOutcome::Stale => return None,
        })
    }

    /// What a create that matched live customers does, per `on_duplicate`.
    async fn on_duplicate(
        &self,
        who: &Principal,
        settings: &ScopeSettings,
        draft: &CustomerDraft,
        incoming: Customer,
        matches: Vec<(Identifier, CustomerId)>,
        mode: OnDuplicate,
    ) -> ApiResult<Created> {
        let existing = matches[0].1.clone();
        let matched = matched_on(&matches);
        match mode {
            OnDuplicate::Reject => Err(duplicate(&existing, matched)),
            OnDuplicate::Conflict => {
                let mut record = incoming;
                record.customer_id = CustomerId::generate_conflict();
                record.status = CustomerStatus::Conflict;
                record.conflict = Some(ConflictInfo {
                    conflicting_customer_id: existing.clone(),
                    matched_on: matched.clone(),
                    vendor_customer_id: draft.vendor_id.clone(),
                });
                self.store.insert_conflict_record(&record).await?;
                Err(duplicate(&existing, matched).with("conflict_id", &record.customer_id))
            }
            OnDuplicate::Merge => {
                let merged = self.merge_into(who, settings, &existing, draft).await?;
                Ok(Created::Merged(merged))
            }
        }
    }

    /// Folds a duplicate create into the existing customer and associates the caller's id.
    async fn merge_into(
        &self,
        who: &Principal,
        settings: &ScopeSettings,
        existing: &CustomerId,
        draft: &CustomerDraft,
    ) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who).cloned();
        let (fields, permission, policy) =
            (draft.fields.clone(), draft.permission, settings.policy);
        let decide = move |current: &StoredCustomer| {
            let customer = &current.customer;
            if customer.status != CustomerStatus::Live {
                return Decision::Refuse(Refusal::ChangedMeanwhile);
            }
            match customer.merged_with(&fields, permission, origin.as_ref(), time::now()) {
                None => Decision::Keep,
                Some(next) => Decision::Write {
                    identifiers: next.identifiers(policy),
                    event: event_for(&next, CUSTOMER_UPDATED, origin.as_ref()),
                    customer: next,
                },
            }
        };
        let mut result = self
            .modify(existing, origin_of(who), Box::new(decide))
            .await?;
        if let Some(product) = origin_of(who) {
            let vendor = draft
                .vendor_id
                .clone()
                .or(result.vendor_customer_id.clone())
                .unwrap_or_else(|| existing.to_string());
            if result.vendor_customer_id.as_deref() != Some(vendor.as_str()) {
                result.vendor_customer_id =
                    Some(self.associate(product, &result.customer, &vendor).await?);
            }
        }
        Ok(result)
    }

    /// Sets `product`'s own id for a customer; returns it.
    async fn associate(
        &self,
        product: &ProductId,
        customer: &Customer,
        vendor: &str,
    ) -> ApiResult<String> {
        let association = NewAssociation {
            product_id: product.clone(),
            customer_id: customer.customer_id.clone(),
            scope: customer.scope.key(),
            vendor_customer_id: vendor.to_owned(),
            created: time::now(),
        };
        match self.store.put_association(&association).await? {
            WriteOutcome::VendorIdTaken(other) => Err(vendor_id_taken(&other, vendor)),
            WriteOutcome::Done => Ok(association.vendor_customer_id),
            _ => Err(retry_exhausted()),
        }
    }

    /// `PATCH /v1/customers/{id}`: a JSON merge patch, optionally conditional on the
    /// version (`If-Match`). A patch that changes nothing keeps the version and emits
    /// nothing.
    pub async fn update_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
        body: Map<String, Value>,
        if_match: Option<i64>,
    ) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who).cloned();
        let found = self.live_customer(who, target).await?;
        let settings = self.scope_settings(&found.customer.scope).await?;
        let account = found.customer.scope.account().map(|a| a.to_string());
        let patch = parse_patch(body, settings.region, account.as_deref())?;
        let decide = move |current: &StoredCustomer| {
            let customer = &current.customer;
            if customer.status != CustomerStatus::Live {
                return Decision::Refuse(Refusal::NotLive);
            }
            if if_match.is_some_and(|expected| expected != customer.version) {
                return Decision::Refuse(Refusal::VersionMismatch {
                    current: customer.version,
                });
            }
            let Some(next) = customer.patched(&patch, origin.as_ref(), time::now()) else {
                return Decision::Keep;
            };
            if !next.fields.identifies_someone() {
                return Decision::Refuse(Refusal::NoIdentity);
            }
            Decision::Write {
                identifiers: next.identifiers(settings.policy),
                event: event_for(&next, CUSTOMER_UPDATED, origin.as_ref()),
                customer: next,
            }
        };
        self.modify(
            &found.customer.customer_id,
            origin_of(who),
            Box::new(decide),
        )
        .await
    }

    /// Runs a change of one customer under its row lock (see `Store::modify_customer`).
    async fn modify(
        &self,
        id: &CustomerId,
        viewer: Option<&ProductId>,
        decide: Decide,
    ) -> ApiResult<StoredCustomer> {
        match self.store.modify_customer(id, viewer, decide).await? {
            Modified::Missing => Err(ApiError::not_found("customer")),
            Modified::Kept(current) => Ok(current),
            Modified::Refused(reason) => Err(refused(reason)),
            Modified::Written {
                before,
                after,
                outcome,
            } => match outcome {
                WriteOutcome::Done => Ok(StoredCustomer {
                    customer: after,
                    vendor_customer_id: before.vendor_customer_id,
                }),
                WriteOutcome::Duplicate(matches) => {
                    Err(duplicate(&matches[0].1, matched_on(&matches)))
                }
                WriteOutcome::VendorIdTaken(_) | WriteOutcome::Stale => Err(retry_exhausted()),
            },
        }
    }

    /// `DELETE /v1/customers/{id}`: tombstones a customer (emitting `customer.deleted`),
    /// or discards a conflict record (emitting nothing).
    pub async fn delete_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
        if_match: Option<i64>,
    ) -> ApiResult<()> {
        let origin = origin_of(who);
        for attempt in 0..WRITE_ATTEMPTS {
            backoff(attempt).await;
            let current = self.reachable_customer(who, target).await?.customer;
            if current.status == CustomerStatus::Conflict {
                return if self
                    .store
                    .discard_conflict_record(&current.customer_id)
                    .await?
                {
                    Ok(())
                } else {
                    Err(ApiError::not_found("customer"))
                };
            }
            if let Some(expected) = if_match {
                if expected != current.version {
                    return Err(precondition_failed(current.version));
                }
            }
            let mut next = current.clone();
            let now = time::now();
            next.status = CustomerStatus::Deleted;
            next.deleted = Some(now);
            next.touch(origin, now);
            let event = event_for(&next, CUSTOMER_DELETED, origin);
            match self
                .store
                .delete_customer(&next, current.version, event.as_ref())
                .await?
            {
                WriteOutcome::Done => return Ok(()),
                WriteOutcome::Stale if if_match.is_some() => {
                    return Err(precondition_failed(current.version + 1))
                }
                _ => continue,
            }
        }
        Err(retry_exhausted())
    }

    /// `PUT /v1/customers/{id}/vendor-id`: the calling product's own id for a customer.
    pub async fn set_vendor_id(
        &self,
        who: &Principal,
        target: &CustomerRef,
        vendor_customer_id: String,
    ) -> ApiResult<StoredCustomer> {
        let Principal::Product(product) = who else {
            return Err(ApiError::forbidden());
        };
        let mut stored = self.live_customer(who, target).await?;
        if stored.vendor_customer_id.as_deref() != Some(vendor_customer_id.as_str()) {
            let id = self
                .associate(product, &stored.customer, &vendor_customer_id)
                .await?;
            stored.vendor_customer_id = Some(id);
        }
        Ok(stored)
    }

    /// `POST /v1/customers/associations`: a result per item, in order.
    pub async fn associate_many(
        &self,
        who: &Principal,
        body: Map<String, Value>,
    ) -> ApiResult<Vec<Value>> {
        if !matches!(who, Principal::Product(_)) {
            return Err(ApiError::forbidden());
        }
        let items = bulk_items(body, "associations")?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = match parse_association(item) {
                Ok((customer_id, vendor)) => {
                    self.set_vendor_id(who, &CustomerRef::Id(customer_id), vendor)
                        .await
                }
                Err(err) => Err(err),
            };
            results.push(match result {
                Ok(stored) => json!({"status": 200, "customer": stored.record()}),
                Err(err) => item_problem(err),
            });
        }
        Ok(results)
    }

    /// `POST /v1/customers/batch`: a result per item, in order; an invalid item fails
    /// alone. The valid items are written together with multi-row statements; those
    /// that collide then take the single-create path for `on_duplicate`.
    pub async fn create_batch(
        &self,
        who: &Principal,
        body: Map<String, Value>,
        on_duplicate: OnDuplicate,
    ) -> ApiResult<Vec<Value>> {
        let items = bulk_items(body, "customers")?;
        let mut results: Vec<Option<ApiResult<Created>>> = Vec::with_capacity(items.len());
        let mut scopes: HashMap<Option<String>, ScopeSettings> = HashMap::new();
        let mut prepared = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            results.push(None);
            let parsed = match item {
                Value::Object(map) => self.prepare_create(who, map, &mut scopes).await,
                _ => Err(ApiError::malformed_body("each item must be a JSON object")),
            };
            match parsed.and_then(|(settings, draft)| {
                let row = new_customer_row(who, &settings, &draft)?;
                Ok((settings, draft, row))
            }) {
                Ok(ready) => prepared.push((index, ready)),
                Err(err) => results[index] = Some(Err(err)),
            }
        }
        let rows: Vec<NewCustomer> = prepared
            .iter()
            .map(|(_, (_, _, row))| row.clone())
            .collect();
        let outcomes = self.store.insert_customers(&rows).await?;
        for ((index, (settings, draft, row)), outcome) in prepared.into_iter().zip(outcomes) {
            let settled = match self
                .settle_create(who, &settings, &draft, row, outcome, on_duplicate)
                .await
            {
                Some(result) => result,
                None => {
                    self.create_parsed(who, &settings, draft, on_duplicate)
                        .await
                }
            };
            results[index] = Some(settled);
        }
        Ok(results
            .into_iter()
            .map(|result| match result {
                Some(Ok(Created::New(stored))) => {
                    json!({"status": 201, "customer": stored.record()})
                }
                Some(Ok(Created::Merged(stored))) => {
                    json!({"status": 200, "customer": stored.record()})
                }
                Some(Err(err)) => item_problem(err),
                None => item_problem(retry_exhausted()),
            })
            .collect())
    }

    /// Reads a create body: its scope (checked against the caller; cached per account
    /// within one batch) and its fields in that scope's region.
    async fn prepare_create(
        &self,
        who: &Principal,
        body: Map<String, Value>,
        scopes: &mut HashMap<Option<String>, ScopeSettings>,
    ) -> ApiResult<(ScopeSettings, CustomerDraft)> {
        let account = match body.get("account_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(ApiError::invalid_field("account_id", "must be a string")),
        };
        let settings = match scopes.get(&account) {
            Some(settings) => settings.clone(),
            None => {
                let settings = self
                    .create_scope(who, account.clone().map(AccountId::from_string))
                    .await?;
                scopes.insert(account, settings.clone());
                settings
            }
        };
        let draft = parse_draft(body, settings.region)?;
        Ok((settings, draft))
    }
}

/// A new customer row: the customer at version 1, the creating product's id for it (the
/// hub's id when it gave none), and its `customer.created` event.
fn new_customer_row(
    who: &Principal,
    settings: &ScopeSettings,
    draft: &CustomerDraft,
) -> ApiResult<NewCustomer> {
    let origin = origin_of(who);
    if origin.is_none() && draft.vendor_id.is_some() {
        return Err(ApiError::invalid_field(
            "id",
            "only a product key has its own id for a customer",
        ));
    }
    let now = time::now();
    let customer = Customer::new(
        CustomerId::generate(),
        settings.scope.clone(),
        draft.fields.clone(),
        draft.permission,
        origin,
        now,
    );
    let association = origin.map(|product| NewAssociation {
        product_id: product.clone(),
        customer_id: customer.customer_id.clone(),
        scope: settings.scope.key(),
        vendor_customer_id: draft
            .vendor_id
            .clone()
            .unwrap_or_else(|| customer.customer_id.to_string()),
        created: now,
    });
    Ok(NewCustomer {
        identifiers: customer.identifiers(settings.policy),
        event: event_for(&customer, CUSTOMER_CREATED, origin),
        association,
        customer,
    })
}

fn item_problem(err: ApiError) -> Value {
    json!({"status": err.status.as_u16(), "problem": err.to_problem()})
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

fn parse_association(item: Value) -> ApiResult<(CustomerId, String)> {
    let Value::Object(map) = item else {
        return Err(ApiError::malformed_body("each item must be a JSON object"));
    };
    let mut f = Fields::new(map);
    let customer = f.required("customer_id", any_text);
    let vendor = f.required("vendor_customer_id", text(vendor_id));
    f.finish()?;
    match (customer, vendor) {
        (Some(customer), Some(vendor)) => Ok((CustomerId::from_string(customer), vendor)),
        _ => Err(ApiError::malformed_body("incomplete item")),
    }
}

impl StoredCustomer {
    /// The REST record as this viewer sees it.
    pub fn record(&self) -> Value {
        wire::record(&self.customer, self.vendor_customer_id.as_deref())
    }
}
