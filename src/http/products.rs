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
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show, update))
        .routes(routes!(create_key))
}

#[utoipa::path(operation_id = "products_create", post, path = "/v1/products", tag = "products", request_body = crate::http::openapi::ProductInput, responses((status = 201, description = "Created, with its key and secret", body = crate::http::openapi::CreatedProduct), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(operation_id = "products_show", get, path = "/v1/products/{product_id}", tag = "products", params(("product_id" = String, Path, description = "Product")), responses((status = 200, description = "The product", body = crate::http::openapi::Product), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(operation_id = "products_update", patch, path = "/v1/products/{product_id}", tag = "products", params(("product_id" = String, Path, description = "Product")), request_body = crate::http::openapi::ProductPatch, responses((status = 200, description = "Updated", body = crate::http::openapi::Product), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(operation_id = "products_create_key", post, path = "/v1/products/{product_id}/keys", tag = "keys", params(("product_id" = String, Path, description = "Product")), responses((status = 201, description = "Issued", body = crate::http::openapi::IssuedKey), (status = 400, description = "Invalid input", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 403, description = "Not allowed for this key", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found", body = crate::http::openapi::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited", body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let subject = Principal::Product(ProductId::from_string(id));
    let key = state.hub.issue_key(&who, subject).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
