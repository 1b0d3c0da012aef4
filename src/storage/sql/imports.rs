//! Imports (SPEC section 12): a job row per uploaded file (the file itself kept in it
//! until the import completes) and its failed rows. A worker leases the job in a
//! transaction that holds its row (Postgres: `FOR UPDATE SKIP LOCKED`; SQLite: the
//! write lock), and records each batch it wrote with the counters and the resume point
//! only while it still holds the lease.

use super::SqlStore;
use crate::domain::tenancy::{KeyKind, Principal};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, KeyId, PartnerId, ProductId};
use crate::storage::dialect::{Dialect, Sql};
use crate::storage::time::DbTime;
use crate::storage::{
    ImportCounts, ImportErrorRow, ImportProgress, ImportStore, ImportView, LeasedImport, NewImport,
    StoreError, StoreResult,
};
use async_trait::async_trait;
use std::sync::Arc;

const VIEW_COLUMNS: &str = "import_id, account_id, principal_kind, principal_id, on_duplicate, \
     status, header, rows_total, processed, created, merged, conflicts, failed, started, completed";

/// Failed rows per multi-row insert (5 values each).
const ERROR_CHUNK: usize = 500;

#[derive(sqlx::FromRow)]
struct ViewRow {
    import_id: String,
    account_id: String,
    principal_kind: String,
    principal_id: Option<String>,
    on_duplicate: String,
    status: String,
    header: String,
    rows_total: i64,
    processed: i64,
    created: i64,
    merged: i64,
    conflicts: i64,
    failed: i64,
    started: Timestamp,
    completed: Option<Timestamp>,
}

impl TryFrom<ViewRow> for ImportView {
    type Error = StoreError;

    fn try_from(row: ViewRow) -> StoreResult<Self> {
        let principal = match (row.principal_kind.as_str(), row.principal_id) {
            (k, None) if k == KeyKind::Admin.as_str() => Principal::Admin,
            (k, Some(id)) if k == KeyKind::Partner.as_str() => {
                Principal::Partner(PartnerId::from_string(id))
            }
            (k, Some(id)) if k == KeyKind::Account.as_str() => {
                Principal::Account(AccountId::from_string(id))
            }
            (k, Some(id)) if k == KeyKind::Product.as_str() => {
                Principal::Product(ProductId::from_string(id))
            }
            _ => return Err(StoreError::corrupt("import principal", &row.principal_kind)),
        };
        Ok(Self {
            import_id: row.import_id,
            account_id: row.account_id,
            principal,
            on_duplicate: row.on_duplicate,
            status: row.status,
            header: serde_json::from_str(&row.header).map_err(corrupt_json)?,
            rows: row.rows_total,
            counts: ImportCounts {
                processed: row.processed,
                created: row.created,
                merged: row.merged,
                conflicts: row.conflicts,
                failed: row.failed,
            },
            started: row.started,
            completed: row.completed,
        })
    }
}

/// The principal's columns: (kind, the id of its partner, account or product).
fn principal_of(principal: &Principal) -> (&'static str, Option<&str>) {
    let id = match principal {
        Principal::Admin => None,
        Principal::Partner(id) => Some(id.as_str()),
        Principal::Account(id) => Some(id.as_str()),
        Principal::Product(id) => Some(id.as_str()),
    };
    (principal.kind().as_str(), id)
}

#[derive(sqlx::FromRow)]
struct LeaseRow {
    key_id: String,
    content: Vec<u8>,
    delimiter: String,
    mapping: String,
    resume_byte: i64,
    resume_line: i64,
}

