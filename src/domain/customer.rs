//! Customers (SPEC section 4): field types with their validation and normalization, the
//! record, and the rules for changing it (merge patch, consent, version, origins).

use super::ids::{AccountId, CustomerId, ProductId};
use super::tenants::Region;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A first or last name: trimmed, at most 100 characters, no commas or semicolons.
/// Text as a person types it into a field: at most `max` characters as sent, no control
/// character (Unicode `Cc`; a line break too where `line_breaks`), then trimmed. The
/// rules read the text as sent, so the OpenAPI document can state them exactly.
pub fn plain_text(raw: &str, max: usize, line_breaks: bool) -> Result<&str, String> {
    if raw.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !(line_breaks && c == '\n'))
    {
        return Err("must not contain control characters".into());
    }
    Ok(raw.trim())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_CHARS: usize = 100;

    /// `None` for a blank name, which is stored as no name.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let name = plain_text(raw, Self::MAX_CHARS, false)?;
        if name.contains([',', ';']) {
            return Err("must not contain commas or semicolons".into());
        }
        Ok((!name.is_empty()).then(|| Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of at most 200 characters (`address`, `city`, `state`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShortText(String);

impl ShortText {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let text = plain_text(raw, Self::MAX_CHARS, true)?;
        Ok((!text.is_empty()).then(|| Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, stored upper case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let code = raw.trim();
        if code.is_empty() {
            return Ok(None);
        }
        isocountry::CountryCode::for_alpha2_caseless(code)
            .map(|c| Some(Self(c.alpha2().to_owned())))
            .map_err(|_| format!("{code:?} is not an ISO 3166-1 alpha-2 country code"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: trimmed, lower-cased, valid by RFC 5322 syntax with a dotted
/// domain, within RFC 5321's length limits (64 for the local part, 254 in all).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let email = raw.trim().to_lowercase();
        if email.len() > Self::MAX_LEN {
            return Err(format!(
                "{raw:?} is longer than {} characters",
                Self::MAX_LEN
            ));
        }
        let options = email_address::Options::default()
            .with_required_tld()
            .without_domain_literal();
        let options = email_address::Options {
            allow_display_text: false,
            ..options
        };
        email_address::EmailAddress::parse_with_options(&email, options)
            .map(|_| Self(email))
            .map_err(|e| format!("{raw:?} is not a valid email address ({e})"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 (`+13065550100`), read with libphonenumber's rules; national
/// numbers are read in the account's default region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Longest input accepted before parsing (libphonenumber itself caps at 250).
    pub const MAX_INPUT: usize = 64;

    pub fn parse(raw: &str, region: Region) -> Result<Self, String> {
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let text = raw.trim();
        if text.is_empty() || raw.chars().count() > Self::MAX_INPUT {
            return Err(format!("{raw:?} is not a phone number"));
        }
        // An international number (`+...`) names its own country: reading it without a
        // default region keeps the phonenumber crate from applying the region's national
        // rules to it (e.g. "+55 15 ..." was refused in a US account; found by fuzzing).
        let default = (!text.starts_with('+')).then(|| region.phone_region());
        let number = phonenumber::parse(default, text)
            .map_err(|_| format!("{raw:?} is not a phone number"))?;
        let invalid = || {
            format!(
                "{raw:?} is not a valid number (read in region {})",
                region.as_str()
            )
        };
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        // E.164 allows 15 digits; libphonenumber accepts some longer German numbers
        // (found by fuzzing). The contract stores E.164, so those are refused.
        if e164.len() > 16 {
            return Err(format!("{raw:?} is longer than E.164 allows (15 digits)"));
        }
        // The stored form must read back as the same valid number, so a record sent back
        // as read is accepted and dedupes against itself. Some inputs (letters read as
        // digits, national prefixes) validate but format to a number that does not:
        // those are refused (found by the phone_email fuzz target).
        match phonenumber::parse(None, &e164) {
            Ok(again)
                if phonenumber::is_valid(&again)
                    && again.format().mode(phonenumber::Mode::E164).to_string() == e164 =>
            {
                Ok(Self(e164))
            }
            _ => Err(invalid()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits, without the leading `+`, for search.
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }
}

/// A tag: trimmed, 1 to 50 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let tag = plain_text(raw, Self::MAX_CHARS, false).map_err(|e| format!("each tag {e}"))?;
        if tag.is_empty() {
            return Err("tags must not be empty".into());
        }
        Ok(Self(tag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MAX_EMAILS: usize = 10;
pub const MAX_PHONES: usize = 10;
pub const MAX_TAGS: usize = 50;

/// Appends the items of `more` not already in `list`, keeping order: the first
/// occurrence wins, so normalized duplicates collapse.
pub fn extend_unique<T: PartialEq + Clone>(list: &mut Vec<T>, more: &[T]) -> bool {
    let before = list.len();
    for item in more {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
    list.len() != before
}

/// The writable fields of a customer, normalized.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerFields {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub email: Vec<Email>,
    pub phone: Vec<Phone>,
    pub address: Option<ShortText>,
    pub city: Option<ShortText>,
    pub state: Option<ShortText>,
    pub country: Option<Country>,
    pub tags: Vec<Tag>,
}

impl CustomerFields {
    /// Every email and phone, as identifiers (whatever the account's dedupe policy):
    /// what erasure suppresses and suppression refuses.
    pub fn contact_identifiers(&self) -> Vec<Identifier> {
        let emails = self.email.iter().map(|e| Identifier::email(e.as_str()));
        let phones = self.phone.iter().map(|p| Identifier::phone(p.as_str()));
        emails.chain(phones).collect()
    }

    /// The emails and phones `self` has that `before` has not (what a merge adds).
    pub fn identifiers_added_to(&self, before: &CustomerFields) -> Vec<Identifier> {
        let had = before.contact_identifiers();
        self.contact_identifiers()
            .into_iter()
            .filter(|i| !had.contains(i))
            .collect()
    }

    /// At least one of first name, last name, email or phone.
    pub fn identifies_someone(&self) -> bool {
        self.first_name.is_some()
            || self.last_name.is_some()
            || !self.email.is_empty()
            || !self.phone.is_empty()
    }

    /// The lower-cased text `q` searches: names, emails and phone digits.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for name in [&self.first_name, &self.last_name].into_iter().flatten() {
            parts.push(name.as_str().to_lowercase());
        }
        parts.extend(self.email.iter().map(|e| e.as_str().to_owned()));
        parts.extend(self.phone.iter().map(|p| p.digits().to_owned()));
        parts.join(" ")
    }

    /// Folds `incoming` in: empty fields are filled, new emails, phones and tags added.
    /// Returns whether anything changed.
    pub fn fold_in(&mut self, incoming: &CustomerFields) -> bool {
        fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) -> bool {
            if slot.is_none() && value.is_some() {
                *slot = value.clone();
                true
            } else {
                false
            }
        }
        let mut changed = false;
        changed |= fill(&mut self.first_name, &incoming.first_name);
        changed |= fill(&mut self.last_name, &incoming.last_name);
        changed |= fill(&mut self.address, &incoming.address);
        changed |= fill(&mut self.city, &incoming.city);
        changed |= fill(&mut self.state, &incoming.state);
        changed |= fill(&mut self.country, &incoming.country);
        changed |= extend_unique(&mut self.email, &incoming.email);
        changed |= extend_unique(&mut self.phone, &incoming.phone);
        changed |= extend_unique(&mut self.tags, &incoming.tags);
        self.email.truncate(MAX_EMAILS);
        self.phone.truncate(MAX_PHONES);
        self.tags.truncate(MAX_TAGS);
        changed
    }
}

/// Where a customer belongs: an account (synced), or the product that created it when it
/// has no account (private to that product, never synced). This is also the scope of
/// de-duplication and of vendor-id uniqueness, and the sharding key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CustomerScope {
    Account(AccountId),
    Product(ProductId),
}

impl CustomerScope {
    const PRODUCT_PREFIX: &'static str = "product:";

    /// The scope as stored in every customer-side table.
    pub fn key(&self) -> String {
        match self {
            Self::Account(id) => id.to_string(),
            Self::Product(id) => format!("{}{id}", Self::PRODUCT_PREFIX),
        }
    }

    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Self::Account(id) => Some(id),
            Self::Product(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerStatus {
    Live,
    Deleted,
    Merged,
    Conflict,
    /// Erased (SPEC section 10): only its id, scope and version are left.
    Erased,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Deleted => "deleted",
            Self::Merged => "merged",
            Self::Conflict => "conflict",
            Self::Erased => "erased",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "live" => Self::Live,
            "deleted" => Self::Deleted,
            "merged" => Self::Merged,
            "conflict" => Self::Conflict,
            "erased" => Self::Erased,
            _ => return None,
        })
    }
}

/// Whose values win when two records are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefer {
    Existing,
    Incoming,
}

impl Prefer {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "existing" => Ok(Self::Existing),
            "incoming" => Ok(Self::Incoming),
            _ => Err("must be existing or incoming".into()),
        }
    }
}

/// Which identifier a duplicate matched on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedOn {
    pub field: String,
    pub value: String,
}

/// What a conflict record collided with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictInfo {
    pub conflicting_customer_id: CustomerId,
    pub matched_on: Vec<MatchedOn>,
    /// The id the creating product gave (its `vendor_customer_id`), kept for resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_customer_id: Option<String>,
}

/// A customer (or conflict record) as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub customer_id: CustomerId,
    pub scope: CustomerScope,
    pub status: CustomerStatus,
    pub fields: CustomerFields,
    /// When consent to contact was granted; `None` when not granted.
    pub permission_to_contact: Option<Timestamp>,
    pub origins: Vec<ProductId>,
    pub version: i64,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub deleted: Option<Timestamp>,
    pub merged_into: Option<CustomerId>,
    pub conflict: Option<ConflictInfo>,
}

/// Why a change decided under a customer's row lock was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The customer is no longer live (deleted or merged away).
    NotLive,
    /// The customer changed in a way that voids this request (e.g. the duplicate a
    /// create was folding into went away): the client may try again.
    ChangedMeanwhile,
    /// `If-Match` named another version than the stored one.
    VersionMismatch { current: i64 },
    /// The change would leave nothing that identifies the person.
    NoIdentity,
    /// A `consent` object came with no change of `permission_to_contact`.
    ConsentWithoutChange,
}

/// Consent after a request: `true` keeps an earlier grant's moment, `false` withdraws.
pub fn consent(current: Option<Timestamp>, wanted: bool, now: Timestamp) -> Option<Timestamp> {
    match (wanted, current) {
        (true, Some(granted)) => Some(granted),
        (true, None) => Some(now),
        (false, _) => None,
    }
}

/// A merge patch of a customer's writable fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct CustomerPatch {
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub email: Option<Vec<Email>>,
    pub phone: Option<Vec<Phone>>,
    pub address: Option<Option<ShortText>>,
    pub city: Option<Option<ShortText>>,
    pub state: Option<Option<ShortText>>,
    pub country: Option<Option<Country>>,
    pub tags: Option<Vec<Tag>>,
    pub permission_to_contact: Option<bool>,
    /// How the change of `permission_to_contact` was obtained (only with such a change).
    pub consent: Option<crate::domain::consent::ConsentDetails>,
}

