//! SPEC section 10: erasure (`/v1/customers/{id}/erase`, `/v1/erasures`), suppressions
//! and a person's export.

use super::customers::target;
use super::extract::{Caller, Input, OptionalInput, Params, PathParams};
use super::AppState;
use crate::domain::customer::Email;
use crate::domain::{AccountId, ErasureId};
use crate::error::{ApiError, ApiResult};
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::input::{id, text, Fields, FromInput, Patch};
use crate::service::customers::{receipt, ErasureInput, SuppressedValue};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(erase))
        .routes(routes!(show))
        .routes(routes!(list))
        .routes(routes!(lift))
        .routes(routes!(export))
}

#[utoipa::path(
    post, path = "/v1/customers/{customer_id}/erase",
    operation_id = "customers_erase", tag = "privacy",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
    ),
    request_body = doc::ErasureRequest,
    responses(
        (status = 202, description = "Erased; the receipt follows each product", body = doc::ErasureReceipt),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
    ),
)]
async fn erase(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
    params: Params,
    OptionalInput(input): OptionalInput<ErasureInput>,
) -> ApiResult<Response> {
    let target = target(raw, &params)?;
    let view = state.hub.erase_customer(&who, &target, input).await?;
    Ok((StatusCode::ACCEPTED, Json(receipt(&view))).into_response())
}

#[utoipa::path(
    get, path = "/v1/erasures/{erasure_id}",
    operation_id = "erasures_show", tag = "privacy",
    params(("erasure_id" = doc::ErasureId, Path)),
    responses(
        (status = 200, description = "The receipt", body = doc::ErasureReceipt),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let id = ErasureId::parse(&raw).ok_or_else(|| ApiError::not_found("erasure"))?;
    Ok(Json(receipt(&state.hub.get_erasure(&who, &id).await?)))
}

#[utoipa::path(
    get, path = "/v1/erasures",
    operation_id = "erasures_list", tag = "privacy",
    params(
        ("account_id" = doc::AccountId, Query),
        doc::TenantPaging,
    ),
    responses(
        (status = 200, description = "The account's receipts, oldest first", body = doc::ErasurePage),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
) -> ApiResult<Json<Value>> {
    let account: AccountId = params.required_id("account_id")?;
    let limit = params.page_size()?;
    let cursor = params.0.get("cursor").map(String::as_str);
    let (views, next) = state
        .hub
        .list_erasures(&who, &account, cursor, false, limit)
        .await?;
    Ok(Json(json!({
        "erasures": views.iter().map(receipt).collect::<Vec<_>>(),
        "next_cursor": next,
        "has_more": next.is_some(),
    })))
}

/// `DELETE /v1/suppressions` body: the account and one email or phone (a phone is
/// read in the account's region, by the service).
struct LiftSuppression {
    account: AccountId,
    values: Vec<SuppressedValue>,
}

/// A field that may be absent but not `null`.
fn not_null<T>(f: &mut Fields, name: &'static str, value: Patch<T>) -> Option<T> {
    match value {
        Patch::Set(value) => Some(value),
        Patch::Absent => None,
        Patch::Null => f.reject(name, "must not be null: leave it out"),
    }
}

impl FromInput for LiftSuppression {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let account = f.required("account_id", id::<AccountId>);
        let email = f.patch("email", text(Email::parse));
        let email = not_null(f, "email", email);
        // Read in the account's region by the service; its text is checked here.
        let phone = f.patch(
            "phone",
            text(|raw: &str| {
                crate::domain::customer::plain_text(raw, 64, false).map(str::to_owned)
            }),
        );
        let phone = not_null(f, "phone", phone);
        let values: Vec<SuppressedValue> = email
            .map(SuppressedValue::Email)
            .into_iter()
            .chain(phone.map(SuppressedValue::Phone))
            .collect();
        if values.is_empty() && f.is_clean() {
            f.reject::<()>("email", "an email or a phone is required");
        }
        Some(Self {
            account: account?,
            values,
        })
    }
}

#[utoipa::path(
    delete, path = "/v1/suppressions",
    operation_id = "suppressions_lift", tag = "privacy",
    request_body = doc::SuppressionLift,
    responses(
        (status = 204, description = "Lifted (or was not suppressed): the value may be added again"),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn lift(
    State(state): State<AppState>,
    Caller(who): Caller,
    Input(input): Input<LiftSuppression>,
) -> ApiResult<StatusCode> {
    state
        .hub
        .lift_suppression(&who, &input.account, input.values)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/v1/customers/{customer_id}/export",
    operation_id = "customers_export_one", tag = "privacy",
    params(
        ("customer_id" = doc::VendorId, Path, description = "A customer id, or the caller's own id with id_type=vendor"),
        doc::CustomerAddressing,
    ),
    responses(
        (status = 200, description = "Everything the hub holds about the person", body = doc::PersonExport),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn export(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
    params: Params,
) -> ApiResult<Response> {
    let target = target(raw, &params)?;
    let (customer_id, body) = state.hub.export_customer(&who, &target).await?;
    Ok(export_attachment(&customer_id, body))
}

/// A person's export as a download named after the customer (the API's and the console's).
pub(crate) fn export_attachment(customer_id: &str, document: Value) -> Response {
    let mut response = Json(document).into_response();
    // Customer ids are `CUSTOMER-<uuid>`: always a valid header value.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{customer_id}.json\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
