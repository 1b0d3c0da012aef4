//! A customer's erasure and export from the console (SPEC sections 9 and 10): the same
//! use cases as `POST /v1/customers/{id}/erase`, `GET /v1/erasures/{id}` and
//! `GET /v1/customers/{id}/export`.

use super::history::when;
use super::session::{Signed, SignedForm};
use super::{render, Frame};
use crate::domain::{CustomerId, ErasureId};
use crate::error::ApiError;
use crate::http::AppState;
use crate::service::customers::{CustomerRef, ErasureInput};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

pub struct ProductPart {
    name: String,
    status: &'static str,
    when: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/erasure.html")]
struct ErasurePage {
    frame: Frame,
    erasure_id: String,
    customer_id: String,
    completed: Option<String>,
    requested: String,
    reason: Option<String>,
    suppressed: bool,
    products: Vec<ProductPart>,
}

/// What each product's status means, for people.
fn said(status: &str) -> &'static str {
    match status {
        "acknowledged" => "Told, and it confirmed",
        "pending" => "Being told",
        "failed" => "Could not be told (tell its owner another way)",
        "unreachable" => "Has no webhook: tell its owner another way",
        "requester" => "Asked for the erasure",
        _ => "Unknown",
    }
}

fn refusal(err: ApiError) -> Response {
    if err.status.is_server_error() {
        return err.into_response();
    }
    (err.status, err.detail).into_response()
}

/// Erases the customer; the answer is its receipt's page.
pub async fn erase(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let Some(customer) = CustomerId::parse(&id) else {
        return refusal(ApiError::not_found("customer"));
    };
    let reason = form
        .get("reason")
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return refusal(ApiError::invalid_field(
            "reason",
            "must be at most 200 characters",
        ));
    }
    let input = ErasureInput {
        reason,
        suppress: form.contains_key("suppress"),
    };
    match state
        .hub
        .erase_customer(&session.actor(), &CustomerRef::Id(customer), input)
        .await
    {
        Ok(view) => Redirect::to(&format!("/console/erasures/{}", view.erasure_id)).into_response(),
        Err(err) => refusal(err),
    }
}

pub async fn receipt(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
) -> Response {
    let Some(erasure) = ErasureId::parse(&id) else {
        return refusal(ApiError::not_found("erasure"));
    };
    let view = match state
        .hub
        .get_erasure(&session.key.principal, &erasure)
        .await
    {
        Ok(view) => view,
        Err(err) => return refusal(err),
    };
    let ids: Vec<String> = view.products.iter().map(|p| p.product_id.clone()).collect();
    let names = match state.hub.store().product_names(&ids).await {
        Ok(names) => names,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let products = view
        .products
        .iter()
        .map(|p| ProductPart {
            name: names
                .get(&p.product_id)
                .cloned()
                .unwrap_or_else(|| p.product_id.clone()),
            status: said(&p.status),
            when: p.acknowledged.as_ref().map(when),
            error: p.error.clone(),
        })
        .collect();
    render(
        StatusCode::OK,
        &ErasurePage {
            frame: Frame::signed(&session, "customers"),
            erasure_id: view.erasure_id.clone(),
            customer_id: view.customer_id.clone(),
            completed: view.completed.as_ref().map(when),
            requested: when(&view.requested),
            reason: view.reason.clone(),
            suppressed: view.suppressed,
            products,
        },
    )
}

/// Everything held about the customer, as the API's export, to download.
pub async fn export(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
) -> Response {
    let Some(customer) = CustomerId::parse(&id) else {
        return refusal(ApiError::not_found("customer"));
    };
    match state
        .hub
        .export_customer(&session.key.principal, &CustomerRef::Id(customer))
        .await
    {
        Ok((id, document)) => crate::http::export_attachment(&id, document),
        Err(err) => refusal(err),
    }
}
