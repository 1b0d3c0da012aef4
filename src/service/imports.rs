//! Imports (SPEC section 12): a CSV file becomes a durable job at once (its layout
//! checked first: nothing is stored for a file that cannot be read), and a worker of
//! `jobs::imports` writes its rows later, batch by batch, through the create path of the
//! API — the same duplicate rules, suppression, events and webhooks.

use super::customers::input::{CustomerDraft, OnDuplicate};
use super::customers::{csv_lines, BOM};
use super::customers::{Created, NewIds, ScopeSettings};
use super::{reachable, time_page, Hub, Page};
use crate::domain::cursor::TimeCursor;
use crate::domain::customer::CustomerScope;
use crate::domain::import_file::{read_layout, row_body, FileRow};
use crate::domain::spreadsheet::neutralize;
use crate::domain::tenancy::{Actor, Principal, ANY_KEY};
use crate::domain::{time, AccountId, CustomerId, ImportId};
use crate::error::{ApiError, ApiResult};
use crate::storage::{ImportCounts, ImportErrorRow, ImportView, LeasedImport, NewImport};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Failed rows per page of the error file.
pub const ERROR_PAGE: i64 = 1_000;

impl Hub {
    /// `POST /v1/imports`: checks the caller may create in the account and that the file
    /// can be read (UTF-8, a header, every column a field or skipped, none twice), then
    /// stores it as a running import.
    pub async fn start_import(
        &self,
        who: &Actor,
        account: AccountId,
        on_duplicate: OnDuplicate,
        content: &[u8],
        mapping: Option<&Map<String, Value>>,
    ) -> ApiResult<ImportView> {
        self.create_scope(&who.principal, Some(account.clone()))
            .await?;
        let own_ids = matches!(who.principal, Principal::Product(_));
        let layout =
            read_layout(content, mapping, own_ids).map_err(|e| ApiError::validation(vec![e]))?;
        let import_id = ImportId::generate();
        self.store
            .insert_import(&NewImport {
                import_id: &import_id,
                account: &account,
                actor: who,
                on_duplicate: on_duplicate.as_str(),
                content,
                layout: &layout,
                started: time::now(),
            })
            .await?;
        self.store
            .get_import(import_id.as_str())
            .await?
            .ok_or_else(|| ApiError::internal("the import just stored is not there"))
    }

    /// `GET /v1/imports/{import_id}`: a product sees the imports it started; a key that
    /// reaches the account sees all of the account's.
    pub async fn get_import(&self, who: &Principal, id: &ImportId) -> ApiResult<ImportView> {
        who.require(ANY_KEY)?;
        let found = self.store.get_import(id.as_str()).await?;
        let visible = match &found {
            Some(import) => self.sees_import(who, import).await?,
            None => false,
        };
        reachable(found, "import", |_| visible)
    }

    async fn sees_import(&self, who: &Principal, import: &ImportView) -> ApiResult<bool> {
        if let Principal::Product(_) = who {
            return Ok(import.principal == *who);
        }
        let scope = CustomerScope::Account(AccountId::from_string(import.account_id.clone()));
        self.reaches_scope(who, &scope).await
    }

    /// `GET /v1/imports?account_id=`: the account's imports, newest first (a product's:
    /// those it started).
    pub async fn list_imports(
        &self,
        who: &Principal,
        account: &AccountId,
        cursor: Option<TimeCursor>,
        limit: i64,
    ) -> ApiResult<Page<ImportView>> {
        who.require(ANY_KEY)?;
        let scope = CustomerScope::Account(account.clone());
        if !self.reaches_scope(who, &scope).await? {
            return Err(ApiError::not_found("account"));
        }
        let only = matches!(who, Principal::Product(_)).then_some(who);
        let rows = self
            .store
            .list_imports(account, only, cursor.map(|c| (c.at, c.id)), limit + 1)
            .await?;
        Ok(time_page(rows, limit, |import| TimeCursor {
            at: import.started,
            id: import.import_id.clone(),
        }))
    }

    /// `GET /v1/imports/{import_id}/errors`: the failed rows so far as CSV — a BOM, the
    /// header `line, problem` and the file's own, then each row as sent — read page by
    /// page. Cells a spreadsheet would run as a formula are neutralized (an import reads
    /// them back).
    pub async fn import_error_file(
        &self,
        who: &Principal,
        id: &ImportId,
    ) -> ApiResult<impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static> {
        let import = self.get_import(who, id).await?;
        let mut header = BOM.to_vec();
        header.extend(csv_lines([["line", "problem"]
            .into_iter()
            .map(str::to_owned)
            .chain(
                import
                    .header
                    .iter()
                    .map(|cell| neutralize(cell).into_owned()),
            )
            .collect()]));
        let (store, id) = (self.store.clone(), id.to_string());
        let pages = stream::try_unfold(Some(0i64), move |after| {
            let (store, id) = (store.clone(), id.clone());
            async move {
                let Some(after) = after else { return Ok(None) };
                let rows = store
                    .import_errors(&id, after, ERROR_PAGE)
                    .await
                    .map_err(|err| {
                        // Headers are sent: the download ends short, and the log says why.
                        tracing::error!(error = %err, "the import's error file stopped");
                        std::io::Error::other("the error file stopped")
                    })?;
                let next = match rows.last() {
                    Some(last) if rows.len() as i64 == ERROR_PAGE => Some(last.line),
                    _ => None,
                };
                if rows.is_empty() {
                    return Ok(None);
                }
                let lines = csv_lines(rows.into_iter().map(|row| {
                    [row.line.to_string(), row.problem]
                        .into_iter()
                        .chain(row.cells.iter().map(|cell| neutralize(cell).into_owned()))
                        .collect()
                }));
                Ok(Some((lines, next)))
            }
        });
        Ok(stream::once(async { Ok(header) }).chain(pages))
    }

