//! The imports page (SPEC sections 9 and 12): a CSV file chosen, its header and first
//! rows shown with a field picker per column (htmx posts the file as soon as it is
//! chosen), the on-duplicate choice, then the import's page with a live progress bar and
//! its error file. The same use cases as `POST /v1/imports`, `GET /v1/imports/{id}` and
//! `GET /v1/imports/{id}/errors`; and the customers page's export button.

use super::customers::account_choices;
use super::history::when;
use super::session::{checked_fields, Signed};
use super::{is_htmx, refusal, render, Frame};
use crate::domain::import_file::{guess_field, header_of, preview, IMPORT_FIELDS};
use crate::domain::tenancy::{Actor, Principal};
use crate::domain::{AccountId, ImportId};
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::service::customers::input::OnDuplicate;
use crate::service::customers::CustomerListParams;
use crate::storage::ImportView;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Rows the preview shows under the header.
const PREVIEW_ROWS: usize = 5;

pub struct ImportRow {
    id: String,
    started: String,
    status: &'static str,
    summary: String,
}

#[derive(Template)]
#[template(path = "console/imports.html")]
struct ImportsPage {
    frame: Frame,
    accounts: Vec<(String, String)>,
    account_id: String,
    imports: Vec<ImportRow>,
    error: Option<String>,
}

pub struct Column {
    index: usize,
    header: String,
    /// The field chosen for it ("" to skip).
    field: String,
}

#[derive(Template)]
#[template(path = "console/import_preview.html")]
struct Preview {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
    total: u64,
    fields: Vec<&'static str>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    frame: Frame,
    p: Progress,
}

#[derive(Template)]
#[template(path = "console/import_progress.html")]
struct ProgressFragment {
    p: Progress,
}

/// An import's progress as its page shows it.
pub struct Progress {
    id: String,
    running: bool,
    rows: i64,
    processed: i64,
    created: i64,
    merged: i64,
    conflicts: i64,
    failed: i64,
    percent: i64,
    started: String,
    completed: Option<String>,
}

fn progress(view: &ImportView) -> Progress {
    let c = view.counts;
    Progress {
        id: view.import_id.clone(),
        running: view.status == "running",
        rows: view.rows,
        processed: c.processed,
        created: c.created,
        merged: c.merged,
        conflicts: c.conflicts,
        failed: c.failed,
        percent: if view.rows > 0 {
            c.processed * 100 / view.rows
        } else {
            100
        },
        started: when(&view.started),
        completed: view.completed.as_ref().map(when),
    }
}

/// `GET /console/imports`: the upload form and the account's imports, newest first.
pub async fn list(
    State(state): State<AppState>,
    Signed(session): Signed,
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
    page(&state, &session, accounts, params, StatusCode::OK, None).await
}

async fn page(
    state: &AppState,
    session: &crate::service::sessions::Session,
    accounts: Vec<(String, String)>,
    params: HashMap<String, String>,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let who = &session.key.principal;
    // `account_choices` filled it in when it could.
    let account_id = params.get("account_id").cloned().unwrap_or_default();
    let mut imports = Vec::new();
    if let Some(account) = AccountId::parse(&account_id) {
        match state.hub.list_imports(who, &account, None, 20).await {
            Ok(page) => {
                imports = page
                    .items
                    .iter()
                    .map(|view| {
                        let c = view.counts;
                        ImportRow {
                            id: view.import_id.clone(),
                            started: when(&view.started),
                            status: if view.status == "running" {
                                "Running"
                            } else {
                                "Completed"
                            },
                            summary: format!(
                                "{} of {} rows: {} created, {} merged, {} conflicts, {} failed",
                                c.processed, view.rows, c.created, c.merged, c.conflicts, c.failed
                            ),
                        }
                    })
                    .collect()
            }
            Err(err) if err.status.is_client_error() => {}
            Err(err) => return err.into_response(),
        }
    }
    render(
        status,
        &ImportsPage {
            frame: Frame::signed(session, "imports"),
            accounts,
            account_id,
            imports,
            error,
        },
    )
}

/// The form's text fields (CSRF-checked) and its file.
async fn read_form(
    session: &crate::service::sessions::Session,
    mut form: Multipart,
) -> Result<(HashMap<String, String>, Bytes), Response> {
    let mut fields = Vec::new();
    let mut file = Bytes::new();
    while let Some(field) = form.next_field().await.map_err(|err| {
        (
            err.status(),
            "The file could not be read: an import file is limited to 50 MB.",
        )
            .into_response()
    })? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|err| {
            (
                err.status(),
                "The file could not be read: an import file is limited to 50 MB.",
            )
                .into_response()
        })?;
        if name == "file" {
            file = bytes;
        } else {
            let value = String::from_utf8_lossy(&bytes).into_owned();
            fields.push((name, value));
        }
    }
    let fields = checked_fields(session, fields)?;
    Ok((fields, file))
}

