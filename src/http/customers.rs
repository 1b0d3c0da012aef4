//! SPEC section 4: `/v1/customers`.

use super::extract::{Caller, Input, JsonObject, Params, PathParams};
use super::AppState;
use crate::domain::{AccountId, CustomerId};
use crate::error::{ApiError, ApiResult};
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::input::id_text;
use crate::service::customers::input::{vendor_id, OnDuplicate};
use crate::service::customers::resolve::CustomerMerge;
use crate::service::customers::{Created, CustomerListParams, CustomerRef};
use crate::storage::StoredCustomer;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(export_list))
        .routes(routes!(create_batch))
        .routes(routes!(associate_many))
        .routes(routes!(show, update, remove))
        .routes(routes!(set_vendor_id))
        .routes(routes!(merge))
        .routes(routes!(consent))
}

#[utoipa::path(
    get, path = "/v1/customers/{customer_id}/consent",
    operation_id = "customers_consent", tag = "customers",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
    ),
    responses(
        (status = 200, description = "Its consent now and every change of it, oldest first", body = doc::ConsentHistory),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn consent(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let target = target(id, &params)?;
    Ok(Json(state.hub.customer_consent(&who, &target).await?))
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
/// customer by the calling product's own id. Either way a malformed id names nobody: the
/// same `404` as an unknown one, before any lookup.
pub(super) fn target(id: String, params: &Params) -> ApiResult<CustomerRef> {
    let not_found = || ApiError::not_found("customer");
    // Read whatever `id_type` says: a malformed filter is refused either way.
    let account = params.parse("account_id", id_text::<AccountId>)?;
    match params.0.get("id_type").map(String::as_str) {
        None | Some("customer") => Ok(CustomerRef::Id(
            CustomerId::parse(&id).ok_or_else(not_found)?,
        )),
        Some("vendor") => Ok(CustomerRef::Vendor {
            vendor_customer_id: vendor_id(&id).map_err(|_| not_found())?,
            account,
        }),
        Some(_) => Err(ApiError::invalid_field(
            "id_type",
            "must be customer or vendor",
        )),
    }
}

fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    crate::http::extract::parse_if_match(value.to_str().unwrap_or_default())
        .map_err(|message| ApiError::invalid_field("If-Match", message))
}

fn on_duplicate(params: &Params) -> ApiResult<OnDuplicate> {
    Ok(params
        .parse("on_duplicate", OnDuplicate::parse)?
        .unwrap_or(OnDuplicate::Conflict))
}

#[utoipa::path(
    post, path = "/v1/customers",
    operation_id = "customers_create", tag = "customers",
    params(
        ("on_duplicate" = Option<doc::OnDuplicate>, Query, description = "Default `conflict`"),
    ),
    request_body = doc::CustomerInput,
    responses(
        (status = 201, description = "Created", body = doc::Customer),
        (status = 200, description = "Merged into the existing customer (on_duplicate=merge)", body = doc::Customer),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
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

#[utoipa::path(
    get, path = "/v1/customers",
    operation_id = "customers_list", tag = "customers",
    params(doc::ListFilters),
    responses(
        (status = 200, description = "A page", body = doc::CustomerPage),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
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

#[utoipa::path(
    get, path = "/v1/customers/export",
    operation_id = "customers_export", tag = "customers",
    params(doc::ListFilters),
    responses(
        (status = 200, description = "Every matching live customer as CSV (UTF-8 with a BOM, a header row, \
            lists `;`-joined, formula-looking cells prefixed with `'`), streamed in the list's order",
            content_type = "text/csv", body = String),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn export_list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Response> {
    let account = params.0.get("account_id").cloned();
    let chunks = state
        .hub
        .export_customer_list(&who, CustomerListParams(params.0))
        .await?;
    let body = axum::body::Body::from_stream(chunks.map(|chunk| {
        chunk.map(|c| c.bytes).map_err(|err| {
            // Headers are sent: the download ends short, and the log says why.
            tracing::error!(error = %err, "the customer export stopped");
            std::io::Error::other("the export stopped")
        })
    }));
    let name = match account {
        Some(account)
            if account
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            format!("customers-{account}.csv")
        }
        _ => "customers.csv".to_owned(),
    };
    Ok(super::csv_attachment(body, &name))
}

#[utoipa::path(
    get, path = "/v1/customers/{customer_id}",
    operation_id = "customers_show", tag = "customers",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
    ),
    responses(
        (status = 200, description = "The customer or conflict record", body = doc::Customer),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult<Response> {
    let stored = state.hub.get_customer(&who, &target(id, &params)?).await?;
    Ok(record_response(StatusCode::OK, &stored))
}

#[utoipa::path(
    patch, path = "/v1/customers/{customer_id}",
    operation_id = "customers_update", tag = "customers",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
        ("If-Match" = Option<doc::IfMatch>, Header, nullable = false),
    ),
    request_body = doc::CustomerPatch,
    responses(
        (status = 200, description = "Updated (or unchanged)", body = doc::Customer),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
        (status = 412, response = problem::PreconditionFailed),
    ),
)]
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

