//! Who reaches which customer (SPEC section 2 applied to customers): the scope a
//! create writes to, and the customer a path names, as the caller may see it.

use super::{origin_of, CustomerRef, ScopeSettings};
use crate::domain::customer::{CustomerScope, CustomerStatus};
use crate::domain::tenancy::{Principal, ANY_KEY};
use crate::domain::tenants::{DedupePolicy, Region};
use crate::domain::AccountId;
use crate::error::{ApiError, ApiResult};
use crate::service::{reachable, Hub};
use crate::storage::{CustomerEvent, DeliveryView, StoredCustomer, VendorIdOf};
use serde_json::{json, Value};

/// How many events and deliveries a customer's page shows (the history holds one more,
/// so the oldest shown can say what it changed).
pub const PAGE_HISTORY: i64 = 50;

/// What a customer's page shows, read after one reach check.
pub struct CustomerPageFacts {
    pub stored: StoredCustomer,
    pub vendor_ids: Vec<VendorIdOf>,
    /// Newest first; at most `PAGE_HISTORY + 1`.
    pub history: Vec<CustomerEvent>,
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Its consent history as the API shows it, oldest first.
    pub consent: Vec<Value>,
}

impl Hub {
    /// The settings of a scope: its account's region and dedupe policy; account-less
    /// customers use the defaults.
    pub(super) async fn scope_settings(&self, scope: &CustomerScope) -> ApiResult<ScopeSettings> {
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
    pub(crate) async fn create_scope(
        &self,
        who: &Principal,
        account: Option<AccountId>,
    ) -> ApiResult<ScopeSettings> {
        who.require(ANY_KEY)?;
        let scope = match (who, account) {
            (_, Some(account)) => CustomerScope::Account(account),
            (Principal::Product(me), None) => CustomerScope::Product(me.clone()),
            (Principal::Account(me), None) => CustomerScope::Account(me.clone()),
            // The document cannot tie a field to the kind of key: which key may act
            // how is the key's scope (SPEC section 2), so 403.
            (_, None) => {
                return Err(ApiError::forbidden_because(
                    "only a product or account key creates a customer without account_id",
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
    pub(super) async fn reachable_customer(
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
                    return Err(ApiError::forbidden_because(
                        "only a product key addresses customers by its own id (id_type=vendor)",
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
                    // An id released by an erasure still says so.
                    0 => Err(
                        match self
                            .erasure_of_vendor_id(product, vendor_customer_id)
                            .await?
                        {
                            Some(erasure) => {
                                ApiError::not_found("customer").with("erasure_id", &erasure)
                            }
                            None => ApiError::not_found("customer"),
                        },
                    ),
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
            CustomerStatus::Erased => {
                let erasure = self.store.erasure_of_customer(&id).await?;
                Err(ApiError::not_found("customer").with("erasure_id", &erasure))
            }
        }
    }

    /// A live customer (not a conflict record) `who` may reach.
    pub(super) async fn live_customer(
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

    /// A customer `who` may reach, with every product's own id for it (the console's
    /// customer page): one reach check, then one more query.
    /// Everything a customer's page shows: the record, each product's id for it, its
    /// recent history (the account's events for it) and what each product was sent. A
    /// product key sees only its own deliveries.
    pub async fn customer_page(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<CustomerPageFacts> {
        let stored = self.reachable_customer(who, target).await?;
        let id = &stored.customer.customer_id;
        let vendor_ids = self.store.vendor_ids_of(id).await?;
        let (history, deliveries) = match stored.customer.scope.account() {
            Some(account) => (
                self.store
                    .customer_events(account, id, PAGE_HISTORY + 1)
                    .await?,
                self.store
                    .customer_deliveries(account, id, origin_of(who), PAGE_HISTORY)
                    .await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let consent = self.customer_consent_entries(id).await?;
        Ok(CustomerPageFacts {
            stored,
            vendor_ids,
            history,
            deliveries,
            consent,
        })
    }

    /// `GET /v1/customers/{id}/consent`: the record's consent now, and every change of
    /// it, oldest first.
    pub async fn customer_consent(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<Value> {
        let stored = self.reachable_customer(who, target).await?;
        let history = self
            .customer_consent_entries(&stored.customer.customer_id)
            .await?;
        let record = stored.record();
        Ok(json!({
            "customer_id": record["customer_id"],
            "permission_to_contact": record["permission_to_contact"],
            "history": history,
        }))
    }

    /// A customer's consent history as the API shows it, oldest first.
    pub(super) async fn customer_consent_entries(
        &self,
        customer: &crate::domain::CustomerId,
    ) -> ApiResult<Vec<Value>> {
        let history = self.store.consent_history(customer).await?;
        Ok(history
            .iter()
            .map(|c| {
                json!({
                    "granted": c.granted,
                    "at": c.at,
                    "legal_basis": c.details.legal_basis,
                    "method": c.details.method,
                    "text": c.details.text,
                    "source": {"product_id": c.source_product_id, "key_id": c.source_key_id},
                    "via": c.via,
                })
            })
            .collect())
    }

    pub async fn get_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<StoredCustomer> {
        self.reachable_customer(who, target).await
    }
}
