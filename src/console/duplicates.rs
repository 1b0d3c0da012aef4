//! The duplicates queue: the account's pending conflict records one at a time, each beside
//! the customer it matched with the fields that differ marked; merge (preferring either
//! side, previewed first as a dry run), keep, discard; then the next one. The same use
//! cases as `/v1/conflicts`.

use super::compare::CompareRow;
use super::customers::{account_choices, text};
use super::render;
use super::session::{Signed, SignedForm};
use crate::domain::customer::Prefer;
use crate::domain::CustomerId;
use crate::error::ApiError;
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::service::customers::resolve::ConflictMerge;
use crate::service::customers::{CustomerListParams, CustomerRef};
use crate::service::sessions::Session;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use std::collections::HashMap;

pub struct Pair {
    conflict_id: String,
    matched_on: String,
    rows: Vec<CompareRow>,
    preview: Option<()>,
    /// (action path, button text, prefer).
    actions: Vec<(&'static str, &'static str, Option<&'static str>)>,
}

#[derive(Template)]
#[template(path = "console/duplicates.html")]
struct Queue<'a> {
    frame: super::Frame,
    accounts: Vec<(String, String)>,
    account_id: String,
    total: i64,
    notice: Option<&'a str>,
    error: Option<String>,
    pair: Option<Pair>,
    next: Option<String>,
}

/// The queue page: the first pending record (after `cursor`), or nothing left; with a
/// merge preview when `preview` names which side wins.
async fn queue(
    state: &AppState,
    session: &Session,
    mut params: HashMap<String, String>,
    preview: Option<(String, Prefer)>,
    refusal: Option<ApiError>,
) -> Response {
    let who = &session.actor();
    let notice = match params.remove("done").as_deref() {
        Some("merged") => Some("Merged into the existing customer."),
        Some("kept") => Some("Kept as a separate customer."),
        Some("discarded") => Some("The new record was discarded."),
        _ => None,
    };
    let accounts = match account_choices(state, who, &mut params).await {
        Ok(accounts) => accounts,
        Err(err) => return err.into_response(),
    };
    let account_id = params.get("account_id").cloned().unwrap_or_default();
    params.insert("page_size".into(), "1".into());
    let mut status = refusal.as_ref().map_or(StatusCode::OK, |r| r.status);
    let mut error = refusal.map(|r| r.detail);
    let (pair, total, next) = match state
        .hub
        .list_conflicts(who, CustomerListParams(params))
        .await
    {
        Ok(page) => {
            let next = page
                .next_cursor
                .as_deref()
                .map(|c| format!("/console/duplicates?account_id={account_id}&cursor={c}"));
            let pair = match page.customers.first() {
                Some(record) => match pair_of(state, session, &record.record(), preview).await {
                    Ok(pair) => Some(pair),
                    Err(err) => {
                        status = err.status;
                        error = Some(err.detail);
                        None
                    }
                },
                None => None,
            };
            (pair, page.total_results, next)
        }
        Err(err) if err.status.is_client_error() => {
            status = err.status;
            error = Some(err.detail);
            (None, 0, None)
        }
        Err(err) => return err.into_response(),
    };
    render(
        status,
        &Queue {
            frame: super::Frame::signed(&session, "duplicates"),
            accounts,
            account_id,
            total,
            notice,
            error,
            pair,
            next,
        },
    )
}

async fn pair_of(
    state: &AppState,
    session: &Session,
    record: &Value,
    preview: Option<(String, Prefer)>,
) -> Result<Pair, ApiError> {
    let who = &session.actor();
    let conflict_id = text(record, "customer_id");
    let existing_id = record["conflict"]["conflicting_customer_id"]
        .as_str()
        .and_then(CustomerId::parse)
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let existing = state
        .hub
        .get_customer(who, &CustomerRef::Id(existing_id))
        .await?
        .record();
    let merged = match &preview {
        Some((id, prefer)) if *id == conflict_id => {
            let id = CustomerId::parse(id).ok_or_else(|| ApiError::not_found("conflict"))?;
            let dry_run = ConflictMerge {
                prefer: *prefer,
                dry_run: true,
            };
            Some(state.hub.merge_conflict(who, &id, dry_run).await?.record())
        }
        _ => None,
    };
    let matched_on = record["conflict"]["matched_on"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["field"].as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let rows = super::compare::rows(&existing, record, merged.as_ref());
    let mut actions = match (&merged, &preview) {
        (Some(_), Some((_, Prefer::Existing))) => {
            vec![("merge", "Merge as previewed", Some("existing"))]
        }
        (Some(_), Some((_, Prefer::Incoming))) => {
            vec![("merge", "Merge as previewed", Some("incoming"))]
        }
        _ => vec![],
    };
    actions.extend([
        (
            "preview",
            "Preview merge, keeping existing values",
            Some("existing"),
        ),
        (
            "preview",
            "Preview merge, taking the new values",
            Some("incoming"),
        ),
        ("keep", "Keep as a separate customer", None),
        ("discard", "Discard the new record", None),
    ]);
    Ok(Pair {
        conflict_id,
        matched_on: if matched_on.is_empty() {
            "an identifier".into()
        } else {
            matched_on
        },
        rows,
        preview: merged.map(|_| ()),
        actions,
    })
}

pub async fn show(
    State(state): State<AppState>,
    Signed(session): Signed,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => queue(&state, &session, params, None, None).await,
        Err(err) => err.into_response(),
    }
}

fn prefer_of(form: &HashMap<String, String>) -> Prefer {
    match form.get("prefer").map(String::as_str) {
        Some("incoming") => Prefer::Incoming,
        _ => Prefer::Existing,
    }
}

/// A resolution posted from the queue: `preview` (a dry-run merge), `merge`, `keep`,
/// `discard`; then the queue again (the next record, or the preview).
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let back: HashMap<String, String> = form
        .get("account_id")
        .filter(|a| !a.is_empty())
        .map(|a| HashMap::from([("account_id".to_owned(), a.clone())]))
        .unwrap_or_default();
    let Some(conflict) = CustomerId::parse(&id).filter(CustomerId::is_conflict) else {
        return queue(&state, &session, back, None, None).await;
    };
    let who = &session.actor();
    let outcome = match action.as_str() {
        "preview" => {
            return queue(&state, &session, back, Some((id, prefer_of(&form))), None).await
        }
        "merge" => {
            let merge = ConflictMerge {
                prefer: prefer_of(&form),
                dry_run: false,
            };
            state
                .hub
                .merge_conflict(who, &conflict, merge)
                .await
                .map(|_| "merged")
        }
        "keep" => state
            .hub
            .keep_conflict(who, &conflict)
            .await
            .map(|_| "kept"),
        "discard" => state
            .hub
            .discard_conflict(who, &conflict)
            .await
            .map(|()| "discarded"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match outcome {
        Ok(done) => {
            let account = back
                .get("account_id")
                .map(|a| format!("&account_id={a}"))
                .unwrap_or_default();
            Redirect::to(&format!("/console/duplicates?done={done}{account}")).into_response()
        }
        Err(err) if err.status.is_client_error() => {
            queue(&state, &session, back, None, Some(err)).await
        }
        Err(err) => err.into_response(),
    }
}
