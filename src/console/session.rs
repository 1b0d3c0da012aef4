//! Signing in and out, the session extractor every page uses, and the CSRF check of
//! every state-changing form.

use super::{is_htmx, render};
use crate::error::ApiError;
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::service::sessions::{Session, SESSION_HOURS};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

pub const COOKIE: &str = "cl_session";

/// The signed-in session of a page request. Without one, a page redirects to sign-in
/// (htmx requests get `HX-Redirect`, so the whole page goes there).
pub struct Signed(pub Session);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let id = cookie(&parts.headers, COOKIE);
        let session = match &id {
            Some(id) => state
                .hub
                .session(id)
                .await
                .map_err(ApiError::into_response)?,
            None => None,
        };
        match (session, id) {
            // Each session has its own bucket of the API's rate limit.
            (Some(session), Some(id)) => {
                state
                    .limits
                    .check(&crate::domain::credentials::digest(&id))
                    .map_err(ApiError::into_response)?;
                Ok(Self(session))
            }
            _ if is_htmx(&parts.headers) => Err((
                StatusCode::UNAUTHORIZED,
                [("hx-redirect", "/console/sign-in")],
            )
                .into_response()),
            _ => Err(Redirect::to("/console/sign-in").into_response()),
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A state-changing form of a signed-in page: the session and the form's fields, read and
/// CSRF-checked by [`checked_form`]. Refused forms answer `403` in words.
pub struct SignedForm(pub Session, pub HashMap<String, String>);

impl axum::extract::FromRequest<AppState> for SignedForm {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Signed(session) = Signed::from_request_parts(&mut parts, state).await?;
        let request = axum::extract::Request::from_parts(parts, body);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = checked_form(&session, &body)?;
        Ok(Self(session, form))
    }
}

/// A state-changing form: its fields, read by the same strict decoder as query strings
/// (so they obey `input::storable`), accepted only with the session's CSRF token.
pub fn checked_form(session: &Session, body: &Bytes) -> Result<HashMap<String, String>, Response> {
    let text = std::str::from_utf8(body).map_err(|_| forbidden_form())?;
    let fields = parse_query(text).map_err(ApiError::into_response)?;
    let token = fields.get("csrf").map(String::as_bytes).unwrap_or_default();
    if !constant_time_eq(token, session.csrf_token.as_bytes()) {
        return Err(forbidden_form());
    }
    Ok(fields)
}

/// The fields of a multipart form (an upload), accepted only with the session's CSRF
/// token, each obeying `input::storable` like any form field.
pub fn checked_fields(
    session: &Session,
    fields: Vec<(String, String)>,
) -> Result<HashMap<String, String>, Response> {
    let fields: HashMap<String, String> = fields.into_iter().collect();
    for value in fields.values() {
        crate::input::storable(value)
            .map_err(|message| ApiError::invalid_field("form", message).into_response())?;
    }
    let token = fields.get("csrf").map(String::as_bytes).unwrap_or_default();
    if !constant_time_eq(token, session.csrf_token.as_bytes()) {
        return Err(forbidden_form());
    }
    Ok(fields)
}

fn forbidden_form() -> Response {
    (
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this console. Go back, reload the page and try again.",
    )
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request came over https, directly or through a proxy that says so.
fn over_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        });
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

fn session_cookie(value: &str, max_age: i64, headers: &HeaderMap) -> HeaderValue {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    frame: super::Frame,
    error: Option<&'a str>,
}

fn sign_in_form(status: StatusCode, error: Option<&str>) -> Response {
    render(
        status,
        &SignInPage {
            frame: super::Frame::signed_out(),
            error,
        },
    )
}

pub async fn sign_in_page() -> Response {
    sign_in_form(StatusCode::OK, None)
}

/// Checks the key once and opens a session; the key goes no further. A refusal says the
/// key was not accepted, never whether it exists. Sign-ins share one rate limit.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(limited) = state.sign_ins.check("console-sign-in") {
        // In words on the form, with the API's Retry-After.
        let mut page = sign_in_form(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many sign-in attempts just now. Wait a few seconds and try again."),
        );
        if let Some(wait) = limited.into_response().headers().get(header::RETRY_AFTER) {
            page.headers_mut().insert(header::RETRY_AFTER, wait.clone());
        }
        return page;
    }
    let fields = match std::str::from_utf8(&body).ok().map(parse_query) {
        Some(Ok(fields)) => fields,
        _ => return sign_in_form(StatusCode::BAD_REQUEST, Some("Enter an API key.")),
    };
    let key = fields.get("key").map(|k| k.trim()).unwrap_or_default();
    if key.is_empty() {
        return sign_in_form(StatusCode::BAD_REQUEST, Some("Enter an API key."));
    }
    match state.hub.sign_in(key).await {
        Ok(Some(opened)) => {
            let cookie = session_cookie(&opened.id, SESSION_HOURS * 3600, &headers);
            let mut response = Redirect::to("/console/customers").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Ok(None) => sign_in_form(
            StatusCode::UNAUTHORIZED,
            Some("That key was not accepted. Check it and try again."),
        ),
        Err(err) => err.into_response(),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedForm(_, _): SignedForm,
) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        if let Err(err) = state.hub.sign_out(&id).await {
            return err.into_response();
        }
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, &headers));
    response
}
