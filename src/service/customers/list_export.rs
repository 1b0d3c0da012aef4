//! `GET /v1/customers/export` (SPEC section 12): every live customer of an account that
//! matches the list's filters, as CSV, in the list's order, read page after page by the
//! list's keyset so that no export holds more than a page in memory.

use super::list::{sort_key, CustomerListParams, ListRequest};
use super::Hub;
use crate::domain::customer::CustomerStatus;
use crate::domain::spreadsheet::{export_row, EXPORT_COLUMNS};
use crate::domain::tenancy::Principal;
use crate::error::ApiResult;
use crate::storage::{CustomerListQuery, DynStore, StoreError};
use futures_util::stream::{self, Stream};

/// Customers read per page (one query each).
const EXPORT_PAGE: i64 = 1_000;

/// The UTF-8 byte order mark: spreadsheets read the file's accents right with it.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A piece of the export: CSV bytes, and how many customers they hold.
pub struct ExportChunk {
    pub bytes: Vec<u8>,
    pub customers: usize,
}

enum Next {
    Header(CustomerListQuery),
    Page(CustomerListQuery),
    Done,
}

impl Hub {
    /// The export's CSV as a stream of chunks (the header, then a chunk per page), once
    /// the request is checked: a bad filter is an error before the first byte.
    pub async fn export_customer_list(
        &self,
        who: &Principal,
        params: CustomerListParams,
    ) -> ApiResult<impl Stream<Item = Result<ExportChunk, StoreError>> + Send + 'static> {
        let ListRequest { mut query, .. } =
            self.list_query(who, &params, CustomerStatus::Live).await?;
        query.limit = EXPORT_PAGE;
        // An export has no total to show: never counted.
        query.known_total = Some(0);
        let store = self.store.clone();
        Ok(stream::unfold(
            (store, Next::Header(query)),
            |(store, next)| async move {
                match next {
                    Next::Done => None,
                    Next::Header(query) => {
                        let mut bytes = BOM.to_vec();
                        bytes.extend(csv_lines([EXPORT_COLUMNS.map(str::to_owned).to_vec()]));
                        let chunk = ExportChunk {
                            bytes,
                            customers: 0,
                        };
                        Some((Ok(chunk), (store, Next::Page(query))))
                    }
                    Next::Page(query) => match page(&store, query).await {
                        Ok((chunk, next)) => Some((Ok(chunk), (store, next))),
                        Err(err) => Some((Err(err), (store, Next::Done))),
                    },
                }
            },
        ))
    }
}

/// One page of the export as CSV lines, and what comes after it.
async fn page(
    store: &DynStore,
    mut query: CustomerListQuery,
) -> Result<(ExportChunk, Next), StoreError> {
    let (customers, _) = store.list_customers(&query).await?;
    let chunk = ExportChunk {
        bytes: csv_lines(
            customers
                .iter()
                .map(|c| export_row(&c.customer, c.vendor_customer_id.as_deref())),
        ),
        customers: customers.len(),
    };
    let next = match customers.last() {
        Some(last) if customers.len() as i64 == query.limit => {
            let c = &last.customer;
            query.after = Some((sort_key(query.sort, c), c.customer_id.clone()));
            Next::Page(query)
        }
        _ => Next::Done,
    };
    Ok((chunk, next))
}

/// Rows as CSV lines (RFC 4180 quoting, by the `csv` crate). Rows may differ in length
/// (an import's error file holds rows with too many or too few cells, as sent).
pub(crate) fn csv_lines(rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        // Writing to memory cannot fail.
        let _ = out.write_record(&row);
    }
    out.into_inner().unwrap_or_default()
}
