//! A person's export (SPEC section 10, GDPR Art. 15 and 20): everything the hub holds
//! about one customer, machine-readable.

use super::{origin_of, CustomerRef};
use crate::domain::tenancy::Principal;
use crate::error::ApiResult;
use crate::service::Hub;
use serde_json::{json, Value};

/// At most this many events and deliveries (the 30 days the hub keeps them).
const EXPORT_ROWS: i64 = 10_000;

impl Hub {
    /// `GET /v1/customers/{id}/export`: the customer id and the document.
    pub async fn export_customer(
        &self,
        who: &Principal,
        target: &CustomerRef,
    ) -> ApiResult<(String, Value)> {
        let stored = self.reachable_customer(who, target).await?;
        let customer = &stored.customer;
        let id = &customer.customer_id;
        let consent = self.customer_consent_entries(id).await?;
        let associations = self.store.vendor_ids_of(id).await?;
        let (events, deliveries) = match customer.scope.account() {
            Some(account) => (
                self.store.customer_events(account, id, EXPORT_ROWS).await?,
                self.store
                    .customer_deliveries(account, id, origin_of(who), EXPORT_ROWS)
                    .await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let (merged_ids, conflicts) = self.store.customer_relations(customer).await?;
        let document = json!({
            "exported": crate::domain::time::now(),
            "customer": stored.record(),
            "consent_history": consent,
            "associations": associations.iter().map(|a| json!({
                "product_id": a.product_id,
                "product_name": a.product_name,
                "vendor_customer_id": a.vendor_customer_id,
                "created": a.created,
            })).collect::<Vec<_>>(),
            "events": events.iter().rev().map(|e| json!({
                "event_id": e.event_id,
                "type": e.event_type,
                "version": e.version,
                "created": e.created,
                "origin": e.origin_product_id,
                "data": e.data,
            })).collect::<Vec<_>>(),
            "deliveries": deliveries.iter().rev().map(|d| json!({
                "product_id": d.product_id,
                "event_id": d.event_id,
                "version": d.version,
                "status": d.status,
                "delivered": (d.status == "delivered").then_some(d.updated),
            })).collect::<Vec<_>>(),
            "merged_ids": merged_ids,
            "conflicts": conflicts.iter().map(|c| c.record()).collect::<Vec<_>>(),
        });
        Ok((id.to_string(), document))
    }
}
