//! Merging two customers from a customer's page: find the other one (the list's search,
//! within the same account), preview the result — the domain's own merge rule applied to
//! the two records, nothing stored — then merge through `Hub::merge_customers`, as
//! `POST /v1/customers/{id}/merge` does.

use super::compare::CompareRow;
use super::customers::{display_name, text};
use super::session::{Signed, SignedForm};
use super::{render, Frame};
use crate::domain::customer::Prefer;
use crate::domain::{time, CustomerId};
use crate::error::ApiError;
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::service::customers::resolve::CustomerMerge;
use crate::service::customers::{CustomerListParams, CustomerRef};
use crate::service::sessions::Session;
use crate::storage::StoredCustomer;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

pub struct Preview {
    from: String,
    rows: Vec<CompareRow>,
}

#[derive(Template)]
#[template(path = "console/merge.html")]
struct MergePage {
    frame: Frame,
    customer_id: String,
    name: String,
    q: String,
    error: Option<String>,
    /// (id, name, email, phone)
    candidates: Vec<(String, String, String, String)>,
    preview: Option<Preview>,
}

async fn page(
    state: &AppState,
    session: &Session,
    id: &str,
    params: HashMap<String, String>,
    error: Option<ApiError>,
) -> Response {
    let who = &session.key.principal;
    let Some(survivor_id) = CustomerId::parse(id) else {
        return (StatusCode::NOT_FOUND, "customer not found").into_response();
    };
    let survivor = match state
        .hub
        .get_customer(who, &CustomerRef::Id(survivor_id.clone()))
        .await
    {
        Ok(found) => found,
        Err(err) if err.status.is_client_error() => {
            return (err.status, err.detail).into_response()
        }
        Err(err) => return err.into_response(),
    };
    let record = survivor.record();
    let q = params.get("q").cloned().unwrap_or_default();
    let mut refusal = error;
    // Candidates: the search within the survivor's account, the survivor left out.
    let mut candidates = Vec::new();
    if !q.trim().is_empty() {
        let mut search = HashMap::from([
            ("q".to_owned(), q.clone()),
            ("page_size".to_owned(), "20".to_owned()),
        ]);
        if let Some(account) = record["account_id"].as_str() {
            search.insert("account_id".into(), account.to_owned());
        }
        match state
            .hub
            .list_customers(who, CustomerListParams(search))
            .await
        {
            Ok(found) => {
                candidates = found
                    .customers
                    .iter()
                    .map(StoredCustomer::record)
                    .filter(|c| c["customer_id"] != record["customer_id"])
                    .map(|c| {
                        (
                            text(&c, "customer_id"),
                            display_name(&c),
                            text(&c, "email"),
                            text(&c, "phone"),
                        )
                    })
                    .collect();
            }
            Err(err) if err.status.is_client_error() => refusal = Some(err),
            Err(err) => return err.into_response(),
        }
    }
    let mut preview = None;
    if let Some(from) = params.get("from").and_then(|f| CustomerId::parse(f)) {
        match state
            .hub
            .get_customer(who, &CustomerRef::Id(from.clone()))
            .await
        {
            Ok(other) if other.customer.customer_id != survivor.customer.customer_id => {
                // The rule the merge applies: the survivor's values win, empty fields
                // are filled, lists united.
                let merged = survivor
                    .customer
                    .absorbing(&other.customer, Prefer::Existing, None, time::now())
                    .unwrap_or_else(|| survivor.customer.clone());
                let merged = StoredCustomer {
                    customer: merged,
                    vendor_customer_id: None,
                }
                .record();
                let other = other.record();
                preview = Some(Preview {
                    from: from.to_string(),
                    rows: super::compare::rows(&record, &other, Some(&merged)),
                });
            }
            Ok(_) => {
                refusal = Some(ApiError::conflict(
                    "merge_refused",
                    "a customer cannot absorb itself",
                ))
            }
            Err(err) if err.status.is_client_error() => refusal = Some(err),
            Err(err) => return err.into_response(),
        }
    }
    let status = refusal.as_ref().map_or(StatusCode::OK, |r| r.status);
    render(
        status,
        &MergePage {
            frame: Frame::signed(session, "customers"),
            customer_id: survivor_id.to_string(),
            name: display_name(&record),
            q,
            error: refusal.map(|r| r.detail),
            candidates,
            preview,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => page(&state, &session, &id, params, None).await,
        Err(err) => err.into_response(),
    }
}

pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let (Some(survivor), Some(from)) = (
        CustomerId::parse(&id),
        form.get("from").and_then(|f| CustomerId::parse(f)),
    ) else {
        return page(
            &state,
            &session,
            &id,
            form,
            Some(ApiError::not_found("customer")),
        )
        .await;
    };
    let input = CustomerMerge { from };
    match state
        .hub
        .merge_customers(&session.actor(), &CustomerRef::Id(survivor), input)
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/customers/{id}?merged=1")).into_response(),
        Err(err) if err.status.is_client_error() => {
            page(&state, &session, &id, form, Some(err)).await
        }
        Err(err) => err.into_response(),
    }
}
