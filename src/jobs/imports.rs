//! The import worker (SPEC section 12): leases a running import, reads its file from the
//! stored resume point, and writes it in batches of rows through `Hub::write_import_rows`
//! (the next batch read and checked meanwhile),
//! recording after each batch the counters, the failed rows and the new resume point
//! with a longer lease. A worker that dies loses its lease within `LEASE_SECONDS`; the
//! next one resumes after the last recorded batch and finds the rows of an unrecorded
//! one by the ids their lines derive, so no row is written twice.

use crate::domain::import_file::{FileRow, RowCursor};
use crate::domain::{time, ImportId};
use crate::error::{ApiError, ApiResult};
use crate::service::imports::ImportBatch;
use crate::service::Hub;
use crate::storage::{ImportCounts, ImportProgress, ImportView, LeasedImport};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// How long a lease lasts without a recorded batch.
pub const LEASE_SECONDS: i64 = 10;

/// Rows per batch: one multi-row write, one recorded step.
pub const BATCH_ROWS: usize = 500;

/// How often a worker looks for imports other servers stored (or left behind).
const SWEEP: Duration = Duration::from_secs(2);

/// Where a batch read from the file ends: the resume point after it.
#[derive(Clone, Copy)]
struct BatchEnd {
    /// The file ends with this batch.
    last: bool,
    resume_byte: u64,
    resume_line: u64,
}

fn read_batch(cursor: &mut RowCursor) -> (Vec<FileRow>, BatchEnd) {
    let rows: Vec<_> = std::iter::from_fn(|| cursor.next_row())
        .take(BATCH_ROWS)
        .collect();
    let (resume_byte, resume_line) = cursor.resume_point();
    let end = BatchEnd {
        last: rows.len() < BATCH_ROWS,
        resume_byte,
        resume_line,
    };
    (rows, end)
}

pub struct ImportWorker {
    hub: Arc<Hub>,
    /// This worker's name on its leases.
    owner: String,
}

impl ImportWorker {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            owner: format!("imports-{}", uuid::Uuid::new_v4()),
        }
    }

    /// Checks a batch on a task of its own (so on another core than the write in hand);
    /// dropped unfinished when the import stops.
    fn check(
        &self,
        job: &Arc<LeasedImport>,
        rows: Vec<FileRow>,
        after_lease: bool,
    ) -> AbortOnDropHandle<ApiResult<ImportBatch>> {
        let (hub, job) = (self.hub.clone(), job.clone());
        AbortOnDropHandle::new(tokio::spawn(async move {
            hub.prepare_import_rows(&job, rows, after_lease).await
        }))
    }

    /// Works imports until `shutdown`, woken when this server stores one.
    pub async fn run(self, shutdown: CancellationToken) {
        let wakeup = self.hub.store().import_wakeup();
        loop {
            match self.work_one(None, &shutdown, &mut |_, _| {}).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err.detail, "an import batch failed; retried after its lease")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(SWEEP) => {}
            }
        }
    }

    /// Leases one running import (`only` that one, when given) and writes it to its end,
    /// calling `progress` with the counters and the row count after each batch. Answers
    /// the import as it was left, or `None` when there was none to lease or the lease
    /// was lost. On `shutdown` it stops after the batch in hand and gives the lease up.
    pub async fn work_one(
        &self,
        only: Option<&ImportId>,
        shutdown: &CancellationToken,
        progress: &mut (dyn FnMut(&ImportCounts, i64) + Send),
    ) -> ApiResult<Option<ImportView>> {
        let store = self.hub.store();
        let now = time::now();
        let Some(job) = store
            .lease_import(
                &self.owner,
                only.map(ImportId::as_str),
                now,
                now + chrono::Duration::seconds(LEASE_SECONDS),
            )
            .await?
        else {
            return Ok(None);
        };
        let job = Arc::new(job);
        let mut counts = job.view.counts;
        let mut cursor = RowCursor::new(
            &job.content,
            job.delimiter,
            job.resume_byte,
            job.resume_line,
        );
        let (rows, mut end) = read_batch(&mut cursor);
        let mut checking = self.check(&job, rows, true);
        loop {
            let checked = checking
                .await
                .map_err(|_| ApiError::internal("an import batch's check stopped"))??;
            let this = end;
            // The next batch is read and checked while this one is written: the file's
            // parsing overlaps the database's work.
            let next = (!this.last).then(|| {
                let (rows, next_end) = read_batch(&mut cursor);
                end = next_end;
                self.check(&job, rows, false)
            });
            let mut after = counts;
            let errors = self
                .hub
                .write_import_rows(&job, checked, &mut after)
                .await?;
            let now = time::now();
            let stopping = shutdown.is_cancelled() && !this.last;
            let held = store
                .record_import_batch(&ImportProgress {
                    import_id: &job.view.import_id,
                    owner: &self.owner,
                    counts: after,
                    resume_byte: this.resume_byte,
                    resume_line: this.resume_line,
                    errors: &errors,
                    done: this.last,
                    now,
                    lease_until: if stopping {
                        now
                    } else {
                        now + chrono::Duration::seconds(LEASE_SECONDS)
                    },
                })
                .await?;
            if !held {
                tracing::warn!(import = %job.view.import_id, "an import's lease was lost; another worker goes on");
                return Ok(None);
            }
            counts = after;
            progress(&counts, job.view.rows);
            match next {
                Some(next) if !stopping => checking = next,
                _ => break,
            }
        }
        Ok(store.get_import(&job.view.import_id).await?)
    }
}
