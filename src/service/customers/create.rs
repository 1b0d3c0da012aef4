//! Creating customers, one or in a batch, with the duplicate rules of SPEC section 5
//! (`on_duplicate`: a conflict record, a refusal, or a merge into the existing customer).

use super::input::{parse_draft, CustomerDraft, OnDuplicate};
use super::{
    bulk_items, collision, consent_change, duplicate, event_for, matched_on, origin_of,
    retry_exhausted, retrying, Created, ScopeSettings,
};
use crate::domain::consent::ConsentVia;
use crate::domain::customer::{ConflictInfo, Customer, CustomerStatus, Identifier, Refusal};
use crate::domain::tenancy::{Actor, Principal};
use crate::domain::wire::{CUSTOMER_CREATED, CUSTOMER_UPDATED};
use crate::domain::{time, AccountId, CustomerId};
use crate::error::{ApiError, ApiResult};
use crate::service::Hub;
use crate::storage::{Decision, NewAssociation, NewCustomer, StoredCustomer, WriteOutcome};
use serde_json::{Map, Value};
use std::collections::HashMap;

impl Hub {
    /// `POST /v1/customers`.
    pub async fn create_customer(
        &self,
        who: &Actor,
        body: Map<String, Value>,
        on_duplicate: OnDuplicate,
    ) -> ApiResult<Created> {
        let (settings, draft) = self.prepare_create(who, body, &mut HashMap::new()).await?;
        self.refuse_suppressed(&settings.scope, &draft.fields.contact_identifiers())
            .await?;
        self.create_parsed(who, &settings, draft, on_duplicate, &NewIds::generate())
            .await
    }

    /// Creates a validated customer in a checked scope.
    pub(crate) async fn create_parsed(
        &self,
        who: &Actor,
        settings: &ScopeSettings,
        draft: CustomerDraft,
        on_duplicate: OnDuplicate,
        ids: &NewIds,
    ) -> ApiResult<Created> {
        retrying(|| async {
            let row = new_customer_row(who, settings, &draft, ids)?;
            let outcome = self
                .store
                .insert_customers(std::slice::from_ref(&row))
                .await?
                .pop()
                .unwrap_or(WriteOutcome::Stale);
            // `None`: the identifier's owner vanished between the collision and its lookup.
            self.settle_create(who, settings, &draft, row, outcome, on_duplicate, ids)
                .await
                .transpose()
        })
        .await
    }

    /// The result of a create from its write outcome; `None` asks for another attempt.
    pub(super) async fn settle_create(
        &self,
        who: &Actor,
        settings: &ScopeSettings,
        draft: &CustomerDraft,
        row: NewCustomer,
        outcome: WriteOutcome,
        on_duplicate: OnDuplicate,
        ids: &NewIds,
    ) -> Option<ApiResult<Created>> {
        Some(match outcome {
            WriteOutcome::Done => Ok(Created::New(StoredCustomer {
                vendor_customer_id: row.association.map(|a| a.vendor_customer_id),
                customer: row.customer,
            })),
            taken @ WriteOutcome::VendorIdTaken(_) => {
                let id = row.association.map(|a| a.vendor_customer_id);
                Err(collision(taken, id.as_deref()))
            }
            WriteOutcome::Duplicate(matches) => {
                let conflict_id = ids.conflict.clone();
                self.on_duplicate(
                    who,
                    settings,
                    draft,
                    row.customer,
                    matches,
                    on_duplicate,
                    conflict_id,
                )
                .await
            }
            WriteOutcome::Stale => return None,
        })
    }

