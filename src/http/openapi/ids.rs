//! Ids as the hub parses them (`domain::ids`): their prefix and lowercase UUID, as
//! patterns. A malformed id in a path names nothing (`404`); in a body or a filter it is
//! a `400` naming the field.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;
use crate::domain::ids::id_pattern;
use crate::domain::{self, CustomerId};

/// No example: a made-up id names nothing, and generators draw examples first.
fn id_schema(pattern: String) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .into()
}

macro_rules! id_doc {
    ($(#[$doc:meta])* $name:ident, $domain:ty) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                id_schema(id_pattern(&[<$domain>::PREFIX]))
            }
        }

        impl ToSchema for $name {}
    };
}

id_doc!(
    /// A partner id: `PARTNER-<uuid>`.
    PartnerId, domain::PartnerId
);
id_doc!(
    /// An account id: `AG-<uuid>`.
    AccountId, domain::AccountId
);
id_doc!(
    /// A product id: `MP-<uuid>`.
    ProductId, domain::ProductId
);
id_doc!(
    /// An erasure's id: `ERASURE-<uuid>`.
    ErasureId, domain::ErasureId
);
id_doc!(
    /// An import's id: `IMPORT-<uuid>`.
    ImportId, domain::ImportId
);
id_doc!(
    /// A conflict record's id: `CONFLICT-<uuid>`.
    ConflictId, ConflictPrefix
);

/// For `ConflictId`: the record prefix as a type.
struct ConflictPrefix;
impl ConflictPrefix {
    const PREFIX: &'static str = CustomerId::CONFLICT_PREFIX;
}

/// A customer or conflict record id: `CUSTOMER-<uuid>` or `CONFLICT-<uuid>`.
pub struct RecordId;

impl PartialSchema for RecordId {
    fn schema() -> RefOr<Schema> {
        id_schema(id_pattern(&[
            CustomerId::PREFIX,
            CustomerId::CONFLICT_PREFIX,
        ]))
    }
}

impl ToSchema for RecordId {}

/// An API key's id: `KEY-<uuid>`, or the bootstrap admin key's `KEY-bootstrap-admin`.
pub struct KeyId;

impl PartialSchema for KeyId {
    fn schema() -> RefOr<Schema> {
        let uuid_form = id_pattern(&[domain::KeyId::PREFIX]);
        let pattern = format!("^({})$|{uuid_form}", regex_escape(domain::KeyId::BOOTSTRAP));
        id_schema(pattern)
    }
}

impl ToSchema for KeyId {}

/// A delivery: `<event id>.<product id>` (`msg_<uuid>.MP-<uuid>`).
pub struct DeliveryId;

impl PartialSchema for DeliveryId {
    fn schema() -> RefOr<Schema> {
        let event = id_pattern(&[domain::EventId::PREFIX]);
        let product = id_pattern(&[domain::ProductId::PREFIX]);
        // Join the two anchored patterns: drop the end anchor of one, the start of the other.
        let pattern = format!(
            "{}\\.{}",
            event.trim_end_matches('$'),
            product.trim_start_matches('^')
        );
        id_schema(pattern)
    }
}

impl ToSchema for DeliveryId {}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            // Syntax characters only: ECMA-262's unicode mode refuses other escapes.
            let special = "\\^$.*+?()[]{}|/".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The opaque cursor of a paged list: base64url text, as the previous page's
/// `next_cursor` gave it, for the same query and sort.
pub struct Cursor;

impl PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z0-9_-]+$"))
            .max_length(Some(1024))
            .description(Some(
                "The previous page's `next_cursor`, with the same query and sort",
            ))
            .into()
    }
}

impl ToSchema for Cursor {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ParseId;

    /// Each pattern is the parser's rule: what the hub makes matches, what it refuses
    /// (another prefix, upper case) does not.
    #[test]
    fn patterns_match_the_parsers() {
        let schema = |s: RefOr<Schema>| serde_json::to_value(s).unwrap();
        let key = schema(KeyId::schema());
        assert!(key["pattern"]
            .as_str()
            .unwrap()
            .contains("KEY-bootstrap-admin"));
        let delivery = schema(DeliveryId::schema());
        let pattern = delivery["pattern"].as_str().unwrap();
        assert!(
            pattern.starts_with("^(msg_)") && pattern.ends_with("$"),
            "{pattern}"
        );
        assert_eq!(pattern.matches('^').count(), 1, "{pattern}");
        let id = domain::DeliveryId::parse(&format!(
            "{}.{}",
            domain::EventId::generate(),
            domain::ProductId::generate()
        ));
        assert!(id.is_some());
    }
}

/// `page_size` and `cursor` of a tenant list (accounts, partners, products).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantPaging {
    /// Default 50.
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<i64>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<Cursor>)]
    cursor: Option<String>,
}
