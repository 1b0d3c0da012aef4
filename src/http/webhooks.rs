//! SPEC section 6: the event feed, the delivery log, retries and webhook management.

use super::extract::{Caller, Params, PathId};
use super::AppState;
use crate::domain::tenants::Product;
use crate::domain::{CustomerId, DeliveryId, ProductId};
use crate::error::ApiResult;
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::input::id_text;
use crate::service::accounts::parse_page_size;
use crate::service::webhooks::{decode_feed_cursor, decode_log_cursor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(feed))
        .routes(routes!(head))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
        .routes(routes!(enable))
        .routes(routes!(rotate))
}

#[utoipa::path(
    get, path = "/v1/events",
    operation_id = "webhooks_feed", tag = "webhooks",
    params(
        ("after" = Option<doc::Cursor>, Query, description = "A next_cursor"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Default 100"),
    ),
    responses(
        (status = 200, description = "The caller's events", body = doc::FeedPage),
        (status = 400, response = problem::BadRequest),
    ),
)]
async fn feed(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<Value>> {
    let after = params.parse("after", decode_feed_cursor)?;
    let limit = params.parse("limit", parse_page_size)?.unwrap_or(100);
    let page = state.hub.feed(&who, after, limit).await?;
    Ok(Json(json!({
        "events": page.events,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    })))
}

#[utoipa::path(
    get, path = "/v1/events/head",
    operation_id = "webhooks_feed_head", tag = "webhooks",
    description = "The feed position of now (product keys). Read it, then page \
        `GET /v1/customers`, then read `GET /v1/events?after=` from it: no change is missed \
        (one may be seen twice, in the list and in the feed).",
    responses(
        (status = 200, description = "The position", body = doc::FeedHead),
        (status = 403, response = problem::Forbidden),
    ),
)]
async fn head(State(state): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Value>> {
    let cursor = state.hub.feed_head(&who).await?;
    Ok(Json(json!({ "cursor": cursor })))
}

#[utoipa::path(
    get, path = "/v1/products/{product_id}/deliveries",
    operation_id = "webhooks_deliveries", tag = "webhooks",
    params(
        ("product_id" = doc::ProductId, Path, description = "Product"),
        ("status" = Option<doc::DeliveryStatus>, Query),
        ("customer_id" = Option<doc::RecordId>, Query, description = "A customer"),
        ("cursor" = Option<doc::Cursor>, Query, description = "From the previous page"),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 500),
    ),
    responses(
        (status = 200, description = "Newest first", body = doc::DeliveryPage),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn deliveries(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<ProductId>,
    params: Params,
) -> ApiResult<Json<Value>> {
    const STATUSES: [&str; 4] = ["pending", "delivered", "failed", "superseded"];
    let status = params.parse("status", |s| {
        if STATUSES.contains(&s) {
            Ok(s.to_owned())
        } else {
            Err(format!("must be one of: {}", STATUSES.join(", ")))
        }
    })?;
    let customer = params
        .parse("customer_id", id_text::<CustomerId>)?
        .map(|id| id.to_string());
    let before = params.parse("cursor", decode_log_cursor)?;
    let limit = params.page_size()?;
    let (views, next) = state
        .hub
        .deliveries(&who, &id, status, customer, before, limit)
        .await?;
    Ok(Json(json!({
        "deliveries": views,
        "next_cursor": next,
        "has_more": next.is_some(),
    })))
}

#[utoipa::path(
    post, path = "/v1/deliveries/{delivery_id}/retry",
    operation_id = "webhooks_retry", tag = "webhooks",
    params(
        ("delivery_id" = doc::DeliveryId, Path, description = "Delivery"),
    ),
    responses(
        (status = 202, description = "Due now", body = doc::Delivery),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
async fn retry(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<DeliveryId>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let view = state.hub.retry_delivery(&who, id.as_str()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(view))))
}

#[utoipa::path(
    post, path = "/v1/products/{product_id}/webhook/enable",
    operation_id = "webhooks_enable", tag = "webhooks",
    params(
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    responses(
        (status = 200, description = "Enabled", body = doc::Product),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn enable(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<ProductId>,
) -> ApiResult<Json<Product>> {
    Ok(Json(state.hub.enable_webhook(&who, &id).await?))
}

#[utoipa::path(
    post, path = "/v1/products/{product_id}/webhook/rotate-secret",
    operation_id = "webhooks_rotate", tag = "webhooks",
    params(
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    responses(
        (status = 200, description = "The new secret", body = doc::RotatedSecret),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn rotate(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<ProductId>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.hub.rotate_webhook_secret(&who, &id).await?))
}
