//! SPEC section 5: resolving conflict records, `/v1/conflicts`.

use super::extract::{Caller, OptionalInput, Params, PathParams};
use super::AppState;
use crate::domain::CustomerId;
use crate::error::ApiResult;
use crate::service::customers::resolve::ConflictMerge;
use crate::service::customers::CustomerListParams;
use crate::storage::StoredCustomer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(discard))
        .routes(routes!(merge))
        .routes(routes!(keep))
}

#[utoipa::path(operation_id = "conflicts_list", get, path = "/v1/conflicts", tag = "conflicts", params(("account_id" = Option<String>, Query, description = "Required unless the key is an account key"), ("page_size" = Option<i64>, Query, description = "1 to 500 (default 50)"), ("cursor" = Option<String>, Query, description = "From the previous page"), ("q" = Option<String>, Query, description = "Names, email or phone"), ("sort" = Option<String>, Query, description = "created, -created, last_name, -last_name, first_name, -first_name"), ("created_after" = Option<String>, Query, description = "RFC 3339"), ("created_before" = Option<String>, Query, description = "RFC 3339"), ("updated_since" = Option<String>, Query, description = "RFC 3339"), ("tag" = Option<String>, Query, description = "A tag"), ("origin" = Option<String>, Query, description = "A product id"), ("vendor_customer_id" = Option<String>, Query, description = "The caller's own id")), responses((status = 200, description = "Pending conflict records", body = crate::http::openapi::ConflictPage), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<Value>> {
    let page = state
        .hub
        .list_conflicts(&who, CustomerListParams(params.0))
        .await?;
    let conflicts: Vec<_> = page.customers.iter().map(StoredCustomer::record).collect();
    Ok(Json(json!({
        "conflicts": conflicts,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
        "total_results": page.total_results,
    })))
}

#[utoipa::path(operation_id = "conflicts_merge", post, path = "/v1/conflicts/{conflict_id}/merge", tag = "conflicts", params(("conflict_id" = String, Path, description = "Conflict record")), request_body = crate::http::openapi::ConflictMergeInput, responses((status = 200, description = "The merged customer", body = crate::http::openapi::Customer), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn merge(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    OptionalInput(input): OptionalInput<ConflictMerge>,
) -> ApiResult<Json<Value>> {
    let merged = state
        .hub
        .merge_conflict(&who, &CustomerId::from_string(id), input)
        .await?;
    Ok(Json(merged.record()))
}

#[utoipa::path(operation_id = "conflicts_keep", post, path = "/v1/conflicts/{conflict_id}/keep", tag = "conflicts", params(("conflict_id" = String, Path, description = "Conflict record")), responses((status = 201, description = "The new customer", body = crate::http::openapi::Customer), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn keep(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kept = state
        .hub
        .keep_conflict(&who, &CustomerId::from_string(id))
        .await?;
    Ok((StatusCode::CREATED, Json(kept.record())))
}

#[utoipa::path(operation_id = "conflicts_discard", delete, path = "/v1/conflicts/{conflict_id}", tag = "conflicts", params(("conflict_id" = String, Path, description = "Conflict record")), responses((status = 204, description = "Discarded"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn discard(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusCode> {
    state
        .hub
        .discard_conflict(&who, &CustomerId::from_string(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