impl Customer {
    /// A new live customer (or, with `conflict`, a conflict record) at version 1.
    pub fn new(
        customer_id: CustomerId,
        scope: CustomerScope,
        fields: CustomerFields,
        permission: bool,
        origin: Option<&ProductId>,
        now: Timestamp,
    ) -> Self {
        Self {
            customer_id,
            scope,
            status: CustomerStatus::Live,
            fields,
            permission_to_contact: consent(None, permission, now),
            origins: origin.into_iter().cloned().collect(),
            version: 1,
            created: now,
            updated: now,
            deleted: None,
            merged_into: None,
            conflict: None,
        }
    }

    /// Records that a change happened: one version up, `updated` now, and the origin
    /// appended to `origins` when it is new.
    pub fn touch(&mut self, origin: Option<&ProductId>, now: Timestamp) {
        self.version += 1;
        self.updated = now;
        if let Some(origin) = origin {
            extend_unique(&mut self.origins, std::slice::from_ref(origin));
        }
    }

    /// Applies a merge patch. Returns the changed customer, or `None` when the patch
    /// changes nothing (no new version, no event).
    pub fn patched(
        &self,
        patch: &CustomerPatch,
        origin: Option<&ProductId>,
        now: Timestamp,
    ) -> Option<Self> {
        let mut next = self.clone();
        let f = &mut next.fields;
        if let Some(v) = &patch.first_name {
            f.first_name = v.clone();
        }
        if let Some(v) = &patch.last_name {
            f.last_name = v.clone();
        }
        if let Some(v) = &patch.email {
            f.email = v.clone();
        }
        if let Some(v) = &patch.phone {
            f.phone = v.clone();
        }
        if let Some(v) = &patch.address {
            f.address = v.clone();
        }
        if let Some(v) = &patch.city {
            f.city = v.clone();
        }
        if let Some(v) = &patch.state {
            f.state = v.clone();
        }
        if let Some(v) = &patch.country {
            f.country = v.clone();
        }
        if let Some(v) = &patch.tags {
            f.tags = v.clone();
        }
        if let Some(wanted) = patch.permission_to_contact {
            next.permission_to_contact = consent(self.permission_to_contact, wanted, now);
        }
        if next == *self {
            return None;
        }
        next.touch(origin, now);
        Some(next)
    }

