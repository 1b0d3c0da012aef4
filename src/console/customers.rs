//! The customers page: an account's list with search, sort, paging and the total, through
//! the same `list_customers` use case as `GET /v1/customers` (same keyset paging, same
//! count, same tenancy); a partner or admin picks the account first.

use super::session::Signed;
use super::{is_htmx, render};
use crate::domain::tenancy::Principal;
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::service::accounts::{TenantQuery, MAX_PAGE_SIZE};
use crate::service::customers::CustomerListParams;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const PAGE_SIZE: &str = "25";
const SORTS: [(&str, &str); 6] = [
    ("created", "Oldest first"),
    ("-created", "Newest first"),
    ("last_name", "Last name A–Z"),
    ("-last_name", "Last name Z–A"),
    ("first_name", "First name A–Z"),
    ("-first_name", "First name Z–A"),
];

pub struct Row {
    id: String,
    name: String,
    email: String,
    phone: String,
    tags: String,
    updated: String,
    updated_short: String,
}

#[derive(Template)]
#[template(path = "console/customers_table.html")]
struct Table {
    export_link: String,
    rows: Vec<Row>,
    total: i64,
    error: Option<String>,
    first_page: Option<String>,
    next_page: Option<String>,
}

#[derive(Template)]
#[template(path = "console/customers.html")]
struct Page<'a> {
    frame: super::Frame,
    accounts: Vec<(String, String)>,
    account_id: String,
    q: String,
    sort: String,
    sorts: Vec<(&'a str, &'a str)>,
    /// The export of what the list shows (its account, search and sort).
    export_link: String,
    // The table, as `customers_table.html` reads it.
    rows: Vec<Row>,
    total: i64,
    error: Option<String>,
    first_page: Option<String>,
    next_page: Option<String>,
}

pub(super) fn text(record: &Value, field: &str) -> String {
    match &record[field] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// A customer's name as pages show it: first and last, or "(no name)".
pub(super) fn display_name(record: &Value) -> String {
    let name = [text(record, "first_name"), text(record, "last_name")]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        "(no name)".into()
    } else {
        name
    }
}

fn row(record: &Value) -> Row {
    let updated = text(record, "updated");
    Row {
        id: text(record, "customer_id"),
        name: display_name(record),
        email: text(record, "email"),
        phone: text(record, "phone"),
        tags: text(record, "tags"),
        updated_short: updated.get(..10).unwrap_or_default().to_owned(),
        updated,
    }
}

/// A link to this page with the given parameters.
fn link(params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    format!("/console/customers?{query}")
}

/// The accounts an admin or partner picks from (empty for other keys), with
/// `account_id` defaulted when the request names none: an account key's own account,
/// else (admin, partner) the first it reaches.
pub(super) async fn account_choices(
    state: &AppState,
    who: &Principal,
    params: &mut std::collections::HashMap<String, String>,
) -> crate::error::ApiResult<Vec<(String, String)>> {
    if let Principal::Account(own) = who {
        params
            .entry("account_id".into())
            .or_insert_with(|| own.to_string());
    }
    if !matches!(who, Principal::Admin | Principal::Partner(_)) {
        return Ok(Vec::new());
    }
    let query = TenantQuery {
        partner_id: None,
        page_size: MAX_PAGE_SIZE,
        cursor: None,
    };
    let accounts: Vec<(String, String)> = state
        .hub
        .list_accounts(who, query)
        .await?
        .items
        .into_iter()
        .map(|a| (a.account_id.to_string(), a.name.as_str().to_owned()))
        .collect();
    if !params.contains_key("account_id") {
        if let Some((first, _)) = accounts.first() {
            params.insert("account_id".into(), first.clone());
        }
    }
    Ok(accounts)
}

pub async fn list(
    State(state): State<AppState>,
    Signed(session): Signed,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let who = &session.key.principal;
    let mut params = match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(err) => return err.into_response(),
    };
    let accounts = match account_choices(&state, who, &mut params).await {
        Ok(accounts) => accounts,
        Err(err) => return err.into_response(),
    };
    params
        .entry("page_size".into())
        .or_insert_with(|| PAGE_SIZE.into());
    let account_id = params.get("account_id").cloned().unwrap_or_default();
    let q = params.get("q").cloned().unwrap_or_default();
    let sort = params
        .get("sort")
        .cloned()
        .unwrap_or_else(|| "created".into());
    let cursor = params.get("cursor").cloned();

    let mut status = StatusCode::OK;
    let (rows, total, error, next_page) = match state
        .hub
        .list_customers(who, CustomerListParams(params))
        .await
    {
        Ok(page) => {
            let rows = page.customers.iter().map(|c| row(&c.record())).collect();
            let next = page.next_cursor.as_deref().map(|next| {
                link(&[
                    ("account_id", &account_id),
                    ("q", &q),
                    ("sort", &sort),
                    ("cursor", next),
                ])
            });
            (rows, page.total_results, None, next)
        }
        // Refused as the API refuses it (the same status), said in words.
        Err(err) if err.status.is_client_error() => {
            status = err.status;
            (Vec::new(), 0, Some(err.detail.clone()), None)
        }
        Err(err) => return err.into_response(),
    };
    let first_page =
        cursor.map(|_| link(&[("account_id", &account_id), ("q", &q), ("sort", &sort)]));
    // The export of what the list shows: its account, search and sort.
    let export_link = format!(
        "/console/customers/export?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                [("account_id", &account_id), ("q", &q), ("sort", &sort)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
            )
            .finish()
    );
    if is_htmx(&headers) {
        return render(
            status,
            &Table {
                export_link,
                rows,
                total,
                error,
                first_page,
                next_page,
            },
        );
    }
    render(
        status,
        &Page {
            frame: super::Frame::signed(&session, "customers"),
            accounts,
            account_id,
            q,
            sort,
            sorts: SORTS.to_vec(),
            export_link,
            rows,
            total,
            error,
            first_page,
            next_page,
        },
    )
}
