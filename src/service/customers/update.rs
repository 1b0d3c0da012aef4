//! Changing customers: a merge patch under the row lock (with `If-Match`), and deletion.

use super::input::parse_patch;
use super::{
    collision, consent_change, event_for, origin_of, precondition_failed, refused, retrying,
    CustomerRef,
};
use crate::domain::consent::ConsentVia;
use crate::domain::customer::{CustomerStatus, Refusal};
use crate::domain::tenancy::{Actor, Principal};
use crate::domain::wire::{CUSTOMER_DELETED, CUSTOMER_UPDATED};
use crate::domain::{time, CustomerId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::service::Hub;
use crate::storage::{Decide, Decision, Modified, StoredCustomer, WriteOutcome};
use serde_json::{Map, Value};

impl Hub {
    /// `PATCH /v1/customers/{id}`: a JSON merge patch, optionally conditional on the
    /// version (`If-Match`). A patch that changes nothing keeps the version and emits
    /// nothing.
    pub async fn update_customer(
        &self,
        who: &Actor,
        target: &CustomerRef,
        body: Map<String, Value>,
        if_match: Option<i64>,
    ) -> ApiResult<StoredCustomer> {
        let origin = origin_of(who).cloned();
        let found = self.live_customer(who, target).await?;
        let settings = self.scope_settings(&found.customer.scope).await?;
        let account = found.customer.scope.account().map(|a| a.to_string());
        let patch = parse_patch(body, settings.region, account.as_deref())?;
        let mut added = crate::domain::customer::CustomerFields::default();
        added.email = patch.email.clone().unwrap_or_default();
        added.phone = patch.phone.clone().unwrap_or_default();
        self.refuse_suppressed(&found.customer.scope, &added.contact_identifiers())
            .await?;
        let actor = who.clone();
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
                return match patch.consent {
                    Some(_) => Decision::Refuse(Refusal::ConsentWithoutChange),
                    None => Decision::Keep,
                };
            };
            if !next.fields.identifies_someone() {
                return Decision::Refuse(Refusal::NoIdentity);
            }
            let consent = consent_change(
                Some(customer),
                &next,
                patch.consent.as_ref(),
                &actor,
                ConsentVia::Update,
            );
            if patch.consent.is_some() && consent.is_none() {
                return Decision::Refuse(Refusal::ConsentWithoutChange);
            }
            Decision::Write {
                identifiers: next.identifiers(settings.policy),
                event: event_for(&next, CUSTOMER_UPDATED, origin.as_ref()),
                consent,
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

    /// Runs a change of one customer under its row lock (see `CustomerStore::modify_customer`).
    pub(super) async fn modify(
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
                collided => Err(collision(collided, None)),
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
        retrying(|| async {
            let current = self.reachable_customer(who, target).await?.customer;
            if current.status == CustomerStatus::Conflict {
                return if self
                    .store
                    .discard_conflict_record(&current.customer_id)
                    .await?
                {
                    Ok(Some(()))
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
                WriteOutcome::Done => Ok(Some(())),
                WriteOutcome::Stale if if_match.is_some() => {
                    Err(precondition_failed(current.version + 1))
                }
                _ => Ok(None),
            }
        })
        .await
    }
}
