//! An uploaded CSV file as an import reads it (SPEC section 12): its layout (the
//! separator, the header and the field of each column, checked before any row is
//! stored), and each row as a create body. Parsing is the `csv` crate's (RFC 4180:
//! quoted fields, embedded newlines, doubled quotes).

use super::spreadsheet::{restore, EXPORT_COLUMNS};
use crate::error::FieldError;
use csv::{ReaderBuilder, StringRecord};
use serde_json::{Map, Value};

/// The fields a column can fill (the create body's names): the export's columns of the
/// customer's own data, so that an export imports back, and a product's own `id`.
pub const IMPORT_FIELDS: [&str; 11] = import_fields();

const fn import_fields() -> [&'static str; 11] {
    // EXPORT_COLUMNS: customer_id, vendor_customer_id, then the 10 data columns.
    let mut fields = [""; 11];
    let mut i = 0;
    while i < 10 {
        fields[i] = EXPORT_COLUMNS[2 + i];
        i += 1;
    }
    fields[10] = "id";
    fields
}

/// Columns read past without a mapping: the hub's own ids and times in an export (a new
/// import gets new ones) and the columns the error file adds, so that an export, or an
/// error file once mended, imports as it is.
pub const SKIPPED_COLUMNS: [&str; 8] = [
    "customer_id",
    "account_id",
    "origins",
    "version",
    "created",
    "updated",
    "line",
    "problem",
];

/// Fields whose cell may hold several values, separated by `;` or `|`.
const LIST_FIELDS: [&str; 3] = ["email", "phone", "tags"];

/// What an import needs to know of its file before reading its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportLayout {
    pub delimiter: u8,
    /// The header row's cells.
    pub header: Vec<String>,
    /// The field each column fills, or `None` for a skipped column.
    pub fields: Vec<Option<String>>,
    /// Data rows (records after the header).
    pub rows: u64,
    /// Where the first data row starts: its byte offset and line.
    pub start_byte: u64,
    pub start_line: u64,
}

/// A data row as read: the line it starts on and its cells as sent.
#[derive(Clone, Debug)]
pub struct FileRow {
    pub line: u64,
    pub cells: Vec<String>,
}

/// Reads the layout of `content`. `mapping` is the optional JSON from header to field
/// (or `null`); `own_ids` says whether the importer is a product (which alone has its
/// own id for a customer, the `id` field). An error names what is wrong.
pub fn read_layout(
    content: &[u8],
    mapping: Option<&Map<String, Value>>,
    own_ids: bool,
) -> Result<ImportLayout, FieldError> {
    if let Err(err) = std::str::from_utf8(content) {
        return Err(FieldError::new(
            "file",
            format!(
                "is not UTF-8 text (the first bad byte is at offset {}): save it as CSV UTF-8",
                err.valid_up_to()
            ),
        ));
    }
    let bom = if content.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let body = &content[bom..];
    let delimiter = detect_delimiter(body);
    let mut reader = reader(body, delimiter);
    let mut header = StringRecord::new();
    let has_header = reader.read_record(&mut header).unwrap_or(false);
    if !has_header || header.iter().all(|cell| cell.trim().is_empty()) {
        return Err(FieldError::new("file", "has no header row"));
    }
    let header: Vec<String> = header.iter().map(|cell| cell.trim().to_owned()).collect();
    let start = reader.position().clone();
    let fields = column_fields(&header, mapping, own_ids)?;
    let mut rows = 0;
    let mut record = StringRecord::new();
    // A record the csv crate cannot read (not UTF-8: excluded above) ends the count.
    while reader.read_record(&mut record).unwrap_or(false) {
        rows += 1;
    }
    Ok(ImportLayout {
        delimiter,
        header,
        fields,
        rows,
        start_byte: bom as u64 + start.byte(),
        start_line: start.line(),
    })
}

