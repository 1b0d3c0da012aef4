use super::extract::{Caller, PathParams};
use super::AppState;
use crate::domain::KeyId;
use crate::error::ApiResult;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(revoke))
}

#[utoipa::path(operation_id = "keys_revoke", delete, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path, description = "Key")), responses((status = 204, description = "Revoked"), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn revoke(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.hub.revoke_key(&who, &KeyId::from_string(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
