use super::extract::{Caller, Input, PathParams};
use super::AppState;
use crate::domain::tenancy::Principal;
use crate::domain::PartnerId;
use crate::error::ApiResult;
use crate::service::keys::IssuedKey;
use crate::service::partners::NewPartner;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/partners", post(create))
        .route("/v1/partners/{partner_id}/keys", post(create_key))
}

async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<NewPartner>,
) -> ApiResult<(StatusCode, Json<crate::domain::tenants::Partner>)> {
    let partner = state.hub.create_partner(&who, input).await?;
    Ok((StatusCode::CREATED, Json(partner)))
}

async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Partner(PartnerId::from_string(id));
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
