use super::extract::{Caller, Input, PathParams};
use super::AppState;
use crate::domain::tenancy::Principal;
use crate::domain::tenants::Product;
use crate::domain::ProductId;
use crate::error::ApiResult;
use crate::service::keys::IssuedKey;
use crate::service::products::{NewProduct, ProductPatch};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products", post(create))
        .route("/v1/products/{product_id}", get(show).patch(update))
        .route("/v1/products/{product_id}/keys", post(create_key))
}

async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<NewProduct>,
) -> ApiResult<Response> {
    let created = state.hub.create_product(&who, input).await?;
    let location = format!("/v1/products/{}", created.product.product_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Product>> {
    let product = state
        .hub
        .get_product(&who, &ProductId::from_string(id))
        .await?;
    Ok(Json(product))
}

async fn update(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
    Input(patch): Input<ProductPatch>,
) -> ApiResult<Json<Product>> {
    let product = state
        .hub
        .update_product(&who, &ProductId::from_string(id), patch)
        .await?;
    Ok(Json(product))
}

async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Product(ProductId::from_string(id));
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