#[utoipa::path(
    delete, path = "/v1/customers/{customer_id}",
    operation_id = "customers_remove", tag = "customers",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
        ("If-Match" = Option<doc::IfMatch>, Header, nullable = false),
    ),
    responses(
        (status = 204, description = "Deleted (a conflict record: discarded)"),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 412, response = problem::PreconditionFailed),
    ),
)]
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

#[utoipa::path(
    put, path = "/v1/customers/{customer_id}/vendor-id",
    operation_id = "customers_set_vendor_id", tag = "customers",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
    ),
    request_body = doc::VendorIdInput,
    responses(
        (status = 200, description = "Associated", body = doc::Customer),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
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

#[utoipa::path(
    post, path = "/v1/customers/associations",
    operation_id = "customers_associate_many", tag = "customers",
    request_body = doc::AssociationsInput,
    responses(
        (status = 200, description = "A result per item", body = doc::ItemResults),
        (status = 400, response = problem::BadRequest),
    ),
)]
async fn associate_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<serde_json::Value>> {
    let results = state.hub.associate_many(&who, body).await?;
    let results: Vec<_> = results
        .into_iter()
        .map(|result| item_result(result.map(|stored| (StatusCode::OK, stored))))
        .collect();
    Ok(Json(json!({ "results": results })))
}

#[utoipa::path(
    post, path = "/v1/customers/batch",
    operation_id = "customers_create_batch", tag = "customers",
    params(
        ("on_duplicate" = Option<doc::OnDuplicate>, Query, description = "Default `conflict`"),
    ),
    request_body = doc::BatchInput,
    responses(
        (status = 200, description = "A result per item", body = doc::ItemResults),
        (status = 400, response = problem::BadRequest),
    ),
)]
async fn create_batch(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<serde_json::Value>> {
    let mode = on_duplicate(&params)?;
    let results = state.hub.create_batch(&who, body, mode).await?;
    let results: Vec<_> = results
        .into_iter()
        .map(|result| {
            item_result(result.map(|created| match created {
                Created::New(stored) => (StatusCode::CREATED, stored),
                Created::Merged(stored) => (StatusCode::OK, stored),
            }))
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// One item of a bulk response: its status with the customer, or with the problem.
fn item_result(result: ApiResult<(StatusCode, StoredCustomer)>) -> serde_json::Value {
    match result {
        Ok((status, stored)) => json!({"status": status.as_u16(), "customer": stored.record()}),
        Err(err) => json!({"status": err.status.as_u16(), "problem": err.to_problem()}),
    }
}

#[utoipa::path(
    post, path = "/v1/customers/{customer_id}/merge",
    operation_id = "customers_merge", tag = "conflicts",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
    ),
    request_body = doc::CustomerMergeInput,
    responses(
        (status = 200, description = "The survivor", body = doc::Customer),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
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
