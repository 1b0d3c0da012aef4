//! SPEC section 6 endpoints: the event feed, the delivery log, manual retry, re-enabling
//! a webhook and rotating its secret.

use super::products::reaches_product;
use super::{reachable, Hub};
use crate::domain::credentials::generate_webhook_secret;
use crate::domain::cursor::TimeCursor;
use crate::domain::tenancy::{Principal, ADMIN_PARTNER_OR_PRODUCT};
use crate::domain::tenants::Product;
use crate::domain::time::{self, Timestamp};
use crate::domain::wire;
use crate::domain::{DeliveryId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::storage::{DeliveryQuery, DeliveryView};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// How long the previous secret stays valid after a rotation.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;

/// A position in a product's feed, as an opaque cursor.
pub fn encode_feed_cursor(position: (i64, i64)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", position.0, position.1))
}

pub fn decode_feed_cursor(raw: &str) -> Result<(i64, i64), String> {
    const INVALID: &str = "is not a cursor returned by this API";
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| INVALID)?;
    let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
    let (txid, seq) = text.split_once('.').ok_or(INVALID)?;
    Ok((
        txid.parse().map_err(|_| INVALID)?,
        seq.parse().map_err(|_| INVALID)?,
    ))
}

/// The delivery log's cursor: the (created, id) of the last delivery of a page.
fn encode_log_cursor(view: &DeliveryView) -> String {
    TimeCursor {
        at: view.created,
        id: view.delivery_id.clone(),
    }
    .encode()
}

pub fn decode_log_cursor(raw: &str) -> Result<(Timestamp, String), String> {
    TimeCursor::decode::<DeliveryId>(raw).map(|cursor| (cursor.at, cursor.id))
}

/// A page of a product's events.
pub struct FeedPage {
    pub events: Vec<Value>,
    pub next_cursor: String,
    pub has_more: bool,
}

impl Hub {
    /// A product `who` may manage the webhook of (admin, its partner, itself).
    async fn managed_product(&self, who: &Principal, id: &ProductId) -> ApiResult<Product> {
        who.require(ADMIN_PARTNER_OR_PRODUCT)?;
        let product = self.store.get_product(id).await?;
        reachable(product, "product", |p| reaches_product(who, p))
    }

    /// `GET /v1/events`: the calling product's events, the bodies of its webhooks.
    pub async fn feed(
        &self,
        who: &Principal,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> ApiResult<FeedPage> {
        let Principal::Product(product) = who else {
            return Err(ApiError::forbidden());
        };
        let after = after.unwrap_or((-1, -1));
        let mut rows = self.store.feed(product, after, limit + 1).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = rows.last().map(|e| e.position).unwrap_or(after);
        let events = rows
            .iter()
            .map(|e| {
                let vendor = e.vendor_ids.get(product.as_str()).and_then(|v| v.as_str());
                let mut body = wire::webhook_body(&e.event_type, &e.created, &e.data, vendor);
                body["id"] = json!(e.event_id);
                body
            })
            .collect();
        Ok(FeedPage {
            events,
            next_cursor: encode_feed_cursor(next),
            has_more,
        })
    }

    /// `GET /v1/events/head`: the calling product's feed position of now.
    pub async fn feed_head(&self, who: &Principal) -> ApiResult<String> {
        if !matches!(who, Principal::Product(_)) {
            return Err(ApiError::forbidden());
        }
        Ok(encode_feed_cursor(self.store.feed_head().await?))
    }

    /// `GET /v1/products/{id}/deliveries`: newest first.
    pub async fn deliveries(
        &self,
        who: &Principal,
        product: &ProductId,
        status: Option<String>,
        customer_id: Option<String>,
        before: Option<(Timestamp, String)>,
        limit: i64,
    ) -> ApiResult<(Vec<DeliveryView>, Option<String>)> {
        self.managed_product(who, product).await?;
        let query = DeliveryQuery {
            product_id: product.clone(),
            status,
            customer_id,
            before,
            limit: limit + 1,
        };
        let mut views = self.store.list_deliveries(&query).await?;
        let has_more = views.len() as i64 > limit;
        views.truncate(limit as usize);
        let next = match views.last() {
            Some(last) if has_more => Some(encode_log_cursor(last)),
            _ => None,
        };
        Ok((views, next))
    }

    /// `POST /v1/deliveries/{id}/retry`: makes a delivery due now.
    pub async fn retry_delivery(&self, who: &Principal, id: &str) -> ApiResult<DeliveryView> {
        let delivery = self.store.get_delivery(id).await?;
        let Some(delivery) = delivery else {
            return Err(ApiError::not_found("delivery"));
        };
        let product = self
            .managed_product(who, &ProductId::from_string(delivery.product_id.clone()))
            .await
            .map_err(|err| match err.code {
                "forbidden" => err,
                _ => ApiError::not_found("delivery"),
            })?;
        if product.webhook_status != crate::domain::tenants::WebhookStatus::Enabled {
            return Err(ApiError::conflict(
                "webhook_disabled",
                "the product's webhook is disabled; enable it first",
            ));
        }
        if !self.store.retry_delivery(id, time::now()).await? {
            return Err(ApiError::conflict(
                "not_retryable",
                "a newer version of this customer was sent or is queued, or this delivery is in flight",
            ));
        }
        self.store
            .get_delivery(id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery"))
    }

    /// A product's delivery attempts of the last 24 hours, by hour (the console's chart).
    pub async fn delivery_hours(
        &self,
        who: &Principal,
        product: &ProductId,
    ) -> ApiResult<Vec<crate::storage::DeliveryHour>> {
        self.managed_product(who, product).await?;
        let since = time::now() - chrono::Duration::hours(24);
        Ok(self.store.delivery_hours(product, since).await?)
    }

    /// `POST /v1/products/{id}/webhook/enable`.
    pub async fn enable_webhook(&self, who: &Principal, id: &ProductId) -> ApiResult<Product> {
        self.managed_product(who, id).await?;
        self.store
            .set_webhook_status(id, true, None, time::now())
            .await?;
        self.managed_product(who, id).await
    }

    /// `POST /v1/products/{id}/webhook/rotate-secret`: the old secret stays valid for
    /// 24 hours, and deliveries carry both signatures meanwhile.
    pub async fn rotate_webhook_secret(&self, who: &Principal, id: &ProductId) -> ApiResult<Value> {
        self.managed_product(who, id).await?;
        let secret = generate_webhook_secret();
        let now = time::now();
        let expires = now + chrono::Duration::hours(PREVIOUS_SECRET_HOURS);
        self.store
            .rotate_webhook_secret(id, &secret, expires, now)
            .await?;
        Ok(json!({
            "product_id": id,
            "webhook_secret": secret,
            "previous_secret_expires": expires,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_cursors_round_trip() {
        assert_eq!(
            decode_feed_cursor(&encode_feed_cursor((12, 34))).unwrap(),
            (12, 34)
        );
        assert!(decode_feed_cursor("x").is_err());
    }
}
