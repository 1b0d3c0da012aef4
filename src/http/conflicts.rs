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
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/conflicts", get(list))
        .route(
            "/v1/conflicts/{conflict_id}",
            axum::routing::delete(discard),
        )
        .route("/v1/conflicts/{conflict_id}/merge", post(merge))
        .route("/v1/conflicts/{conflict_id}/keep", post(keep))
}

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
