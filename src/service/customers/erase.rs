//! SPEC section 10, erasure and export: forgetting a person everywhere (in one
//! transaction, then `customer.erased` to every product, followed in a receipt),
//! suppressing their identifiers, and handing them everything the hub holds.

use super::{retrying, CustomerRef};
use crate::domain::credentials::keyed_digest;
use crate::domain::cursor::TimeCursor;
use crate::domain::customer::{CustomerScope, CustomerStatus, Email, Identifier, Phone};
use crate::domain::tenancy::{Actor, Principal, ADMIN_PARTNER_OR_ACCOUNT, ANY_KEY};
use crate::domain::time::{self, Timestamp};
use crate::domain::wire::{self, CUSTOMER_ERASED};
use crate::domain::{AccountId, CustomerId, ErasureId, EventId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::input::{text, Fields, FromInput};
use crate::service::Hub;
use crate::storage::{ErasureView, ErasureWrite, NewEvent, SuppressionView, WriteOutcome};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The name of the key suppression and vendor-id hashes are made with.
const HASH_KEY: &str = "erasure_hash_key";

/// The value a suppression is lifted for.
pub enum SuppressedValue {
    Email(Email),
    /// As sent: read in the account's region.
    Phone(String),
}

/// `POST /v1/customers/{id}/erase` body.
#[derive(Debug, Default)]
pub struct ErasureInput {
    pub reason: Option<String>,
    pub suppress: bool,
}

impl FromInput for ErasureInput {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let reason = f
            .optional(
                "reason",
                text(|raw: &str| {
                    crate::domain::customer::plain_text(raw, 200, false)
                        .map(|r| (!r.is_empty()).then(|| r.to_owned()))
                }),
            )
            .flatten();
        let suppress = f
            .optional("suppress", |v: &Value| {
                v.as_bool()
                    .ok_or_else(|| "must be true or false".to_owned())
            })
            .unwrap_or(false);
        Some(Self { reason, suppress })
    }
}

/// Who an erasure is recorded as asked by, and when: the request's own, or the original
/// receipt's when `customer-list reapply-erasures` erases again after a restore.
struct ErasureOrigin {
    erasure_id: ErasureId,
    requested: Timestamp,
    key_id: String,
    product: Option<ProductId>,
}

/// What `reapply-erasures` did with one receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reapplied {
    /// The customer was here with its data again, and is erased again.
    Erased,
    /// This database already holds the erasure (or the customer is erased).
    AlreadyErased,
    /// The customer is not in this database (made after the backup, or never here).
    NotHere,
}

/// The receipt as the API shows it.
pub fn receipt(view: &ErasureView) -> Value {
    json!({
        "erasure_id": view.erasure_id,
        "customer_id": view.customer_id,
        "account_id": view.account_id,
        "requested": view.requested,
        "requested_by": {"key_id": view.requested_by_key, "product_id": view.requested_by_product},
        "reason": view.reason,
        "suppressed": view.suppressed,
        "status": if view.completed.is_some() { "completed" } else { "in_progress" },
        "completed": view.completed,
        "products": view.products.iter().map(|p| json!({
            "product_id": p.product_id,
            "status": p.status,
            "acknowledged": p.acknowledged,
            "error": p.error,
        })).collect::<Vec<_>>(),
    })
}

