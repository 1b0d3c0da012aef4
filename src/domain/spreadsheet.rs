//! A customer as a CSV row (SPEC section 12): the export's columns, how lists and consent
//! are written, and the neutralizing of cells a spreadsheet would run as a formula.

use super::customer::Customer;
use super::time::to_fixed_text;
use std::borrow::Cow;

/// The export's header: every field of the record but `account_id` (one account per
/// file) and `version` (a re-import starts at 1). Field names are the import's, so an
/// export reads back as it is.
pub const EXPORT_COLUMNS: [&str; 15] = [
    "customer_id",
    "vendor_customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "country",
    "tags",
    "permission_to_contact",
    "origins",
    "created",
    "updated",
];

/// Joins the values of a list cell (emails, phones, tags, origins).
pub const LIST_SEPARATOR: &str = ";";

/// A cell that a spreadsheet would read as a formula (OWASP "CSV injection") gets a
/// leading `'`, which makes it text; [`restore`] takes it off again on import.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    if starts_like_formula(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as it was before [`neutralize`].
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_like_formula(rest) => rest,
        _ => cell,
    }
}

fn starts_like_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The customer's cells in [`EXPORT_COLUMNS`] order, as seen by a caller whose own id
/// for it is `vendor_customer_id`, each neutralized.
pub fn export_row(customer: &Customer, vendor_customer_id: Option<&str>) -> Vec<String> {
    fn list<'a>(values: impl Iterator<Item = &'a str>) -> String {
        values.collect::<Vec<_>>().join(LIST_SEPARATOR)
    }
    let f = &customer.fields;
    let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
    let cells = [
        customer.customer_id.to_string(),
        text(vendor_customer_id),
        text(f.first_name.as_ref().map(|v| v.as_str())),
        text(f.last_name.as_ref().map(|v| v.as_str())),
        list(f.email.iter().map(|v| v.as_str())),
        list(f.phone.iter().map(|v| v.as_str())),
        text(f.address.as_ref().map(|v| v.as_str())),
        text(f.city.as_ref().map(|v| v.as_str())),
        text(f.state.as_ref().map(|v| v.as_str())),
        text(f.country.as_ref().map(|v| v.as_str())),
        list(f.tags.iter().map(|v| v.as_str())),
        customer
            .permission_to_contact
            .as_ref()
            .map(to_fixed_text)
            .unwrap_or_default(),
        list(customer.origins.iter().map(|v| v.as_str())),
        to_fixed_text(&customer.created),
        to_fixed_text(&customer.updated),
    ];
    cells
        .iter()
        .map(|cell| neutralize(cell).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_looking_cells_are_text_and_read_back_unchanged() {
        for cell in [
            "=HYPERLINK(\"http://x\")",
            "+13135550100",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let out = neutralize(cell);
            assert_eq!(out, format!("'{cell}"));
            assert_eq!(restore(&out), cell);
        }
        for cell in ["Ada", "", "'quoted", "a=b", "O'Brien"] {
            assert_eq!(neutralize(cell), cell);
            assert_eq!(restore(cell), cell);
        }
    }
}
