//! Timestamps: UTC, truncated to microseconds so both storage backends round-trip
//! them exactly.

use chrono::{DateTime, SubsecRound, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Fixed-width RFC 3339 text (`2026-11-29T10:00:00.000000Z`): lexical order is time order,
/// which is what lets SQLite sort and page on text columns.
pub fn to_fixed_text(ts: &Timestamp) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_text_sorts_like_time() {
        let a: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        assert!(to_fixed_text(&a) < to_fixed_text(&b));
        assert_eq!(to_fixed_text(&a), "2026-01-01T00:00:00.000000Z");
    }
}