/// A receipt as `receipt` shows it, read back (what `customer-list erasures` printed, for
/// `reapply-erasures`); its products are not needed and not read.
pub fn receipt_from_json(line: &str) -> Result<ErasureView, String> {
    #[derive(serde::Deserialize)]
    struct RequestedBy {
        key_id: String,
        product_id: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Line {
        erasure_id: String,
        customer_id: String,
        account_id: String,
        requested: Timestamp,
        requested_by: RequestedBy,
        reason: Option<String>,
        suppressed: bool,
        completed: Option<Timestamp>,
    }
    let line: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(ErasureView {
        erasure_id: line.erasure_id,
        account_id: line.account_id,
        customer_id: line.customer_id,
        requested: line.requested,
        requested_by_key: line.requested_by.key_id,
        requested_by_product: line.requested_by.product_id,
        reason: line.reason,
        suppressed: line.suppressed,
        completed: line.completed,
        products: Vec::new(),
    })
}

/// The keyed hash of an erased email or phone (a suppression).
fn identifier_digest(key: &[u8], identifier: &Identifier) -> String {
    keyed_digest(key, &format!("{}:{}", identifier.kind, identifier.value))
}

/// The keyed hash of a product's released id for an erased customer.
fn vendor_id_digest(key: &[u8], product: &str, vendor_customer_id: &str) -> String {
    keyed_digest(key, &format!("vendor:{product}:{vendor_customer_id}"))
}

impl Hub {
    /// The deployment's key for keyed hashes of erased values, made once and kept in the
    /// database (so hashes cannot be matched across deployments).
    async fn erasure_hash_key(&self) -> ApiResult<Vec<u8>> {
        let key = self
            .hash_key
            .get_or_try_init(|| async {
                let generated = crate::domain::credentials::generate_secret_hex();
                self.store.hub_secret(HASH_KEY, &generated).await
            })
            .await?;
        Ok(key.as_bytes().to_vec())
    }

    /// `409 suppressed` naming the first field whose value was erased with suppression.
    pub(crate) async fn refuse_suppressed(
        &self,
        scope: &CustomerScope,
        identifiers: &[Identifier],
    ) -> ApiResult<()> {
        let Some(account) = scope.account() else {
            return Ok(());
        };
        if identifiers.is_empty() {
            return Ok(());
        }
        let key = self.erasure_hash_key().await?;
        let digests: Vec<(&'static str, String)> = identifiers
            .iter()
            .map(|i| (i.kind, identifier_digest(&key, i)))
            .collect();
        let hits = self.store.suppressed(account, &digests).await?;
        match hits.first() {
            None => Ok(()),
            Some((kind, _)) => Err(suppressed_error(kind)),
        }
    }

    /// [`Self::refuse_suppressed`] for many creates at once (a batch, an import), with
    /// one query per account: each item's refusal, if it is refused.
    pub(crate) async fn refuse_suppressed_many(
        &self,
        items: &[(&CustomerScope, Vec<Identifier>)],
    ) -> ApiResult<Vec<Option<ApiError>>> {
        let mut refusals: Vec<Option<ApiError>> = items.iter().map(|_| None).collect();
        if items.iter().all(|(_, ids)| ids.is_empty()) {
            return Ok(refusals);
        }
        let key = self.erasure_hash_key().await?;
        let digests: Vec<Vec<(&'static str, String)>> = items
            .iter()
            .map(|(_, ids)| {
                ids.iter()
                    .map(|i| (i.kind, identifier_digest(&key, i)))
                    .collect()
            })
            .collect();
        let mut accounts: Vec<&AccountId> = items
            .iter()
            .filter_map(|(scope, _)| scope.account())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        for account in accounts {
            let mine: Vec<usize> = (0..items.len())
                .filter(|&i| items[i].0.account() == Some(account))
                .collect();
            let asked: Vec<(&'static str, String)> = mine
                .iter()
                .flat_map(|&i| digests[i].iter().cloned())
                .collect();
            if asked.is_empty() {
                continue;
            }
            let hits: std::collections::HashSet<(String, String)> = self
                .store
                .suppressed(account, &asked)
                .await?
                .into_iter()
                .collect();
            for i in mine {
                refusals[i] = digests[i]
                    .iter()
                    .find(|(kind, digest)| hits.contains(&((*kind).to_owned(), digest.clone())))
                    .map(|(kind, _)| suppressed_error(kind));
            }
        }
        Ok(refusals)
    }

    /// `POST /v1/customers/{id}/erase`.
    pub async fn erase_customer(
        &self,
        who: &Actor,
        target: &CustomerRef,
        input: ErasureInput,
    ) -> ApiResult<ErasureView> {
        who.require(ANY_KEY)?;
        let origin = ErasureOrigin {
            erasure_id: ErasureId::generate(),
            requested: time::now(),
            key_id: who.key_id.to_string(),
            product: match &**who {
                Principal::Product(id) => Some(id.clone()),
                _ => None,
            },
        };
        self.erase(who, target, input, &origin).await
    }

    /// The one erase path: reads the customer, scrubs it in one transaction with its
    /// receipt (as `origin` names it) and its `customer.erased` events.
    async fn erase(
        &self,
        who: &Principal,
        target: &CustomerRef,
        input: ErasureInput,
        origin: &ErasureOrigin,
    ) -> ApiResult<ErasureView> {
        let requester = origin.product.clone();
        let erasure_id = &origin.erasure_id;
        let now = origin.requested;
        retrying(|| async {
            let stored = self.reachable_customer(who, target).await?;
            let current = stored.customer;
            let Some(account) = current.scope.account().cloned() else {
                return Err(ApiError::conflict(
                    "erasure_refused",
                    "only customers of an account are erased this way; delete this one",
                ));
            };
            let is_conflict = current.status == CustomerStatus::Conflict;
            let scrubbed = current.erased(now);
            // Every product activated on the account, or holding an id for the customer.
            let vendor_ids = self.store.vendor_ids_of(&current.customer_id).await?;
            let mut products: Vec<ProductId> = if is_conflict {
                Vec::new()
            } else {
                self.store
                    .list_activations(&account)
                    .await?
                    .into_iter()
                    .map(|a| a.product_id)
                    .collect()
            };
            for v in &vendor_ids {
                let id = ProductId::from_string(v.product_id.clone());
                if !is_conflict && !products.contains(&id) {
                    products.push(id);
                }
            }
            let key = self.erasure_hash_key().await?;
            let vendor_digests: HashMap<String, String> = vendor_ids
                .iter()
                .map(|v| {
                    let digest = vendor_id_digest(&key, &v.product_id, &v.vendor_customer_id);
                    (v.product_id.clone(), digest)
                })
                .collect();
            let suppress: Option<Vec<(&'static str, String)>> = input.suppress.then(|| {
                current
                    .fields
                    .contact_identifiers()
                    .iter()
                    .map(|i| (i.kind, identifier_digest(&key, i)))
                    .collect()
            });
            let event = (!is_conflict).then(|| NewEvent {
                event_id: EventId::generate(),
                account_id: account.clone(),
                customer_id: current.customer_id.clone(),
                kind: CUSTOMER_ERASED,
                version: scrubbed.version,
                origin: requester.clone(),
                data: wire::erased_event_data(&scrubbed, erasure_id.as_str()),
                created: now,
            });
            let written = self
                .store
                .erase_customer(&ErasureWrite {
                    erasure_id: erasure_id.as_str(),
                    account: &account,
                    customer: &scrubbed,
                    expected_version: current.version,
                    event: event.as_ref(),
                    requested: now,
                    requested_by_key: &origin.key_id,
                    requested_by_product: requester.as_ref(),
                    reason: input.reason.as_deref(),
                    suppress: suppress.as_deref(),
                    products: &products,
                    vendor_digests: &vendor_digests,
                })
                .await?;
            if written != WriteOutcome::Done {
                return Ok(None);
            }
            let view = self.store.get_erasure(erasure_id.as_str()).await?;
            view.map(Some).ok_or_else(|| ApiError::not_found("erasure"))
        })
        .await
    }

    /// Erases again, after a restore from a backup, a customer a receipt says was erased:
    /// the same erase path, recorded under the receipt's own id, time and requester, so
    /// products are told `customer.erased` again with the `erasure_id` they already know.
    pub async fn reapply_erasure(&self, receipt: &ErasureView) -> ApiResult<Reapplied> {
        let Some(customer) = CustomerId::parse(&receipt.customer_id) else {
            return Ok(Reapplied::NotHere);
        };
        if self.store.get_erasure(&receipt.erasure_id).await?.is_some()
            || self.store.erasure_of_customer(&customer).await?.is_some()
        {
            return Ok(Reapplied::AlreadyErased);
        }
        let Some(erasure_id) = ErasureId::parse(&receipt.erasure_id) else {
            return Ok(Reapplied::NotHere);
        };
        let origin = ErasureOrigin {
            erasure_id,
            requested: receipt.requested,
            key_id: receipt.requested_by_key.clone(),
            product: receipt
                .requested_by_product
                .as_deref()
                .and_then(ProductId::parse),
        };
        let input = ErasureInput {
            reason: receipt.reason.clone(),
            suppress: receipt.suppressed,
        };
        let target = CustomerRef::Id(customer);
        match self.erase(&Principal::Admin, &target, input, &origin).await {
            Ok(_) => Ok(Reapplied::Erased),
            Err(err) if err.status == axum::http::StatusCode::NOT_FOUND => Ok(Reapplied::NotHere),
            Err(err) => Err(err),
        }
    }

    /// A receipt `who` may read (whoever reaches its account), settled first.
    pub async fn get_erasure(&self, who: &Principal, id: &ErasureId) -> ApiResult<ErasureView> {
        who.require(ANY_KEY)?;
        self.store
            .settle_erasures(Some(id.as_str()), time::now())
            .await?;
        let view = self.store.get_erasure(id.as_str()).await?;
        let Some(view) = view else {
            return Err(ApiError::not_found("erasure"));
        };
        let scope = CustomerScope::Account(AccountId::from_string(view.account_id.clone()));
        if !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("erasure"));
        }
        Ok(view)
    }

    /// `GET /v1/erasures?account_id=` (oldest first; the console's newest first), paged.
    pub async fn list_erasures(
        &self,
        who: &Principal,
        account: &AccountId,
        cursor: Option<&str>,
        newest_first: bool,
        limit: i64,
    ) -> ApiResult<(Vec<ErasureView>, Option<String>)> {
        who.require(ANY_KEY)?;
        let scope = CustomerScope::Account(account.clone());
        if !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("account"));
        }
        let after = match cursor {
            Some(raw) => Some(
                TimeCursor::decode::<ErasureId>(raw)
                    .map(|c| (c.at, c.id))
                    .map_err(|message| ApiError::invalid_field("cursor", message))?,
            ),
            None => None,
        };
        self.store.settle_erasures(None, time::now()).await?;
        let mut views = self
            .store
            .list_erasures(account, after, newest_first, limit + 1)
            .await?;
        let more = views.len() as i64 > limit;
        views.truncate(limit as usize);
        let next = match views.last() {
            Some(last) if more => Some(
                TimeCursor {
                    at: last.requested,
                    id: last.erasure_id.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok((views, next))
    }

    /// `DELETE /v1/suppressions`: lets an erased email or phone be added again.
    pub async fn lift_suppression(
        &self,
        who: &Principal,
        account: &AccountId,
        values: Vec<SuppressedValue>,
    ) -> ApiResult<bool> {
        who.require(ADMIN_PARTNER_OR_ACCOUNT)?;
        let scope = CustomerScope::Account(account.clone());
        if !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("account"));
        }
        let mut identifiers = Vec::new();
        for value in values {
            identifiers.push(match value {
                SuppressedValue::Email(email) => Identifier::email(email.as_str()),
                SuppressedValue::Phone(raw) => {
                    let settings = self.scope_settings(&scope).await?;
                    let phone = Phone::parse(&raw, settings.region)
                        .map_err(|message| ApiError::invalid_field("phone", message))?;
                    Identifier::phone(phone.as_str())
                }
            });
        }
        // Idempotent, as a DELETE: afterwards the value is not suppressed, whether it was
        // (the answer says which, for the console).
        let key = self.erasure_hash_key().await?;
        let mut lifted = false;
        for identifier in &identifiers {
            let digest = identifier_digest(&key, identifier);
            lifted |= self
                .store
                .lift_suppression(account, identifier.kind, &digest)
                .await?;
        }
        Ok(lifted)
    }

    /// An account's newest `limit` suppressions (kinds and hashes only), and how many it has.
    pub async fn list_suppressions(
        &self,
        who: &Principal,
        account: &AccountId,
        limit: i64,
    ) -> ApiResult<(Vec<SuppressionView>, i64)> {
        who.require(ADMIN_PARTNER_OR_ACCOUNT)?;
        let scope = CustomerScope::Account(account.clone());
        if !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("account"));
        }
        Ok(self.store.list_suppressions(account, limit).await?)
    }

    /// The erasure that released a product's id for a customer, if one did.
    pub(crate) async fn erasure_of_vendor_id(
        &self,
        product: &ProductId,
        vendor_customer_id: &str,
    ) -> ApiResult<Option<String>> {
        let key = self.erasure_hash_key().await?;
        let digest = vendor_id_digest(&key, product.as_str(), vendor_customer_id);
        Ok(self.store.erasure_of_vendor_id(product, &digest).await?)
    }

    /// Settles every receipt still in progress (the maintenance loop), and counts those
    /// that stay so.
    pub async fn settle_erasures(&self, now: Timestamp) -> ApiResult<i64> {
        self.store.settle_erasures(None, now).await?;
        Ok(self.store.open_erasures().await?)
    }
}

/// The refusal of a create or change that would bring back a suppressed email or phone.
fn suppressed_error(kind: &str) -> ApiError {
    ApiError::conflict(
        "suppressed",
        format!("this {kind} belongs to a person erased from this account who asked not to be added again"),
    )
    .with("field", kind)
}
