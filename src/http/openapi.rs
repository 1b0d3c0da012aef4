//! The OpenAPI 3.1 document, generated from the code: every route is registered with
//! its `#[utoipa::path]` through `utoipa_axum`'s router, so the router and the document
//! cannot drift apart. The shapes below document the wire formats of `domain::wire` and
//! the input parsers (which read JSON field by field rather than through serde).

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Customer List",
        description = "One customer list per business, kept in sync across every product it uses. \
            Errors are application/problem+json (RFC 9457) with a stable `code`.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "partners"), (name = "accounts"), (name = "products"), (name = "keys"),
        (name = "customers"), (name = "conflicts"), (name = "webhooks"), (name = "operations"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: admin, partner, account or product."))
                    .build(),
            ),
        );
    }
}

/// An error (RFC 9457).
#[derive(ToSchema)]
pub struct Problem {
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// Stable and machine-readable: `validation_failed`, `duplicate`, `not_found`, …
    code: String,
    /// Every bad field, for `validation_failed`.
    errors: Option<Vec<FieldProblem>>,
    conflict_id: Option<String>,
    conflicting_customer_id: Option<String>,
    matched_on: Option<Vec<Matched>>,
    merged_into: Option<String>,
}

#[derive(ToSchema)]
pub struct FieldProblem {
    field: String,
    message: String,
}

#[derive(ToSchema)]
pub struct Matched {
    field: String,
    value: String,
}

