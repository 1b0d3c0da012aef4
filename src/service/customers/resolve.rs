//! Resolving duplicates (SPEC section 5): conflict records merged into the customer they
//! matched, kept as customers of their own, or discarded; and two live customers merged.
//! Each resolution writes its event in the same transaction as its change.

use super::{collision, consent_change, event_for, origin_of, retrying, CustomerRef, Hub};
use crate::domain::consent::ConsentVia;
use crate::domain::customer::{Customer, CustomerStatus, Identifier, Prefer};
use crate::domain::tenancy::{Actor, Principal};
use crate::domain::wire::{self, CUSTOMER_CREATED, CUSTOMER_MERGED, CUSTOMER_UPDATED};
use crate::domain::{time, CustomerId, EventId};
use crate::error::{ApiError, ApiResult};
use crate::input::{id, text, Fields, FromInput};
use crate::storage::{
    ConflictMergeWrite, CustomerMergeWrite, NewAssociation, NewCustomer, NewEvent, StoredCustomer,
    WriteOutcome,
};

/// `POST /v1/conflicts/{id}/merge` body.
pub struct ConflictMerge {
    pub prefer: Prefer,
    pub dry_run: bool,
}

impl FromInput for ConflictMerge {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let prefer = f.optional("prefer", text(Prefer::parse));
        let dry_run = f.optional("dry_run", |v| {
            v.as_bool().ok_or("must be true or false".to_owned())
        });
        Some(Self {
            prefer: prefer.unwrap_or(Prefer::Existing),
            dry_run: dry_run.unwrap_or(false),
        })
    }
}

/// `POST /v1/customers/{id}/merge` body.
pub struct CustomerMerge {
    pub from: CustomerId,
}

impl FromInput for CustomerMerge {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let from = f.required("from", id::<CustomerId>);
        Some(Self { from: from? })
    }
}

fn conflict_gone() -> ApiError {
    ApiError::not_found("conflict")
}

/// The association a resolution gives the product that created a conflict record (its
/// first origin): its own id from the record, else (as at create) the hub's id of the
/// customer it ends up as.
fn creator_association(record: &Customer, customer: &Customer) -> Option<NewAssociation> {
    let product = record.origins.first()?;
    let vendor_customer_id = record
        .conflict
        .as_ref()
        .and_then(|c| c.vendor_customer_id.clone())
        .unwrap_or_else(|| customer.customer_id.to_string());
    Some(NewAssociation {
        product_id: product.clone(),
        customer_id: customer.customer_id.clone(),
        scope: customer.scope.key(),
        vendor_customer_id,
        created: time::now(),
    })
}

impl Hub {
    /// A pending conflict record `who` may resolve.
    async fn pending_conflict(&self, who: &Principal, id: &CustomerId) -> ApiResult<Customer> {
        let stored = self
            .reachable_customer(who, &CustomerRef::Id(id.clone()))
            .await
            .map_err(|_| conflict_gone())?;
        if stored.customer.status != CustomerStatus::Conflict {
            return Err(conflict_gone());
        }
        Ok(stored.customer)
    }

