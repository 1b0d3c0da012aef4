//! Partners, accounts, products and activations (SPEC sections 1 and 7), and the value
//! types their fields are parsed into at the edge.

use super::ids::{AccountId, PartnerId, ProductId};
use super::time::Timestamp;
use serde::Serialize;
use std::str::FromStr;

/// A display name: trimmed, non-empty, at most 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = crate::domain::customer::plain_text(raw, Self::MAX_CHARS, false)?;
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The region used to read national phone numbers: an ISO 3166 alpha-2 code that
/// libphonenumber knows. Accepted in any case, stored upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Region(phonenumber::country::Id);

impl Region {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let upper = raw.trim().to_ascii_uppercase();
        if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("must be an ISO 3166 alpha-2 region code such as \"US\"".into());
        }
        phonenumber::country::Id::from_str(&upper)
            .map(Self)
            .map_err(|_| format!("\"{upper}\" is not a known region code"))
    }

    pub fn phone_region(self) -> phonenumber::country::Id {
        self.0
    }

    /// The upper-case code; strum's `AsRefStr` names each variant by its code.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl Default for Region {
    fn default() -> Self {
        Self(phonenumber::country::Id::US)
    }
}

impl From<Region> for String {
    fn from(region: Region) -> Self {
        region.0.as_ref().to_owned()
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!("must be one of: {}", Self::ALL.join(", "))),
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }
    };
}

string_enum!(
    /// Which identifiers make two customers of one account the same customer.
    DedupePolicy { EmailOrPhone = "email_or_phone", Email = "email", None = "none" }
);

// The enum comes from `string_enum!`, which cannot take `#[derive(Default)]` per variant.
#[allow(clippy::derivable_impls)]
impl Default for DedupePolicy {
    fn default() -> Self {
        Self::EmailOrPhone
    }
}

string_enum!(
    /// How a product is activated on an account.
    SyncMode { TwoWay = "two_way", OneWay = "one_way" }
);

string_enum!(
    /// Whether the product's webhook receives deliveries.
    WebhookStatus { Enabled = "enabled", Disabled = "disabled" }
);

string_enum!(
    /// Whether the product's receiver answers (SPEC section 6): `failing` once its
    /// breaker has paused its deliveries after consecutive failures.
    WebhookHealth { Healthy = "healthy", Failing = "failing" }
);

/// Consecutive failed attempts after which a product's deliveries pause (SPEC section 6).
pub const BREAKER_FAILURES: i32 = 5;
/// The first and the longest interval between probes of a paused product, in seconds
/// (the SPEC allows up to 60: at 50, a receiver back is found, and everything resumed,
/// within a minute).
pub const PROBE_FIRST_S: i64 = 5;
pub const PROBE_MAX_S: i64 = 50;

/// A product's webhook endpoint: an absolute `http` or `https` URL with a host and no
/// credentials. Whether its address may be reached is decided at delivery time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let url = url::Url::parse(raw).map_err(|e| format!("must be an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must use http or https".into());
        }
        if url.host().is_none() {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        // Normalizing percent-encodes, which can lengthen it (found by the webhook_url
        // fuzz target): the limit holds for what is stored.
        let normal = url.to_string();
        if normal.len() > Self::MAX_LEN {
            return Err(format!(
                "must be at most {} characters once percent-encoded",
                Self::MAX_LEN
            ));
        }
        Ok(Self(normal))
    }

    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Partner {
    pub partner_id: PartnerId,
    pub name: DisplayName,
    pub created: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Account {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub name: DisplayName,
    pub default_region: Region,
    pub dedupe_policy: DedupePolicy,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A product as stored. The signing secret is never serialized with it: it is shown at
/// creation only (and later, on rotation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Product {
    pub product_id: ProductId,
    pub partner_id: Option<PartnerId>,
    pub name: DisplayName,
    pub webhook_url: Option<WebhookUrl>,
    #[serde(skip)]
    pub webhook_secret: String,
    pub webhook_status: WebhookStatus,
    pub webhook_disabled_reason: Option<String>,
    pub webhook_health: WebhookHealth,
    /// Since when its attempts fail without a success in between.
    pub failing_since: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activation {
    pub account_id: AccountId,
    pub product_id: ProductId,
    pub sync: SyncMode,
    pub created: Timestamp,
    pub updated: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_accepts_known_codes_in_any_case() {
        assert_eq!(String::from(Region::parse("ca").unwrap()), "CA");
        assert!(Region::parse("ZZ").is_err());
        assert!(Region::parse("USA").is_err());
        assert!(Region::parse("").is_err());
    }

    #[test]
    fn webhook_url_rules() {
        assert!(WebhookUrl::parse("https://example.com/hook").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/x").is_ok());
        assert!(WebhookUrl::parse("ftp://example.com").is_err());
        assert!(WebhookUrl::parse("https://user:pw@example.com").is_err());
        // Found by fuzzing: 710 bytes that percent-encode to over 2048 characters.
        let long = format!("https://example.com/{}", "\u{FFFD}".repeat(230));
        assert!(long.len() <= WebhookUrl::MAX_LEN);
        assert!(WebhookUrl::parse(&long).is_err());
        assert!(WebhookUrl::parse("not a url").is_err());
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(DisplayName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(201)).is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn enums_parse_exactly() {
        assert_eq!(SyncMode::parse("two_way").unwrap(), SyncMode::TwoWay);
        assert!(SyncMode::parse("TWO_WAY").is_err());
        assert_eq!(DedupePolicy::default().as_str(), "email_or_phone");
    }
}