    /// Folds a duplicate's data in (`on_duplicate=merge`); `None` when nothing changed.
    pub fn merged_with(
        &self,
        incoming: &CustomerFields,
        permission: bool,
        origin: Option<&ProductId>,
        now: Timestamp,
    ) -> Option<Self> {
        let mut next = self.clone();
        let mut changed = next.fields.fold_in(incoming);
        if permission && next.permission_to_contact.is_none() {
            next.permission_to_contact = Some(now);
            changed = true;
        }
        if !changed {
            return None;
        }
        next.touch(origin, now);
        Some(next)
    }

    /// This customer with a duplicate's data folded in, preferring this customer's
    /// values (`Prefer::Existing`: empty fields filled) or the duplicate's
    /// (`Prefer::Incoming`: its present values overwrite); emails, phones, tags and
    /// origins are united either way. Consent is never withdrawn by a merge: granted when
    /// either side granted it, at the earlier moment. `None` when nothing changes.
    pub fn absorbing(
        &self,
        other: &Customer,
        prefer: Prefer,
        origin: Option<&ProductId>,
        now: Timestamp,
    ) -> Option<Self> {
        let mut next = self.clone();
        if prefer == Prefer::Incoming {
            let mut incoming = other.fields.clone();
            incoming.fold_in(&self.fields);
            // Lists keep this customer's order, with the duplicate's new items after.
            let mut lists = self.fields.clone();
            lists.fold_in(&other.fields);
            incoming.email = lists.email;
            incoming.phone = lists.phone;
            incoming.tags = lists.tags;
            next.fields = incoming;
        } else {
            next.fields.fold_in(&other.fields);
        }
        next.permission_to_contact = match (self.permission_to_contact, other.permission_to_contact)
        {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        extend_unique(&mut next.origins, &other.origins);
        if next == *self {
            return None;
        }
        next.touch(origin, now);
        Some(next)
    }

    /// Drops the emails and phones in `taken` (identifiers another customer owns).
    pub fn without_identifiers(&self, taken: &[Identifier]) -> Self {
        let mut next = self.clone();
        next.fields
            .email
            .retain(|e| !taken.contains(&Identifier::email(e.as_str())));
        next.fields
            .phone
            .retain(|p| !taken.contains(&Identifier::phone(p.as_str())));
        next
    }

    /// The identifiers de-duplication indexes under `policy`.
    /// The record as erasure leaves it: its id, scope and times, a new version, and no
    /// personal data (no fields, consent, origins or conflict copy).
    pub fn erased(&self, now: Timestamp) -> Self {
        let mut next = self.clone();
        next.fields = CustomerFields::default();
        next.permission_to_contact = None;
        next.origins = Vec::new();
        next.conflict = None;
        next.status = CustomerStatus::Erased;
        next.version = self.version + 1;
        next.updated = now;
        next
    }

    pub fn identifiers(&self, policy: super::tenants::DedupePolicy) -> Vec<Identifier> {
        use super::tenants::DedupePolicy;
        let mut ids = Vec::new();
        if policy != DedupePolicy::None {
            ids.extend(
                self.fields
                    .email
                    .iter()
                    .map(|e| Identifier::email(e.as_str())),
            );
        }
        if policy == DedupePolicy::EmailOrPhone {
            ids.extend(
                self.fields
                    .phone
                    .iter()
                    .map(|p| Identifier::phone(p.as_str())),
            );
        }
        ids
    }
}

/// A normalized identifier of a customer within its scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    pub kind: &'static str,
    pub value: String,
}