    /// What a create that matched live customers does, per `on_duplicate`.
    pub(super) async fn on_duplicate(
        &self,
        who: &Actor,
        settings: &ScopeSettings,
        draft: &CustomerDraft,
        incoming: Customer,
        matches: Vec<(Identifier, CustomerId)>,
        mode: OnDuplicate,
        conflict_id: CustomerId,
    ) -> ApiResult<Created> {
        let existing = matches[0].1.clone();
        let matched = matched_on(&matches);
        match mode {
            OnDuplicate::Reject => Err(duplicate(&existing, matched)),
            OnDuplicate::Conflict => {
                let mut record = incoming;
                record.customer_id = conflict_id;
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
    pub(super) async fn merge_into(
        &self,
        who: &Actor,
        settings: &ScopeSettings,
        existing: &CustomerId,
        draft: &CustomerDraft,
    ) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who).cloned();
        let (fields, permission, policy) =
            (draft.fields.clone(), draft.permission, settings.policy);
        let (actor, details) = (who.clone(), draft.consent.clone());
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
                    consent: consent_change(
                        Some(customer),
                        &next,
                        details.as_ref(),
                        &actor,
                        ConsentVia::Create,
                    ),
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

    /// `POST /v1/customers/batch`: a result per item, in order; an invalid item fails
    /// alone.
    pub async fn create_batch(
        &self,
        who: &Actor,
        body: Map<String, Value>,
        on_duplicate: OnDuplicate,
    ) -> ApiResult<Vec<ApiResult<Created>>> {
        let items = bulk_items(body, "customers")?;
        let mut scopes: HashMap<Option<AccountId>, ScopeSettings> = HashMap::new();
        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            prepared.push(match item {
                Value::Object(map) => self
                    .prepare_create(who, map, &mut scopes)
                    .await
                    .map(|(settings, draft)| (settings, draft, NewIds::generate())),
                _ => Err(ApiError::malformed_body("each item must be a JSON object")),
            });
        }
        self.create_prepared(who, prepared, on_duplicate).await
    }

    /// Creates prepared items together, a result per item in order (an item that failed
    /// its preparation keeps its error). The items are written with multi-row
    /// statements; those that collide then take the single-create path for
    /// `on_duplicate`.
    pub(crate) async fn create_prepared(
        &self,
        who: &Actor,
        items: Vec<ApiResult<(ScopeSettings, CustomerDraft, NewIds)>>,
        on_duplicate: OnDuplicate,
    ) -> ApiResult<Vec<ApiResult<Created>>> {
        let mut results: Vec<Option<ApiResult<Created>>> = Vec::with_capacity(items.len());
        // The valid items, and beside them (same order) the rows written for them.
        let mut prepared = Vec::new();
        let mut rows: Vec<NewCustomer> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            results.push(None);
            match item.and_then(|(settings, draft, ids)| {
                let row = new_customer_row(who, &settings, &draft, &ids)?;
                Ok((settings, draft, ids, row))
            }) {
                Ok((settings, draft, ids, row)) => {
                    prepared.push((index, settings, draft, ids));
                    rows.push(row);
                }
                Err(err) => results[index] = Some(Err(err)),
            }
        }
        // Suppression (SPEC section 10) for the whole batch: one query per account.
        let checks: Vec<_> = prepared
            .iter()
            .map(|(_, settings, draft, _)| (&settings.scope, draft.fields.contact_identifiers()))
            .collect();
        let refusals = self.refuse_suppressed_many(&checks).await?;
        drop(checks);
        let (mut kept, mut kept_rows) = (Vec::new(), Vec::new());
        for ((item, row), refusal) in prepared.into_iter().zip(rows).zip(refusals) {
            match refusal {
                Some(err) => results[item.0] = Some(Err(err)),
                None => {
                    kept.push(item);
                    kept_rows.push(row);
                }
            }
        }
        let (prepared, rows) = (kept, kept_rows);
        let outcomes = self.store.insert_customers(&rows).await?;
        for (((index, settings, draft, ids), row), outcome) in
            prepared.into_iter().zip(rows).zip(outcomes)
        {
            let settled = match self
                .settle_create(who, &settings, &draft, row, outcome, on_duplicate, &ids)
                .await
            {
                Some(result) => result,
                None => {
                    self.create_parsed(who, &settings, draft, on_duplicate, &ids)
                        .await
                }
            };
            results[index] = Some(settled);
        }
        Ok(results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(retry_exhausted())))
            .collect())
    }

    /// Reads a create body: its scope (checked against the caller; cached per account
    /// within one batch) and its fields in that scope's region.
    pub(crate) async fn prepare_create(
        &self,
        who: &Principal,
        body: Map<String, Value>,
        scopes: &mut HashMap<Option<AccountId>, ScopeSettings>,
    ) -> ApiResult<(ScopeSettings, CustomerDraft)> {
        let account = match body.get("account_id") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                crate::input::id::<AccountId>(value)
                    .map_err(|message| ApiError::invalid_field("account_id", message))?,
            ),
        };
        let settings = match scopes.get(&account) {
            Some(settings) => settings.clone(),
            None => {
                let settings = self.create_scope(who, account.clone()).await?;
                scopes.insert(account, settings.clone());
                settings
            }
        };
        let draft = parse_draft(body, settings.region)?;
        Ok((settings, draft))
    }
}

/// The ids a create gives what it stores: the customer's, and the conflict record's
/// when it is a duplicate. Fresh for a request; derived from the import and the line for
/// an import's row, so that a row written again after a crash finds itself.
#[derive(Clone, Debug)]
pub(crate) struct NewIds {
    pub customer: CustomerId,
    pub conflict: CustomerId,
}

impl NewIds {
    pub fn generate() -> Self {
        Self {
            customer: CustomerId::generate(),
            conflict: CustomerId::generate_conflict(),
        }
    }
}

/// A new customer row: the customer at version 1, the creating product's id for it (the
/// hub's id when it gave none), and its `customer.created` event.
fn new_customer_row(
    who: &Actor,
    settings: &ScopeSettings,
    draft: &CustomerDraft,
    ids: &NewIds,
) -> ApiResult<NewCustomer> {
    let origin = origin_of(who);
    if origin.is_none() && draft.vendor_id.is_some() {
        return Err(ApiError::forbidden_because(
            "only a product key has its own id for a customer (id)",
        ));
    }
    let now = time::now();
    let customer = Customer::new(
        ids.customer.clone(),
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
        consent: consent_change(
            None,
            &customer,
            draft.consent.as_ref(),
            who,
            ConsentVia::Create,
        ),
        association,
        customer,
    })
}
