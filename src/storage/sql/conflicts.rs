//! Conflict records (customers held back as possible duplicates) and merges.

use super::customers::{
    insert_association, insert_customer_rows, insert_customers_in, release_identifiers,
    rewrite_customer, update_in, CustomerValues,
};
use super::{Queued, SqlStore};
use crate::domain::customer::Customer;
use crate::domain::CustomerId;
use crate::storage::dialect::{Dialect, Sql, Tx};
use crate::storage::{
    ConflictMergeWrite, ConflictStore, CustomerMergeWrite, NewCustomer, StoreResult, WriteOutcome,
};
use async_trait::async_trait;

#[async_trait]
impl<DB: Dialect> ConflictStore for SqlStore<DB> {
    async fn insert_conflict_record(&self, record: &Customer) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_customer_rows(&mut tx, &[CustomerValues::of(record)]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn keep_conflict_record(
        &self,
        conflict: &CustomerId,
        row: &NewCustomer,
    ) -> StoreResult<WriteOutcome> {
        let mut tx = self.begin_write().await?;
        if !remove_conflict_record(&mut tx, conflict).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Stale);
        }
        let (mut outcomes, queued) =
            insert_customers_in(&mut tx, std::slice::from_ref(row)).await?;
        let outcome = outcomes.pop().unwrap_or(WriteOutcome::Stale);
        // The new customer's event was written with it.
        self.finish(tx, outcome, None, None, queued).await
    }

    async fn merge_conflict_record(&self, m: ConflictMergeWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.begin_write().await?;
        if !remove_conflict_record(&mut tx, m.conflict).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Stale);
        }
        let mut outcome = update_in(&mut tx, m.survivor, m.expected_version, m.identifiers).await?;
        if let (WriteOutcome::Done, Some(association)) = (&outcome, m.association) {
            outcome = match insert_association(&mut tx, association).await? {
                // The product already has its own id for the survivor: it wins.
                WriteOutcome::Stale => WriteOutcome::Done,
                other => other,
            };
        }
        self.finish(tx, outcome, m.event, m.consent, Queued::default())
            .await
    }

    async fn merge_customers(&self, m: CustomerMergeWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.begin_write().await?;
        // The absorbed customer lets go of its identifiers first, so the survivor can
        // claim them.
        if !rewrite_customer(&mut tx, &CustomerValues::of(m.absorbed), m.absorbed_version).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Stale);
        }
        release_identifiers(&mut tx, &m.absorbed.customer_id).await?;
        let outcome = update_in(&mut tx, m.survivor, m.survivor_version, m.identifiers).await?;
        if outcome == WriteOutcome::Done {
            // Every product's id follows the survivor, unless the product already has
            // one for it (the survivor's own wins).
            Sql::<DB>::new(
                "UPDATE associations SET customer_id = $1 WHERE customer_id = $2 \
                 AND product_id NOT IN (SELECT product_id FROM associations WHERE customer_id = $1)",
            )
            .bind(m.survivor.customer_id.as_str())
            .bind(m.absorbed.customer_id.as_str())
            .execute(&mut tx)
            .await?;
            Sql::<DB>::new("DELETE FROM associations WHERE customer_id = $1")
                .bind(m.absorbed.customer_id.as_str())
                .execute(&mut tx)
                .await?;
        }
        self.finish(tx, outcome, m.event, m.consent, Queued::default())
            .await
    }

    async fn discard_conflict_record(&self, id: &CustomerId) -> StoreResult<bool> {
        let removed = delete_conflict_record::<DB>(id)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(removed > 0)
    }
}

fn delete_conflict_record<DB: Dialect>(id: &CustomerId) -> Sql<'_, DB> {
    Sql::new("DELETE FROM customers WHERE customer_id = $1 AND status = 'conflict'")
        .bind(id.as_str())
}

/// Deletes a pending conflict record within `tx`; false when there is none (any more).
async fn remove_conflict_record<DB: Dialect>(
    tx: &mut Tx<DB>,
    id: &CustomerId,
) -> StoreResult<bool> {
    Ok(delete_conflict_record::<DB>(id).execute(tx).await? > 0)
}
