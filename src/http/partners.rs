use super::extract::{Caller, Input, Params, PathId};
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
        .routes(routes!(create, list))
        .routes(routes!(create_key))
}

#[utoipa::path(
    get, path = "/v1/partners",
    operation_id = "partners_list", tag = "partners",
    params(doc::TenantPaging),
    responses(
        (status = 200, description = "A page, in creation order", body = doc::PartnerPage),
        (status = 400, response = problem::BadRequest),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let query = super::accounts::tenant_query::<PartnerId>(&params, false)?;
    let page = state.hub.list_partners(&who, query).await?;
    Ok(Json(serde_json::json!({
        "partners": page.items,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    })))
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
