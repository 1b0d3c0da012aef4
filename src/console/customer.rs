//! A customer's page: its fields and facts, an edit form that is a conditional update
//! (`If-Match` with the version the form was opened at: a concurrent change is shown,
//! with what changed, and never overwritten), and delete. The same use cases as
//! `PATCH`/`DELETE /v1/customers/{id}`.

use super::customers::text;
use super::history::{self, HistoryRow, SentRow};
use super::render;
use super::session::{Signed, SignedForm};
use crate::domain::CustomerId;
use crate::error::ApiError;
use crate::http::AppState;
use crate::service::customers::{CustomerPageFacts, CustomerRef, PAGE_HISTORY};
use crate::service::sessions::Session;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The editable fields: (name, label, hint, holds a list).
const FIELDS: [(&str, &str, Option<&str>, bool); 9] = [
    ("first_name", "First name", None, false),
    ("last_name", "Last name", None, false),
    (
        "email",
        "Email",
        Some("Several: separate them with commas"),
        true,
    ),
    (
        "phone",
        "Phone",
        Some("Several: separate them with commas"),
        true,
    ),
    ("address", "Address", None, false),
    ("city", "City", None, false),
    ("state", "State or province", None, false),
    ("country", "Country (two letters)", None, false),
    ("tags", "Tags", Some("Separate them with commas"), true),
];

const NO_CONSENT: &str = "0001-01-01T00:00:00Z";

