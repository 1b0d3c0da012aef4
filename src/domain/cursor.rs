//! Opaque keyset cursors: the sort position of the last row of a page, encoded as
//! base64url text. A cursor that does not decode is a client error naming `cursor`.

use super::time::{to_fixed_text, Timestamp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A position in a (timestamp, id) ordering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeCursor {
    pub at: Timestamp,
    pub id: String,
}

impl TimeCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", to_fixed_text(&self.at), self.id))
    }

    pub fn decode(raw: &str) -> Result<Self, String> {
        const INVALID: &str = "is not a cursor returned by this API";
        if raw.len() > 512 {
            return Err(INVALID.into());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| INVALID)?;
        let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
        let (at, id) = text.split_once('|').ok_or(INVALID)?;
        let at = at.parse::<Timestamp>().map_err(|_| INVALID)?;
        if id.is_empty() {
            return Err(INVALID.into());
        }
        Ok(Self {
            at,
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let cursor = TimeCursor {
            at: crate::domain::time::now(),
            id: "AG-1".into(),
        };
        assert_eq!(TimeCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(TimeCursor::decode("!!").is_err());
        assert!(TimeCursor::decode(&URL_SAFE_NO_PAD.encode("nope")).is_err());
        assert!(TimeCursor::decode("").is_err());
    }
}