#[async_trait]
impl<DB: Dialect> ImportStore for SqlStore<DB> {
    fn import_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.import_wakeup.clone()
    }

    async fn insert_import(&self, import: &NewImport<'_>) -> StoreResult<()> {
        let (kind, principal_id) = principal_of(&import.actor.principal);
        let layout = import.layout;
        let header = serde_json::to_string(&layout.header).map_err(corrupt_json)?;
        let mapping = serde_json::to_string(&layout.fields).map_err(corrupt_json)?;
        Sql::<DB>::new(
            "INSERT INTO imports (import_id, account_id, key_id, principal_kind, principal_id, \
             on_duplicate, content, delimiter, header, mapping, status, rows_total, processed, \
             created, merged, conflicts, failed, resume_byte, resume_line, lease_owner, \
             lease_until, started, completed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', $11, 0, 0, 0, 0, 0, \
             $12, $13, NULL, NULL, $14, NULL)",
        )
        .bind(import.import_id.as_str())
        .bind(import.account.as_str())
        .bind(import.actor.key_id.as_str())
        .bind(kind)
        .bind(principal_id)
        .bind(import.on_duplicate)
        .bind(import.content)
        .bind((layout.delimiter as char).to_string())
        .bind(header)
        .bind(mapping)
        .bind(layout.rows as i64)
        .bind(layout.start_byte as i64)
        .bind(layout.start_line as i64)
        .bind(DbTime(import.started))
        .execute(&mut *self.write().await?)
        .await?;
        self.import_wakeup.notify_one();
        Ok(())
    }

    async fn get_import(&self, id: &str) -> StoreResult<Option<ImportView>> {
        let row: Option<ViewRow> = Sql::<DB>::new(format!(
            "SELECT {VIEW_COLUMNS} FROM imports WHERE import_id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(ImportView::try_from).transpose()
    }

    async fn list_imports(
        &self,
        account: &AccountId,
        principal: Option<&Principal>,
        before: Option<(Timestamp, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ImportView>> {
        // By imports_account, newest first.
        let mut sql = Sql::<DB>::new(format!(
            "SELECT {VIEW_COLUMNS} FROM imports WHERE account_id = "
        ));
        sql.push_bind(account.as_str());
        if let Some(principal) = principal {
            let (kind, id) = principal_of(principal);
            sql.push(" AND principal_kind = ")
                .push_bind(kind)
                .push(" AND principal_id = ")
                .push_bind(id.unwrap_or_default().to_owned());
        }
        if let Some((started, id)) = before {
            sql.push(" AND (started, import_id) < (")
                .push_bind(DbTime(started))
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY started DESC, import_id DESC LIMIT ")
            .push_bind(limit);
        let rows: Vec<ViewRow> = sql.fetch_all(&mut *self.read().await?).await?;
        rows.into_iter().map(ImportView::try_from).collect()
    }

    async fn lease_import(
        &self,
        owner: &str,
        only: Option<&str>,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<LeasedImport>> {
        let mut tx = self.begin_write().await?;
        // By imports_running (or the primary key, for `only`).
        let id: Option<String> = Sql::<DB>::new(format!(
            "SELECT import_id FROM imports WHERE status = 'running' \
             AND (lease_until IS NULL OR lease_until < $1) AND ($2 IS NULL OR import_id = $2) \
             ORDER BY started LIMIT 1{}",
            DB::SKIP_LOCKED_JOB
        ))
        .bind(DbTime(now))
        .bind(only)
        .scalar_optional(&mut tx)
        .await?;
        let Some(id) = id else {
            tx.commit().await?;
            return Ok(None);
        };
        Sql::<DB>::new(
            "UPDATE imports SET lease_owner = $2, lease_until = $3 WHERE import_id = $1",
        )
        .bind(id.as_str())
        .bind(owner)
        .bind(DbTime(until))
        .execute(&mut tx)
        .await?;
        let view: ViewRow = Sql::<DB>::new(format!(
            "SELECT {VIEW_COLUMNS} FROM imports WHERE import_id = $1"
        ))
        .bind(id.as_str())
        .fetch_one(&mut tx)
        .await?;
        let lease: LeaseRow = Sql::<DB>::new(
            "SELECT key_id, content, delimiter, mapping, resume_byte, resume_line \
             FROM imports WHERE import_id = $1",
        )
        .bind(id.as_str())
        .fetch_one(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(Some(LeasedImport {
            view: view.try_into()?,
            key_id: KeyId::from_string(lease.key_id),
            content: lease.content,
            delimiter: lease.delimiter.bytes().next().unwrap_or(b','),
            fields: serde_json::from_str(&lease.mapping).map_err(corrupt_json)?,
            resume_byte: lease.resume_byte.max(0) as u64,
            resume_line: lease.resume_line.max(1) as u64,
        }))
    }

    async fn record_import_batch(&self, progress: &ImportProgress<'_>) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let c = progress.counts;
        let held = Sql::<DB>::new(
            "UPDATE imports SET processed = $3, created = $4, merged = $5, conflicts = $6, \
             failed = $7, resume_byte = $8, resume_line = $9, lease_until = $10 \
             WHERE import_id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(progress.import_id)
        .bind(progress.owner)
        .bind(c.processed)
        .bind(c.created)
        .bind(c.merged)
        .bind(c.conflicts)
        .bind(c.failed)
        .bind(progress.resume_byte as i64)
        .bind(progress.resume_line as i64)
        .bind(DbTime(progress.lease_until))
        .execute(&mut tx)
        .await?;
        if held == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let account: String = Sql::<DB>::new("SELECT account_id FROM imports WHERE import_id = $1")
            .bind(progress.import_id)
            .scalar(&mut tx)
            .await?;
        for chunk in progress.errors.chunks(ERROR_CHUNK) {
            let mut insert = Sql::<DB>::new(
                "INSERT INTO import_errors (import_id, line, account_id, cells, problem) ",
            );
            insert.push_values(chunk, |row, error| {
                row.bind(progress.import_id)
                    .bind(error.line)
                    .bind(account.clone())
                    .bind(serde_json::to_string(&error.cells).unwrap_or_default())
                    .bind(error.problem.clone());
            });
            // A batch written again after a crash finds its failed rows there already.
            insert.push(" ON CONFLICT DO NOTHING");
            insert.execute(&mut tx).await?;
        }
        if progress.done {
            // The file holds personal data: kept no longer than the import needs it.
            Sql::<DB>::new(
                "UPDATE imports SET status = 'completed', completed = $2, content = $3, \
                 lease_owner = NULL, lease_until = NULL WHERE import_id = $1",
            )
            .bind(progress.import_id)
            .bind(DbTime(progress.now))
            .bind(Vec::<u8>::new())
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn stored_records(
        &self,
        account: &AccountId,
        ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::<DB>::new("SELECT customer_id, status FROM customers WHERE scope = ");
        sql.push_bind(account.as_str())
            .push(" AND customer_id IN (")
            .push_list(ids.iter().map(String::as_str))
            .push(")");
        Ok(sql.fetch_all(&mut *self.read().await?).await?)
    }

    async fn import_errors(
        &self,
        id: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ImportErrorRow>> {
        let rows: Vec<(i64, String, String)> = Sql::<DB>::new(
            "SELECT line, cells, problem FROM import_errors \
             WHERE import_id = $1 AND line > $2 ORDER BY line LIMIT $3",
        )
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|(line, cells, problem)| {
                Ok(ImportErrorRow {
                    line,
                    cells: serde_json::from_str(&cells).map_err(corrupt_json)?,
                    problem,
                })
            })
            .collect()
    }

    async fn purge_imports(&self, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let old = "SELECT import_id FROM imports WHERE started < $1 AND status = 'completed'";
        Sql::<DB>::new(format!(
            "DELETE FROM import_errors WHERE import_id IN ({old})"
        ))
        .bind(DbTime(before))
        .execute(&mut tx)
        .await?;
        let purged =
            Sql::<DB>::new("DELETE FROM imports WHERE started < $1 AND status = 'completed'")
                .bind(DbTime(before))
                .execute(&mut tx)
                .await?;
        tx.commit().await?;
        Ok(purged)
    }
}

fn corrupt_json(err: serde_json::Error) -> StoreError {
    StoreError::corrupt("import layout", &err.to_string())
}