/// `POST /console/imports/preview` (htmx, when a file is chosen): the header and the
/// first rows, a field picker per column.
pub async fn show_preview(Signed(session): Signed, form: Multipart) -> Response {
    let (_, file) = match read_form(&session, form).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let own_ids = matches!(session.key.principal, Principal::Product(_));
    let fields: Vec<&'static str> = IMPORT_FIELDS
        .iter()
        .copied()
        .filter(|f| own_ids || *f != "id")
        .collect();
    match preview(&file, PREVIEW_ROWS) {
        Ok(found) => render(
            StatusCode::OK,
            &Preview {
                columns: found
                    .header
                    .iter()
                    .enumerate()
                    .map(|(index, header)| Column {
                        index,
                        header: header.clone(),
                        field: guess_field(header, own_ids)
                            .filter(|f| own_ids || *f != "id")
                            .unwrap_or_default()
                            .to_owned(),
                    })
                    .collect(),
                rows: found.rows,
                total: found.total,
                fields,
                error: None,
            },
        ),
        Err(err) => render(
            StatusCode::OK,
            &Preview {
                columns: Vec::new(),
                rows: Vec::new(),
                total: 0,
                fields,
                error: Some(format!("This file cannot be imported: it {}.", err.message)),
            },
        ),
    }
}

/// `POST /console/imports`: starts the import with the chosen fields; its page follows.
pub async fn start(
    State(state): State<AppState>,
    Signed(session): Signed,
    form: Multipart,
) -> Response {
    let (fields, file) = match read_form(&session, form).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let who = &session.key.principal;
    let mut params = HashMap::new();
    if let Some(account) = fields.get("account_id") {
        params.insert("account_id".to_owned(), account.clone());
    }
    let accounts = match account_choices(&state, who, &mut params).await {
        Ok(accounts) => accounts,
        Err(err) => return err.into_response(),
    };
    let account = params.get("account_id").and_then(|id| AccountId::parse(id));
    let refused = |message: String| {
        let (state, session, accounts, params) =
            (&state, &session, accounts.clone(), params.clone());
        async move {
            page(
                state,
                session,
                accounts,
                params,
                StatusCode::BAD_REQUEST,
                Some(message),
            )
            .await
        }
    };
    let Some(account) = account else {
        return refused("Choose the account to import into.".into()).await;
    };
    if file.is_empty() {
        return refused("Choose a CSV file to import.".into()).await;
    }
    let on_duplicate = fields
        .get("on_duplicate")
        .and_then(|v| OnDuplicate::parse(v).ok())
        .unwrap_or(OnDuplicate::Conflict);
    // The pickers name each column by its place; the mapping names it by its header.
    let header = header_of(&file);
    let mut mapping = Map::new();
    for (index, column) in header.iter().enumerate() {
        if let Some(field) = fields.get(&format!("column-{index}")) {
            let value = if field.is_empty() {
                Value::Null
            } else {
                Value::String(field.clone())
            };
            mapping.insert(column.clone(), value);
        }
    }
    let actor = Actor {
        key_id: session.key.key_id.clone(),
        principal: who.clone(),
    };
    let mapping = (!mapping.is_empty()).then_some(mapping);
    match state
        .hub
        .start_import(&actor, account, on_duplicate, &file, mapping.as_ref())
        .await
    {
        Ok(view) => Redirect::to(&format!("/console/imports/{}", view.import_id)).into_response(),
        Err(err) if err.status.is_client_error() => {
            let said = match err.field_errors().first() {
                Some((_, message)) => format!("This file cannot be imported: it {message}."),
                None => err.detail.clone(),
            };
            refused(said).await
        }
        Err(err) => err.into_response(),
    }
}

/// `GET /console/imports/{id}`: the import's progress (a fragment for htmx's polling).
pub async fn show(
    State(state): State<AppState>,
    Signed(session): Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = ImportId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "No such import.").into_response();
    };
    let view = match state.hub.get_import(&session.key.principal, &id).await {
        Ok(view) => view,
        Err(err) => return refusal(err),
    };
    if is_htmx(&headers) {
        return render(StatusCode::OK, &ProgressFragment { p: progress(&view) });
    }
    render(
        StatusCode::OK,
        &ImportPage {
            frame: Frame::signed(&session, "imports"),
            p: progress(&view),
        },
    )
}

/// `GET /console/imports/{id}/errors`: the error file, as the API serves it.
pub async fn errors(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = ImportId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "No such import.").into_response();
    };
    match state
        .hub
        .import_error_file(&session.key.principal, &id)
        .await
    {
        Ok(chunks) => crate::http::csv_attachment(
            axum::body::Body::from_stream(chunks),
            &format!("{id}-errors.csv"),
        ),
        Err(err) => refusal(err),
    }
}

/// `GET /console/customers/export`: the customers page's list (its account, search and
/// sort) as CSV, as `GET /v1/customers/export` streams it.
pub async fn export(
    State(state): State<AppState>,
    Signed(session): Signed,
    RawQuery(query): RawQuery,
) -> Response {
    let who = &session.key.principal;
    let mut params = match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(err) => return err.into_response(),
    };
    params.remove("cursor");
    params.remove("page_size");
    if let Err(err) = account_choices(&state, who, &mut params).await {
        return err.into_response();
    }
    let name = match params.get("account_id") {
        Some(id) if AccountId::parse(id).is_some() => format!("customers-{id}.csv"),
        _ => "customers.csv".to_owned(),
    };
    match state
        .hub
        .export_customer_list(who, CustomerListParams(params))
        .await
    {
        Ok(chunks) => crate::http::csv_attachment(
            axum::body::Body::from_stream(chunks.map(|chunk| {
                chunk.map(|c| c.bytes).map_err(|err| {
                    tracing::error!(error = %err, "a console export stopped");
                    std::io::Error::other("the export stopped")
                })
            })),
            &name,
        ),
        Err(err) => refusal(err),
    }
}
