//! The one error type of the API, rendered as `application/problem+json` (RFC 9457,
//! SPEC section 3). Internal causes are logged, never sent: no SQL, no stack traces.

use crate::domain::tenancy::Denied;
use crate::storage::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One bad field of a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
    /// Response headers that go with the problem (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The same problem, said more precisely.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Adds an extension member (e.g. `errors`, `conflict_id`).
    pub fn with(mut self, name: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// The (field, message) pairs of a `validation_failed` problem, in order (the
    /// console shows them next to its fields).
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.extensions
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["field"].as_str()?.to_owned(),
                    e["message"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Validation failed",
            detail,
        )
        .with("errors", errors)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// A request body that is not JSON at all: no field to name.
    pub fn malformed_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Malformed request body",
            detail,
        )
        .with(
            "errors",
            vec![FieldError::new("body", "must be a JSON object")],
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "this key may not perform this action",
        )
    }

    /// `403` saying which rule of the key's scope refused the action.
    pub fn forbidden_because(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, "Conflict", detail)
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            "request bodies are limited to 1 MiB",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "request bodies must be application/json",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            "this path does not accept that method",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "the database is busy or unreachable; try again shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// An unexpected failure: the cause is logged here, the client sees only an id-less
    /// generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "an unexpected error occurred",
        )
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Self::forbidden(),
            Denied::NotFound => Self::not_found("resource"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::unavailable()
            }
            // The cause names a constraint: logged, never sent.
            StoreError::Conflict(cause) => {
                tracing::info!(error = %cause, "write refused by a uniqueness or reference rule");
                Self::conflict(
                    "conflict",
                    "the request conflicts with the stored state; read it again and retry",
                )
            }
            // Input the edge should have refused: logged to be fixed there, answered as
            // the client's fault.
            StoreError::Refused(cause) => {
                // The code only: the database's message may quote the value.
                let code = match &cause {
                    sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                    _ => None,
                };
                tracing::warn!(
                    code = code.as_deref().unwrap_or("?"),
                    "the database refused a value of the request"
                );
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "Validation failed",
                    "a value of this request cannot be stored",
                )
                .with(
                    "errors",
                    vec![FieldError::new(
                        "body",
                        "holds a value that cannot be stored",
                    )],
                )
            }
            other => Self::internal(error_chain(&other)),
        }
    }
}

/// An error and its sources, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl ApiError {
    fn body(&self) -> ProblemBody<'_> {
        ProblemBody {
            kind: format!("urn:customer-list:problem:{}", self.code),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            extensions: &self.extensions,
        }
    }

    /// The problem document as JSON, for per-item results of bulk endpoints.
    pub fn to_problem(&self) -> Value {
        serde_json::to_value(self.body()).unwrap_or(Value::Null)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bytes = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused write names no constraint and no SQL: the cause stays in the log.
    #[test]
    fn a_store_conflict_is_a_409_without_its_cause() {
        let cause = sqlx::Error::Protocol("customer_identifiers_pkey on INSERT INTO".into());
        let err = ApiError::from(StoreError::Conflict(cause));
        assert_eq!(err.status, StatusCode::CONFLICT);
        let body = err.to_problem().to_string();
        assert!(!body.contains("customer_identifiers"), "{body}");
        assert!(!body.contains("INSERT"), "{body}");
    }

    #[test]
    fn a_value_the_database_refuses_is_a_400_without_its_cause() {
        let cause =
            sqlx::Error::Protocol("invalid byte sequence for encoding \"UTF8\": 0x00".into());
        let err = ApiError::from(StoreError::Refused(cause));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(!err.to_problem().to_string().contains("UTF8"));
    }

    #[test]
    fn other_store_errors_are_a_generic_500() {
        let cause = sqlx::Error::Protocol("relation \"customers\" does not exist".into());
        let err = ApiError::from(StoreError::Database(cause));
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.to_problem().to_string().contains("customers"));
    }
}
