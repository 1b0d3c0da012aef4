use super::extract::{Caller, PathId};
use super::AppState;
use crate::domain::KeyId;
use crate::error::ApiResult;
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(revoke))
}

#[utoipa::path(
    delete, path = "/v1/keys/{key_id}",
    operation_id = "keys_revoke", tag = "keys",
    params(
        ("key_id" = doc::KeyId, Path, description = "Key"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn revoke(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<KeyId>,
) -> ApiResult<StatusCode> {
    state.hub.revoke_key(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
