//! Text as the input parsers read it: patterns and lengths, countries and regions.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

/// No control character (Unicode `Cc`, which every text field refuses).
const NO_CONTROL: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A person's name: no control character, comma or semicolon.
const NAME: &str = "^[^,;\\u0000-\\u001f\\u007f-\\u009f]*$";
/// Address lines may hold a line break; nothing else of `Cc`.
const FREE_TEXT: &str = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$";
/// A display name: at least one character that is not white space (as Rust's `trim`
/// reads it: Unicode `White_Space`, listed, since a pattern's `\s` differs), no control
/// character.
const DISPLAY_NAME: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\
    [^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]\
    [^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// `If-Match`: a version, quoted or not, or `*`.
const IF_MATCH: &str = "^[ \\t]*(\\*|\"[+-]?[0-9]{1,18}\"|[+-]?[0-9]{1,18})[ \\t]*$";

pub(super) fn text(pattern: &str, min: Option<usize>, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(Some(max))
        .pattern(Some(pattern))
}

/// ISO 3166-1 alpha-2 codes (either case), as `country` accepts them.
pub struct CountryCode;

impl PartialSchema for CountryCode {
    fn schema() -> RefOr<Schema> {
        let codes = isocountry::CountryCode::iter().map(|c| c.alpha2());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                codes.flat_map(|c| [c.to_owned(), c.to_ascii_lowercase()]),
            ))
            .into()
    }
}

impl ToSchema for CountryCode {}

/// The regions phone numbers can be read in: the ISO 3166-1 alpha-2 codes that
/// libphonenumber knows (either case).
pub struct RegionCode;

impl PartialSchema for RegionCode {
    fn schema() -> RefOr<Schema> {
        use std::str::FromStr;
        let codes = isocountry::CountryCode::iter()
            .map(|c| c.alpha2())
            .filter(|c| phonenumber::country::Id::from_str(c).is_ok());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                codes.flat_map(|c| [c.to_owned(), c.to_ascii_lowercase()]),
            ))
            .into()
    }
}

impl ToSchema for RegionCode {}

/// One tag: 1 to 50 characters, one of them visible, no control characters.
pub struct TagText;

impl PartialSchema for TagText {
    fn schema() -> RefOr<Schema> {
        text(DISPLAY_NAME, Some(1), 50).into()
    }
}

impl ToSchema for TagText {}

/// Tags: one, or an array of at most 50.
pub struct Tags;

impl PartialSchema for Tags {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(TagText::schema())
            .item(
                ArrayBuilder::new()
                    .items(TagText::schema())
                    .max_items(Some(50)),
            )
            .into()
    }
}

impl ToSchema for Tags {}

/// The list's search: at most 200 characters, no control characters.
pub struct SearchText;

impl PartialSchema for SearchText {
    fn schema() -> RefOr<Schema> {
        text(NO_CONTROL, None, 200).into()
    }
}

impl ToSchema for SearchText {}

/// A product's own id for a customer: 1 to 255 characters, no control characters.
pub struct VendorId;

impl PartialSchema for VendorId {
    fn schema() -> RefOr<Schema> {
        text(NO_CONTROL, Some(1), 255).into()
    }
}

impl ToSchema for VendorId {}

/// A partner's, account's or product's name: 1 to 200 characters, one of them visible,
/// no control characters.
pub struct DisplayName;

impl PartialSchema for DisplayName {
    fn schema() -> RefOr<Schema> {
        text(DISPLAY_NAME, Some(1), 200).into()
    }
}

impl ToSchema for DisplayName {}

/// `first_name`, `last_name`: at most 100 characters, no commas, semicolons or control
/// characters.
pub struct PersonName;

impl PartialSchema for PersonName {
    fn schema() -> RefOr<Schema> {
        text(NAME, None, 100).into()
    }
}

impl ToSchema for PersonName {}

/// `address`, `city`, `state`: at most 200 characters, no control characters but a line
/// break.
pub struct FreeText;

impl PartialSchema for FreeText {
    fn schema() -> RefOr<Schema> {
        text(FREE_TEXT, None, 200).into()
    }
}

impl ToSchema for FreeText {}

/// A consent's `method`: at most 200 characters, no control characters.
pub struct ConsentMethod;

impl PartialSchema for ConsentMethod {
    fn schema() -> RefOr<Schema> {
        text(NO_CONTROL, None, 200).into()
    }
}

impl ToSchema for ConsentMethod {}

/// A consent's `text`: at most 2,000 characters, no control characters but a line break.
pub struct ConsentWording;

impl PartialSchema for ConsentWording {
    fn schema() -> RefOr<Schema> {
        text(FREE_TEXT, None, 2000).into()
    }
}

impl ToSchema for ConsentWording {}

/// The `If-Match` header of a conditional write.
pub struct IfMatch;

impl PartialSchema for IfMatch {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(IF_MATCH))
            .description(Some("The expected version, e.g. `\"3\"`; `*` matches any"))
            .into()
    }
}

impl ToSchema for IfMatch {}
