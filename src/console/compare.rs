//! Two customer records side by side (and, when previewed, the merge of them): the rows
//! the duplicates queue and the merge page show, with the fields that differ marked.

use super::customers::text;
use serde_json::Value;

const COMPARED: [(&str, &str); 9] = [
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("address", "Address"),
    ("city", "City"),
    ("state", "State or province"),
    ("country", "Country"),
    ("tags", "Tags"),
];

pub struct CompareRow {
    pub label: &'static str,
    pub existing: String,
    pub incoming: String,
    pub merged: String,
    pub differs: bool,
}

fn shown(v: String) -> String {
    if v.is_empty() {
        "—".into()
    } else {
        v
    }
}

/// A row per compared field of `existing` and `incoming`, with `merged`'s value when a
/// merge is previewed.
pub fn rows(existing: &Value, incoming: &Value, merged: Option<&Value>) -> Vec<CompareRow> {
    COMPARED
        .iter()
        .map(|(field, label)| {
            let (a, b) = (text(existing, field), text(incoming, field));
            CompareRow {
                label,
                differs: a != b,
                merged: shown(merged.map(|m| text(m, field)).unwrap_or_default()),
                existing: shown(a),
                incoming: shown(b),
            }
        })
        .collect()
}
