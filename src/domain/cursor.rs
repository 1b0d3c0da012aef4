//! Opaque keyset cursors: the sort position of the last row of a page, encoded as
//! base64url text. A cursor that does not decode is a client error naming `cursor`.

use super::time::{to_fixed_text, Timestamp};
use super::ParseId;
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

    /// Decodes a cursor over ids of type `T`: one whose id is not such an id was not
    /// made by this API.
    pub fn decode<T: ParseId>(raw: &str) -> Result<Self, String> {
        const INVALID: &str = "is not a cursor returned by this API";
        if raw.len() > 512 {
            return Err(INVALID.into());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| INVALID)?;
        let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
        let (at, id) = text.split_once('|').ok_or(INVALID)?;
        let at = at.parse::<Timestamp>().map_err(|_| INVALID)?;
        if T::parse(id).is_none() {
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
        use crate::domain::{AccountId, ProductId};
        let cursor = TimeCursor {
            at: crate::domain::time::now(),
            id: AccountId::generate().to_string(),
        };
        assert_eq!(
            TimeCursor::decode::<AccountId>(&cursor.encode()).unwrap(),
            cursor
        );
        assert!(TimeCursor::decode::<ProductId>(&cursor.encode()).is_err());
        assert!(TimeCursor::decode::<AccountId>("!!").is_err());
        assert!(TimeCursor::decode::<AccountId>(&URL_SAFE_NO_PAD.encode("nope")).is_err());
        assert!(TimeCursor::decode::<AccountId>("").is_err());
        let nul = URL_SAFE_NO_PAD.encode(format!("{}|AG-\0", to_fixed_text(&cursor.at)));
        assert!(TimeCursor::decode::<AccountId>(&nul).is_err());
    }
}

/// A position in a customer list sorted by `sort`: the sort key and id of the last row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyCursor {
    #[serde(rename = "s")]
    pub sort: String,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "i")]
    pub id: String,
    /// `total_results` as counted for the first page: later pages repeat it instead of
    /// counting a large account again on every page.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

impl KeyCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a cursor made for the sort order `sort`.
    pub fn decode(raw: &str, sort: &str) -> Result<Self, String> {
        const INVALID: &str = "is not a cursor returned by this API";
        if raw.len() > 1024 {
            return Err(INVALID.into());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| INVALID)?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| INVALID)?;
        if cursor.sort != sort {
            return Err(format!(
                "was made for sort {:?}; page with the same sort (here {sort:?})",
                cursor.sort
            ));
        }
        if cursor.id.is_empty() {
            return Err(INVALID.into());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod key_cursor_tests {
    use super::*;

    #[test]
    fn key_cursors_round_trip_and_belong_to_one_sort() {
        let cursor = KeyCursor {
            total: Some(7),
            sort: "-last_name".into(),
            key: "lovelace".into(),
            id: "CUSTOMER-1".into(),
        };
        let raw = cursor.encode();
        assert_eq!(KeyCursor::decode(&raw, "-last_name").unwrap(), cursor);
        assert!(KeyCursor::decode(&raw, "created").is_err());
        assert!(KeyCursor::decode("%%%", "created").is_err());
    }
}
