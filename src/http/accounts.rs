use super::extract::{Caller, Input, Params, PathParams};
use super::AppState;
use crate::domain::cursor::TimeCursor;
use crate::domain::tenancy::Principal;
use crate::domain::tenants::{Account, Activation};
use crate::domain::{AccountId, PartnerId, ProductId};
use crate::error::ApiResult;
use crate::service::accounts::{parse_page_size, AccountQuery, NewAccount, DEFAULT_PAGE_SIZE};
use crate::service::activations::ActivationInput;
use crate::service::keys::IssuedKey;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", post(create).get(list))
        .route("/v1/accounts/{account_id}", get(show))
        .route("/v1/accounts/{account_id}/keys", post(create_key))
        .route("/v1/accounts/{account_id}/products", get(list_activations))
        .route(
            "/v1/accounts/{account_id}/products/{product_id}",
            put(activate).delete(deactivate),
        )
}

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

async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let query = AccountQuery {
        partner_id: params.parse("partner_id", |s| Ok(PartnerId::from_string(s)))?,
        page_size: params
            .parse("page_size", parse_page_size)?
            .unwrap_or(DEFAULT_PAGE_SIZE),
        cursor: params.parse("cursor", TimeCursor::decode)?,
    };
    let page = state.hub.list_accounts(&who, query).await?;
    Ok(Json(json!({
        "accounts": page.items,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    })))
}

async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Account>> {
    let account = state
        .hub
        .get_account(&who, &AccountId::from_string(id))
        .await?;
    Ok(Json(account))
}

async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Account(AccountId::from_string(id));
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

async fn list_activations(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let activations = state
        .hub
        .list_activations(&who, &AccountId::from_string(id))
        .await?;
    Ok(Json(json!({ "activations": activations })))
}

async fn activate(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((account, product)): PathParams<(String, String)>,
    Input(input): Input<ActivationInput>,
) -> ApiResult<(StatusCode, Json<Activation>)> {
    let (activation, created) = state
        .hub
        .activate(
            &who,
            &AccountId::from_string(account),
            &ProductId::from_string(product),
            input,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(activation)))
}

async fn deactivate(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((account, product)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .hub
        .deactivate(
            &who,
            &AccountId::from_string(account),
            &ProductId::from_string(product),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
