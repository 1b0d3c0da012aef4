//! Products' own ids for customers (SPEC section 4: `vendor_customer_id`).

use super::input::vendor_id;
use super::{bulk_items, collision, CustomerRef};
use crate::domain::customer::Customer;
use crate::domain::tenancy::Principal;
use crate::domain::{time, CustomerId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::input::{id, text, Fields};
use crate::service::Hub;
use crate::storage::{NewAssociation, StoredCustomer, WriteOutcome};
use serde_json::{Map, Value};

impl Hub {
    /// Sets `product`'s own id for a customer; returns it.
    pub(super) async fn associate(
        &self,
        product: &ProductId,
        customer: &Customer,
        vendor: &str,
    ) -> ApiResult<String> {
        let association = NewAssociation {
            product_id: product.clone(),
            customer_id: customer.customer_id.clone(),
            scope: customer.scope.key(),
            vendor_customer_id: vendor.to_owned(),
            created: time::now(),
        };
        match self.store.put_association(&association).await? {
            WriteOutcome::Done => Ok(association.vendor_customer_id),
            other => Err(collision(other, Some(vendor))),
        }
    }

    /// `PUT /v1/customers/{id}/vendor-id`: the calling product's own id for a customer.
    pub async fn set_vendor_id(
        &self,
        who: &Principal,
        target: &CustomerRef,
        vendor_customer_id: String,
    ) -> ApiResult<StoredCustomer> {
        let Principal::Product(product) = who else {
            return Err(ApiError::forbidden());
        };
        let mut stored = self.live_customer(who, target).await?;
        if stored.vendor_customer_id.as_deref() != Some(vendor_customer_id.as_str()) {
            let id = self
                .associate(product, &stored.customer, &vendor_customer_id)
                .await?;
            stored.vendor_customer_id = Some(id);
        }
        Ok(stored)
    }

    /// `POST /v1/customers/associations`: a result per item, in order.
    pub async fn associate_many(
        &self,
        who: &Principal,
        body: Map<String, Value>,
    ) -> ApiResult<Vec<ApiResult<StoredCustomer>>> {
        if !matches!(who, Principal::Product(_)) {
            return Err(ApiError::forbidden());
        }
        let items = bulk_items(body, "associations")?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = match parse_association(item) {
                Ok((customer_id, vendor)) => {
                    self.set_vendor_id(who, &CustomerRef::Id(customer_id), vendor)
                        .await
                }
                Err(err) => Err(err),
            };
            results.push(result);
        }
        Ok(results)
    }
}

fn parse_association(item: Value) -> ApiResult<(CustomerId, String)> {
    let Value::Object(map) = item else {
        return Err(ApiError::malformed_body("each item must be a JSON object"));
    };
    let mut f = Fields::new(map);
    let customer = f.required("customer_id", id::<CustomerId>);
    let vendor = f.required("vendor_customer_id", text(vendor_id));
    f.finish()?;
    match (customer, vendor) {
        (Some(customer), Some(vendor)) => Ok((customer, vendor)),
        _ => Err(ApiError::malformed_body("incomplete item")),
    }
}
