//! SPEC section 4: `/v1/customers`.

use super::extract::{Caller, Input, JsonObject, Params, PathParams};
use super::AppState;
use crate::domain::{AccountId, CustomerId};
use crate::error::{ApiError, ApiResult};
use crate::service::customers::input::{vendor_id, OnDuplicate};
use crate::service::customers::resolve::CustomerMerge;
use crate::service::customers::{Created, CustomerListParams, CustomerRef};
use crate::storage::StoredCustomer;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(create).get(list))
        .route("/v1/customers/batch", post(create_batch))
        .route("/v1/customers/associations", post(associate_many))
        .route(
            "/v1/customers/{customer_id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/customers/{customer_id}/vendor-id", put(set_vendor_id))
        .route("/v1/customers/{customer_id}/merge", post(merge))
}

/// A record response with its version as a strong `ETag`, for `If-Match`.
fn record_response(status: StatusCode, stored: &StoredCustomer) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", stored.customer.version)).ok();
    let mut response = (status, Json(stored.record())).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `{customer_id}` with `?id_type=vendor` (and an optional `account_id`) names the
/// customer by the calling product's own id.
fn target(id: String, params: &Params) -> ApiResult<CustomerRef> {
    match params.0.get("id_type").map(String::as_str) {
        None | Some("customer") => Ok(CustomerRef::Id(CustomerId::from_string(id))),
        Some("vendor") => Ok(CustomerRef::Vendor {
            vendor_customer_id: id,
            account: params
                .0
                .get("account_id")
                .map(|a| AccountId::from_string(a.clone())),
        }),
        Some(_) => Err(ApiError::invalid_field(
            "id_type",
            "must be customer or vendor",
        )),
    }
}

/// `If-Match: "<version>"` (a bare number and `*` are accepted too).
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    raw.trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::invalid_field("If-Match", "must be a version such as \"3\""))
}

fn on_duplicate(params: &Params) -> ApiResult<OnDuplicate> {
    Ok(params
        .parse("on_duplicate", OnDuplicate::parse)?
        .unwrap_or(OnDuplicate::Conflict))
}

async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let mode = on_duplicate(&params)?;
    match state.hub.create_customer(&who, body, mode).await? {
        Created::New(stored) => {
            let mut response = record_response(StatusCode::CREATED, &stored);
            let location = format!("/v1/customers/{}", stored.customer.customer_id);
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Created::Merged(stored) => Ok(record_response(StatusCode::OK, &stored)),
    }
}

async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let page = state
        .hub
        .list_customers(&who, CustomerListParams(params.0))
        .await?;
    let customers: Vec<_> = page.customers.iter().map(StoredCustomer::record).collect();
    Ok(Json(json!({
        "customers": customers,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
        "total_results": page.total_results,
    })))
}

async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult<Response> {
    let stored = state.hub.get_customer(&who, &target(id, &params)?).await?;
    Ok(record_response(StatusCode::OK, &stored))
}

async fn update(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let target = target(id, &params)?;
    let stored = state
        .hub
        .update_customer(&who, &target, body, if_match(&headers)?)
        .await?;
    Ok(record_response(StatusCode::OK, &stored))
}

async fn remove(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let target = target(id, &params)?;
    state
        .hub
        .delete_customer(&who, &target, if_match(&headers)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_vendor_id(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let target = target(id, &params)?;
    let mut fields = crate::input::Fields::new(body);
    let vendor = fields.required("vendor_customer_id", crate::input::text(vendor_id));
    fields.finish()?;
    let vendor = vendor.unwrap_or_default();
    let stored = state.hub.set_vendor_id(&who, &target, vendor).await?;
    Ok(record_response(StatusCode::OK, &stored))
}

async fn associate_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<serde_json::Value>> {
    let results = state.hub.associate_many(&who, body).await?;
    Ok(Json(json!({ "results": results })))
}

async fn create_batch(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<serde_json::Value>> {
    let mode = on_duplicate(&params)?;
    let results = state.hub.create_batch(&who, body, mode).await?;
    Ok(Json(json!({ "results": results })))
}

async fn merge(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
    Input(input): Input<CustomerMerge>,
) -> ApiResult<Response> {
    let target = target(id, &params)?;
    let merged = state.hub.merge_customers(&who, &target, input).await?;
    Ok(record_response(StatusCode::OK, &merged))
}
