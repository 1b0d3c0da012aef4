//! A customer's erasure and export from the console (SPEC sections 9 and 10): the same
//! use cases as `POST /v1/customers/{id}/erase`, `GET /v1/erasures/{id}` and
//! `GET /v1/customers/{id}/export`.

use super::history::when;
use super::session::{Signed, SignedForm};
use super::{refusal, render, Frame};
use crate::domain::customer::Email;
use crate::domain::tenancy::Principal;
use crate::domain::{AccountId, CustomerId, ErasureId};
use crate::error::ApiError;
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::service::customers::{CustomerRef, ErasureInput, SuppressedValue};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
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
    account_id: String,
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
            account_id: view.account_id.clone(),
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

/// The receipts shown per page of the privacy page.
const ERASURES_PER_PAGE: i64 = 25;
/// The newest suppressions listed (the count says how many there are).
const SUPPRESSIONS_SHOWN: i64 = 100;

pub struct ErasureRow {
    erasure_id: String,
    requested: String,
    completed: bool,
    told: String,
}

pub struct SuppressionRow {
    kind: &'static str,
    since: String,
    erasure_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/privacy.html")]
struct PrivacyPage {
    frame: Frame,
    accounts: Vec<(String, String)>,
    account_id: String,
    notice: Option<&'static str>,
    value: String,
    value_error: Option<String>,
    erasures: Vec<ErasureRow>,
    next_page: Option<String>,
    first_page: Option<String>,
    suppressions: Vec<SuppressionRow>,
    suppression_total: i64,
}

/// How the products of a receipt stand, in words ("2 confirmed, 1 being told").
fn told(view: &crate::storage::ErasureView) -> String {
    let count = |status: &str| view.products.iter().filter(|p| p.status == status).count();
    let parts: Vec<String> = [
        ("acknowledged", "confirmed"),
        ("pending", "being told"),
        ("failed", "could not be told"),
        ("unreachable", "without a webhook"),
    ]
    .iter()
    .filter_map(|(status, words)| {
        let n = count(status);
        (n > 0).then(|| format!("{n} {words}"))
    })
    .collect();
    if parts.is_empty() {
        "No product to tell".to_owned()
    } else {
        parts.join(", ")
    }
}

/// What a lift did, for the page that follows it.
enum Lift {
    None,
    Done(bool),
    Refused(String, String),
}

/// The account's erasures (newest first, paged) and suppressions, with the lift form.
async fn privacy_page(
    state: &AppState,
    session: &crate::service::sessions::Session,
    mut params: std::collections::HashMap<String, String>,
    lift: Lift,
) -> Response {
    let who = &session.key.principal;
    let accounts = match super::customers::account_choices(state, who, &mut params).await {
        Ok(accounts) => accounts,
        Err(err) => return err.into_response(),
    };
    let account_id = chosen_account(who, params.get("account_id"));
    let Some(account) = AccountId::parse(&account_id) else {
        return refusal(ApiError::not_found("account"));
    };
    let cursor = params.get("cursor").map(String::as_str);
    let (views, next) = match state
        .hub
        .list_erasures(who, &account, cursor, true, ERASURES_PER_PAGE)
        .await
    {
        Ok(page) => page,
        Err(err) => return refusal(err),
    };
    let (suppressed, suppression_total) = match state
        .hub
        .list_suppressions(who, &account, SUPPRESSIONS_SHOWN)
        .await
    {
        Ok(found) => found,
        Err(err) => return refusal(err),
    };
    let (status, notice, value, value_error) = match lift {
        Lift::None => (StatusCode::OK, None, String::new(), None),
        Lift::Done(true) => (
            StatusCode::OK,
            Some("Lifted: it may be added to this account again."),
            String::new(),
            None,
        ),
        Lift::Done(false) => (
            StatusCode::OK,
            Some("Nothing to lift: that email or phone was not suppressed."),
            String::new(),
            None,
        ),
        Lift::Refused(value, error) => (StatusCode::BAD_REQUEST, None, value, Some(error)),
    };
    render(
        status,
        &PrivacyPage {
            frame: Frame::signed(session, "privacy"),
            accounts,
            next_page: next.map(|c| format!("/console/privacy?account_id={account_id}&cursor={c}")),
            first_page: cursor.map(|_| format!("/console/privacy?account_id={account_id}")),
            account_id,
            notice,
            value,
            value_error,
            erasures: views
                .iter()
                .map(|v| ErasureRow {
                    erasure_id: v.erasure_id.clone(),
                    requested: when(&v.requested),
                    completed: v.completed.is_some(),
                    told: told(v),
                })
                .collect(),
            suppressions: suppressed
                .into_iter()
                .map(|s| SuppressionRow {
                    kind: if s.kind == "email" { "Email" } else { "Phone" },
                    since: when(&s.created),
                    erasure_id: s.erasure_id,
                })
                .collect(),
            suppression_total,
        },
    )
}

pub async fn privacy(
    State(state): State<AppState>,
    Signed(session): Signed,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => privacy_page(&state, &session, params, Lift::None).await,
        Err(err) => refusal(err),
    }
}

/// Lifts the suppression of one email or phone (the form takes either).
pub async fn lift(
    State(state): State<AppState>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let raw = form
        .get("value")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let account_id = chosen_account(&session.key.principal, form.get("account_id"));
    let Some(account) = AccountId::parse(&account_id) else {
        return refusal(ApiError::not_found("account"));
    };
    let value = if raw.is_empty() {
        Err("Enter the email address or phone number to lift.".to_owned())
    } else if raw.contains('@') {
        Email::parse(&raw)
            .map(SuppressedValue::Email)
            .map_err(|e| format!("{e}."))
    } else {
        Ok(SuppressedValue::Phone(raw.clone()))
    };
    let outcome = match value {
        Err(message) => Lift::Refused(raw, message),
        Ok(value) => match state
            .hub
            .lift_suppression(&session.key.principal, &account, vec![value])
            .await
        {
            Ok(lifted) => Lift::Done(lifted),
            Err(err) if err.status == StatusCode::BAD_REQUEST => {
                let detail = field_message(&err);
                Lift::Refused(raw, detail)
            }
            Err(err) => return refusal(err),
        },
    };
    let params = [("account_id".to_owned(), account_id)]
        .into_iter()
        .collect();
    privacy_page(&state, &session, params, outcome).await
}

/// The message of a `400` naming one field, for words next to the form's field.
fn field_message(err: &ApiError) -> String {
    match err.field_errors().into_iter().next() {
        Some((_, message)) => format!("{message}."),
        None => err.detail.clone(),
    }
}

/// The account a privacy page or form is about: an account key's own, else the one asked.
fn chosen_account(principal: &Principal, asked: Option<&String>) -> String {
    match principal {
        Principal::Account(own) => own.to_string(),
        _ => asked.cloned().unwrap_or_default(),
    }
}