/// `;` when the header's first line splits into more cells on it than on `,`.
fn detect_delimiter(body: &[u8]) -> u8 {
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let cells = |delimiter| {
        reader(first_line, delimiter)
            .records()
            .next()
            .and_then(Result::ok)
            .map_or(0, |record| record.len())
    };
    if cells(b';') > cells(b',') {
        b';'
    } else {
        b','
    }
}

fn reader(input: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input)
}

/// The field of each column: the mapping's word for its header, else its header read as
/// a field name (case-insensitively), else skipped when it is one of the export's or
/// the error file's own columns. An unknown or doubly mapped column is an error.
fn column_fields(
    header: &[String],
    mapping: Option<&Map<String, Value>>,
    own_ids: bool,
) -> Result<Vec<Option<String>>, FieldError> {
    let known = |name: &str| IMPORT_FIELDS.contains(&name);
    if let Some(mapping) = mapping {
        if let Some(missing) = mapping.keys().find(|key| !header.contains(key)) {
            return Err(FieldError::new(
                format!("mapping.{missing}"),
                "is not a column of the file's header",
            ));
        }
    }
    let mut fields: Vec<Option<String>> = Vec::with_capacity(header.len());
    for (index, column) in header.iter().enumerate() {
        let field = match mapping.and_then(|m| m.get(column)) {
            Some(Value::Null) => None,
            Some(Value::String(field)) if known(field) => Some(field.clone()),
            Some(_) => {
                return Err(FieldError::new(
                    format!("mapping.{column}"),
                    format!("must be null or one of: {}", IMPORT_FIELDS.join(", ")),
                ))
            }
            None => {
                let name = column.to_lowercase();
                if let Some(field) = guess_field(column, own_ids) {
                    Some(field.to_owned())
                } else if name == "vendor_customer_id" || SKIPPED_COLUMNS.contains(&name.as_str()) {
                    None
                } else {
                    return Err(FieldError::new(
                        "file",
                        format!(
                            "column {} ({column:?}) is not a field: name it one of {}, or map it \
                             to null to skip it",
                            index + 1,
                            IMPORT_FIELDS.join(", ")
                        ),
                    ));
                }
            }
        };
        if let Some(field) = &field {
            if field == "id" && !own_ids {
                return Err(FieldError::new(
                    "file",
                    format!(
                        "column {} ({column:?}): only a product key has its own id for a \
                         customer; map it to null to skip it",
                        index + 1
                    ),
                ));
            }
            if let Some(first) = fields.iter().position(|f| f.as_ref() == Some(field)) {
                return Err(FieldError::new(
                    "file",
                    format!(
                        "columns {} ({:?}) and {} ({column:?}) both fill {field}: map one to null",
                        first + 1,
                        header[first],
                        index + 1
                    ),
                ));
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The field a column fills without a mapping: its header read as a field name
/// (case-insensitively; `id` even for a key that may not fill it, which is then told
/// so); an export's `vendor_customer_id` is a product's own `id` again.
pub fn guess_field(header: &str, own_ids: bool) -> Option<&'static str> {
    let name = header.trim().to_lowercase();
    if name == "vendor_customer_id" {
        return own_ids.then_some("id");
    }
    IMPORT_FIELDS.iter().copied().find(|field| *field == name)
}

/// The start of a file as a person choosing its mapping sees it: the header and the
/// first `rows` data rows, and how many rows it has in all.
pub struct FilePreview {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub total: u64,
}

/// The file's header row alone (empty when it has none), its cells trimmed: what a
/// mapping names columns by. Reads no further than the first record.
pub fn header_of(content: &[u8]) -> Vec<String> {
    let body = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let mut first = reader(body, detect_delimiter(body));
    let mut header = StringRecord::new();
    match first.read_record(&mut header) {
        Ok(true) => header.iter().map(|cell| cell.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// Reads `content` for its preview, with the checks that need no mapping (UTF-8, a
/// header).
pub fn preview(content: &[u8], rows: usize) -> Result<FilePreview, FieldError> {
    // Every column skipped: the layout's own checks alone.
    let skip_all: Map<String, Value> = header_of(content)
        .into_iter()
        .map(|h| (h, Value::Null))
        .collect();
    let layout = read_layout(content, Some(&skip_all), false)?;
    let mut cursor = RowCursor::new(
        content,
        layout.delimiter,
        layout.start_byte,
        layout.start_line,
    );
    let shown = std::iter::from_fn(|| cursor.next_row())
        .take(rows)
        .map(|row| row.cells)
        .collect();
    Ok(FilePreview {
        header: layout.header,
        rows: shown,
        total: layout.rows,
    })
}

/// Reads the data rows of a file in order, and says where the next unread one starts
/// (what an import stores to resume from after a restart).
pub struct RowCursor<'a> {
    reader: csv::Reader<&'a [u8]>,
    base_byte: u64,
    base_line: u64,
    record: StringRecord,
}

impl<'a> RowCursor<'a> {
    /// Reads rows of `content` from byte `from`, which starts line `line`.
    pub fn new(content: &'a [u8], delimiter: u8, from: u64, line: u64) -> Self {
        let start = (from as usize).min(content.len());
        Self {
            reader: reader(&content[start..], delimiter),
            base_byte: start as u64,
            base_line: line,
            record: StringRecord::new(),
        }
    }

    /// The next row, or `None` at the end (or at a record the csv crate cannot read).
    pub fn next_row(&mut self) -> Option<FileRow> {
        if !self.reader.read_record(&mut self.record).unwrap_or(false) {
            return None;
        }
        let at = self.record.position().map_or(1, |p| p.line());
        Some(FileRow {
            line: self.base_line + at - 1,
            cells: self.record.iter().map(str::to_owned).collect(),
        })
    }

    /// Where the next unread row starts: (byte offset in the file, line).
    pub fn resume_point(&self) -> (u64, u64) {
        let position = self.reader.position();
        (
            self.base_byte + position.byte(),
            self.base_line + position.line() - 1,
        )
    }
}

/// A row as a create body (without `account_id`): each filled column's cell, trimmed
/// and restored from the export's formula neutralizing, empty cells left out. A row with
/// another number of cells than the header, or an unreadable `permission_to_contact`,
/// is an error saying so.
pub fn row_body(fields: &[Option<String>], cells: &[String]) -> Result<Map<String, Value>, String> {
    if cells.len() != fields.len() {
        return Err(format!(
            "the row has {} cells; the header has {}",
            cells.len(),
            fields.len()
        ));
    }
    let mut body = Map::new();
    for (field, cell) in fields.iter().zip(cells) {
        let Some(field) = field else { continue };
        let cell = restore(cell.trim());
        if cell.is_empty() {
            continue;
        }
        let value = if LIST_FIELDS.contains(&field.as_str()) {
            Value::Array(
                cell.split([';', '|'])
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(restore(v).to_owned()))
                    .collect(),
            )
        } else if field == "permission_to_contact" {
            Value::Bool(permission(cell)?)
        } else {
            Value::String(cell.to_owned())
        };
        body.insert(field.clone(), value);
    }
    Ok(body)
}

/// `true/false/yes/no/1/0` (any case), or a date-time as an export writes it (granted
/// then; the not-granted `0001-01-01T00:00:00Z` reads as false).
fn permission(cell: &str) -> Result<bool, String> {
    match cell.to_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ if cell == super::wire::NOT_GRANTED => Ok(false),
        _ => match chrono::DateTime::parse_from_rfc3339(cell) {
            Ok(_) => Ok(true),
            Err(_) => Err(format!(
                "permission_to_contact: {cell:?} must be true, false, yes, no, 1, 0, a date-time \
                 or empty"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layout(text: &str) -> Result<ImportLayout, FieldError> {
        read_layout(text.as_bytes(), None, true)
    }

    #[test]
    fn separator_bom_and_quoted_newlines() {
        let text = "\u{feff}First_Name;Email\n\"Ada\nLovelace\";ada@example.com\nBob;b@x.io\n";
        let found = layout(text).unwrap();
        assert_eq!(found.delimiter, b';');
        assert_eq!(found.header, ["First_Name", "Email"]);
        assert_eq!(
            found.fields,
            [Some("first_name".to_owned()), Some("email".to_owned())]
        );
        assert_eq!(found.rows, 2);
        let mut cursor = RowCursor::new(
            text.as_bytes(),
            found.delimiter,
            found.start_byte,
            found.start_line,
        );
        let first = cursor.next_row().unwrap();
        assert_eq!((first.line, first.cells[0].as_str()), (2, "Ada\nLovelace"));
        let (byte, line) = cursor.resume_point();
        assert_eq!(line, 4);
        let mut resumed = RowCursor::new(text.as_bytes(), b';', byte, line);
        let second = resumed.next_row().unwrap();
        assert_eq!((second.line, second.cells[0].as_str()), (4, "Bob"));
        assert!(resumed.next_row().is_none());
    }

    #[test]
    fn the_header_is_checked_before_any_row() {
        assert_eq!(layout("").unwrap_err().message, "has no header row");
        let unknown = layout("name,email\n").unwrap_err();
        assert!(unknown.message.contains("\"name\""), "{}", unknown.message);
        let twice = layout("email,EMAIL\n").unwrap_err();
        assert!(
            twice.message.contains("both fill email"),
            "{}",
            twice.message
        );
        let not_utf8 = read_layout(b"email\n\xff\n", None, true).unwrap_err();
        assert_eq!(not_utf8.field, "file");
        let id = read_layout(b"id,email\n", None, false).unwrap_err();
        assert!(id.message.contains("only a product key"), "{}", id.message);
        // An export's own columns are read past; its vendor id is the product's id.
        let export = layout("customer_id,vendor_customer_id,email,origins,created\n").unwrap();
        assert_eq!(
            export.fields,
            [None, Some("id".into()), Some("email".into()), None, None]
        );
        let mapping = json!({"E-mail": "email", "Notes": null});
        let mapped = read_layout(b"E-mail,Notes\n", mapping.as_object(), false).unwrap();
        assert_eq!(mapped.fields, [Some("email".to_owned()), None]);
        let bad = json!({"E-mail": "mail"});
        let err = read_layout(b"E-mail\n", bad.as_object(), false).unwrap_err();
        assert_eq!(err.field, "mapping.E-mail");
        let absent = json!({"Phone": "phone"});
        let err = read_layout(b"E-mail\n", absent.as_object(), false).unwrap_err();
        assert_eq!(err.field, "mapping.Phone");
    }

    #[test]
    fn rows_become_create_bodies() {
        let fields: Vec<Option<String>> = ["email", "tags", "permission_to_contact", "phone"]
            .into_iter()
            .map(|f| Some(f.to_owned()))
            .chain([None])
            .collect();
        let cells = |c: [&str; 5]| c.map(str::to_owned).to_vec();
        let body = row_body(
            &fields,
            &cells([
                "a@x.io | b@x.io",
                "vip;new",
                "2026-11-29T10:00:00Z",
                "'+13065550100",
                "skipped",
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"email": ["a@x.io", "b@x.io"], "tags": ["vip", "new"],
                   "permission_to_contact": true, "phone": ["+13065550100"]})
        );
        let none = row_body(&fields, &cells(["", "", "0001-01-01T00:00:00Z", "", ""])).unwrap();
        assert_eq!(Value::Object(none), json!({"permission_to_contact": false}));
        assert!(row_body(&fields, &cells(["", "", "maybe", "", ""]))
            .unwrap_err()
            .contains("permission_to_contact"));
        assert_eq!(
            row_body(&fields, &["x".to_owned()]).unwrap_err(),
            "the row has 1 cells; the header has 5"
        );
    }
}
