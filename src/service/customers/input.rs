//! Reading customer input (create bodies and merge patches). Phone numbers are read in
//! the region of the customer's account, so these parsers take it.

use crate::domain::consent::ConsentDetails;
use crate::domain::customer::{
    Country, CustomerFields, CustomerPatch, Email, PersonName, Phone, ShortText, Tag, MAX_EMAILS,
    MAX_PHONES, MAX_TAGS,
};
use crate::domain::tenants::Region;
use crate::domain::AccountId;
use crate::error::ApiResult;
use crate::input::{id, storable, text, Fields, Patch};
use serde_json::{Map, Value};

/// What `on_duplicate` asks a duplicate create to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDuplicate {
    Conflict,
    Reject,
    Merge,
}

impl OnDuplicate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "conflict" => Ok(Self::Conflict),
            "reject" => Ok(Self::Reject),
            "merge" => Ok(Self::Merge),
            _ => Err("must be one of: conflict, reject, merge".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Reject => "reject",
            Self::Merge => "merge",
        }
    }
}

/// A create body, validated.
#[derive(Clone, Debug)]
pub struct CustomerDraft {
    /// The caller's own id (`id`), to become its `vendor_customer_id`.
    pub vendor_id: Option<String>,
    pub fields: CustomerFields,
    pub permission: bool,
    /// How the grant was obtained (`consent`), only with `permission_to_contact: true`.
    pub consent: Option<ConsentDetails>,
}

/// The error of a `consent` object sent without a change of `permission_to_contact`.
pub const CONSENT_WITHOUT_CHANGE: &str = "may only accompany a change of permission_to_contact";

/// A caller's own id for a customer: 1 to 255 characters, no control characters.
pub fn vendor_id(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.chars().count() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(raw.to_owned())
}

/// A string or an array of at most `max` strings, each parsed, duplicates (after
/// normalization) dropped.
fn one_or_many<T: PartialEq>(
    value: &Value,
    max: usize,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if items.len() > max {
        return Err(format!("must hold at most {max} values"));
    }
    let mut parsed: Vec<T> = Vec::new();
    for item in items {
        let Value::String(raw) = item else {
            return Err("must be a string or an array of strings".into());
        };
        let item = parse(storable(raw)?)?;
        if !parsed.contains(&item) {
            parsed.push(item);
        }
    }
    Ok(parsed)
}

fn emails(value: &Value) -> Result<Vec<Email>, String> {
    one_or_many(value, MAX_EMAILS, Email::parse)
}

fn phones(region: Region) -> impl Fn(&Value) -> Result<Vec<Phone>, String> {
    move |value| one_or_many(value, MAX_PHONES, |raw| Phone::parse(raw, region))
}

fn tags(value: &Value) -> Result<Vec<Tag>, String> {
    one_or_many(value, MAX_TAGS, Tag::parse)
}

fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| "must be true or false".into())
}

const IDENTITY_FIELDS: [&str; 4] = ["first_name", "last_name", "email", "phone"];
const IDENTITY_RULE: &str = "at least one of first_name, last_name, email or phone must be present";

/// Reads a create body. `account_id` is read (and checked) by the caller before, since
/// it decides the region; here it is only accepted as a known field.
pub fn parse_draft(map: Map<String, Value>, region: Region) -> ApiResult<CustomerDraft> {
    let mut f = Fields::new(map);
    let vendor = f.optional("id", text(vendor_id));
    f.optional("account_id", id::<AccountId>);
    let fields = CustomerFields {
        first_name: f.optional("first_name", text(PersonName::parse)).flatten(),
        last_name: f.optional("last_name", text(PersonName::parse)).flatten(),
        email: f.optional("email", emails).unwrap_or_default(),
        phone: f.optional("phone", phones(region)).unwrap_or_default(),
        address: f.optional("address", text(ShortText::parse)).flatten(),
        city: f.optional("city", text(ShortText::parse)).flatten(),
        state: f.optional("state", text(ShortText::parse)).flatten(),
        country: f.optional("country", text(Country::parse)).flatten(),
        tags: f.optional("tags", tags).unwrap_or_default(),
    };
    let permission = f
        .optional("permission_to_contact", boolean)
        .unwrap_or(false);
    let consent = f.optional("consent", ConsentDetails::parse);
    if consent.is_some() && !permission {
        f.reject::<()>("consent", CONSENT_WITHOUT_CHANGE);
    }
    if !fields.identifies_someone() && f.is_clean() {
        for field in IDENTITY_FIELDS {
            f.reject::<()>(field, IDENTITY_RULE);
        }
    }
    f.finish()?;
    Ok(CustomerDraft {
        vendor_id: vendor,
        fields,
        permission,
        consent,
    })
}

fn patch_of<T>(patch: Patch<T>, null: impl FnOnce() -> T) -> Option<T> {
    match patch {
        Patch::Absent => None,
        Patch::Null => Some(null()),
        Patch::Set(value) => Some(value),
    }
}

/// Reads a merge patch: absent keeps a field, `null` clears it. `account_id` may be sent
/// back unchanged (as read) but cannot move the customer.
pub fn parse_patch(
    map: Map<String, Value>,
    region: Region,
    current_account: Option<&str>,
) -> ApiResult<CustomerPatch> {
    let mut f = Fields::new(map);
    let patch = CustomerPatch {
        first_name: patch_of(f.patch("first_name", text(PersonName::parse)), || None),
        last_name: patch_of(f.patch("last_name", text(PersonName::parse)), || None),
        email: patch_of(f.patch("email", emails), Vec::new),
        phone: patch_of(f.patch("phone", phones(region)), Vec::new),
        address: patch_of(f.patch("address", text(ShortText::parse)), || None),
        city: patch_of(f.patch("city", text(ShortText::parse)), || None),
        state: patch_of(f.patch("state", text(ShortText::parse)), || None),
        country: patch_of(f.patch("country", text(Country::parse)), || None),
        tags: patch_of(f.patch("tags", tags), Vec::new),
        permission_to_contact: patch_of(f.patch("permission_to_contact", boolean), || false),
        consent: f.optional("consent", ConsentDetails::parse),
    };
    // Well formed but another account than the customer's: a conflict with what is
    // stored, not a malformed request.
    let moves = match f.patch("account_id", id::<AccountId>) {
        Patch::Absent => false,
        Patch::Null => current_account.is_some(),
        Patch::Set(account) => Some(account.as_str()) != current_account,
    };
    f.finish()?;
    if moves {
        return Err(crate::error::ApiError::conflict(
            "account_fixed",
            "a customer stays in its account: account_id may only be sent as read",
        ));
    }
    Ok(patch)
}

/// The identity rule after a patch: the patch is well formed, but applied to what is
/// stored it would leave nobody named, so it conflicts with the stored record (`409`),
/// naming the fields.
pub fn identity_required() -> crate::error::ApiError {
    let fields: Vec<crate::error::FieldError> = IDENTITY_FIELDS
        .iter()
        .map(|field| crate::error::FieldError::new(*field, IDENTITY_RULE))
        .collect();
    crate::error::ApiError::conflict(
        "identity_required",
        "the update would leave the customer without first_name, last_name, email or phone",
    )
    .with("errors", fields)
}
