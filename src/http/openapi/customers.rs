//! Customers: create and patch bodies, records, pages, bulk results, merges.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

/// One value or several (at most 10, as sent): `"a@example.com"` or
/// `["a@example.com", …]`. A phone's format is `phone`: a number libphonenumber reads as
/// valid, international (`+…`) or national in the account's `default_region`, which no
/// pattern can state; the pattern and length are what any such text obeys.
pub struct OneOrMany<const EMAIL: bool>;

impl<const EMAIL: bool> PartialSchema for OneOrMany<EMAIL> {
    fn schema() -> RefOr<Schema> {
        // Format only, no length or pattern: validity is the library's (a length bound
        // would have generators draw long strings that are no address or number).
        let one = || {
            let text = ObjectBuilder::new().schema_type(Type::String);
            if EMAIL {
                // Not the standard `email` format: the hub trims what it reads, so
                // " ada@example.com " is accepted (and stored trimmed, lower-cased).
                text.format(Some(SchemaFormat::Custom("email-address".into())))
                    .description(Some(
                        "An address (RFC 5322 syntax, a dotted domain, no display name or \
                         domain literal), at most 254 characters; surrounding white space \
                         is trimmed",
                    ))
            } else {
                text.format(Some(SchemaFormat::Custom("phone".into())))
                    .description(Some(
                        "A valid number: international (+…), or national in the account's \
                         default_region; at most 64 characters",
                    ))
            }
        };
        OneOfBuilder::new()
            .item(one())
            .item(ArrayBuilder::new().items(one()).max_items(Some(10)))
            .into()
    }
}

impl<const EMAIL: bool> ToSchema for OneOrMany<EMAIL> {
    fn name() -> std::borrow::Cow<'static, str> {
        if EMAIL { "Emails" } else { "Phones" }.into()
    }
}

type Emails = OneOrMany<true>;
type Phones = OneOrMany<false>;

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "crm-42", "first_name": "Ada", "last_name": "Lovelace",
    "email": "ada@example.com", "phone": "+1 306 555 0100", "city": "Saskatoon",
    "country": "CA", "tags": ["vip"], "permission_to_contact": true
}))]
pub struct CustomerInput {
    /// The caller's own id (its `vendor_customer_id`); product keys only.
    #[schema(value_type = Option<VendorId>)]
    id: Option<String>,
    /// Required unless the key is a product's (its own customers) or an account's.
    #[schema(value_type = Option<AccountId>)]
    account_id: Option<String>,
    #[schema(value_type = Option<PersonName>)]
    first_name: Option<String>,
    #[schema(value_type = Option<PersonName>)]
    last_name: Option<String>,
    #[schema(value_type = Option<Emails>)]
    email: Option<Value>,
    #[schema(value_type = Option<Phones>)]
    phone: Option<Value>,
    #[schema(value_type = Option<FreeText>)]
    address: Option<String>,
    #[schema(value_type = Option<FreeText>)]
    city: Option<String>,
    #[schema(value_type = Option<FreeText>)]
    state: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(value_type = Option<CountryCode>)]
    country: Option<String>,
    #[schema(value_type = Option<Tags>)]
    tags: Option<Vec<String>>,
    permission_to_contact: Option<bool>,
    /// How the change of `permission_to_contact` it carries was obtained; only with
    /// such a change (`400` otherwise).
    consent: Option<ConsentInput>,
}

/// A JSON merge patch: absent keeps, `null` clears.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"last_name": "King", "tags": ["vip", "weekly"], "state": null}))]
pub struct CustomerPatch {
    /// May be sent back as read; a customer stays in its account (another is `409`).
    #[schema(value_type = Option<AccountId>)]
    account_id: Option<String>,
    #[schema(value_type = Option<PersonName>)]
    first_name: Option<String>,
    #[schema(value_type = Option<PersonName>)]
    last_name: Option<String>,
    #[schema(value_type = Option<Emails>)]
    email: Option<Value>,
    #[schema(value_type = Option<Phones>)]
    phone: Option<Value>,
    #[schema(value_type = Option<FreeText>)]
    address: Option<String>,
    #[schema(value_type = Option<FreeText>)]
    city: Option<String>,
    #[schema(value_type = Option<FreeText>)]
    state: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(value_type = Option<CountryCode>)]
    country: Option<String>,
    #[schema(value_type = Option<Tags>)]
    tags: Option<Vec<String>>,
    permission_to_contact: Option<bool>,
    /// How the change of `permission_to_contact` it carries was obtained; only with
    /// such a change (`400` otherwise).
    consent: Option<ConsentInput>,
}

