//! SPEC section 12: an import's upload and progress.

#![allow(dead_code)] // Documentation-only shapes: never constructed.

use super::*;

/// A CSV file: UTF-8 (a BOM allowed), a header row naming a field per column
/// (`first_name`, `last_name`, `email`, `phone`, `address`, `city`, `state`, `country`,
/// `tags`, `permission_to_contact`, and `id` for product keys; case-insensitive; the
/// export's own columns are read past), `,` or `;` separated, quoted per RFC 4180.
pub struct CsvFile;

impl PartialSchema for CsvFile {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("csv-file".into())))
            .into()
    }
}

impl ToSchema for CsvFile {}

/// A JSON object from a header to the field its column fills, or `null` to skip it.
pub struct ImportMapping;

impl PartialSchema for ImportMapping {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("import-mapping".into())))
            .content_media_type("application/json")
            .into()
    }
}

impl ToSchema for ImportMapping {}

/// `multipart/form-data`: the file, and how to read its columns (no other part).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportForm {
    #[schema(value_type = CsvFile)]
    file: String,
    #[schema(value_type = Option<ImportMapping>)]
    mapping: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Running,
    Completed,
}

/// An import's progress: of its `rows`, how many are `processed`, and what became of
/// them (`created`, `merged` into an existing customer, stored as `conflicts`, `failed`:
/// see the error file).
#[derive(ToSchema)]
pub struct Import {
    #[schema(value_type = ImportId)]
    import_id: String,
    #[schema(value_type = AccountId)]
    account_id: String,
    on_duplicate: OnDuplicate,
    status: ImportStatus,
    rows: i64,
    processed: i64,
    created: i64,
    merged: i64,
    conflicts: i64,
    failed: i64,
    started: DateTime<Utc>,
    completed: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct ImportPage {
    imports: Vec<Import>,
    next_cursor: Option<String>,
    has_more: bool,
}
