//! `customer-list erasures` and `customer-list reapply-erasures` (SPEC section 10): a
//! backup cannot be erased, so after a restore every customer erased since the backup was
//! taken is erased again, from the receipts (which hold only ids). The receipts come from
//! where the restore did not reach: the database as it was before it, or the lines
//! `customer-list erasures` printed (a cron job ships them off-site).

use crate::domain::time::Timestamp;
use crate::service::customers::{receipt, receipt_from_json, Reapplied};
use crate::service::Hub;
use crate::storage::{self, DynStore, ErasureView};
use chrono::SubsecRound;
use std::io::{BufRead, Write};

/// Receipts read per query.
const PAGE: i64 = 500;

/// A `--since` time: RFC 3339 (`2026-12-01T03:00:00Z`).
pub fn since_arg(raw: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc).trunc_subsecs(6))
        .map_err(|e| format!("must be an RFC 3339 time such as 2026-12-01T03:00:00Z ({e})"))
}

/// Every receipt of a store requested at or after a time, oldest first, a page at a time.
struct ReceiptPages<'a> {
    store: &'a DynStore,
    since: Timestamp,
    after: Option<(Timestamp, String)>,
    done: bool,
}

impl<'a> ReceiptPages<'a> {
    fn new(store: &'a DynStore, since: Timestamp) -> Self {
        Self {
            store,
            since,
            after: None,
            done: false,
        }
    }

    async fn next(&mut self) -> anyhow::Result<Option<Vec<ErasureView>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .erasures_since(self.since, self.after.take(), PAGE)
            .await?;
        self.done = (page.len() as i64) < PAGE;
        self.after = page.last().map(|l| (l.requested, l.erasure_id.clone()));
        Ok((!page.is_empty()).then_some(page))
    }
}

/// `customer-list erasures --since`: the receipts as JSON lines on stdout.
pub async fn print_receipts(store: &DynStore, since: Timestamp) -> anyhow::Result<u64> {
    let mut printed = 0;
    let mut out = std::io::stdout().lock();
    let mut pages = ReceiptPages::new(store, since);
    while let Some(page) = pages.next().await? {
        for view in page {
            writeln!(out, "{}", receipt(&view))?;
            printed += 1;
        }
    }
    out.flush()?;
    Ok(printed)
}

/// What `reapply-erasures` did, for its one-line summary.
#[derive(Default)]
pub struct ReapplySummary {
    pub read: u64,
    pub erased: u64,
    pub already: u64,
    pub not_here: u64,
}

impl std::fmt::Display for ReapplySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} receipts read: {} customers erased again, {} already erased here, {} not in this database",
            self.read, self.erased, self.already, self.not_here
        )
    }
}

/// `customer-list reapply-erasures --since --from`: erases again, in `hub`'s database,
/// every customer a receipt from `from` (a database URL, or a file of receipt lines, `-`
/// for stdin) says was erased at or after `since`.
pub async fn reapply(hub: &Hub, since: Timestamp, from: &str) -> anyhow::Result<ReapplySummary> {
    let mut summary = ReapplySummary::default();
    let scheme = from.split(':').next().unwrap_or_default();
    if matches!(scheme, "sqlite" | "postgres" | "postgresql") {
        let source = storage::connect(from).await?;
        let mut pages = ReceiptPages::new(&source, since);
        let result = async {
            while let Some(page) = pages.next().await? {
                for view in &page {
                    reapply_one(hub, view, &mut summary).await?;
                }
            }
            anyhow::Ok(())
        }
        .await;
        source.close().await;
        result?;
        return Ok(summary);
    }
    let reader: Box<dyn BufRead> = if from == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(from)
            .map_err(|e| anyhow::anyhow!("cannot read the receipts file {from}: {e}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let view = receipt_from_json(&line)
            .map_err(|e| anyhow::anyhow!("{from} line {}: not a receipt: {e}", n + 1))?;
        if view.requested >= since {
            reapply_one(hub, &view, &mut summary).await?;
        }
    }
    Ok(summary)
}

async fn reapply_one(
    hub: &Hub,
    view: &ErasureView,
    summary: &mut ReapplySummary,
) -> anyhow::Result<()> {
    summary.read += 1;
    let outcome = hub.reapply_erasure(view).await.map_err(super::describe)?;
    match outcome {
        Reapplied::Erased => summary.erased += 1,
        Reapplied::AlreadyErased => summary.already += 1,
        Reapplied::NotHere => summary.not_here += 1,
    }
    Ok(())
}
