//! A customer's history as its page shows it: the account's events for it (type,
//! version, who, when, what changed from the version before) and what each product was
//! sent with whether it arrived.

use crate::domain::time::Timestamp;
use crate::storage::{AttemptView, CustomerEvent, DeliveryView};
use serde_json::Value;

/// The fields an event's data carries that people change, with their labels.
const CHANGEABLE: [(&str, &str); 10] = [
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("address", "Address"),
    ("city", "City"),
    ("state", "State or province"),
    ("country", "Country"),
    ("tags", "Tags"),
    ("permission_to_contact", "Permission to contact"),
];

pub struct HistoryRow {
    pub when: String,
    pub event_type: String,
    pub version: i64,
    pub who: String,
    /// (field, before, after)
    pub changes: Vec<(&'static str, String, String)>,
    /// Said instead of changes: "first version", "merged … into it", "deleted".
    pub summary: Option<String>,
}

pub struct SentRow {
    pub product: String,
    pub event_type: String,
    pub version: i64,
    pub status: String,
    pub attempts: i32,
    pub last_answer: String,
    pub when: String,
}

/// Times as pages show them.
pub fn when(t: &Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An RFC 3339 time as pages show it (unchanged when it is not one).
pub fn when_text(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| when(&t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// An attempt's answer in words.
pub fn answer(attempt: &AttemptView) -> String {
    match (attempt.response_code, &attempt.error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".into(),
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".into(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "given".into(),
        Value::Bool(false) => "not given".into(),
        Value::Array(items) if items.is_empty() => "(empty)".into(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// What `newer` changed from `older` (both an event's data).
fn changed(older: &Value, newer: &Value) -> Vec<(&'static str, String, String)> {
    CHANGEABLE
        .iter()
        .filter(|(field, _)| older[field] != newer[field])
        .map(|(field, label)| (*label, shown(&older[field]), shown(&newer[field])))
        .collect()
}

/// Rows for `events` (newest first, holding one more than is shown when there is an
/// older one, so that the oldest shown can say what it changed).
pub fn history(events: &[CustomerEvent], shown_at_most: usize) -> Vec<HistoryRow> {
    events
        .iter()
        .enumerate()
        .take(shown_at_most)
        .map(|(i, event)| {
            let older = events.get(i + 1);
            let summary = match (event.event_type.as_str(), older) {
                ("customer.deleted", _) => Some("Deleted".to_owned()),
                ("customer.created", _) => Some("First version".to_owned()),
                ("customer.merged", _) => {
                    Some(format!("Absorbed {}", shown(&event.data["merged_ids"])))
                }
                (_, None) => Some("Older versions are no longer kept".to_owned()),
                _ => None,
            };
            let changes = match older {
                Some(older) if event.event_type != "customer.deleted" => {
                    changed(&older.data, &event.data)
                }
                _ => Vec::new(),
            };
            HistoryRow {
                when: when(&event.created),
                event_type: event.event_type.clone(),
                version: event.version,
                who: event
                    .origin_name
                    .clone()
                    .unwrap_or_else(|| "An account, partner or admin key (not a product)".into()),
                changes,
                summary,
            }
        })
        .collect()
}

pub fn sent(deliveries: &[DeliveryView]) -> Vec<SentRow> {
    deliveries
        .iter()
        .map(|d| SentRow {
            product: d.product_name.clone(),
            event_type: d.event_type.clone(),
            version: d.version,
            status: match d.status.as_str() {
                "delivered" => "arrived".into(),
                "pending" if d.attempts > 0 => "not yet: being retried".into(),
                "pending" => "on its way".into(),
                "failed" => "failed for good".into(),
                "superseded" => "not sent: a newer version replaced it".into(),
                other => other.to_owned(),
            },
            attempts: d.attempts,
            last_answer: d.attempt_log.last().map(answer).unwrap_or_default(),
            when: when(&d.created),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, version: i64, data: Value) -> CustomerEvent {
        CustomerEvent {
            event_id: format!("EV-{version}"),
            event_type: kind.into(),
            version,
            origin_product_id: None,
            origin_name: None,
            data,
            created: crate::domain::time::now(),
        }
    }

    #[test]
    fn each_version_says_what_it_changed_from_the_one_before() {
        let events = [
            event(
                "customer.updated",
                2,
                json!({"first_name": "Ann", "email": ["a@x.ca", "b@x.ca"], "permission_to_contact": true}),
            ),
            event(
                "customer.created",
                1,
                json!({"first_name": "Anne", "email": ["a@x.ca"], "permission_to_contact": false}),
            ),
        ];
        let rows = history(&events, 50);
        assert_eq!(
            rows[0].changes,
            vec![
                ("First name", "Anne".into(), "Ann".into()),
                ("Email", "a@x.ca".into(), "a@x.ca, b@x.ca".into()),
                ("Permission to contact", "not given".into(), "given".into()),
            ]
        );
        assert_eq!(rows[1].summary.as_deref(), Some("First version"));
        // The oldest shown of a longer history still knows its predecessor.
        let rows = history(&events, 1);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].changes.len(), 3);
        assert_eq!(rows[0].summary, None);
        assert_eq!(
            history(&events[..1], 50)[0].summary.as_deref(),
            Some("Older versions are no longer kept")
        );
    }
}
