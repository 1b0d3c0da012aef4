//! Use cases: each takes the caller's principal and validated input, applies the
//! tenancy rules of `domain::tenancy`, and talks to storage. The HTTP API and the admin
//! CLI both call these, so a rule lives here once.

pub mod accounts;
pub mod activations;
pub mod customers;
pub mod imports;
pub mod keys;
pub mod partners;
pub mod products;
pub mod sessions;
pub mod webhooks;

use crate::error::{ApiError, ApiResult};
use crate::storage::DynStore;

/// The hub's use cases over one store.
#[derive(Clone)]
pub struct Hub {
    store: DynStore,
    /// The deployment's key for keyed hashes of erased values (read once).
    hash_key: tokio::sync::OnceCell<String>,
}

impl Hub {
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            hash_key: tokio::sync::OnceCell::new(),
        }
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }
}

/// Step 2 of a rule: a resource that does not exist, or that the key may not reach,
/// is `404 <what> not found`.
fn reachable<T>(found: Option<T>, what: &str, reaches: impl FnOnce(&T) -> bool) -> ApiResult<T> {
    match found {
        Some(item) if reaches(&item) => Ok(item),
        _ => Err(ApiError::not_found(what)),
    }
}

/// One more row than the page holds tells whether another page follows: `rows` was read
/// with `limit = size + 1`; the cursor is the last kept row's (created, id).
fn time_page<T>(
    mut rows: Vec<T>,
    size: i64,
    position: impl Fn(&T) -> crate::domain::cursor::TimeCursor,
) -> Page<T> {
    let has_more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(position(last).encode()),
        _ => None,
    };
    Page {
        items: rows,
        next_cursor,
        has_more,
    }
}

/// A page of results with its continuation.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}
