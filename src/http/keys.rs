use super::extract::{Caller, PathParams};
use super::AppState;
use crate::domain::KeyId;
use crate::error::ApiResult;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::delete;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/keys/{key_id}", delete(revoke))
}

async fn revoke(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.hub.revoke_key(&who, &KeyId::from_string(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
