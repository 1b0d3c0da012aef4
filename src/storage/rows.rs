//! Rows as both backends return them, and their conversion into domain types. The
//! column types are the same on both (text and timestamps), so one mapping serves both.

use super::StoredCustomer;
use super::{StoreError, StoreResult};
use crate::domain::customer::{
    ConflictInfo, Customer, CustomerFields, CustomerScope, CustomerStatus, Email, Phone, Tag,
};
use crate::domain::tenancy::{ApiKey, KeyKind, Principal};
use crate::domain::tenants::{
    Account, Activation, DedupePolicy, DisplayName, Partner, Product, Region, SyncMode,
    WebhookHealth, WebhookStatus, WebhookUrl, BREAKER_FAILURES,
};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, CustomerId, KeyId, PartnerId, ProductId};
use sqlx::types::Json;

fn corrupt(what: &'static str, value: &str) -> StoreError {
    StoreError::corrupt(what, value)
}

#[derive(sqlx::FromRow)]
pub struct PartnerRow {
    partner_id: String,
    name: String,
    created: Timestamp,
}

impl From<PartnerRow> for Partner {
    fn from(row: PartnerRow) -> Self {
        Self {
            partner_id: PartnerId::from_string(row.partner_id),
            name: DisplayName::from_trusted(row.name),
            created: row.created,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct AccountRow {
    account_id: String,
    partner_id: String,
    name: String,
    default_region: String,
    dedupe_policy: String,
    created: Timestamp,
    updated: Timestamp,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> StoreResult<Self> {
        Ok(Self {
            default_region: Region::parse(&row.default_region)
                .map_err(|_| corrupt("region", &row.default_region))?,
            dedupe_policy: DedupePolicy::parse(&row.dedupe_policy)
                .map_err(|_| corrupt("dedupe policy", &row.dedupe_policy))?,
            account_id: AccountId::from_string(row.account_id),
            partner_id: PartnerId::from_string(row.partner_id),
            name: DisplayName::from_trusted(row.name),
            created: row.created,
            updated: row.updated,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ProductRow {
    product_id: String,
    partner_id: Option<String>,
    name: String,
    webhook_url: Option<String>,
    webhook_secret: String,
    webhook_status: String,
    webhook_disabled_reason: Option<String>,
    webhook_failing_since: Option<Timestamp>,
    breaker_failures: i32,
    created: Timestamp,
    updated: Timestamp,
}

impl TryFrom<ProductRow> for Product {
    type Error = StoreError;

    fn try_from(row: ProductRow) -> StoreResult<Self> {
        Ok(Self {
            webhook_status: WebhookStatus::parse(&row.webhook_status)
                .map_err(|_| corrupt("webhook status", &row.webhook_status))?,
            product_id: ProductId::from_string(row.product_id),
            partner_id: row.partner_id.map(PartnerId::from_string),
            name: DisplayName::from_trusted(row.name),
            webhook_url: row.webhook_url.map(WebhookUrl::from_trusted),
            webhook_secret: row.webhook_secret,
            webhook_disabled_reason: row.webhook_disabled_reason,
            webhook_health: if row.breaker_failures >= BREAKER_FAILURES {
                WebhookHealth::Failing
            } else {
                WebhookHealth::Healthy
            },
            failing_since: row.webhook_failing_since,
            created: row.created,
            updated: row.updated,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ActivationRow {
    account_id: String,
    product_id: String,
    sync: String,
    created: Timestamp,
    updated: Timestamp,
}

impl TryFrom<ActivationRow> for Activation {
    type Error = StoreError;

    fn try_from(row: ActivationRow) -> StoreResult<Self> {
        Ok(Self {
            sync: SyncMode::parse(&row.sync).map_err(|_| corrupt("sync mode", &row.sync))?,
            account_id: AccountId::from_string(row.account_id),
            product_id: ProductId::from_string(row.product_id),
            created: row.created,
            updated: row.updated,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct KeyRow {
    key_id: String,
    kind: String,
    partner_id: Option<String>,
    account_id: Option<String>,
    product_id: Option<String>,
    created: Timestamp,
    revoked: Option<Timestamp>,
}

/// The columns a key's principal is stored in: (kind, partner_id, account_id, product_id).
pub type PrincipalColumns<'a> = (
    &'static str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

pub fn principal_columns(principal: &Principal) -> PrincipalColumns<'_> {
    let kind = principal.kind().as_str();
    match principal {
        Principal::Admin => (kind, None, None, None),
        Principal::Partner(id) => (kind, Some(id.as_str()), None, None),
        Principal::Account(id) => (kind, None, Some(id.as_str()), None),
        Principal::Product(id) => (kind, None, None, Some(id.as_str())),
    }
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> StoreResult<Self> {
        let principal = match (
            row.kind.as_str(),
            row.partner_id,
            row.account_id,
            row.product_id,
        ) {
            (k, None, None, None) if k == KeyKind::Admin.as_str() => Principal::Admin,
            (k, Some(id), None, None) if k == KeyKind::Partner.as_str() => {
                Principal::Partner(PartnerId::from_string(id))
            }
            (k, None, Some(id), None) if k == KeyKind::Account.as_str() => {
                Principal::Account(AccountId::from_string(id))
            }
            (k, None, None, Some(id)) if k == KeyKind::Product.as_str() => {
                Principal::Product(ProductId::from_string(id))
            }
            _ => return Err(corrupt("key kind", &row.kind)),
        };
        Ok(Self {
            key_id: KeyId::from_string(row.key_id),
            principal,
            created: row.created,
            revoked: row.revoked,
        })
    }
}

pub const PARTNER_COLUMNS: &str = "partner_id, name, created";
pub const ACCOUNT_COLUMNS: &str =
    "account_id, partner_id, name, default_region, dedupe_policy, created, updated";
pub const PRODUCT_COLUMNS: &str = "product_id, partner_id, name, webhook_url, webhook_secret, \
     webhook_status, webhook_disabled_reason, webhook_failing_since, breaker_failures, created, \
     updated";
pub const ACTIVATION_COLUMNS: &str = "account_id, product_id, sync, created, updated";
pub const KEY_COLUMNS: &str = "key_id, kind, partner_id, account_id, product_id, created, revoked";

#[derive(sqlx::FromRow)]
pub struct CustomerRow {
    customer_id: String,
    scope: String,
    account_id: Option<String>,
    owner_product_id: Option<String>,
    status: String,
    first_name: Option<String>,
    last_name: Option<String>,
    emails: Json<Vec<Email>>,
    phones: Json<Vec<Phone>>,
    address: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    tags: Json<Vec<Tag>>,
    permission_to_contact: Option<Timestamp>,
    origins: Json<Vec<String>>,
    version: i64,
    created: Timestamp,
    updated: Timestamp,
    deleted: Option<Timestamp>,
    merged_into: Option<String>,
    conflict: Option<Json<ConflictInfo>>,
    /// The viewing product's own id for the customer (from the association join).
    vendor_customer_id: Option<String>,
}

/// Columns of `customers c` plus the viewer's association `a`.
pub const CUSTOMER_COLUMNS: &str = "c.customer_id, c.scope, c.account_id, c.owner_product_id, \
     c.status, c.first_name, c.last_name, c.emails, c.phones, c.address, c.city, c.state, \
     c.country, c.tags, c.permission_to_contact, c.origins, c.version, c.created, c.updated, \
     c.deleted, c.merged_into, c.conflict, a.vendor_customer_id";

/// Joins the association of the product bound at `$1` (NULL for non-product viewers).
pub const VIEWER_JOIN: &str =
    "LEFT JOIN associations a ON a.customer_id = c.customer_id AND a.product_id = $1";

/// A stored text column read back into its (transparent) domain newtype.
fn text<T: serde::de::DeserializeOwned>(value: Option<String>) -> Option<T> {
    value.and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok())
}

impl TryFrom<CustomerRow> for StoredCustomer {
    type Error = StoreError;

    fn try_from(row: CustomerRow) -> StoreResult<Self> {
        let scope = match (row.account_id, row.owner_product_id) {
            (Some(account), _) => CustomerScope::Account(AccountId::from_string(account)),
            (None, Some(product)) => CustomerScope::Product(ProductId::from_string(product)),
            (None, None) => return Err(corrupt("customer scope", &row.scope)),
        };
        let customer = Customer {
            customer_id: CustomerId::from_string(row.customer_id),
            scope,
            status: CustomerStatus::parse(&row.status)
                .ok_or_else(|| corrupt("customer status", &row.status))?,
            fields: CustomerFields {
                first_name: text(row.first_name),
                last_name: text(row.last_name),
                email: row.emails.0,
                phone: row.phones.0,
                address: text(row.address),
                city: text(row.city),
                state: text(row.state),
                country: text(row.country),
                tags: row.tags.0,
            },
            permission_to_contact: row.permission_to_contact,
            origins: row
                .origins
                .0
                .into_iter()
                .map(ProductId::from_string)
                .collect(),
            version: row.version,
            created: row.created,
            updated: row.updated,
            deleted: row.deleted,
            merged_into: row.merged_into.map(CustomerId::from_string),
            conflict: row.conflict.map(|c| c.0),
        };
        Ok(StoredCustomer {
            customer,
            vendor_customer_id: row.vendor_customer_id,
        })
    }
}
