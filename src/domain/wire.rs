//! The customer's shapes on the wire: the REST record (SPEC section 4) and the event /
//! webhook data (section 6). `permission_to_contact` is a date-time in the first and a
//! boolean in the second.

use super::customer::{Customer, CustomerStatus};
use super::ids::ProductId;
use super::time::Timestamp;
use serde_json::{json, Map, Value};

/// `permission_to_contact` on output when consent is not granted.
pub const NOT_GRANTED: &str = "0001-01-01T00:00:00Z";

pub const CUSTOMER_CREATED: &str = "customer.created";
pub const CUSTOMER_UPDATED: &str = "customer.updated";
pub const CUSTOMER_DELETED: &str = "customer.deleted";
pub const CUSTOMER_MERGED: &str = "customer.merged";
pub const CUSTOMER_ERASED: &str = "customer.erased";
/// A customer's current state sent to a product catching up (SPEC section 11): the data
/// of `customer.updated`, a type of its own so that receivers do not greet it as new.
pub const CUSTOMER_SNAPSHOT: &str = "customer.snapshot";

fn rfc3339(ts: &Timestamp) -> Value {
    serde_json::to_value(ts).unwrap_or(Value::Null)
}

/// The record's own fields, shared by both shapes.
fn fields(customer: &Customer) -> Map<String, Value> {
    let f = &customer.fields;
    let mut map = Map::new();
    map.insert("first_name".into(), json!(f.first_name));
    map.insert("last_name".into(), json!(f.last_name));
    map.insert("email".into(), json!(f.email));
    map.insert("phone".into(), json!(f.phone));
    map.insert("address".into(), json!(f.address));
    map.insert("city".into(), json!(f.city));
    map.insert("state".into(), json!(f.state));
    map.insert("country".into(), json!(f.country));
    map.insert("tags".into(), json!(f.tags));
    map
}

/// The REST representation, as seen by a caller whose own id for the customer is
/// `vendor_customer_id`.
pub fn record(customer: &Customer, vendor_customer_id: Option<&str>) -> Value {
    let mut map = Map::new();
    map.insert("customer_id".into(), json!(customer.customer_id));
    map.insert("vendor_customer_id".into(), json!(vendor_customer_id));
    map.insert("account_id".into(), json!(customer.scope.account()));
    map.extend(fields(customer));
    map.insert(
        "permission_to_contact".into(),
        customer
            .permission_to_contact
            .as_ref()
            .map(rfc3339)
            .unwrap_or_else(|| json!(NOT_GRANTED)),
    );
    map.insert("origins".into(), json!(customer.origins));
    map.insert("version".into(), json!(customer.version));
    map.insert("created".into(), rfc3339(&customer.created));
    map.insert("updated".into(), rfc3339(&customer.updated));
    if customer.status == CustomerStatus::Conflict {
        if let Some(conflict) = &customer.conflict {
            map.insert(
                "conflict".into(),
                json!({
                    "conflicting_customer_id": conflict.conflicting_customer_id,
                    "matched_on": conflict.matched_on,
                }),
            );
        }
    }
    Value::Object(map)
}

/// The data of a `customer.created` / `customer.updated` event, without the receiving
/// product's `vendor_customer_id` (filled in per receiver at delivery).
pub fn event_data(customer: &Customer, origin: Option<&ProductId>) -> Value {
    let mut map = Map::new();
    map.insert("contact_id".into(), json!(customer.customer_id));
    map.insert("vendor_customer_id".into(), Value::Null);
    map.insert("account_id".into(), json!(customer.scope.account()));
    map.insert("version".into(), json!(customer.version));
    map.insert("origin".into(), json!(origin));
    map.insert(
        "permission_to_contact".into(),
        json!(customer.permission_to_contact.is_some()),
    );
    map.extend(fields(customer));
    map.insert("origins".into(), json!(customer.origins));
    map.insert("created".into(), rfc3339(&customer.created));
    map.insert("updated".into(), rfc3339(&customer.updated));
    Value::Object(map)
}

/// The data of a `customer.deleted` event.
pub fn deleted_event_data(customer: &Customer, deleted: &Timestamp) -> Value {
    json!({
        "contact_id": customer.customer_id,
        "vendor_customer_id": null,
        "account_id": customer.scope.account(),
        "version": customer.version,
        "deleted": rfc3339(deleted),
    })
}

/// The data of a `customer.erased` event: ids and the version, nothing personal.
pub fn erased_event_data(customer: &Customer, erasure_id: &str) -> Value {
    json!({
        "contact_id": customer.customer_id,
        "vendor_customer_id": null,
        "account_id": customer.scope.account(),
        "erasure_id": erasure_id,
        "version": customer.version,
    })
}

/// The data of a `customer.merged` event: the survivor's fields, and the ids it absorbed.
pub fn merged_event_data(
    survivor: &Customer,
    merged_ids: &[&str],
    origin: Option<&ProductId>,
) -> Value {
    let mut data = event_data(survivor, origin);
    if let Value::Object(map) = &mut data {
        map.insert("merged_ids".into(), json!(merged_ids));
    }
    data
}

/// A webhook body (and a feed item's content) for one receiving product: the event's
/// data with that product's own id for the customer.
pub fn webhook_body(
    event_type: &str,
    timestamp: &Timestamp,
    data: &Value,
    vendor_customer_id: Option<&str>,
) -> Value {
    let mut data = data.clone();
    if let Value::Object(map) = &mut data {
        map.insert("vendor_customer_id".into(), json!(vendor_customer_id));
    }
    json!({"type": event_type, "timestamp": rfc3339(timestamp), "data": data})
}