#[derive(ToSchema)]
pub struct PartnerInput {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupePolicy {
    EmailOrPhone,
    Email,
    None,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    TwoWay,
    OneWay,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    Existing,
    Incoming,
}

#[derive(ToSchema)]
pub struct Partner {
    partner_id: String,
    name: String,
    created: String,
}

#[derive(ToSchema)]
pub struct AccountInput {
    partner_id: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// ISO 3166 alpha-2; reads national phone numbers. Default `US`.
    #[schema(pattern = "^[A-Za-z]{2}$")]
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
    dedupe_policy: String,
    created: String,
    updated: String,
}

#[derive(ToSchema)]
pub struct AccountPage {
    accounts: Vec<Account>,
    next_cursor: Option<String>,
    has_more: bool,
}

#[derive(ToSchema)]
pub struct ProductInput {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    partner_id: Option<String>,
    webhook_url: Option<String>,
}

/// A merge patch: `null` clears `webhook_url`.
#[derive(ToSchema)]
pub struct ProductPatch {
    name: Option<String>,
    webhook_url: Option<String>,
}

#[derive(ToSchema)]
pub struct Product {
    product_id: String,
    partner_id: Option<String>,
    name: String,
    webhook_url: Option<String>,
    /// `enabled` or `disabled`.
    webhook_status: String,
    webhook_disabled_reason: Option<String>,
    created: String,
    updated: String,
}

/// A new product, with its API key and signing secret (shown only here).
#[derive(ToSchema)]
pub struct CreatedProduct {
    product_id: String,
    partner_id: Option<String>,
    name: String,
    webhook_url: Option<String>,
    webhook_status: String,
    webhook_disabled_reason: Option<String>,
    created: String,
    updated: String,
    key_id: String,
    api_key: String,
    webhook_secret: String,
}

#[derive(ToSchema)]
pub struct ActivationInput {
    sync: Sync,
}

#[derive(ToSchema)]
pub struct Activation {
    account_id: String,
    product_id: String,
    sync: String,
    created: String,
    updated: String,
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
    kind: String,
    partner_id: Option<String>,
    account_id: Option<String>,
    product_id: Option<String>,
    created: String,
}

/// One value or several.
#[derive(ToSchema)]
#[allow(clippy::large_enum_variant)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(ToSchema)]
pub struct CustomerInput {
    /// The caller's own id (its `vendor_customer_id`); product keys only.
    id: Option<String>,
    account_id: Option<String>,
    #[schema(max_length = 100, pattern = "^[^,;]*$")]
    first_name: Option<String>,
    #[schema(max_length = 100, pattern = "^[^,;]*$")]
    last_name: Option<String>,
    email: Option<OneOrMany>,
    phone: Option<OneOrMany>,
    #[schema(max_length = 200)]
    address: Option<String>,
    #[schema(max_length = 200)]
    city: Option<String>,
    #[schema(max_length = 200)]
    state: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
    #[schema(max_items = 50)]
    tags: Option<Vec<String>>,
    permission_to_contact: Option<bool>,
}

/// A JSON merge patch: absent keeps, `null` clears.
#[derive(ToSchema)]
pub struct CustomerPatch {
    #[schema(max_length = 100, pattern = "^[^,;]*$")]
    first_name: Option<String>,
    #[schema(max_length = 100, pattern = "^[^,;]*$")]
    last_name: Option<String>,
    email: Option<OneOrMany>,
    phone: Option<OneOrMany>,
    #[schema(max_length = 200)]
    address: Option<String>,
    #[schema(max_length = 200)]
    city: Option<String>,
    #[schema(max_length = 200)]
    state: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
    #[schema(max_items = 50)]
    tags: Option<Vec<String>>,
    permission_to_contact: Option<bool>,
}

#[derive(ToSchema)]
pub struct ConflictInfo {
    conflicting_customer_id: String,
    matched_on: Vec<Matched>,
}

#[derive(ToSchema)]
pub struct Customer {
    customer_id: String,
    vendor_customer_id: Option<String>,
    account_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Vec<String>,
    phone: Vec<String>,
    address: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    tags: Vec<String>,
    /// When consent was granted, or `0001-01-01T00:00:00Z`.
    permission_to_contact: String,
    origins: Vec<String>,
    version: i64,
    created: String,
    updated: String,
    /// Conflict records only.
    conflict: Option<ConflictInfo>,
}

#[derive(ToSchema)]
pub struct CustomerPage {
    customers: Vec<Customer>,
    next_cursor: Option<String>,
    has_more: bool,
    total_results: i64,
}

#[derive(ToSchema)]
pub struct ConflictPage {
    conflicts: Vec<Customer>,
    next_cursor: Option<String>,
    has_more: bool,
    total_results: i64,
}

#[derive(ToSchema)]
pub struct BatchInput {
    #[schema(min_items = 1, max_items = 500)]
    customers: Vec<CustomerInput>,
}

/// `{"status": 201, "customer": …}` or `{"status": 4xx, "problem": …}`.
#[derive(ToSchema)]
pub struct ItemResult {
    status: u16,
    customer: Option<Customer>,
    problem: Option<Problem>,
}

#[derive(ToSchema)]
pub struct ItemResults {
    results: Vec<ItemResult>,
}

#[derive(ToSchema)]
pub struct VendorIdInput {
    vendor_customer_id: String,
}

#[derive(ToSchema)]
pub struct AssociationInput {
    customer_id: String,
    vendor_customer_id: String,
}

#[derive(ToSchema)]
pub struct AssociationsInput {
    #[schema(min_items = 1, max_items = 500)]
    associations: Vec<AssociationInput>,
}

#[derive(ToSchema)]
pub struct CustomerMergeInput {
    from: String,
}

#[derive(ToSchema)]
pub struct ConflictMergeInput {
    /// Default `existing`.
    prefer: Option<Prefer>,
    dry_run: Option<bool>,
}

/// A webhook body, with the event id.
#[derive(ToSchema)]
pub struct Event {
    id: String,
    #[schema(rename = "type")]
    kind: String,
    timestamp: String,
    #[schema(value_type = Object)]
    data: Value,
}

#[derive(ToSchema)]
pub struct FeedPage {
    events: Vec<Event>,
    next_cursor: String,
    has_more: bool,
}

#[derive(ToSchema)]
pub struct Attempt {
    attempt: i32,
    attempted_at: String,
    response_code: Option<i32>,
    latency_ms: i64,
    /// The first 4 KB.
    response_body: Option<String>,
    error: Option<String>,
}

#[derive(ToSchema)]
pub struct Delivery {
    delivery_id: String,
    product_id: String,
    customer_id: String,
    event_id: String,
    event_type: String,
    version: i64,
    /// `pending`, `delivered`, `failed` or `superseded`.
    status: String,
    attempts: i32,
    next_attempt: Option<String>,
    created: String,
    updated: String,
    attempt_log: Vec<Attempt>,
}

#[derive(ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<Delivery>,
    next_cursor: Option<String>,
    has_more: bool,
}

#[derive(ToSchema)]
pub struct RotatedSecret {
    product_id: String,
    webhook_secret: String,
    previous_secret_expires: String,
}

#[derive(ToSchema)]
pub struct Status {
    status: String,
    reason: Option<String>,
}