/// How a grant or withdrawal of consent was obtained (SPEC section 10).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"legal_basis": "consent", "method": "in-store sign-up", "text": "Yes, send me offers by email."}))]
pub struct ConsentInput {
    /// Default `consent`.
    legal_basis: Option<LegalBasis>,
    #[schema(value_type = Option<ConsentMethod>)]
    method: Option<String>,
    #[schema(value_type = Option<ConsentWording>)]
    text: Option<String>,
}

/// Who made a consent change.
#[derive(ToSchema)]
pub struct ConsentSource {
    product_id: Option<String>,
    key_id: String,
}

/// One change of a customer's permission to contact.
#[derive(ToSchema)]
pub struct ConsentChange {
    granted: bool,
    at: DateTime<Utc>,
    legal_basis: LegalBasis,
    method: Option<String>,
    text: Option<String>,
    source: ConsentSource,
    via: ConsentVia,
}

/// `GET /v1/customers/{customer_id}/consent`.
#[derive(ToSchema)]
pub struct ConsentHistory {
    customer_id: String,
    /// When consent was granted, or `0001-01-01T00:00:00Z`.
    permission_to_contact: DateTime<Utc>,
    /// Oldest first.
    history: Vec<ConsentChange>,
}

#[derive(ToSchema)]
pub struct ConflictInfo {
    conflicting_customer_id: String,
    matched_on: Vec<Matched>,
}

#[derive(ToSchema)]
pub struct Customer {
    customer_id: String,
    vendor_customer_id: Option<String>,
    account_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Vec<String>,
    phone: Vec<String>,
    address: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    tags: Vec<String>,
    /// When consent was granted, or `0001-01-01T00:00:00Z`.
    permission_to_contact: DateTime<Utc>,
    origins: Vec<String>,
    version: i64,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    /// Conflict records only.
    conflict: Option<ConflictInfo>,
}

/// How `{customer_id}` is read (SPEC section 4, "Addressing by vendor id").
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerAddressing {
    /// Default `customer`.
    id_type: Option<IdType>,
    /// With `id_type=vendor`: the account, when the id is used in several.
    #[param(value_type = Option<AccountId>)]
    account_id: Option<String>,
}

/// The query of the customer and conflict lists (SPEC section 4).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFilters {
    /// Required unless the key is an account key.
    #[param(value_type = Option<AccountId>)]
    account_id: Option<String>,
    /// Default 50.
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<Cursor>)]
    cursor: Option<String>,
    /// Matches names, email and phone.
    #[param(value_type = Option<SearchText>)]
    q: Option<String>,
    /// Default `created`.
    sort: Option<Sort>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    updated_since: Option<DateTime<Utc>>,
    #[param(value_type = Option<TagText>)]
    tag: Option<String>,
    /// A product id: customers it created or updated.
    #[param(value_type = Option<ProductId>)]
    origin: Option<String>,
    /// The caller's own id.
    #[param(value_type = Option<VendorId>)]
    vendor_customer_id: Option<String>,
}

#[derive(ToSchema)]
pub struct CustomerPage {
    customers: Vec<Customer>,
    next_cursor: Option<String>,
    has_more: bool,
    total_results: i64,
}

#[derive(ToSchema)]
pub struct ConflictPage {
    conflicts: Vec<Customer>,
    next_cursor: Option<String>,
    has_more: bool,
    total_results: i64,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// Create bodies (`CustomerInput`), each read on its own: one that is not valid gets
    /// its own `400` result and the rest are stored.
    #[schema(min_items = 1, max_items = 500)]
    customers: Vec<Value>,
}

/// `{"status": 201, "customer": …}` or `{"status": 4xx, "problem": …}`.
#[derive(ToSchema)]
pub struct ItemResult {
    status: u16,
    customer: Option<Customer>,
    problem: Option<Problem>,
}

#[derive(ToSchema)]
pub struct ItemResults {
    results: Vec<ItemResult>,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorIdInput {
    #[schema(value_type = VendorId)]
    vendor_customer_id: String,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationInput {
    #[schema(value_type = RecordId)]
    customer_id: String,
    #[schema(value_type = VendorId)]
    vendor_customer_id: String,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationsInput {
    /// `AssociationInput`s, each read on its own: one that is not valid gets its own
    /// `400` result.
    #[schema(min_items = 1, max_items = 500)]
    associations: Vec<Value>,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerMergeInput {
    #[schema(value_type = RecordId)]
    from: String,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"prefer": "incoming", "dry_run": true}))]
pub struct ConflictMergeInput {
    /// Default `existing`.
    prefer: Option<Prefer>,
    dry_run: Option<bool>,
}
