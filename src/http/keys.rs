use super::extract::{Caller, CallerKey, Params, PathId};
use super::AppState;
use crate::domain::{AccountId, KeyId, PartnerId, ProductId};
use crate::error::ApiResult;
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::input::id_text;
use crate::service::keys::KeyFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(revoke))
        .routes(routes!(me))
}

#[utoipa::path(
    get, path = "/v1/keys",
    operation_id = "keys_list", tag = "keys",
    params(
        ("partner_id" = Option<doc::PartnerId>, Query, description = "A partner's keys"),
        ("account_id" = Option<doc::AccountId>, Query, description = "An account's keys"),
        ("product_id" = Option<doc::ProductId>, Query, description = "A product's keys"),
    ),
    responses(
        (status = 200, description = "Oldest first, revoked ones too; without a filter, the caller's own; filters combine", body = doc::KeyList),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let filter = KeyFilter {
        partner: params.parse("partner_id", id_text::<PartnerId>)?,
        account: params.parse("account_id", id_text::<AccountId>)?,
        product: params.parse("product_id", id_text::<ProductId>)?,
    };
    let keys = state.hub.list_keys(&who, filter).await?;
    Ok(Json(serde_json::json!({ "keys": keys })))
}

#[utoipa::path(
    get, path = "/v1/me",
    operation_id = "keys_me", tag = "keys",
    responses(
        (status = 200, description = "The calling key", body = doc::Me),
    ),
)]
async fn me(
    State(state): State<AppState>,
    CallerKey(key): CallerKey,
) -> ApiResult<Json<crate::service::keys::Me>> {
    Ok(Json(state.hub.me(&key).await?))
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
