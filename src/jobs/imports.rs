//! The import worker (SPEC section 12): leases a running import, reads its file from the
//! stored resume point, and writes it in batches of rows through `Hub::write_import_rows`,
//! recording after each batch the counters, the failed rows and the new resume point
//! with a longer lease. A worker that dies loses its lease within `LEASE_SECONDS`; the
//! next one resumes after the last recorded batch and finds the rows of an unrecorded
//! one by the ids their lines derive, so no row is written twice.

use crate::domain::import_file::RowCursor;
use crate::domain::{time, ImportId};
use crate::error::ApiResult;
use crate::service::Hub;
use crate::storage::{ImportCounts, ImportProgress, ImportView};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a lease lasts without a recorded batch.
pub const LEASE_SECONDS: i64 = 10;

/// Rows per batch: one multi-row write, one recorded step.
pub const BATCH_ROWS: usize = 500;

/// How often a worker looks for imports other servers stored (or left behind).
const SWEEP: Duration = Duration::from_secs(2);

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
        let mut counts = job.view.counts;
        let mut cursor = RowCursor::new(
            &job.content,
            job.delimiter,
            job.resume_byte,
            job.resume_line,
        );
        loop {
            let rows: Vec<_> = std::iter::from_fn(|| cursor.next_row())
                .take(BATCH_ROWS)
                .collect();
            let done = rows.len() < BATCH_ROWS;
            let mut next = counts;
            let errors = self.hub.write_import_rows(&job, rows, &mut next).await?;
            let (resume_byte, resume_line) = cursor.resume_point();
            let now = time::now();
            let stopping = shutdown.is_cancelled() && !done;
            let held = store
                .record_import_batch(&ImportProgress {
                    import_id: &job.view.import_id,
                    owner: &self.owner,
                    counts: next,
                    resume_byte,
                    resume_line,
                    errors: &errors,
                    done,
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
            counts = next;
            progress(&counts, job.view.rows);
            if done || stopping {
                break;
            }
        }
        Ok(store.get_import(&job.view.import_id).await?)
    }
}
