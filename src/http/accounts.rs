use super::extract::{Caller, Input, Params, PathId, PathIds};
use super::AppState;
use crate::domain::cursor::TimeCursor;
use crate::domain::tenancy::Principal;
use crate::domain::tenants::Account;
use crate::domain::{AccountId, PartnerId, ProductId};
use crate::error::ApiResult;
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::input::id_text;
use crate::service::accounts::{NewAccount, TenantQuery};
use crate::service::activations::{ActivationInput, ActivationView};
use crate::service::keys::IssuedKey;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(create_key))
        .routes(routes!(list_activations))
        .routes(routes!(activate, deactivate))
        .routes(routes!(resync))
}

#[utoipa::path(
    post, path = "/v1/accounts",
    operation_id = "accounts_create", tag = "accounts",
    request_body = doc::AccountInput,
    responses(
        (status = 201, description = "Created", body = doc::Account),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<NewAccount>,
) -> ApiResult<Response> {
    let account = state.hub.create_account(&who, input).await?;
    let location = format!("/v1/accounts/{}", account.account_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(account),
    )
        .into_response())
}

/// The query of a tenant list: `page_size`, a `cursor` over ids of type `Id`, and
/// `partner_id` where the list has one.
pub(super) fn tenant_query<Id: crate::domain::ParseId>(
    params: &Params,
    by_partner: bool,
) -> ApiResult<TenantQuery> {
    Ok(TenantQuery {
        partner_id: match by_partner {
            true => params.parse("partner_id", id_text::<PartnerId>)?,
            false => None,
        },
        page_size: params.page_size()?,
        cursor: params.parse("cursor", TimeCursor::decode::<Id>)?,
    })
}

#[utoipa::path(
    get, path = "/v1/accounts",
    operation_id = "accounts_list", tag = "accounts",
    params(
        ("partner_id" = Option<doc::PartnerId>, Query, description = "Partner (partner keys: their own)"),
        doc::TenantPaging,
    ),
    responses(
        (status = 200, description = "A page", body = doc::AccountPage),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let query = tenant_query::<AccountId>(&params, true)?;
    let page = state.hub.list_accounts(&who, query).await?;
    Ok(Json(json!({
        "accounts": page.items,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    })))
}

#[utoipa::path(
    get, path = "/v1/accounts/{account_id}",
    operation_id = "accounts_show", tag = "accounts",
    params(
        ("account_id" = doc::AccountId, Path, description = "Account"),
    ),
    responses(
        (status = 200, description = "The account", body = doc::Account),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<AccountId>,
) -> ApiResult<Json<Account>> {
    let account = state.hub.get_account(&who, &id).await?;
    Ok(Json(account))
}

#[utoipa::path(
    post, path = "/v1/accounts/{account_id}/keys",
    operation_id = "accounts_create_key", tag = "keys",
    params(
        ("account_id" = doc::AccountId, Path, description = "Account"),
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
    PathId(id): PathId<AccountId>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Account(id);
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(
    get, path = "/v1/accounts/{account_id}/products",
    operation_id = "accounts_list_activations", tag = "accounts",
    params(
        ("account_id" = doc::AccountId, Path, description = "Account"),
    ),
    responses(
        (status = 200, description = "Activations", body = doc::ActivationList),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn list_activations(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<AccountId>,
) -> ApiResult<Json<serde_json::Value>> {
    let activations = state.hub.list_activations(&who, &id).await?;
    Ok(Json(json!({ "activations": activations })))
}

#[utoipa::path(
    put, path = "/v1/accounts/{account_id}/products/{product_id}",
    operation_id = "accounts_activate", tag = "accounts",
    params(
        ("account_id" = doc::AccountId, Path, description = "Account"),
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    request_body = doc::ActivationInput,
    responses(
        (status = 201, description = "Activated", body = doc::Activation),
        (status = 200, description = "Sync mode changed", body = doc::Activation),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn activate(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathIds(account, product): PathIds<AccountId, ProductId>,
    Input(input): Input<ActivationInput>,
) -> ApiResult<(StatusCode, Json<ActivationView>)> {
    let (activation, created) = state.hub.activate(&who, &account, &product, input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(activation)))
}

#[utoipa::path(
    post, path = "/v1/accounts/{account_id}/products/{product_id}/resync",
    operation_id = "accounts_resync", tag = "accounts",
    description = "Sends every live customer of the account to the product again \
        (`customer.snapshot`), for a product that lost its data; while one runs, answers it.",
    params(
        ("account_id" = doc::AccountId, Path, description = "Account"),
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    responses(
        (status = 202, description = "Backfill started (or running)", body = doc::Activation),
        (status = 400, response = problem::BadRequest),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
async fn resync(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathIds(account, product): PathIds<AccountId, ProductId>,
) -> ApiResult<(StatusCode, Json<ActivationView>)> {
    let view = state.hub.resync(&who, &account, &product).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[utoipa::path(
    delete, path = "/v1/accounts/{account_id}/products/{product_id}",
    operation_id = "accounts_deactivate", tag = "accounts",
    params(
        ("account_id" = doc::AccountId, Path, description = "Account"),
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    responses(
        (status = 204, description = "Deactivated"),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn deactivate(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathIds(account, product): PathIds<AccountId, ProductId>,
) -> ApiResult<StatusCode> {
    state.hub.deactivate(&who, &account, &product).await?;
    Ok(StatusCode::NO_CONTENT)
}
