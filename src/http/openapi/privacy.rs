//! SPEC section 10: erasure receipts, suppressions, a person's export.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

/// `POST /v1/customers/{customer_id}/erase`: `{}` (or no body at all) for the defaults.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "The customer asked to be forgotten", "suppress": true}))]
pub struct ErasureRequest {
    /// At most 200 characters.
    #[schema(value_type = Option<ConsentMethod>)]
    reason: Option<String>,
    /// Keep keyed hashes of its emails and phones so they cannot be added again.
    suppress: Option<bool>,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureStatus {
    InProgress,
    Completed,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureProductStatus {
    Pending,
    Acknowledged,
    Failed,
    Unreachable,
    Requester,
}

#[derive(ToSchema)]
pub struct ErasureRequester {
    key_id: String,
    product_id: Option<String>,
}

/// Each product's part in an erasure.
#[derive(ToSchema)]
pub struct ErasureProduct {
    product_id: String,
    status: ErasureProductStatus,
    acknowledged: Option<DateTime<Utc>>,
    error: Option<String>,
}

/// An erasure receipt: ids only, kept when events are purged.
#[derive(ToSchema)]
pub struct ErasureReceipt {
    erasure_id: String,
    customer_id: String,
    account_id: String,
    requested: DateTime<Utc>,
    requested_by: ErasureRequester,
    reason: Option<String>,
    suppressed: bool,
    status: ErasureStatus,
    completed: Option<DateTime<Utc>>,
    products: Vec<ErasureProduct>,
}

#[derive(ToSchema)]
pub struct ErasurePage {
    erasures: Vec<ErasureReceipt>,
    next_cursor: Option<String>,
    has_more: bool,
}

/// `DELETE /v1/suppressions`: the account and one of `email` or `phone`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"account_id": "AG-01936f0e-5b2a-7cc4-9a3e-2f6d8c1b4a90", "email": "ada@example.com"}))]
pub struct SuppressionLift {
    #[schema(value_type = AccountId)]
    account_id: String,
    #[schema(value_type = String, format = "email-address", required = false)]
    email: Option<String>,
    #[schema(value_type = String, format = "phone", required = false)]
    phone: Option<String>,
}

#[derive(ToSchema)]
pub struct ExportAssociation {
    product_id: String,
    product_name: String,
    vendor_customer_id: String,
    created: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct ExportEvent {
    event_id: String,
    #[schema(rename = "type")]
    kind: String,
    version: i64,
    created: DateTime<Utc>,
    origin: Option<String>,
    #[schema(value_type = Object)]
    data: Value,
}

#[derive(ToSchema)]
pub struct ExportDelivery {
    product_id: String,
    event_id: String,
    version: i64,
    status: DeliveryStatus,
    delivered: Option<DateTime<Utc>>,
}

/// `GET /v1/customers/{customer_id}/export`: everything the hub holds about the person.
#[derive(ToSchema)]
pub struct PersonExport {
    exported: DateTime<Utc>,
    customer: Customer,
    consent_history: Vec<ConsentChange>,
    associations: Vec<ExportAssociation>,
    /// The 30 days of events the hub keeps, oldest first.
    events: Vec<ExportEvent>,
    deliveries: Vec<ExportDelivery>,
    merged_ids: Vec<String>,
    conflicts: Vec<Customer>,
}

/// `customer.erased`: ids and the version, nothing personal.
#[derive(ToSchema, serde::Serialize)]
pub struct ErasedEventData {
    contact_id: String,
    vendor_customer_id: Option<String>,
    account_id: String,
    erasure_id: String,
    version: i64,
}

/// `customer.erased`.
#[derive(ToSchema, serde::Serialize)]
pub struct CustomerErased {
    #[serde(rename = "type")]
    kind: ErasedType,
    timestamp: DateTime<Utc>,
    data: ErasedEventData,
}

#[derive(ToSchema, serde::Serialize)]
pub enum ErasedType {
    #[serde(rename = "customer.erased")]
    CustomerErased,
}
