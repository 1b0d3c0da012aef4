//! Prefixed identifiers: `<PREFIX><uuid>`. New ids are UUIDv7 so they sort by creation
//! time. Clients treat them as opaque; the hub parses every id it is given (path, query
//! or body) into its type first, so a malformed one is refused at the edge and never
//! reaches the database.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An id the hub parses from its input: what it names (for "… not found" and field
/// errors) and whether a string has its form.
pub trait ParseId: Sized {
    /// The resource, as the API names it in a `404` ("customer", "account", ...).
    const WHAT: &'static str;
    fn parse(raw: &str) -> Option<Self>;
    /// The message for a field holding something else.
    fn malformed() -> String {
        let article = if Self::WHAT.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("must be {article} {} id", Self::WHAT)
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7()))
            }

            /// Wraps an id read from storage, which only ever holds ids the hub made.
            pub fn from_string(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// Parses an id given to the hub: `None` unless it has this type's form.
            pub fn parse(raw: &str) -> Option<Self> {
                Self::is_well_formed(raw).then(|| Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ParseId for $name {
            const WHAT: &'static str = $what;
            fn parse(raw: &str) -> Option<Self> {
                $name::parse(raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `<prefix><uuid>`, the UUID in its lowercase hyphenated form (as the hub writes it).
fn is_prefixed_uuid(raw: &str, prefix: &str) -> bool {
    raw.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 36
            && rest.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => matches!(c, '0'..='9' | 'a'..='f'),
            })
    })
}

/// The form of an id, as a regular expression (for the OpenAPI document).
pub fn id_pattern(prefixes: &[&str]) -> String {
    let hex = |n: usize| format!("[0-9a-f]{{{n}}}");
    format!(
        "^({})({}-{}-{}-{}-{})$",
        prefixes.join("|"),
        hex(8),
        hex(4),
        hex(4),
        hex(4),
        hex(12)
    )
}

macro_rules! uuid_form {
    ($name:ident) => {
        impl $name {
            fn is_well_formed(raw: &str) -> bool {
                is_prefixed_uuid(raw, Self::PREFIX)
            }
        }
    };
}

prefixed_id!(
    /// A reseller.
    PartnerId, "PARTNER-", "partner"
);
prefixed_id!(
    /// One business location.
    AccountId, "AG-", "account"
);
prefixed_id!(
    /// A vendor's app.
    ProductId, "MP-", "product"
);
prefixed_id!(
    /// An erasure and its receipt (SPEC section 10).
    ErasureId, "ERASURE-", "erasure"
);
prefixed_id!(
    /// A backfill of an account's customers to one product (SPEC section 11).
    BackfillId, "BACKFILL-", "backfill"
);
prefixed_id!(
    /// A CSV import into an account (SPEC section 12).
    ImportId, "IMPORT-", "import"
);
prefixed_id!(
    /// An API key's public id (never the secret).
    KeyId, "KEY-", "key"
);
prefixed_id!(
    /// A customer (`CUSTOMER-`) or a conflict record (`CONFLICT-`): both live in the
    /// customer table and are addressed by the same paths.
    CustomerId, "CUSTOMER-", "customer"
);

uuid_form!(PartnerId);
uuid_form!(AccountId);
uuid_form!(ProductId);
uuid_form!(EventId);
uuid_form!(ErasureId);
uuid_form!(BackfillId);
uuid_form!(ImportId);

impl KeyId {
    /// The bootstrap admin key's fixed id (it exists before any generated one).
    pub const BOOTSTRAP: &'static str = "KEY-bootstrap-admin";

    fn is_well_formed(raw: &str) -> bool {
        raw == Self::BOOTSTRAP || is_prefixed_uuid(raw, Self::PREFIX)
    }
}

impl CustomerId {
    pub const CONFLICT_PREFIX: &'static str = "CONFLICT-";

    fn is_well_formed(raw: &str) -> bool {
        is_prefixed_uuid(raw, Self::PREFIX) || is_prefixed_uuid(raw, Self::CONFLICT_PREFIX)
    }

    /// The customer id and the conflict record id an import gives the row of `line`:
    /// derived from the import's id (UUIDv7, keeping its time) and the line, so that a
    /// row written again after a crash finds what it wrote the first time.
    pub fn for_import_row(import: &ImportId, line: u64) -> (Self, Self) {
        let uuid = import
            .as_str()
            .strip_prefix(ImportId::PREFIX)
            .and_then(|raw| uuid::Uuid::parse_str(raw).ok())
            .unwrap_or_default();
        let millis = uuid
            .get_timestamp()
            .map(|t| {
                let (secs, nanos) = t.to_unix();
                secs * 1000 + u64::from(nanos) / 1_000_000
            })
            .unwrap_or_default();
        let derive = |kind: &str| {
            use sha2::{Digest, Sha256};
            let digest = Sha256::new()
                .chain_update(import.as_str())
                .chain_update(kind)
                .chain_update(line.to_be_bytes())
                .finalize();
            let mut random = [0u8; 10];
            random.copy_from_slice(&digest[..10]);
            uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
        };
        (
            Self(format!("{}{}", Self::PREFIX, derive("customer"))),
            Self(format!("{}{}", Self::CONFLICT_PREFIX, derive("conflict"))),
        )
    }

    pub fn generate_conflict() -> Self {
        Self(format!("{}{}", Self::CONFLICT_PREFIX, uuid::Uuid::now_v7()))
    }

    pub fn is_conflict(&self) -> bool {
        self.0.starts_with(Self::CONFLICT_PREFIX)
    }
}

prefixed_id!(
    /// An event (and so a webhook's `webhook-id`).
    EventId, "msg_", "event"
);

/// A delivery: `<event id>.<product id>`, one event to one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryId(String);

impl DeliveryId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ParseId for DeliveryId {
    const WHAT: &'static str = "delivery";
    fn parse(raw: &str) -> Option<Self> {
        let (event, product) = raw.split_once('.')?;
        (EventId::parse(event).is_some() && ProductId::parse(product).is_some())
            .then(|| Self(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_prefix_and_sort_by_time() {
        let a = AccountId::generate();
        let b = AccountId::generate();
        assert!(a.as_str().starts_with("AG-"));
        assert!(ProductId::generate().as_str().starts_with("MP-"));
        assert!(a < b, "UUIDv7 ids are time ordered");
    }

    #[test]
    fn only_well_formed_ids_parse() {
        let id = CustomerId::generate();
        assert_eq!(CustomerId::parse(id.as_str()), Some(id.clone()));
        let conflict = CustomerId::generate_conflict();
        assert!(CustomerId::parse(conflict.as_str()).is_some());
        assert!(KeyId::parse(KeyId::BOOTSTRAP).is_some());
        let upper = id.as_str().to_ascii_uppercase();
        let with_nul = format!("{}\0", id.as_str());
        let other_type = AccountId::generate();
        for bad in [
            "",
            "CUSTOMER-",
            "CUSTOMER-1",
            &upper,
            &with_nul,
            other_type.as_str(),
            &id.as_str()[..id.as_str().len() - 1],
        ] {
            assert_eq!(CustomerId::parse(bad), None, "{bad:?}");
        }
    }
}
