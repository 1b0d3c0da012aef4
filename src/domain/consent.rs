//! Consent to contact (SPEC section 10): how a grant or withdrawal of
//! `permission_to_contact` was obtained, and the append-only record of each change.

use crate::domain::customer::plain_text;
use crate::domain::time::Timestamp;
use crate::domain::{CustomerId, KeyId, ProductId};
use serde_json::{Map, Value};

pub const MAX_METHOD_CHARS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 2000;

/// The lawful bases of GDPR Art. 6(1).
pub const LEGAL_BASES: [&str; 6] = [
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
];

/// A body's `consent` object: how the change it carries was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentDetails {
    pub legal_basis: &'static str,
    pub method: Option<String>,
    pub text: Option<String>,
}

impl Default for ConsentDetails {
    fn default() -> Self {
        Self {
            legal_basis: LEGAL_BASES[0],
            method: None,
            text: None,
        }
    }
}

/// An optional text of at most `max` characters (blank: absent), as the customer's own
/// text fields are read.
fn bounded(
    object: &Map<String, Value>,
    key: &str,
    max: usize,
    line_breaks: bool,
) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let text = plain_text(s, max, line_breaks).map_err(|e| format!("{key} {e}"))?;
            Ok((!text.is_empty()).then(|| text.to_owned()))
        }
        Some(_) => Err(format!("{key} must be a string")),
    }
}

impl ConsentDetails {
    /// Reads a `consent` object; errors name the inner key.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let Value::Object(object) = value else {
            return Err("must be an object with legal_basis, method and text".into());
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !["legal_basis", "method", "text"].contains(&k.as_str()))
        {
            return Err(format!("{unknown} is not a field of consent"));
        }
        let legal_basis = match object.get("legal_basis") {
            None | Some(Value::Null) => LEGAL_BASES[0],
            Some(Value::String(s)) => LEGAL_BASES
                .iter()
                .find(|b| **b == s.as_str())
                .copied()
                .ok_or_else(|| format!("legal_basis must be one of: {}", LEGAL_BASES.join(", ")))?,
            Some(_) => return Err("legal_basis must be a string".into()),
        };
        Ok(Self {
            legal_basis,
            method: bounded(object, "method", MAX_METHOD_CHARS, false)?,
            text: bounded(object, "text", MAX_TEXT_CHARS, true)?,
        })
    }
}

/// How a change of consent came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentVia {
    Create,
    Update,
    Merge,
    Import,
}

impl ConsentVia {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Merge => "merge",
            Self::Import => "import",
        }
    }
}

/// One entry of a customer's consent history, written in the change's transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsentEntry {
    pub customer_id: CustomerId,
    pub scope: String,
    pub granted: bool,
    pub at: Timestamp,
    pub details: ConsentDetails,
    pub source_product_id: Option<ProductId>,
    pub source_key_id: KeyId,
    pub via: ConsentVia,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_consent_object_is_read_with_its_rules() {
        let read = ConsentDetails::parse(
            &json!({"method": " in-store sign-up ", "text": "Yes, email me."}),
        )
        .unwrap();
        assert_eq!(read.legal_basis, "consent");
        assert_eq!(read.method.as_deref(), Some("in-store sign-up"));
        assert!(ConsentDetails::parse(&json!({"legal_basis": "whim"}))
            .unwrap_err()
            .starts_with("legal_basis must be one of"));
        assert!(ConsentDetails::parse(&json!({"method": "x".repeat(201)})).is_err());
        assert!(ConsentDetails::parse(&json!({"text": "x".repeat(2000)})).is_ok());
        assert!(ConsentDetails::parse(&json!({"text": "x".repeat(2001)})).is_err());
        assert!(ConsentDetails::parse(&json!({"other": 1}))
            .unwrap_err()
            .contains("other"));
        assert!(ConsentDetails::parse(&json!("yes")).is_err());
    }
}
