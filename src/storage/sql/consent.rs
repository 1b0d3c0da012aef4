//! The consent history (SPEC section 10): appended in the transaction of the change it
//! records, read oldest first, erased with the person.

use super::SqlStore;
use crate::domain::consent::{ConsentDetails, ConsentEntry, LEGAL_BASES};
use crate::domain::time::Timestamp;
use crate::domain::CustomerId;
use crate::storage::dialect::{Dialect, Sql, Tx};
use crate::storage::time::DbTime;
use crate::storage::{ConsentRecord, ConsentStore, StoreResult};
use async_trait::async_trait;

#[derive(sqlx::FromRow)]
struct ConsentRow {
    granted: bool,
    at: Timestamp,
    legal_basis: String,
    method: Option<String>,
    consent_text: Option<String>,
    source_product_id: Option<String>,
    source_key_id: String,
    via: String,
}

#[async_trait]
impl<DB: Dialect> ConsentStore for SqlStore<DB> {
    async fn consent_history(&self, customer: &CustomerId) -> StoreResult<Vec<ConsentRecord>> {
        let rows: Vec<ConsentRow> = Sql::<DB>::new(
            "SELECT granted, at, legal_basis, method, consent_text, source_product_id, \
             source_key_id, via FROM consent_history WHERE customer_id = $1 ORDER BY seq",
        )
        .bind(customer.as_str())
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConsentRecord {
                granted: r.granted,
                at: r.at,
                details: ConsentDetails {
                    legal_basis: LEGAL_BASES
                        .iter()
                        .find(|b| **b == r.legal_basis)
                        .copied()
                        .unwrap_or(LEGAL_BASES[0]),
                    method: r.method,
                    text: r.consent_text,
                },
                source_product_id: r.source_product_id,
                source_key_id: r.source_key_id,
                via: r.via,
            })
            .collect())
    }
}

/// Appends `entries` within `tx`, in one statement.
pub(super) async fn insert_consents<DB: Dialect>(
    tx: &mut Tx<DB>,
    entries: &[&ConsentEntry],
) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = Sql::<DB>::new(INSERT_CONSENT_HEAD);
    insert.push_values(entries, |row, e| push_consent(row, e));
    insert.execute(tx).await?;
    Ok(())
}

pub(super) const INSERT_CONSENT_HEAD: &str = "INSERT INTO consent_history (scope, customer_id, \
    granted, at, legal_basis, method, consent_text, source_product_id, source_key_id, via) ";

pub(super) fn push_consent<'q, DB: Dialect>(
    row: &mut crate::storage::dialect::Row<'_, 'q, DB>,
    e: &'q ConsentEntry,
) {
    row.bind(e.scope.as_str())
        .bind(e.customer_id.as_str())
        .bind(e.granted)
        .bind(DbTime(e.at))
        .bind(e.details.legal_basis)
        .bind(e.details.method.as_deref())
        .bind(e.details.text.as_deref())
        .bind(e.source_product_id.as_ref().map(|p| p.as_str()))
        .bind(e.source_key_id.as_str())
        .bind(e.via.as_str());
}
