//! The closed sets of the wire, as enums.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

#[derive(ToSchema, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupePolicy {
    EmailOrPhone,
    Email,
    None,
}

#[derive(ToSchema, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    TwoWay,
    OneWay,
}

/// The lawful basis of a consent change (GDPR Art. 6(1)).
#[derive(ToSchema, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
}

/// How a consent change came about.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentVia {
    Create,
    Update,
    Merge,
    Import,
}

#[derive(ToSchema, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    Existing,
    Incoming,
}

/// What a duplicate create does (SPEC section 5).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    Conflict,
    Reject,
    Merge,
}

/// A list's order; `-` for descending.
#[derive(ToSchema, serde::Serialize)]
pub enum Sort {
    #[serde(rename = "created")]
    Created,
    #[serde(rename = "-created")]
    CreatedDescending,
    #[serde(rename = "last_name")]
    LastName,
    #[serde(rename = "-last_name")]
    LastNameDescending,
    #[serde(rename = "first_name")]
    FirstName,
    #[serde(rename = "-first_name")]
    FirstNameDescending,
}

/// How `{customer_id}` is read: a hub id, or the calling product's own id.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    Customer,
    Vendor,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    Superseded,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Enabled,
    Disabled,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookHealth {
    Healthy,
    Failing,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Admin,
    Partner,
    Account,
    Product,
}

#[derive(ToSchema, serde::Serialize)]
pub enum EventType {
    #[serde(rename = "customer.created")]
    Created,
    #[serde(rename = "customer.updated")]
    Updated,
    #[serde(rename = "customer.deleted")]
    Deleted,
    #[serde(rename = "customer.erased")]
    Erased,
    #[serde(rename = "customer.merged")]
    Merged,
    #[serde(rename = "customer.snapshot")]
    Snapshot,
}

#[derive(ToSchema, serde::Serialize)]
pub enum ChangeType {
    #[serde(rename = "customer.created")]
    Created,
    #[serde(rename = "customer.updated")]
    Updated,
}

#[derive(ToSchema, serde::Serialize)]
pub enum SnapshotType {
    #[serde(rename = "customer.snapshot")]
    Snapshot,
}

#[derive(ToSchema, serde::Serialize)]
pub enum DeletedType {
    #[serde(rename = "customer.deleted")]
    Deleted,
}

#[derive(ToSchema, serde::Serialize)]
pub enum MergedType {
    #[serde(rename = "customer.merged")]
    Merged,
}
