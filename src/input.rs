//! Reading request input (a JSON object or query parameters) into domain types, with
//! every bad field reported at once. Used by both edges: the HTTP API and the admin CLI.

use crate::error::{ApiError, FieldError};
use serde_json::{Map, Value};

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

/// Adapts a parser of text to a parser of a JSON value that must be a string.
pub fn text<T>(
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> impl FnOnce(&Value) -> Result<T, String> {
    move |value| match value {
        Value::String(s) => parse(s),
        _ => Err("must be a string".into()),
    }
}

/// Any string, as given.
pub fn any_text(value: &Value) -> Result<String, String> {
    text(|s| Ok(s.to_owned()))(value)
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
}
