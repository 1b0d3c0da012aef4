//! SPEC section 5: resolving conflict records, `/v1/conflicts`.

use super::extract::{Caller, OptionalInput, Params, PathParams};
use super::AppState;
use crate::domain::CustomerId;
use crate::error::{ApiError, ApiResult};
use crate::http::openapi as doc;
use crate::http::openapi::problem;
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

#[utoipa::path(
    get, path = "/v1/conflicts",
    operation_id = "conflicts_list", tag = "conflicts",
    params(doc::ListFilters),
    responses(
        (status = 200, description = "Pending conflict records", body = doc::ConflictPage),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
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

#[utoipa::path(
    post, path = "/v1/conflicts/{conflict_id}/merge",
    operation_id = "conflicts_merge", tag = "conflicts",
    params(
        ("conflict_id" = doc::ConflictId, Path, description = "Conflict record"),
    ),
    request_body = doc::ConflictMergeInput,
    responses(
        (status = 200, description = "The merged customer", body = doc::Customer),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
async fn merge(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    OptionalInput(input): OptionalInput<ConflictMerge>,
) -> ApiResult<Json<Value>> {
    let merged = state
        .hub
        .merge_conflict(&who, &conflict_id(&id)?, input)
        .await?;
    Ok(Json(merged.record()))
}

#[utoipa::path(
    post, path = "/v1/conflicts/{conflict_id}/keep",
    operation_id = "conflicts_keep", tag = "conflicts",
    params(
        ("conflict_id" = doc::ConflictId, Path, description = "Conflict record"),
    ),
    responses(
        (status = 201, description = "The new customer", body = doc::Customer),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
async fn keep(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kept = state.hub.keep_conflict(&who, &conflict_id(&id)?).await?;
    Ok((StatusCode::CREATED, Json(kept.record())))
}

#[utoipa::path(
    delete, path = "/v1/conflicts/{conflict_id}",
    operation_id = "conflicts_discard", tag = "conflicts",
    params(
        ("conflict_id" = doc::ConflictId, Path, description = "Conflict record"),
    ),
    responses(
        (status = 204, description = "Discarded"),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn discard(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.hub.discard_conflict(&who, &conflict_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A conflict record named by the path: anything but a record id is no conflict.
fn conflict_id(raw: &str) -> ApiResult<CustomerId> {
    CustomerId::parse(raw)
        .filter(CustomerId::is_conflict)
        .ok_or_else(|| ApiError::not_found("conflict"))
}
