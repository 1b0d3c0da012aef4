//! `customer-list export` and `customer-list import` (SPEC section 12): an account's list
//! as CSV on standard output, and a CSV file into an account, through the same use cases
//! as the API (`GET /v1/customers/export`, `POST /v1/imports` and its worker), with a
//! progress bar on a terminal.

use crate::domain::tenancy::Principal;
use crate::domain::AccountId;
use crate::error::ApiError;
use crate::service::customers::CustomerListParams;
use crate::service::Hub;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

/// The list's filters, as the API names them.
#[derive(clap::Args, Debug)]
pub struct ListFilters {
    /// Search names, emails and phones (the list's `q`).
    #[arg(long)]
    pub q: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    /// A product id: customers that product wrote.
    #[arg(long)]
    pub origin: Option<String>,
    /// `created`, `last_name` or `first_name`, `-` first for descending.
    #[arg(long)]
    pub sort: Option<String>,
    #[arg(long)]
    pub created_after: Option<String>,
    #[arg(long)]
    pub created_before: Option<String>,
    #[arg(long)]
    pub updated_since: Option<String>,
}

impl ListFilters {
    fn params(&self, account: &AccountId) -> HashMap<String, String> {
        let given = [
            ("q", &self.q),
            ("tag", &self.tag),
            ("origin", &self.origin),
            ("sort", &self.sort),
            ("created_after", &self.created_after),
            ("created_before", &self.created_before),
            ("updated_since", &self.updated_since),
        ];
        let mut params: HashMap<String, String> = given
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
            .collect();
        params.insert("account_id".into(), account.to_string());
        params
    }
}

/// Writes the export to `out`; a progress bar on standard error when it is a terminal.
/// Returns the one-line summary.
pub async fn export(
    hub: &Hub,
    account: &AccountId,
    filters: &ListFilters,
    out: &mut impl Write,
) -> Result<String, ApiError> {
    let admin = &Principal::Admin;
    let params = filters.params(account);
    // The first page of the list counts what the export will hold.
    let mut counting = params.clone();
    counting.insert("page_size".into(), "1".into());
    let total = hub
        .list_customers(admin, CustomerListParams(counting))
        .await?
        .total_results;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total.max(0) as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} customers ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut chunks = Box::pin(
        hub.export_customer_list(admin, CustomerListParams(params))
            .await?,
    );
    let mut written = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        out.write_all(&chunk.bytes).map_err(ApiError::internal)?;
        written += chunk.customers;
        progress.inc(chunk.customers as u64);
    }
    out.flush().map_err(ApiError::internal)?;
    progress.finish_and_clear();
    Ok(format!("{written} customers of {account} exported"))
}

/// Imports `file` into `account` as the admin: stored as an import like an upload (so a
/// bad file is refused before any row is written, and an interrupted run is resumed by
/// any server's worker), then written here to its end. Returns the one-line summary.
pub async fn import(
    hub: &std::sync::Arc<Hub>,
    file: &std::path::Path,
    account: &AccountId,
    on_duplicate: &str,
) -> Result<String, ApiError> {
    use crate::domain::tenancy::Actor;
    use crate::domain::KeyId;
    use crate::service::customers::input::OnDuplicate;
    let on_duplicate = OnDuplicate::parse(on_duplicate)
        .map_err(|message| ApiError::invalid_field("on-duplicate", message))?;
    let content = std::fs::read(file).map_err(|err| {
        ApiError::invalid_field(
            "file",
            format!("cannot be read ({}): {err}", file.display()),
        )
    })?;
    let admin = Actor {
        key_id: KeyId::from_string(KeyId::BOOTSTRAP),
        principal: Principal::Admin,
    };
    let view = hub
        .start_import(&admin, account.clone(), on_duplicate, &content, None)
        .await?;
    drop(content);
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(view.rows.max(0) as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let id = crate::domain::ImportId::from_string(view.import_id.clone());
    let worker = crate::jobs::imports::ImportWorker::new(hub.clone());
    let never = tokio_util::sync::CancellationToken::new();
    let done = worker
        .work_one(Some(&id), &never, &mut |counts, _| {
            progress.set_position(counts.processed.max(0) as u64)
        })
        .await?;
    progress.finish_and_clear();
    let view = match done {
        Some(view) => view,
        None => hub.get_import(&Principal::Admin, &id).await?,
    };
    let c = view.counts;
    let mut summary = format!(
        "{} of {} rows imported into {account}: {} created, {} merged, {} conflicts, {} failed",
        c.processed, view.rows, c.created, c.merged, c.conflicts, c.failed
    );
    if c.failed > 0 {
        summary.push_str(&format!(
            " (the failed rows: GET /v1/imports/{}/errors)",
            view.import_id
        ));
    }
    Ok(summary)
}