    /// Reads a batch of an import's rows and checks each (no write: the worker prepares
    /// the next batch while the one before it is written). `after_lease`: the batch is the
    /// first after a lease, so rows a dead worker wrote without recording may be in it;
    /// they are found by the ids their lines derive and count as what they became.
    pub async fn prepare_import_rows(
        &self,
        job: &LeasedImport,
        rows: Vec<FileRow>,
        after_lease: bool,
    ) -> ApiResult<ImportBatch> {
        let principal = &job.view.principal;
        let account = AccountId::from_string(job.view.account_id.clone());
        let import_id = ImportId::from_string(job.view.import_id.clone());
        let ids: Vec<NewIds> = rows
            .iter()
            .map(|row| {
                let (customer, conflict) = CustomerId::for_import_row(&import_id, row.line);
                NewIds { customer, conflict }
            })
            .collect();
        let stored: HashMap<String, String> = if after_lease {
            let wanted: Vec<String> = ids
                .iter()
                .flat_map(|ids| [ids.customer.to_string(), ids.conflict.to_string()])
                .collect();
            self.store
                .stored_records(&account, &wanted)
                .await?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };

        let mut batch = ImportBatch {
            counts: ImportCounts::default(),
            errors: Vec::new(),
            pending: Vec::with_capacity(rows.len()),
        };
        let counts = &mut batch.counts;
        let mut scopes = HashMap::new();
        for (row, ids) in rows.into_iter().zip(ids) {
            if stored.contains_key(ids.customer.as_str()) {
                counts.processed += 1;
                counts.created += 1;
                continue;
            }
            if stored.contains_key(ids.conflict.as_str()) {
                counts.processed += 1;
                counts.conflicts += 1;
                continue;
            }
            let prepared = match row_body(&job.fields, &row.cells) {
                Err(problem) => {
                    counts.processed += 1;
                    counts.failed += 1;
                    batch.errors.push(failed_row(row, problem));
                    continue;
                }
                Ok(mut body) => {
                    body.insert("account_id".into(), Value::String(account.to_string()));
                    self.prepare_create(principal, body, &mut scopes)
                        .await
                        .map(|(settings, draft)| (settings, draft, ids))
                }
            };
            match prepared {
                Err(err) if transient(&err) => return Err(err),
                prepared => batch.pending.push((row, prepared)),
            }
        }
        Ok(batch)
    }

    /// Writes a prepared batch of an import's rows, in order, adding to `counts`; answers
    /// the failed rows. A failure that is not the row's (the database, say) fails the
    /// whole batch, to be retried.
    pub async fn write_import_rows(
        &self,
        job: &LeasedImport,
        batch: ImportBatch,
        counts: &mut ImportCounts,
    ) -> ApiResult<Vec<ImportErrorRow>> {
        let who = Actor {
            key_id: job.key_id.clone(),
            principal: job.view.principal.clone(),
        };
        let on_duplicate = OnDuplicate::parse(&job.view.on_duplicate)
            .map_err(|_| ApiError::internal("an import's on_duplicate is unreadable"))?;
        let ImportBatch {
            counts: checked,
            mut errors,
            pending,
        } = batch;
        counts.add(&checked);
        let (rows, prepared): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
        let results = self.create_prepared(&who, prepared, on_duplicate).await?;
        for (row, result) in rows.into_iter().zip(results) {
            match result {
                Ok(Created::New(_)) => counts.created += 1,
                Ok(Created::Merged(_)) => counts.merged += 1,
                Err(err) if err.extensions.contains_key("conflict_id") => counts.conflicts += 1,
                Err(err) if transient(&err) => return Err(err),
                Err(err) => {
                    counts.failed += 1;
                    errors.push(failed_row(row, problem_of(&err)));
                }
            }
            counts.processed += 1;
        }
        Ok(errors)
    }
}

/// A batch of an import's rows, read and checked: what the checks settled (rows written
/// before a crash, rows that cannot be read) and the rest, ready for the create path.
pub struct ImportBatch {
    counts: ImportCounts,
    errors: Vec<ImportErrorRow>,
    pending: Vec<(FileRow, ApiResult<(ScopeSettings, CustomerDraft, NewIds)>)>,
}

/// An import as the API shows it.
pub fn import_json(view: &ImportView) -> Value {
    let c = view.counts;
    json!({
        "import_id": view.import_id,
        "account_id": view.account_id,
        "on_duplicate": view.on_duplicate,
        "status": view.status,
        "rows": view.rows,
        "processed": c.processed,
        "created": c.created,
        "merged": c.merged,
        "conflicts": c.conflicts,
        "failed": c.failed,
        "started": view.started,
        "completed": view.completed,
    })
}

/// A failure that is not the row's own: the batch stops, to be written again.
fn transient(err: &ApiError) -> bool {
    err.status.is_server_error()
}

fn failed_row(row: FileRow, problem: String) -> ImportErrorRow {
    ImportErrorRow {
        line: row.line as i64,
        cells: row.cells,
        problem,
    }
}

/// A row's problem in words: each field's message, else the problem's code and detail
/// (`duplicate: matches the existing customer CUSTOMER-…`).
fn problem_of(err: &ApiError) -> String {
    let fields = err.field_errors();
    if fields.is_empty() {
        return format!("{}: {}", err.code, err.detail);
    }
    fields
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}
