//! SPEC section 12, imports: `POST /v1/imports` (a CSV body, or a multipart form with
//! its `file` and an optional `mapping`), and the import's progress, list and error
//! file. Only this route takes bodies up to 50 MB.

use super::extract::{Caller, Params, PathParams};
use super::AppState;
use crate::domain::cursor::TimeCursor;
use crate::domain::{AccountId, ImportId};
use crate::error::{ApiError, ApiResult};
use crate::http::openapi as doc;
use crate::http::openapi::problem;
use crate::service::customers::input::OnDuplicate;
use crate::service::imports::import_json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An import file's largest size (SPEC section 12).
pub const MAX_IMPORT_BYTES: usize = 50 * 1024 * 1024;

/// The media types a CSV body may come as (spreadsheets and browsers name it variously).
const CSV_TYPES: [&str; 5] = [
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
];

pub fn router() -> OpenApiRouter<AppState> {
    let (schemas, paths, upload) = routes!(start);
    OpenApiRouter::new()
        .routes((
            schemas,
            paths,
            upload.layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        ))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(errors))
}

#[utoipa::path(
    post, path = "/v1/imports",
    operation_id = "imports_create", tag = "imports",
    params(
        ("account_id" = doc::AccountId, Query),
        ("on_duplicate" = Option<doc::OnDuplicate>, Query, description = "What a row that duplicates a customer does (default conflict)"),
    ),
    request_body(
        description = "A CSV file (UTF-8, optional BOM, a header row, `,` or `;` separated), up to 50 MB: \
            the body itself, or the `file` part of a form with an optional `mapping` part",
        content(
            (doc::CsvFile = "text/csv"),
            (doc::ImportForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 202, description = "Stored; the rows are written in the background",
            body = doc::Import,
            headers(("Location" = String, description = "The import's progress"))),
        (status = 400, response = problem::BadRequest),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
    ),
)]
async fn start(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: Params,
    request: Request,
) -> ApiResult<Response> {
    let account: AccountId = params.required_id("account_id")?;
    let on_duplicate = params
        .parse("on_duplicate", OnDuplicate::parse)?
        .unwrap_or(OnDuplicate::Conflict);
    let (content, mapping) = read_upload(request, &state).await?;
    let view = state
        .hub
        .start_import(&who, account, on_duplicate, &content, mapping.as_ref())
        .await?;
    let location = format!("/v1/imports/{}", view.import_id);
    let mut response = (StatusCode::ACCEPTED, Json(import_json(&view))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The file and the mapping, from a CSV body or a multipart form.
async fn read_upload(
    request: Request,
    state: &AppState,
) -> ApiResult<(Bytes, Option<Map<String, Value>>)> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence == "multipart/form-data" {
        let form = Multipart::from_request(request, state)
            .await
            .map_err(|rejection| too_large_or(rejection.status(), "the form cannot be read"))?;
        return read_form(form).await;
    }
    if !CSV_TYPES.contains(&essence) {
        return Err(ApiError::unsupported_media_type()
            .with_detail("send the file as text/csv, or as the file part of multipart/form-data"));
    }
    let content = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| too_large_or(rejection.status(), "the body cannot be read"))?;
    Ok((content, None))
}

async fn read_form(mut form: Multipart) -> ApiResult<(Bytes, Option<Map<String, Value>>)> {
    let (mut file, mut mapping) = (None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(too_large_or(err.status(), "the form cannot be read")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|err| too_large_or(err.status(), "the form cannot be read"))?;
        match name.as_str() {
            "file" if file.is_none() => file = Some(bytes),
            "mapping" if mapping.is_none() => {
                // `null` (or nothing): the header names the fields.
                let text = std::str::from_utf8(&bytes).unwrap_or("?").trim();
                if text.is_empty() || text == "null" {
                    continue;
                }
                mapping = Some(match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        return Err(ApiError::invalid_field(
                            "mapping",
                            "must be a JSON object from a header to a field or null",
                        ))
                    }
                })
            }
            "file" | "mapping" => {
                return Err(ApiError::invalid_field(&name, "is sent more than once"))
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "form",
                    format!("has a part {name:?}: only file and mapping are read"),
                ))
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::invalid_field("file", "is required"))?;
    Ok((file, mapping))
}

/// `413` for a file over 50 MB, else a `400` saying what could not be read.
fn too_large_or(status: StatusCode, detail: &str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large().with_detail("an import file is limited to 50 MB")
    } else {
        ApiError::malformed_body(detail)
    }
}

#[utoipa::path(
    get, path = "/v1/imports",
    operation_id = "imports_list", tag = "imports",
    params(
        ("account_id" = doc::AccountId, Query),
        doc::TenantPaging,
    ),
    responses(
        (status = 200, description = "The account's imports, newest first (a product's: those it started)", body = doc::ImportPage),
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
    let cursor = params.parse("cursor", TimeCursor::decode::<ImportId>)?;
    let page = state
        .hub
        .list_imports(&who.principal, &account, cursor, limit)
        .await?;
    Ok(Json(json!({
        "imports": page.items.iter().map(import_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    })))
}

#[utoipa::path(
    get, path = "/v1/imports/{import_id}",
    operation_id = "imports_show", tag = "imports",
    params(("import_id" = doc::ImportId, Path)),
    responses(
        (status = 200, description = "The import's progress", body = doc::Import),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let id = ImportId::parse(&raw).ok_or_else(|| ApiError::not_found("import"))?;
    Ok(Json(import_json(
        &state.hub.get_import(&who.principal, &id).await?,
    )))
}

#[utoipa::path(
    get, path = "/v1/imports/{import_id}/errors",
    operation_id = "imports_errors", tag = "imports",
    params(("import_id" = doc::ImportId, Path)),
    responses(
        (status = 200, description = "The failed rows so far, as sent, after a `line` and a `problem` column \
            (UTF-8 with a BOM; formula-looking cells prefixed with `'`)",
            content_type = "text/csv", body = String),
        (status = 404, response = problem::NotFound),
    ),
)]
async fn errors(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Response> {
    let id = ImportId::parse(&raw).ok_or_else(|| ApiError::not_found("import"))?;
    let chunks = state.hub.import_error_file(&who.principal, &id).await?;
    Ok(csv_attachment(
        axum::body::Body::from_stream(chunks),
        &format!("{id}-errors.csv"),
    ))
}

/// A CSV download: its media type, and the file name a browser saves it under (`name`
/// is made of ids and ASCII words: always a valid header value).
pub(crate) fn csv_attachment(body: axum::body::Body, name: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
