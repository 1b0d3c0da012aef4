//! Opaque, prefixed identifiers. New ids are UUIDv7 so they sort by creation time.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
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

            /// Wraps an id read from storage or a request. Ids are opaque: an id that
            /// does not exist simply is not found.
            pub fn from_string(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
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

prefixed_id!(
    /// A reseller.
    PartnerId, "PARTNER-"
);
prefixed_id!(
    /// One business location.
    AccountId, "AG-"
);
prefixed_id!(
    /// A vendor's app.
    ProductId, "MP-"
);
prefixed_id!(
    /// An API key's public id (never the secret).
    KeyId, "KEY-"
);
prefixed_id!(
    /// A customer (`CUSTOMER-`) or a conflict record (`CONFLICT-`): both live in the
    /// customer table and are addressed by the same paths.
    CustomerId, "CUSTOMER-"
);

impl CustomerId {
    pub const CONFLICT_PREFIX: &'static str = "CONFLICT-";

    pub fn generate_conflict() -> Self {
        Self(format!("{}{}", Self::CONFLICT_PREFIX, uuid::Uuid::now_v7()))
    }

    pub fn is_conflict(&self) -> bool {
        self.0.starts_with(Self::CONFLICT_PREFIX)
    }
}

prefixed_id!(
    /// An event (and so a webhook's `webhook-id`).
    EventId, "msg_"
);

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
}
