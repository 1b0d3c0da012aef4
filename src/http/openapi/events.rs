//! Events and deliveries: the webhook bodies, the feed, the delivery log; health.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

/// A customer's fields as events carry them (`permission_to_contact` a boolean).
#[derive(ToSchema, serde::Serialize)]
pub struct CustomerEventData {
    /// The customer id.
    contact_id: String,
    /// The receiving product's own id for the customer.
    vendor_customer_id: Option<String>,
    account_id: Option<String>,
    version: i64,
    /// The product that caused the change.
    origin: Option<String>,
    permission_to_contact: bool,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Vec<String>,
    phone: Vec<String>,
    address: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    tags: Vec<String>,
    origins: Vec<String>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct DeletedEventData {
    contact_id: String,
    vendor_customer_id: Option<String>,
    account_id: Option<String>,
    version: i64,
    deleted: DateTime<Utc>,
}

/// The survivor's fields, and the ids it absorbed.
#[derive(ToSchema, serde::Serialize)]
pub struct MergedEventData {
    #[schema(inline)]
    #[serde(flatten)]
    survivor: CustomerEventData,
    merged_ids: Vec<String>,
}

/// `customer.created` / `customer.updated`: the customer's newest state.
#[derive(ToSchema, serde::Serialize)]
pub struct CustomerChanged {
    #[serde(rename = "type")]
    kind: ChangeType,
    timestamp: DateTime<Utc>,
    data: CustomerEventData,
}

/// `customer.deleted`.
#[derive(ToSchema, serde::Serialize)]
pub struct CustomerDeleted {
    #[serde(rename = "type")]
    kind: DeletedType,
    timestamp: DateTime<Utc>,
    data: DeletedEventData,
}

/// `customer.merged`.
#[derive(ToSchema, serde::Serialize)]
pub struct CustomerMerged {
    #[serde(rename = "type")]
    kind: MergedType,
    timestamp: DateTime<Utc>,
    data: MergedEventData,
}

/// A feed item: a webhook body with its event id (the `webhook-id` of its deliveries).
#[derive(ToSchema)]
pub struct Event {
    id: String,
    #[schema(rename = "type")]
    kind: EventType,
    timestamp: DateTime<Utc>,
    /// As in the webhook of that type.
    #[schema(value_type = Object)]
    data: Value,
}

/// `GET /v1/events/head`.
#[derive(ToSchema)]
pub struct FeedHead {
    /// A feed position: pass it as `after`.
    cursor: String,
}

/// `customer.snapshot`: a customer's current state, sent to a product catching up
/// (SPEC section 11). Not a new customer: the same data as `customer.updated`.
#[derive(ToSchema, serde::Serialize)]
pub struct CustomerSnapshot {
    #[serde(rename = "type")]
    kind: SnapshotType,
    timestamp: DateTime<Utc>,
    data: CustomerEventData,
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
    attempted_at: DateTime<Utc>,
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
    event_type: EventType,
    version: i64,
    status: DeliveryStatus,
    attempts: i32,
    next_attempt: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
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
    previous_secret_expires: DateTime<Utc>,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Ready,
    NotReady,
}

#[derive(ToSchema)]
pub struct Status {
    status: Health,
    reason: Option<String>,
}
