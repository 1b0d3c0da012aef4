//! Reading request input (a JSON object or query parameters) into domain types, with
//! every bad field reported at once. Used by both edges: the HTTP API and the admin CLI.

use crate::domain::ParseId;
use crate::error::{ApiError, FieldError};
use serde_json::{Map, Value};

/// The most bytes any one text value may hold. Every field has its own, smaller, limit;
/// this one bounds what reaches a field rule (or a filter) at all.
pub const MAX_TEXT_BYTES: usize = 4096;

/// The rule every text value given to the hub passes before its own field rule, whatever
/// edge it came through (JSON bodies, query parameters, headers the hub reads, CSV cells,
/// console forms): text the databases store as given. Postgres' `text` cannot hold U+0000
/// and SQLite's C functions stop at it, so it is refused; so is text over
/// `MAX_TEXT_BYTES`, which no field holds and which an index could not take. Unpaired
/// surrogates cannot get this far: JSON and query decoding refuse them (a Rust `str` is
/// valid UTF-8).
pub fn storable(raw: &str) -> Result<&str, String> {
    if raw.contains('\0') {
        return Err("must not contain the NUL character (U+0000)".into());
    }
    if raw.len() > MAX_TEXT_BYTES {
        return Err(format!("must be at most {MAX_TEXT_BYTES} bytes"));
    }
    Ok(raw)
}

/// A field that may be absent, explicitly `null`, or set (JSON merge patch semantics).
#[derive(Clone, Debug, PartialEq)]
pub enum Patch<T> {
    Absent,
    Null,
    Set(T),
}

/// Reads the fields of one JSON object, collecting every error.
pub struct Fields {
    map: Map<String, Value>,
    known: Vec<&'static str>,
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            known: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn take<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Patch<T> {
        self.known.push(name);
        match self.map.get(name) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(value) => match parse(value) {
                Ok(parsed) => Patch::Set(parsed),
                Err(message) => {
                    self.errors.push(FieldError::new(name, message));
                    Patch::Absent
                }
            },
        }
    }

    /// A field that must be present and not null.
    pub fn required<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let had_error = self.errors.len();
        match self.take(name, parse) {
            Patch::Set(value) => Some(value),
            _ => {
                if self.errors.len() == had_error {
                    self.errors.push(FieldError::new(name, "is required"));
                }
                None
            }
        }
    }

    /// A field that may be absent or null (both read as `None`).
    pub fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        match self.take(name, parse) {
            Patch::Set(value) => Some(value),
            _ => None,
        }
    }

    /// A field of a merge patch: absent keeps, null clears, a value sets.
    pub fn patch<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Patch<T> {
        self.take(name, parse)
    }

    /// Records an error found after reading a field (a rule across its value).
    pub fn reject<T>(&mut self, name: &str, message: &str) -> Option<T> {
        self.errors.push(FieldError::new(name, message));
        None
    }

    /// Whether no error has been recorded yet.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// Fails with every collected error, plus one for each field nobody asked for.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|key| !self.known.contains(&key.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            self.errors
                .push(FieldError::new(key.clone(), "unknown field"));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Adapts a parser of text to a parser of a JSON value that must be a string (and
/// `storable`).
pub fn text<T>(
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> impl FnOnce(&Value) -> Result<T, String> {
    move |value| match value {
        Value::String(s) => parse(storable(s)?),
        _ => Err("must be a string".into()),
    }
}

/// Parses an id of type `T` from text: a malformed one is an error naming the field.
pub fn id_text<T: ParseId>(raw: &str) -> Result<T, String> {
    T::parse(raw).ok_or_else(T::malformed)
}

/// An id of type `T` as a JSON field.
pub fn id<T: ParseId>(value: &Value) -> Result<T, String> {
    text(id_text::<T>)(value)
}

/// A request's JSON input, parsed into a validated type.
pub trait FromInput: Sized {
    fn from_input(fields: &mut Fields) -> Option<Self>;
}

/// Parses a JSON object into `T`, failing with every bad field.
pub fn parse_object<T: FromInput>(map: Map<String, Value>) -> Result<T, ApiError> {
    let mut fields = Fields::new(map);
    let parsed = T::from_input(&mut fields);
    fields.finish()?;
    // `finish` passing means every required field parsed; a `None` here would be a bug
    // in a `from_input`, reported as a validation error rather than a panic.
    parsed.ok_or_else(|| ApiError::malformed_body("incomplete input"))
}

/// Parses JSON text that must be an object.
pub fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::malformed_body("the body must be a JSON object")),
        Err(err) => Err(ApiError::malformed_body(format!("invalid JSON: {err}"))),
    }
}

/// Parses JSON text (from a request body or the CLI) into `T`.
pub fn parse_json<T: FromInput>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_object(parse_json_object(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Example {
        name: String,
        note: Option<String>,
    }

    fn any_text(value: &Value) -> Result<String, String> {
        text(|s| Ok(s.to_owned()))(value)
    }

    impl FromInput for Example {
        fn from_input(f: &mut Fields) -> Option<Self> {
            let name = f.required("name", any_text);
            let note = f.optional("note", any_text);
            Some(Self { name: name?, note })
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({"note": 5, "extra": true, "more": 1}).to_string();
        let err = parse_json::<Example>(body.as_bytes()).err().unwrap();
        let fields: Vec<String> = err.extensions["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fields, ["name", "note", "extra", "more"]);
    }

    #[test]
    fn valid_input_parses() {
        let parsed = parse_json::<Example>(br#"{"name":"a","note":null}"#).unwrap();
        assert_eq!(parsed.name, "a");
        assert_eq!(parsed.note, None);
        assert!(parse_json::<Example>(b"[1]").is_err());
        assert!(parse_json::<Example>(b"{").is_err());
    }

    #[test]
    fn text_the_databases_cannot_store_is_refused_naming_the_field() {
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        for bad in [json!("a\u{0}b"), json!(long)] {
            let body = json!({"name": bad}).to_string();
            let err = parse_json::<Example>(body.as_bytes()).err().unwrap();
            assert_eq!(err.extensions["errors"][0]["field"], "name");
        }
        // A lone surrogate is not JSON text at all.
        assert!(parse_json::<Example>(br#"{"name":"\ud800"}"#).is_err());
    }
}
