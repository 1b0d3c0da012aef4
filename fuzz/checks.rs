//! The properties the fuzz targets check, one function per parser of outside input.
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by the test suite, which
//! replays every input kept in `fuzz/regressions/<target>/` through the same function.
//!
//! Each function must not panic on any input; where a parser accepts, its output must
//! satisfy the domain type's rules and parse again to itself.

#![allow(dead_code)]

use customer_list::delivery::client::{is_public, AddressGuard};
use customer_list::domain::cursor::{KeyCursor, TimeCursor};
use customer_list::domain::customer::{Email, Phone};
use customer_list::domain::tenants::{Region, WebhookUrl};
use customer_list::domain::AccountId;
use customer_list::error::ApiError;
use customer_list::http::extract::{parse_if_match, parse_query};
use customer_list::input::{parse_json_object, MAX_TEXT_BYTES};
use customer_list::service::customers::input::{parse_draft, parse_patch};
use customer_list::service::customers::list::search_pattern;
use std::net::IpAddr;

const REGIONS: [&str; 6] = ["US", "CA", "GB", "DE", "IN", "BR"];

fn region(byte: u8) -> Region {
    Region::parse(REGIONS[usize::from(byte) % REGIONS.len()]).expect("a known region")
}

/// Text the hub accepted is text both databases store as given: no NUL, bounded.
fn assert_storable(text: &str) {
    assert!(!text.contains('\0'), "NUL accepted: {text:?}");
    assert!(text.len() <= MAX_TEXT_BYTES, "over-long text accepted");
}

/// A rejection must be a client error naming what was wrong.
fn assert_client_error(err: &ApiError) {
    assert!(err.status.is_client_error(), "{err:?}");
    assert!(!err.detail.is_empty(), "{err:?}");
}

fn assert_email(email: &Email) {
    assert_eq!(email.as_str(), email.as_str().to_lowercase(), "lower case");
    assert_eq!(email.as_str(), email.as_str().trim(), "trimmed");
    assert!(email.as_str().len() <= Email::MAX_LEN);
    assert_eq!(
        Email::parse(email.as_str()).as_ref(),
        Ok(email),
        "normal form parses to itself"
    );
}

fn assert_phone(phone: &Phone) {
    let digits = phone
        .as_str()
        .strip_prefix('+')
        .expect("E.164 starts with +");
    assert!(
        !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()),
        "E.164: {phone:?}"
    );
    for code in REGIONS {
        let region = Region::parse(code).unwrap();
        assert_eq!(
            Phone::parse(phone.as_str(), region).as_ref(),
            Ok(phone),
            "E.164 reads the same in every region"
        );
    }
}

/// Customer JSON (create bodies and merge patches) to the validated domain types. The
/// first byte picks the account's region; the rest is the body.
pub fn customer_json(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let region = region(first);
    let map = match parse_json_object(body) {
        Ok(map) => map,
        Err(err) => return assert_client_error(&err),
    };
    match parse_draft(map.clone(), region) {
        Ok(draft) => {
            let f = &draft.fields;
            assert!(f.identifies_someone(), "a draft names someone");
            f.email.iter().for_each(assert_email);
            f.phone.iter().for_each(assert_phone);
            assert!(f.email.len() <= 10 && f.phone.len() <= 10 && f.tags.len() <= 50);
            for name in [&f.first_name, &f.last_name].into_iter().flatten() {
                assert!(!name.as_str().is_empty() && name.as_str().chars().count() <= 100);
                assert!(!name.as_str().contains([',', ';']));
                assert!(!name.as_str().chars().any(char::is_control));
            }
            for line in [&f.address, &f.city, &f.state].into_iter().flatten() {
                assert_storable(line.as_str());
                assert!(!line.as_str().chars().any(|c| c.is_control() && c != '\n'));
            }
            for tag in &f.tags {
                assert!(!tag.as_str().chars().any(char::is_control));
            }
            if let Some(id) = &draft.vendor_id {
                assert!(!id.is_empty() && id.chars().count() <= 255);
                assert!(!id.chars().any(char::is_control));
            }
        }
        Err(err) => assert_client_error(&err),
    }
    match parse_patch(map, region, Some("AC-fuzz")) {
        Ok(patch) => {
            patch.email.iter().flatten().for_each(assert_email);
            patch.phone.iter().flatten().for_each(assert_phone);
        }
        Err(err) => assert_client_error(&err),
    }
}

/// Phone and email normalization on their own. The first byte picks the region.
pub fn phone_email(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if let Ok(email) = Email::parse(&text) {
        assert_email(&email);
    }
    if let Ok(phone) = Phone::parse(&text, region(first)) {
        assert_phone(&phone);
    }
}

/// Cursors (both kinds) and `q` search patterns: what decodes encodes back to itself;
/// a search pattern never carries an unescaped wildcard from the input.
pub fn cursors(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(cursor) = TimeCursor::decode::<AccountId>(&text) {
        assert!(AccountId::parse(&cursor.id).is_some(), "{cursor:?}");
        assert_eq!(
            TimeCursor::decode::<AccountId>(&cursor.encode()),
            Ok(cursor)
        );
    }
    for sort in ["created", "-created", "last_name", "-first_name"] {
        if let Ok(cursor) = KeyCursor::decode(&text, sort) {
            assert_eq!(cursor.sort, sort);
            assert_eq!(KeyCursor::decode(&cursor.encode(), sort), Ok(cursor));
        }
    }
    if let Some(pattern) = search_pattern(&text) {
        let inner = pattern
            .strip_prefix('%')
            .and_then(|p| p.strip_suffix('%'))
            .expect("the pattern is %needle%");
        let mut chars = inner.chars();
        let mut needle = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => needle.push(chars.next().expect("an escape escapes something")),
                '%' | '_' => panic!("unescaped wildcard in {pattern:?}"),
                c => needle.push(c),
            }
        }
        assert!(!needle.is_empty());
    }
}

/// `If-Match` header values: a version, `*`, or a client error.
pub fn if_match(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(Some(version)) = parse_if_match(&text) {
        assert_eq!(parse_if_match(&format!("\"{version}\"")), Ok(Some(version)));
        assert_eq!(parse_if_match(&version.to_string()), Ok(Some(version)));
    }
}

/// Webhook URLs as products register them, and the address guard the client applies to
/// them: an accepted URL is http(s) with a host and no credentials, normalizes to a
/// fixed point, and a literal IP in it passes the guard only if it is public.
pub fn webhook_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(hook) = WebhookUrl::parse(&text) else {
        return;
    };
    assert_eq!(WebhookUrl::parse(hook.as_str()).as_ref(), Ok(&hook));
    let url = url::Url::parse(hook.as_str()).expect("a parsed URL parses");
    assert!(matches!(url.scheme(), "http" | "https"));
    assert!(url.username().is_empty() && url.password().is_none());
    let guard = AddressGuard::default();
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => panic!("accepted without a host: {hook:?}"),
    };
    match literal {
        Some(ip) => assert_eq!(guard.check_url(&url).is_ok(), is_public(ip), "{ip}"),
        None => assert!(guard.check_url(&url).is_ok()),
    }
}

/// Query strings: each decodes without loss into storable text free of control
/// characters, or is refused as a client error naming a parameter (or the query).
pub fn query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_query(&text) {
        Ok(params) => {
            for (name, value) in &params {
                for text in [name, value] {
                    assert_storable(text);
                    assert!(!text.chars().any(char::is_control), "{text:?}");
                }
            }
        }
        Err(err) => {
            assert_client_error(&err);
            assert!(err.extensions["errors"][0]["field"].is_string(), "{err:?}");
        }
    }
}