pub struct Field {
    name: &'static str,
    label: &'static str,
    hint: Option<&'static str>,
    value: String,
    was: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/customer.html")]
struct CustomerPage<'a> {
    frame: super::Frame,
    customer_id: String,
    account_id: Option<String>,
    name: String,
    notice: Option<&'a str>,
    changed: Vec<(&'static str, String, String)>,
    consent: String,
    consented: bool,
    version: i64,
    created: String,
    updated: String,
    created_shown: String,
    updated_shown: String,
    origins: String,
    /// (product name, its id for the customer)
    vendor_ids: Vec<(String, String)>,
    fields: Vec<Field>,
    history: Vec<HistoryRow>,
    sent: Vec<SentRow>,
    /// (when, granted or withdrawn, basis, how, via)
    consent_history: Vec<(String, &'static str, String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct Message<'a> {
    frame: super::Frame,
    heading: &'a str,
    text: String,
}

fn message(session: &Session, status: StatusCode, heading: &str, text: String) -> Response {
    render(
        status,
        &Message {
            frame: super::Frame::signed(session, "customers"),
            heading,
            text,
        },
    )
}

/// A refusal of the service, as a page: its status and its words.
fn refused(session: &Session, err: ApiError) -> Response {
    if err.status.is_server_error() {
        return err.into_response();
    }
    let heading = if err.status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Not possible"
    };
    message(session, err.status, heading, err.detail)
}

fn target(raw: &str) -> Option<CustomerRef> {
    CustomerId::parse(raw).map(CustomerRef::Id)
}

/// The page of `record`, with the form holding `values` (the record's own, unless an
/// edit is being shown again) and `errors` by field.
fn page(
    session: &Session,
    facts: &CustomerPageFacts,
    values: Option<&HashMap<String, String>>,
    errors: &HashMap<String, String>,
    changed: Vec<(&'static str, String, String)>,
    notice: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let record = &facts.stored.record();
    let vendor_ids = &facts.vendor_ids;
    let consent = text(record, "permission_to_contact");
    let consented = match values {
        Some(values) => values.contains_key("permission_to_contact"),
        None => consent != NO_CONSENT,
    };
    let fields = FIELDS
        .iter()
        .map(|(field, label, hint, _)| {
            let stored = text(record, field);
            // Shown again after a refusal: what the user changed stays as they typed
            // it; every other field shows the record as it is now.
            let edited = values.and_then(|v| {
                let typed = v.get(*field)?;
                (Some(typed) != v.get(&format!("was_{field}"))).then(|| typed.clone())
            });
            Field {
                name: field,
                label,
                hint: *hint,
                value: edited.unwrap_or_else(|| stored.clone()),
                was: stored,
                error: errors.get(*field).cloned(),
            }
        })
        .collect();
    render(
        status,
        &CustomerPage {
            frame: super::Frame::signed(session, "customers"),
            customer_id: text(record, "customer_id"),
            account_id: record["account_id"].as_str().map(str::to_owned),
            name: super::customers::display_name(record),
            notice,
            changed,
            consent: if consent == NO_CONSENT {
                "Not given".into()
            } else {
                format!("Given {}", history::when_text(&consent))
            },
            consented,
            version: record["version"].as_i64().unwrap_or_default(),
            created: text(record, "created"),
            updated: text(record, "updated"),
            created_shown: history::when_text(&text(record, "created")),
            updated_shown: history::when_text(&text(record, "updated")),
            // Origins by product name where the page knows it.
            origins: record["origins"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|id| {
                    vendor_ids
                        .iter()
                        .find(|v| v.product_id == id)
                        .map_or_else(|| id.to_owned(), |v| v.product_name.clone())
                })
                .collect::<Vec<_>>()
                .join(", "),
            vendor_ids: vendor_ids
                .iter()
                .map(|v| (v.product_name.clone(), v.vendor_customer_id.clone()))
                .collect(),
            fields,
            history: history::history(&facts.history, PAGE_HISTORY as usize),
            sent: history::sent(&facts.deliveries),
            consent_history: facts
                .consent
                .iter()
                .map(|c| {
                    (
                        history::when_text(c["at"].as_str().unwrap_or_default()),
                        if c["granted"] == Value::Bool(true) {
                            "Granted"
                        } else {
                            "Withdrawn"
                        },
                        text(c, "legal_basis").replace('_', " "),
                        [text(c, "method"), text(c, "text")]
                            .into_iter()
                            .filter(|t| !t.is_empty())
                            .collect::<Vec<_>>()
                            .join(": "),
                        text(c, "via"),
                    )
                })
                .collect(),
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(target) = target(&id) else {
        return refused(&session, ApiError::not_found("customer"));
    };
    match state
        .hub
        .customer_page(&session.key.principal, &target)
        .await
    {
        Ok(facts) => {
            let notice = match query.as_deref() {
                Some("saved=1") => Some("Saved."),
                Some("merged=1") => Some("Merged: the other customer is now part of this one."),
                _ => None,
            };
            page(
                &session,
                &facts,
                None,
                &HashMap::new(),
                Vec::new(),
                notice,
                StatusCode::OK,
            )
        }
        Err(err) => refused(&session, err),
    }
}

/// The merge patch of what the form changed: each field whose value differs from the one
/// the form was opened with (`was_<field>`); blank clears; lists split on commas.
fn patch_of(form: &HashMap<String, String>, record: &Value) -> Map<String, Value> {
    let mut patch = Map::new();
    for (field, _, _, list) in FIELDS {
        let (Some(value), was) = (form.get(field), form.get(&format!("was_{field}"))) else {
            continue;
        };
        if Some(value) == was {
            continue;
        }
        let value = value.trim();
        let json = if list {
            Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect(),
            )
        } else if value.is_empty() {
            Value::Null
        } else {
            Value::String(value.to_owned())
        };
        patch.insert(field.to_owned(), json);
    }
    let consent = form.contains_key("permission_to_contact");
    if consent != (text(record, "permission_to_contact") != NO_CONSENT) {
        patch.insert("permission_to_contact".into(), Value::Bool(consent));
    }
    patch
}

/// What changed between the version the form was opened at and now.
fn changes(form: &HashMap<String, String>, now: &Value) -> Vec<(&'static str, String, String)> {
    FIELDS
        .iter()
        .filter_map(|(field, label, _, _)| {
            let was = form
                .get(&format!("was_{field}"))
                .cloned()
                .unwrap_or_default();
            let current = text(now, field);
            let shown = |v: String| {
                if v.is_empty() {
                    "(empty)".to_owned()
                } else {
                    v
                }
            };
            (was != current).then(|| (*label, shown(was), shown(current)))
        })
        .collect()
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let Some(target) = target(&id) else {
        return refused(&session, ApiError::not_found("customer"));
    };
    let who = &session.actor();
    let facts = match state.hub.customer_page(who, &target).await {
        Ok(facts) => facts,
        Err(err) => return refused(&session, err),
    };
    let current = facts.stored.record();
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let patch = patch_of(&form, &current);
    if patch.is_empty() {
        return Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response();
    }
    match state
        .hub
        .update_customer(who, &target, patch, version)
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/customers/{id}?saved=1")).into_response(),
        // Changed meanwhile: show what changed, keep the user's edits, and offer the
        // current version to save over.
        Err(err) if err.status == StatusCode::PRECONDITION_FAILED => page(
            &session,
            &facts,
            Some(&form),
            &HashMap::new(),
            changes(&form, &current),
            None,
            StatusCode::CONFLICT,
        ),
        Err(err) if err.status.is_client_error() && err.extensions.contains_key("errors") => {
            let errors: HashMap<String, String> = err.field_errors().into_iter().collect();
            page(
                &session,
                &facts,
                Some(&form),
                &errors,
                Vec::new(),
                None,
                err.status,
            )
        }
        Err(err) => refused(&session, err),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let Some(target) = target(&id) else {
        return refused(&session, ApiError::not_found("customer"));
    };
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    match state
        .hub
        .delete_customer(&session.key.principal, &target, version)
        .await
    {
        Ok(()) => Redirect::to("/console/customers").into_response(),
        Err(err) if err.status == StatusCode::PRECONDITION_FAILED => message(
            &session,
            StatusCode::CONFLICT,
            "Changed meanwhile",
            "Someone changed this customer after you opened it, so it was not deleted. Open it again to see the change.".into(),
        ),
        Err(err) => refused(&session, err),
    }
}
