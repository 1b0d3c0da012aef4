//! `customer-list export` (SPEC section 12): an account's list as CSV on standard output,
//! through the same use case as `GET /v1/customers/export`, with a progress bar on a
//! terminal.

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
