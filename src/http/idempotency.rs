//! `Idempotency-Key` on `POST` (SPEC section 4): a repeat with the same key and body
//! within 24 h returns the first response unchanged; the same key with another body is
//! `422 idempotency_key_reused`. Keys are scoped to the API key that sent them.

use super::{body_limit, AppState};
use crate::domain::credentials::hash_api_key;
use crate::domain::time;
use crate::error::ApiError;
use crate::storage::{IdempotencyClaim, IdempotencyState};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;
/// A claim this old that never finished belongs to a request whose server died.
const ABANDONED_AFTER_SECONDS: i64 = 60;
/// Responses larger than this are passed through without being remembered.
const MAX_REMEMBERED_BYTES: usize = 8 * 1024 * 1024;
/// Response headers a replay repeats.
const REPLAYED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

fn reused() -> Response {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "Idempotency key reused",
        "this Idempotency-Key was used with another request",
    )
    .into_response()
}

fn replay(status: u16, stored: &Value) -> Response {
    let body = stored["body"].as_str().unwrap_or_default().to_owned();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Some(headers) = stored["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Whether a response is the request's settled answer (worth replaying) rather than a
/// failure the client should be free to retry.
fn settled(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::PAYLOAD_TOO_LARGE)
}

/// Adds a request body to its fingerprint. A multipart body's boundary is the client
/// library's random pick, new on each send (curl's `-F`, reqwest, browsers): a retry of the
/// same upload must match the first, so the boundary is left out of the hash.
fn hash_body(digest: &mut Sha256, content_type: Option<&HeaderValue>, bytes: &[u8]) {
    let boundary = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok());
    let Some(boundary) = boundary else {
        digest.update(bytes);
        return;
    };
    let mut rest = 0;
    for at in memchr::memmem::find_iter(bytes, boundary.as_bytes()) {
        digest.update(&bytes[rest..at]);
        rest = at + boundary.len();
    }
    digest.update(&bytes[rest..]);
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match parse_key(raw) {
        Ok(key) => key,
        Err(err) => return err.into_response(),
    };
    // Unauthenticated requests are refused by the handler; nothing to remember.
    let Some(principal) = super::extract::bearer_token(req.headers()).map(hash_api_key) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let limit = body_limit(parts.uri.path());
    let Ok(bytes) = to_bytes(body, limit).await else {
        let refused = ApiError::payload_too_large();
        return if limit == super::MAX_BODY_BYTES {
            refused
        } else {
            refused.with_detail("an import file is limited to 50 MB")
        }
        .into_response();
    };
    let mut digest = Sha256::new();
    digest.update(parts.method.as_str());
    digest.update(b" ");
    digest.update(parts.uri.to_string());
    digest.update(b"\n");
    hash_body(&mut digest, parts.headers.get(header::CONTENT_TYPE), &bytes);
    let request_hash = hex::encode(digest.finalize());

    let store = state.hub.store();
    let now = time::now();
    let begun = store
        .idempotency_begin(IdempotencyClaim {
            principal: &principal,
            key: &key,
            request_hash: &request_hash,
            now,
            expired_before: now - Duration::hours(RETENTION_HOURS),
            abandoned_before: now - Duration::seconds(ABANDONED_AFTER_SECONDS),
        })
        .await;
    match begun {
        Err(err) => return ApiError::from(err).into_response(),
        Ok(IdempotencyState::Started) => {}
        Ok(IdempotencyState::InProgress {
            request_hash: first,
        }) => {
            if first != request_hash {
                return reused();
            }
            return ApiError::conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .into_response();
        }
        Ok(IdempotencyState::Completed {
            request_hash: first,
            status,
            response,
        }) => {
            return if first == request_hash {
                replay(status, &response)
            } else {
                reused()
            };
        }
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !settled(response.status()) {
        if let Err(err) = store.idempotency_release(&principal, &key).await {
            tracing::warn!(error = %err, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_REMEMBERED_BYTES).await else {
        let _ = store.idempotency_release(&principal, &key).await;
        return ApiError::internal("response too large to remember").into_response();
    };
    let mut headers = Map::new();
    for name in REPLAYED_HEADERS {
        if let Some(value) = parts.headers.get(&name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.to_string(), json!(value));
        }
    }
    let stored = json!({"headers": headers, "body": String::from_utf8_lossy(&bytes)});
    if let Err(err) = store
        .idempotency_finish(&principal, &key, parts.status.as_u16(), &stored)
        .await
    {
        tracing::warn!(error = %err, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}
