use super::extract::{Caller, Input, Params, PathId};
use super::AppState;
use crate::domain::tenancy::Principal;
use crate::domain::tenants::Product;
use crate::domain::ProductId;
use crate::error::ApiResult;
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::service::keys::IssuedKey;
use crate::service::products::{NewProduct, ProductPatch};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update))
        .routes(routes!(create_key))
}

#[utoipa::path(
    get, path = "/v1/products",
    operation_id = "products_list", tag = "products",
    params(
        ("partner_id" = Option<doc::PartnerId>, Query, description = "Partner (partner keys: their own)"),
        doc::TenantPaging,
    ),
    responses(
        (status = 200, description = "A page, in creation order (no secrets)", body = doc::ProductPage),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<serde_json::Value>> {
    let query = super::accounts::tenant_query::<ProductId>(&params, true)?;
    let page = state.hub.list_products(&who, query).await?;
    Ok(Json(serde_json::json!({
        "products": page.items,
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    })))
}

#[utoipa::path(
    post, path = "/v1/products",
    operation_id = "products_create", tag = "products",
    request_body = doc::ProductInput,
    responses(
        (status = 201, description = "Created, with its key and secret", body = doc::CreatedProduct),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
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

#[utoipa::path(
    get, path = "/v1/products/{product_id}",
    operation_id = "products_show", tag = "products",
    params(
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    responses(
        (status = 200, description = "The product", body = doc::Product),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<ProductId>,
) -> ApiResult<Json<Product>> {
    let product = state.hub.get_product(&who, &id).await?;
    Ok(Json(product))
}

#[utoipa::path(
    patch, path = "/v1/products/{product_id}",
    operation_id = "products_update", tag = "products",
    params(
        ("product_id" = doc::ProductId, Path, description = "Product"),
    ),
    request_body = doc::ProductPatch,
    responses(
        (status = 200, description = "Updated", body = doc::Product),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn update(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathId(id): PathId<ProductId>,
    Input(patch): Input<ProductPatch>,
) -> ApiResult<Json<Product>> {
    let product = state.hub.update_product(&who, &id, patch).await?;
    Ok(Json(product))
}

#[utoipa::path(
    post, path = "/v1/products/{product_id}/keys",
    operation_id = "products_create_key", tag = "keys",
    params(
        ("product_id" = doc::ProductId, Path, description = "Product"),
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
    PathId(id): PathId<ProductId>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Product(id);
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
