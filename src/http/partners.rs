use super::extract::{Caller, Input, PathParams};
use super::AppState;
use crate::domain::tenancy::Principal;
use crate::domain::PartnerId;
use crate::error::ApiResult;
use crate::service::keys::IssuedKey;
use crate::service::partners::NewPartner;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(create_key))
}

#[utoipa::path(operation_id = "partners_create", post, path = "/v1/partners", tag = "partners", request_body = crate::http::openapi::PartnerInput, responses((status = 201, description = "Created", body = crate::http::openapi::Partner), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 1 MiB", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<NewPartner>,
) -> ApiResult<(StatusCode, Json<crate::domain::tenants::Partner>)> {
    let partner = state.hub.create_partner(&who, input).await?;
    Ok((StatusCode::CREATED, Json(partner)))
}

#[utoipa::path(operation_id = "partners_create_key", post, path = "/v1/partners/{partner_id}/keys", tag = "keys", params(("partner_id" = String, Path, description = "Partner")), responses((status = 201, description = "Issued", body = crate::http::openapi::IssuedKey), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Partner(PartnerId::from_string(id));
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
