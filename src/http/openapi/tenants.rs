//! Partners, accounts, products, activations and keys.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Northern Resellers"}))]
pub struct PartnerInput {
    #[schema(value_type = DisplayName)]
    name: String,
}

#[derive(ToSchema)]
pub struct Partner {
    partner_id: String,
    name: String,
    created: DateTime<Utc>,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    #[schema(value_type = PartnerId)]
    partner_id: String,
    #[schema(value_type = DisplayName)]
    name: String,
    /// ISO 3166 alpha-2; reads national phone numbers. Default `US`.
    #[schema(value_type = Option<RegionCode>)]
    default_region: Option<String>,
    /// Default `email_or_phone`.
    dedupe_policy: Option<DedupePolicy>,
}

#[derive(ToSchema)]
pub struct Account {
    account_id: String,
    partner_id: String,
    name: String,
    default_region: String,
    dedupe_policy: DedupePolicy,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct AccountPage {
    accounts: Vec<Account>,
    next_cursor: Option<String>,
    has_more: bool,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Booking app", "webhook_url": "https://booking.example.com/hooks/customers"}))]
pub struct ProductInput {
    #[schema(value_type = DisplayName)]
    name: String,
    #[schema(value_type = Option<PartnerId>)]
    partner_id: Option<String>,
    #[schema(format = "uri")]
    webhook_url: Option<String>,
}

/// A merge patch: an absent field is kept; `null` clears `webhook_url` (a name cannot
/// be cleared).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[schema(value_type = DisplayName, required = false)]
    name: Option<String>,
    #[schema(format = "uri")]
    webhook_url: Option<String>,
}

#[derive(ToSchema)]
pub struct Product {
    product_id: String,
    partner_id: Option<String>,
    name: String,
    webhook_url: Option<String>,
    webhook_status: WebhookStatus,
    webhook_disabled_reason: Option<String>,
    /// `failing` while its deliveries are paused after 5 consecutive failures (one probe
    /// per interval, 5 s growing to 50 s); the first 2xx resumes them all.
    webhook_health: WebhookHealth,
    /// Since when its attempts fail without a success in between.
    failing_since: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

/// A new product, with its API key and signing secret (shown only here).
#[derive(ToSchema)]
pub struct CreatedProduct {
    product_id: String,
    partner_id: Option<String>,
    name: String,
    webhook_url: Option<String>,
    webhook_status: WebhookStatus,
    webhook_disabled_reason: Option<String>,
    /// `failing` while its deliveries are paused after 5 consecutive failures (one probe
    /// per interval, 5 s growing to 50 s); the first 2xx resumes them all.
    webhook_health: WebhookHealth,
    /// Since when its attempts fail without a success in between.
    failing_since: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    key_id: String,
    api_key: String,
    webhook_secret: String,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sync": "two_way"}))]
pub struct ActivationInput {
    sync: Sync,
    /// Send the account's existing customers (`customer.snapshot`) when a product with a
    /// webhook becomes two-way. Default true.
    backfill: Option<bool>,
}

#[derive(ToSchema)]
pub struct Activation {
    account_id: String,
    product_id: String,
    sync: Sync,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    backfill: Backfill,
}

/// The newest backfill of the activation (SPEC section 11).
#[derive(ToSchema)]
pub struct Backfill {
    status: BackfillStatus,
    /// Live customers of the account when it started (when all are queued: how many were).
    total: i64,
    /// Snapshots delivered (a 2xx).
    sent: i64,
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackfillStatus {
    None,
    Running,
    Completed,
    Cancelled,
}

#[derive(ToSchema)]
pub struct ActivationList {
    activations: Vec<Activation>,
}

/// A new API key (its secret is shown only here).
#[derive(ToSchema)]
pub struct IssuedKey {
    key_id: String,
    api_key: String,
    kind: KeyKind,
    partner_id: Option<String>,
    account_id: Option<String>,
    product_id: Option<String>,
    created: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct PartnerPage {
    partners: Vec<Partner>,
    next_cursor: Option<String>,
    has_more: bool,
}

#[derive(ToSchema)]
pub struct ProductPage {
    products: Vec<Product>,
    next_cursor: Option<String>,
    has_more: bool,
}

/// A key as listed: never its secret.
#[derive(ToSchema)]
pub struct KeyView {
    key_id: String,
    kind: KeyKind,
    created: DateTime<Utc>,
    revoked: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
}

/// The calling key: its kind and id, and whom it acts for (an account's or product's
/// partner too, when it has one).
#[derive(ToSchema)]
pub struct Me {
    kind: KeyKind,
    key_id: String,
    partner_id: Option<String>,
    account_id: Option<String>,
    product_id: Option<String>,
}