    /// Merges a conflict record into the customer it matched; with `dry_run`, only
    /// shows the result.
    pub async fn merge_conflict(
        &self,
        who: &Actor,
        id: &CustomerId,
        input: ConflictMerge,
    ) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who);
        retrying(|| async {
            let record = self.pending_conflict(who, id).await?;
            let Some(info) = &record.conflict else {
                return Err(conflict_gone());
            };
            let survivor = self
                .store
                .get_customer(&info.conflicting_customer_id, origin)
                .await?
                .filter(|s| s.customer.status == CustomerStatus::Live)
                .ok_or_else(|| {
                    ApiError::conflict(
                        "conflict_target_gone",
                        "the customer this record matched no longer exists; keep or discard it",
                    )
                })?;
            let current = &survivor.customer;
            let next = current
                .absorbing(&record, input.prefer, origin, time::now())
                .unwrap_or_else(|| current.clone());
            // An email or phone erased with suppression since the record was made stays out.
            self.refuse_suppressed(
                &current.scope,
                &next.fields.identifiers_added_to(&current.fields),
            )
            .await?;
            if input.dry_run {
                return Ok(Some(StoredCustomer {
                    customer: next,
                    vendor_customer_id: survivor.vendor_customer_id,
                }));
            }
            let settings = self.scope_settings(&current.scope).await?;
            let changed = next.version != current.version;
            let event = changed
                .then(|| event_for(&next, CUSTOMER_UPDATED, origin))
                .flatten();
            let association = creator_association(&record, &next);
            let consent = consent_change(Some(current), &next, None, who, ConsentVia::Merge);
            let outcome = self
                .store
                .merge_conflict_record(ConflictMergeWrite {
                    conflict: id,
                    survivor: &next,
                    expected_version: current.version,
                    identifiers: &next.identifiers(settings.policy),
                    association: association.as_ref(),
                    event: event.as_ref(),
                    consent: consent.as_ref(),
                })
                .await?;
            match outcome {
                WriteOutcome::Done => Ok(Some(StoredCustomer {
                    customer: next,
                    vendor_customer_id: survivor.vendor_customer_id,
                })),
                duplicate @ WriteOutcome::Duplicate(_) => Err(collision(duplicate, None)),
                taken @ WriteOutcome::VendorIdTaken(_) => {
                    let id = association.map(|a| a.vendor_customer_id);
                    Err(collision(taken, id.as_deref()))
                }
                // The survivor changed, or the record was resolved meanwhile.
                WriteOutcome::Stale => Ok(None),
            }
        })
        .await
    }

    /// Keeps a conflict record as a customer of its own, without the emails and phones
    /// that belong to other customers.
    pub async fn keep_conflict(&self, who: &Actor, id: &CustomerId) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who);
        let record = self.pending_conflict(who, id).await?;
        let settings = self.scope_settings(&record.scope).await?;
        // Identifiers it must leave to their owners; grows when a try collides.
        let taken: std::sync::Mutex<Vec<Identifier>> = std::sync::Mutex::new(
            record
                .conflict
                .iter()
                .flat_map(|c| c.matched_on.iter().filter_map(Identifier::from_matched))
                .collect(),
        );
        retrying(|| async {
            let now = time::now();
            let mut customer = {
                let taken = taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                record.without_identifiers(&taken)
            };
            customer.customer_id = CustomerId::generate();
            customer.status = CustomerStatus::Live;
            customer.conflict = None;
            customer.version = 1;
            customer.created = now;
            customer.updated = now;
            if !customer.fields.identifies_someone() {
                return Err(ApiError::conflict(
                    "conflict_not_keepable",
                    "without the identifiers it shares, nothing would identify this record; merge or discard it",
                ));
            }
            let association = creator_association(&record, &customer);
            let row = NewCustomer {
                identifiers: customer.identifiers(settings.policy),
                event: event_for(&customer, CUSTOMER_CREATED, origin),
                consent: consent_change(None, &customer, None, who, ConsentVia::Create),
                association: association.clone(),
                customer: customer.clone(),
            };
            match self.store.keep_conflict_record(id, &row).await? {
                WriteOutcome::Done => {
                    let vendor_customer_id = match (origin, &association) {
                        (Some(me), Some(a)) if *me == a.product_id => {
                            Some(a.vendor_customer_id.clone())
                        }
                        _ => None,
                    };
                    Ok(Some(StoredCustomer {
                        customer,
                        vendor_customer_id,
                    }))
                }
                // Identifiers taken since the record was made stay with their owners too.
                WriteOutcome::Duplicate(matches) => {
                    let mut taken = taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    taken.extend(matches.into_iter().map(|(identifier, _)| identifier));
                    Ok(None)
                }
                taken @ WriteOutcome::VendorIdTaken(_) => {
                    let id = association.map(|a| a.vendor_customer_id);
                    Err(collision(taken, id.as_deref()))
                }
                WriteOutcome::Stale => Err(conflict_gone()),
            }
        })
        .await
    }

    /// Discards a conflict record; nothing is emitted.
    pub async fn discard_conflict(&self, who: &Principal, id: &CustomerId) -> ApiResult<()> {
        self.pending_conflict(who, id).await?;
        if self.store.discard_conflict_record(id).await? {
            Ok(())
        } else {
            Err(conflict_gone())
        }
    }

    /// Merges the live customer `from` into the live customer `target` (the survivor):
    /// the survivor's values win, empty fields are filled, lists united, every product's
    /// id follows unless the survivor has its own; `from` then answers `404` with
    /// `merged_into`. Emits `customer.merged`.
    pub async fn merge_customers(
        &self,
        who: &Actor,
        target: &CustomerRef,
        input: CustomerMerge,
    ) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who);
        retrying(|| async {
            let survivor = self.live_customer(who, target).await?;
            let absorbed = self
                .live_customer(who, &CustomerRef::Id(input.from.clone()))
                .await
                .map_err(|err| match err.code {
                    "not_found" => ApiError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "not_found",
                        "Not found",
                        "no live customer you can reach has the id in from",
                    ),
                    _ => err,
                })?
                .customer;
            // Well-formed ids that the stored state refuses to pair: a conflict (409),
            // not a malformed request.
            let current = &survivor.customer;
            if absorbed.customer_id == current.customer_id {
                return Err(ApiError::conflict(
                    "merge_refused",
                    "from names the customer itself: a customer cannot absorb itself",
                ));
            }
            if absorbed.scope != current.scope {
                return Err(ApiError::conflict(
                    "merge_refused",
                    "from names a customer of another account",
                ));
            }
            let now = time::now();
            let mut next = current
                .absorbing(&absorbed, Prefer::Existing, origin, now)
                .unwrap_or_else(|| current.clone());
            self.refuse_suppressed(
                &current.scope,
                &next.fields.identifiers_added_to(&current.fields),
            )
            .await?;
            if next.version == current.version {
                // Absorbing a customer is a change even when no field moves.
                next.touch(origin, now);
            }
            let mut gone = absorbed.clone();
            gone.status = CustomerStatus::Merged;
            gone.merged_into = Some(current.customer_id.clone());
            gone.touch(origin, now);
            let settings = self.scope_settings(&current.scope).await?;
            let event = next.scope.account().map(|account| NewEvent {
                event_id: EventId::generate(),
                account_id: account.clone(),
                customer_id: next.customer_id.clone(),
                kind: CUSTOMER_MERGED,
                version: next.version,
                origin: origin.cloned(),
                data: wire::merged_event_data(&next, &[absorbed.customer_id.as_str()], origin),
                created: now,
            });
            let outcome = self
                .store
                .merge_customers(CustomerMergeWrite {
                    survivor: &next,
                    survivor_version: current.version,
                    absorbed: &gone,
                    absorbed_version: absorbed.version,
                    identifiers: &next.identifiers(settings.policy),
                    event: event.as_ref(),
                    consent: consent_change(Some(current), &next, None, who, ConsentVia::Merge)
                        .as_ref(),
                })
                .await?;
            match outcome {
                WriteOutcome::Done => {
                    let viewed = self.store.get_customer(&next.customer_id, origin).await?;
                    Ok(Some(viewed.unwrap_or(StoredCustomer {
                        customer: next,
                        vendor_customer_id: survivor.vendor_customer_id,
                    })))
                }
                duplicate @ WriteOutcome::Duplicate(_) => Err(collision(duplicate, None)),
                WriteOutcome::Stale | WriteOutcome::VendorIdTaken(_) => Ok(None),
            }
        })
        .await
    }
}