impl Identifier {
    /// The identifier a `matched_on` entry names, when it is an email or phone.
    pub fn from_matched(matched: &MatchedOn) -> Option<Self> {
        match matched.field.as_str() {
            "email" => Some(Self::email(&matched.value)),
            "phone" => Some(Self::phone(&matched.value)),
            _ => None,
        }
    }

    pub fn email(value: &str) -> Self {
        Self {
            kind: "email",
            value: value.to_owned(),
        }
    }

    pub fn phone(value: &str) -> Self {
        Self {
            kind: "phone",
            value: value.to_owned(),
        }
    }

    pub fn matched_on(&self) -> MatchedOn {
        MatchedOn {
            field: self.kind.to_owned(),
            value: self.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::now;

    fn region(code: &str) -> Region {
        Region::parse(code).unwrap()
    }

    #[test]
    fn phones_normalize_to_e164_in_the_accounts_region() {
        let ca = region("CA");
        assert_eq!(
            Phone::parse("(306) 555-0100", ca).unwrap().as_str(),
            "+13065550100"
        );
        assert_eq!(
            Phone::parse("+1 306-555-0100", region("GB"))
                .unwrap()
                .as_str(),
            "+13065550100"
        );
        assert_eq!(
            Phone::parse("020 7946 0958", region("GB"))
                .unwrap()
                .as_str(),
            "+442079460958"
        );
        assert!(Phone::parse("12", ca).is_err());
        assert!(Phone::parse("not a phone", ca).is_err());
        assert!(Phone::parse("+1 555 555 5555 5555 5555", ca).is_err());
    }

    /// Found by fuzzing: the stored form reads back as itself in any account's region.
    #[test]
    fn a_stored_phone_reads_back_as_itself_everywhere() {
        let brazil = Phone::parse("(153) 556-0100", region("BR")).unwrap();
        assert_eq!(brazil.as_str(), "+551535560100");
        for code in ["US", "CA", "GB", "IN", "BR"] {
            assert_eq!(Phone::parse(brazil.as_str(), region(code)).unwrap(), brazil);
        }
        assert!(
            Phone::parse("(3070) 554-S01-0100", region("DE")).is_err(),
            "16 digits"
        );
        // Letters read as digits validate in India, but their E.164 form does not: refused.
        if let Ok(odd) = Phone::parse("K12 55)5-0 51 51", region("IN")) {
            assert_eq!(Phone::parse(odd.as_str(), region("US")).unwrap(), odd);
        }
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert!(Email::parse("ada").is_err());
        assert!(
            Email::parse("ada@localhost").is_err(),
            "a dotted domain is required"
        );
        assert!(Email::parse("Ada <ada@example.com>").is_err());
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn names_refuse_separators() {
        assert!(PersonName::parse("Ada, Countess").is_err());
        assert!(PersonName::parse("Ada; x").is_err());
        assert!(PersonName::parse(&"a".repeat(101)).is_err());
        assert_eq!(PersonName::parse("  ").unwrap(), None);
        assert_eq!(Country::parse("ca").unwrap().unwrap().as_str(), "CA");
        assert!(Country::parse("XX").is_err());
    }

    #[test]
    fn consent_keeps_the_first_grant() {
        let t1 = now();
        let t2 = t1 + chrono::Duration::seconds(10);
        assert_eq!(consent(None, true, t1), Some(t1));
        assert_eq!(consent(Some(t1), true, t2), Some(t1));
        assert_eq!(consent(Some(t1), false, t2), None);
    }

    #[test]
    fn merges_prefer_one_side_and_unite_lists() {
        let t = now();
        let account = CustomerScope::Account(AccountId::generate());
        let existing = Customer::new(
            CustomerId::generate(),
            account.clone(),
            CustomerFields {
                first_name: PersonName::parse("Ada").unwrap(),
                email: vec![Email::parse("ada@example.com").unwrap()],
                ..Default::default()
            },
            false,
            None,
            t,
        );
        let incoming = Customer::new(
            CustomerId::generate(),
            account,
            CustomerFields {
                first_name: PersonName::parse("Augusta").unwrap(),
                last_name: PersonName::parse("King").unwrap(),
                email: vec![Email::parse("augusta@example.com").unwrap()],
                ..Default::default()
            },
            true,
            None,
            t,
        );
        let kept = existing
            .absorbing(&incoming, Prefer::Existing, None, now())
            .unwrap();
        assert_eq!(kept.fields.first_name.as_ref().unwrap().as_str(), "Ada");
        assert_eq!(kept.fields.last_name.as_ref().unwrap().as_str(), "King");
        assert_eq!(kept.fields.email.len(), 2);
        assert_eq!(
            kept.permission_to_contact,
            Some(t),
            "consent from either side"
        );
        assert_eq!(kept.version, 2);
        let theirs = existing
            .absorbing(&incoming, Prefer::Incoming, None, now())
            .unwrap();
        assert_eq!(
            theirs.fields.first_name.as_ref().unwrap().as_str(),
            "Augusta"
        );
        assert_eq!(theirs.fields.email[0].as_str(), "ada@example.com");
        assert!(existing
            .absorbing(&existing, Prefer::Existing, None, now())
            .is_none());
    }

    #[test]
    fn a_patch_that_changes_nothing_keeps_the_version() {
        let t = now();
        let fields = CustomerFields {
            first_name: PersonName::parse("Ada").unwrap(),
            ..Default::default()
        };
        let customer = Customer::new(
            CustomerId::generate(),
            CustomerScope::Account(AccountId::generate()),
            fields,
            true,
            None,
            t,
        );
        let same = CustomerPatch {
            first_name: Some(PersonName::parse("Ada").unwrap()),
            permission_to_contact: Some(true),
            ..Default::default()
        };
        assert!(customer.patched(&same, None, now()).is_none());
        let origin = ProductId::generate();
        let change = CustomerPatch {
            last_name: Some(PersonName::parse("Lovelace").unwrap()),
            ..Default::default()
        };
        let next = customer.patched(&change, Some(&origin), now()).unwrap();
        assert_eq!(next.version, 2);
        assert_eq!(next.origins, vec![origin]);
        assert_eq!(next.permission_to_contact, Some(t));
    }
}
