//! SPEC section 6: the event feed, the delivery log, retries and webhook management.

use super::extract::{Caller, Params, PathParams};
use super::AppState;
use crate::domain::tenants::Product;
use crate::domain::ProductId;
use crate::error::ApiResult;
use crate::service::accounts::{parse_page_size, DEFAULT_PAGE_SIZE};
use crate::service::webhooks::{decode_feed_cursor, decode_log_cursor};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(feed))
        .route("/v1/products/{product_id}/deliveries", get(deliveries))
        .route("/v1/deliveries/{delivery_id}/retry", post(retry))
        .route("/v1/products/{product_id}/webhook/enable", post(enable))
        .route(
            "/v1/products/{product_id}/webhook/rotate-secret",
            post(rotate),
        )
}

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

async fn deliveries(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
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
    let customer = params.parse("customer_id", |s| Ok(s.to_owned()))?;
    let before = params.parse("cursor", decode_log_cursor)?;
    let limit = params
        .parse("page_size", parse_page_size)?
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let (views, next) = state
        .hub
        .deliveries(
            &who,
            &ProductId::from_string(id),
            status,
            customer,
            before,
            limit,
        )
        .await?;
    Ok(Json(json!({
        "deliveries": views,
        "next_cursor": next,
        "has_more": next.is_some(),
    })))
}

async fn retry(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let view = state.hub.retry_delivery(&who, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(view))))
}

async fn enable(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Product>> {
    Ok(Json(
        state
            .hub
            .enable_webhook(&who, &ProductId::from_string(id))
            .await?,
    ))
}

async fn rotate(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        state
            .hub
            .rotate_webhook_secret(&who, &ProductId::from_string(id))
            .await?,
    ))
}
