//! Request extractors: authentication, JSON input and query parameters, each failing
//! with a problem+json error.

use super::AppState;
use crate::domain::tenancy::Actor;
use crate::domain::ParseId;
use crate::error::{ApiError, FieldError};
use crate::input::{parse_json_object, parse_object, storable, FromInput};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The version an `If-Match` header value asks for: `"<version>"` (a strong ETag as this
/// API sends it), a bare number, or `*` (any version: no check).
pub fn parse_if_match(raw: &str) -> Result<Option<i64>, &'static str> {
    let raw = raw.trim();
    if raw == "*" {
        return Ok(None);
    }
    let unquoted = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    // Any number is well-formed; one that is not the current version gets 412.
    unquoted
        .parse::<i64>()
        .map(Some)
        .map_err(|_| "must be a version such as \"3\"")
}

/// The API key of `Authorization: Bearer <key>`, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The authenticated caller's key. Fails with `401` for a missing, malformed, unknown
/// or revoked key, and with `429` over the key's rate limit.
pub struct CallerKey(pub crate::domain::tenancy::ApiKey);

impl FromRequestParts<AppState> for CallerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = bearer_token(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        // The digest both finds the key and names its rate-limit bucket.
        let digest = crate::domain::credentials::hash_api_key(presented);
        match state.hub.authenticate(&digest).await? {
            Some(key) => {
                state.limits.check(&digest)?;
                Ok(Self(key))
            }
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// The authenticated caller, as every operation but `GET /v1/me` needs it: whom its key
/// acts for. Fails like [`CallerKey`].
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CallerKey(key) = CallerKey::from_request_parts(parts, state).await?;
        Ok(Self(Actor::of(&key)))
    }
}

/// A JSON request body that must be an object: `415` for another content type, `413`
/// over 1 MiB, `400` for anything but a JSON object.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::payload_too_large()
                    } else {
                        ApiError::malformed_body("the request body could not be read")
                    }
                })?;
        parse_json_object(&bytes).map(JsonObject)
    }
}

/// A JSON request body parsed into a validated input type.
pub struct Input<T>(pub T);

impl<T: FromInput + Send> FromRequest<AppState> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let JsonObject(map) = JsonObject::from_request(req, state).await?;
        parse_object(map).map(Input)
    }
}

/// Like `Input`, for bodies whose every field is optional: an empty body reads as `{}`.
pub struct OptionalInput<T>(pub T);

impl<T: FromInput + Send> FromRequest<AppState> for OptionalInput<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() == b"0")
            || (req.headers().get(header::CONTENT_TYPE).is_none()
                && req.headers().get(header::TRANSFER_ENCODING).is_none());
        if empty {
            return parse_object(Map::new()).map(OptionalInput);
        }
        let Input(value) = Input::<T>::from_request(req, state).await?;
        Ok(OptionalInput(value))
    }
}

/// Query parameters, last value wins. Each is decoded strictly (percent-escapes that are
/// not UTF-8 are refused, not replaced) and must be `storable` text without control
/// characters (no parameter of the API holds one); the handler then validates each by
/// its own rule, naming the parameter in any error.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Self)
    }
}

/// `application/x-www-form-urlencoded` query text, decoded without loss.
pub fn parse_query(query: &str) -> Result<HashMap<String, String>, ApiError> {
    fn decode(raw: &str) -> Option<String> {
        let spaced = raw.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned())
    }
    let readable = |text: String| -> Result<String, String> {
        storable(&text)?;
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(text)
    };
    let mut params = HashMap::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)
            .ok_or_else(|| "must be UTF-8 text".to_owned())
            .and_then(readable)
            .map_err(|message| ApiError::invalid_field("query", message))?;
        let value = decode(value)
            .ok_or_else(|| "must be UTF-8 text".to_owned())
            .and_then(readable)
            .map_err(|message| ApiError::invalid_field(&name, message))?;
        params.insert(name, value);
    }
    Ok(params)
}

impl Params {
    /// Parses the parameter `name` when present, naming it in the error.
    pub fn parse<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(raw) => parse(raw)
                .map(Some)
                .map_err(|message| ApiError::validation(vec![FieldError::new(name, message)])),
        }
    }

    /// The id parameter `name`, which the route requires.
    pub fn required_id<T: ParseId>(&self, name: &str) -> Result<T, ApiError> {
        self.parse(name, crate::input::id_text::<T>)?
            .ok_or_else(|| ApiError::invalid_field(name, "is required"))
    }

    /// `page_size`, or the listings' default.
    pub fn page_size(&self) -> Result<i64, ApiError> {
        use crate::service::accounts::{parse_page_size, DEFAULT_PAGE_SIZE};
        Ok(self
            .parse("page_size", parse_page_size)?
            .unwrap_or(DEFAULT_PAGE_SIZE))
    }
}

/// One id from the path, parsed as its type: a malformed id names nothing, so it is the
/// same `404` as an unknown one, and it never reaches the database.
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: ParseId + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let PathParams(raw) = PathParams::<String>::from_request_parts(parts, state).await?;
        path_id(&raw).map(Self)
    }
}

/// Two ids from the path (`/v1/accounts/{account_id}/products/{product_id}`).
pub struct PathIds<A, B>(pub A, pub B);

impl<A, B, S> FromRequestParts<S> for PathIds<A, B>
where
    A: ParseId + Send,
    B: ParseId + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let PathParams((a, b)) =
            PathParams::<(String, String)>::from_request_parts(parts, state).await?;
        Ok(Self(path_id(&a)?, path_id(&b)?))
    }
}

/// An id named by a path: `404` for the type's resource unless well formed.
pub fn path_id<T: ParseId>(raw: &str) -> Result<T, ApiError> {
    T::parse(raw).ok_or_else(|| ApiError::not_found(T::WHAT))
}

/// Path parameters; an undecodable path segment is simply not found.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ApiError) -> String {
        err.extensions["errors"][0]["field"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn query_text_is_decoded_without_loss() {
        let params = parse_query("q=ada+lovelace&tag=%C3%A9t%C3%A9&empty=&flag").unwrap();
        assert_eq!(params["q"], "ada lovelace");
        assert_eq!(params["tag"], "été");
        assert_eq!(params["empty"], "");
        assert_eq!(params["flag"], "");
    }

    #[test]
    fn query_values_the_hub_cannot_hold_are_refused_naming_the_parameter() {
        // NUL, another control character, an encoded UTF-16 surrogate (not UTF-8), a
        // lone continuation byte.
        for bad in ["%00", "a%0Ab", "%ED%A0%80", "%80"] {
            let err = parse_query(&format!("page_size=1&q={bad}")).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(field_of(err), "q", "{bad}");
        }
        let long = "x".repeat(crate::input::MAX_TEXT_BYTES + 1);
        assert_eq!(
            field_of(parse_query(&format!("q={long}")).unwrap_err()),
            "q"
        );
        // A parameter whose very name is unreadable is named as the query.
        assert_eq!(field_of(parse_query("%00=1").unwrap_err()), "query");
    }

    #[test]
    fn if_match_reads_versions_and_star() {
        assert_eq!(parse_if_match("\"3\""), Ok(Some(3)));
        assert_eq!(parse_if_match(" 4 "), Ok(Some(4)));
        assert_eq!(parse_if_match("*"), Ok(None));
        assert!(parse_if_match("W/\"3\"").is_err());
    }
}
