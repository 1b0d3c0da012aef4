use super::extract::{Caller, Input, PathId};
use super::AppState;
use crate::domain::tenancy::Principal;
use crate::domain::PartnerId;
use crate::error::ApiResult;
use crate::http::openapi as doc;
use crate::http::openapi::problem;
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

#[utoipa::path(
    post, path = "/v1/partners",
    operation_id = "partners_create", tag = "partners",
    request_body = doc::PartnerInput,
    responses(
        (status = 201, description = "Created", body = doc::Partner),
        (status = 400, response = problem::BadRequest),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<NewPartner>,
) -> ApiResult<(StatusCode, Json<crate::domain::tenants::Partner>)> {
    let partner = state.hub.create_partner(&who, input).await?;
    Ok((StatusCode::CREATED, Json(partner)))
}

#[utoipa::path(
    post, path = "/v1/partners/{partner_id}/keys",
    operation_id = "partners_create_key", tag = "keys",
    params(
        ("partner_id" = doc::PartnerId, Path, description = "Partner"),
    ),
    responses(
        (status = 201, description = "Issued", body = doc::IssuedKey),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<PartnerId>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Partner(id);
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
