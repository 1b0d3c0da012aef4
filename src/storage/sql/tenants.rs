//! Partners, accounts, products, activations and API keys.

use super::backfills::open_backfill;
use super::{push_keyset_bound, SqlStore};
use crate::domain::tenancy::Principal;
use crate::domain::tenancy::{ApiKey, KeyKind};
use crate::domain::tenants::{Account, Activation, Partner, Product};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, KeyId, PartnerId, ProductId};
use crate::storage::dialect::{Dialect, Sql};
use crate::storage::rows::{
    principal_columns, AccountRow, ActivationRow, KeyRow, PartnerRow, ProductRow, ACCOUNT_COLUMNS,
    ACTIVATION_COLUMNS, KEY_COLUMNS, PARTNER_COLUMNS, PRODUCT_COLUMNS,
};
use crate::storage::time::DbTime;
use crate::storage::{AccountPage, PartnerPage, ProductPage, StoreResult, TenantPage, TenantStore};
use async_trait::async_trait;

/// `SELECT columns FROM table` in (created, id) order from `page.after`, within
/// `page.partner` when `partnered` (the table has a partner_id), `page.limit` rows. The
/// indexes on (partner_id, created, id) and (created, id) serve both forms.
fn tenant_page<'q, DB: Dialect, Id: AsRef<str>>(
    columns: &str,
    table: &str,
    id_column: &str,
    partnered: bool,
    page: &'q TenantPage<Id>,
) -> Sql<'q, DB> {
    let mut sql = Sql::<DB>::new(format!("SELECT {columns} FROM {table} WHERE TRUE"));
    if let Some(partner) = page.partner.as_ref().filter(|_| partnered) {
        sql.push(" AND partner_id = ").push_bind(partner.as_str());
    }
    if let Some((created, id)) = &page.after {
        push_keyset_bound(
            &mut sql,
            &format!("created, {id_column}"),
            ">",
            DbTime(*created),
            id.as_ref(),
        );
    }
    sql.push(&format!(" ORDER BY created, {id_column} LIMIT "))
        .push_bind(page.limit);
    sql
}

fn insert_key_sql<'q, DB: Dialect>(key: &'q ApiKey, hash: &'q str) -> Sql<'q, DB> {
    let (kind, partner, account, product) = principal_columns(&key.principal);
    Sql::new(
        "INSERT INTO api_keys (key_id, key_hash, kind, partner_id, account_id, product_id, \
         created, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(key.key_id.as_str())
    .bind(hash)
    .bind(kind)
    .bind(partner)
    .bind(account)
    .bind(product)
    .bind(DbTime(key.created))
}

#[async_trait]
impl<DB: Dialect> TenantStore for SqlStore<DB> {
    async fn insert_partner(&self, partner: &Partner) -> StoreResult<()> {
        Sql::<DB>::new("INSERT INTO partners (partner_id, name, created) VALUES ($1, $2, $3)")
            .bind(partner.partner_id.as_str())
            .bind(partner.name.as_str())
            .bind(DbTime(partner.created))
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    async fn get_partner(&self, id: &PartnerId) -> StoreResult<Option<Partner>> {
        let row: Option<PartnerRow> = Sql::<DB>::new(format!(
            "SELECT {PARTNER_COLUMNS} FROM partners WHERE partner_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        Ok(row.map(Partner::from))
    }

    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        Sql::<DB>::new(
            "INSERT INTO accounts (account_id, partner_id, name, default_region, dedupe_policy, \
             created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(account.account_id.as_str())
        .bind(account.partner_id.as_str())
        .bind(account.name.as_str())
        .bind(account.default_region.as_str())
        .bind(account.dedupe_policy.as_str())
        .bind(DbTime(account.created))
        .bind(DbTime(account.updated))
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        let key = id.to_string();
        let start = match self.tenancy.lookup(&self.tenancy.accounts, &key) {
            Ok(account) => return Ok(Some(account)),
            Err(start) => start,
        };
        let row: Option<AccountRow> = Sql::<DB>::new(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        let account = row.map(Account::try_from).transpose()?;
        if let Some(account) = &account {
            self.tenancy
                .keep(&self.tenancy.accounts, key, account.clone(), start);
        }
        Ok(account)
    }

    async fn list_accounts(&self, page: &AccountPage) -> StoreResult<Vec<Account>> {
        let rows: Vec<AccountRow> =
            tenant_page::<DB, _>(ACCOUNT_COLUMNS, "accounts", "account_id", true, page)
                .fetch_all(&mut *self.read().await?)
                .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    async fn list_partners(&self, page: &PartnerPage) -> StoreResult<Vec<Partner>> {
        let rows: Vec<PartnerRow> =
            tenant_page::<DB, _>(PARTNER_COLUMNS, "partners", "partner_id", false, page)
                .fetch_all(&mut *self.read().await?)
                .await?;
        Ok(rows.into_iter().map(Partner::from).collect())
    }

    async fn product_names(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, String>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let mut sql = Sql::<DB>::new("SELECT product_id, name FROM products WHERE product_id IN (");
        sql.push_list(ids.iter().map(String::as_str)).push(")");
        let rows: Vec<(String, String)> = sql.fetch_all(&mut *self.read().await?).await?;
        Ok(rows.into_iter().collect())
    }

    async fn list_products(&self, page: &ProductPage) -> StoreResult<Vec<Product>> {
        let rows: Vec<ProductRow> =
            tenant_page::<DB, _>(PRODUCT_COLUMNS, "products", "product_id", true, page)
                .fetch_all(&mut *self.read().await?)
                .await?;
        rows.into_iter().map(Product::try_from).collect()
    }

    async fn insert_product(&self, product: &Product, key: &ApiKey, hash: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Sql::<DB>::new(
            "INSERT INTO products (product_id, partner_id, name, webhook_url, webhook_secret, \
             webhook_status, webhook_disabled_reason, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(product.product_id.as_str())
        .bind(product.partner_id.as_ref().map(PartnerId::as_str))
        .bind(product.name.as_str())
        .bind(product.webhook_url.as_ref().map(|u| u.as_str()))
        .bind(product.webhook_secret.as_str())
        .bind(product.webhook_status.as_str())
        .bind(product.webhook_disabled_reason.as_deref())
        .bind(DbTime(product.created))
        .bind(DbTime(product.updated))
        .execute(&mut tx)
        .await?;
        insert_key_sql::<DB>(key, hash).execute(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_product(&self, id: &ProductId) -> StoreResult<Option<Product>> {
        let row: Option<ProductRow> = Sql::<DB>::new(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(Product::try_from).transpose()
    }

    async fn update_product(&self, product: &Product) -> StoreResult<()> {
        // A new webhook address is a new receiver: the breaker's count of the old one's
        // failures does not pause it (SPEC section 6), as a gateway re-activates an
        // endpoint on update.
        Sql::<DB>::new(
            "UPDATE products SET name = $2, webhook_url = $3, updated = $4, \
             breaker_failures = CASE WHEN webhook_url IS DISTINCT FROM $3 THEN 0 ELSE breaker_failures END, \
             breaker_probe_at = CASE WHEN webhook_url IS DISTINCT FROM $3 THEN NULL ELSE breaker_probe_at END, \
             breaker_interval_s = CASE WHEN webhook_url IS DISTINCT FROM $3 THEN NULL ELSE breaker_interval_s END \
             WHERE product_id = $1",
        )
        .bind(product.product_id.as_str())
        .bind(product.name.as_str())
        .bind(product.webhook_url.as_ref().map(|u| u.as_str()))
        .bind(DbTime(product.updated))
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn upsert_activation(
        &self,
        activation: &Activation,
        backfill: Option<&str>,
    ) -> StoreResult<Activation> {
        let mut tx = self.begin_write().await?;
        let row: ActivationRow = Sql::<DB>::new(format!(
            "INSERT INTO activations (account_id, product_id, sync, created, updated) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (account_id, product_id) DO UPDATE \
               SET sync = excluded.sync, \
                   updated = CASE WHEN activations.sync = excluded.sync \
                                  THEN activations.updated ELSE excluded.updated END \
             RETURNING {ACTIVATION_COLUMNS}"
        ))
        .bind(activation.account_id.as_str())
        .bind(activation.product_id.as_str())
        .bind(activation.sync.as_str())
        .bind(DbTime(activation.updated))
        .fetch_one(&mut *tx)
        .await?;
        if let Some(id) = backfill {
            let (account, product) = (&activation.account_id, &activation.product_id);
            open_backfill(&mut tx, account, product, id, activation.updated).await?;
        }
        tx.commit().await?;
        self.tenancy.changed();
        if backfill.is_some() {
            self.backfill_wakeup.notify_one();
        }
        Activation::try_from(row)
    }

    async fn get_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<Option<Activation>> {
        let key = (account.to_string(), product.to_string());
        let start = match self.tenancy.lookup(&self.tenancy.activations, &key) {
            Ok(activation) => return Ok(Some(activation)),
            Err(start) => start,
        };
        let row: Option<ActivationRow> = Sql::<DB>::new(format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE account_id = $1 AND product_id = $2"
        ))
        .bind(account.as_str())
        .bind(product.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        let activation = row.map(Activation::try_from).transpose()?;
        if let Some(activation) = &activation {
            self.tenancy
                .keep(&self.tenancy.activations, key, activation.clone(), start);
        }
        Ok(activation)
    }

    async fn delete_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<bool> {
        let removed =
            Sql::<DB>::new("DELETE FROM activations WHERE account_id = $1 AND product_id = $2")
                .bind(account.as_str())
                .bind(product.as_str())
                .execute(&mut *self.write().await?)
                .await?;
        self.tenancy.changed();
        Ok(removed > 0)
    }

    async fn list_activations(&self, account: &AccountId) -> StoreResult<Vec<Activation>> {
        let rows: Vec<ActivationRow> = Sql::<DB>::new(format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE account_id = $1 \
             ORDER BY created, product_id"
        ))
        .bind(account.as_str())
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter().map(Activation::try_from).collect()
    }

    async fn insert_key(&self, key: &ApiKey, hash: &str) -> StoreResult<()> {
        insert_key_sql::<DB>(key, hash)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    async fn find_active_key(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let start = match self.tenancy.lookup(&self.tenancy.keys, &hash.to_owned()) {
            Ok(key) => return Ok(Some(key)),
            Err(start) => start,
        };
        let row: Option<KeyRow> = Sql::<DB>::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked IS NULL"
        ))
        .bind(hash)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        let key = row.map(ApiKey::try_from).transpose()?;
        if let Some(key) = &key {
            self.tenancy
                .keep(&self.tenancy.keys, hash.to_owned(), key.clone(), start);
        }
        Ok(key)
    }

    async fn get_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let row: Option<KeyRow> = Sql::<DB>::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(ApiKey::try_from).transpose()
    }

    async fn list_keys(&self, subject: &Principal) -> StoreResult<Vec<ApiKey>> {
        // Each subject column has its own partial index; admin keys are few.
        let (kind, partner, account, product) = principal_columns(subject);
        let mut sql = Sql::<DB>::new(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE "));
        match (partner, account, product) {
            (Some(id), _, _) => sql.push("partner_id = ").push_bind(id),
            (_, Some(id), _) => sql.push("account_id = ").push_bind(id),
            (_, _, Some(id)) => sql.push("product_id = ").push_bind(id),
            _ => sql.push("kind = ").push_bind(kind),
        };
        sql.push(" ORDER BY created, key_id");
        let rows: Vec<KeyRow> = sql.fetch_all(&mut *self.read().await?).await?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    async fn revoke_key(&self, id: &KeyId, at: Timestamp) -> StoreResult<bool> {
        let revoked = Sql::<DB>::new(
            "UPDATE api_keys SET revoked = $2 WHERE key_id = $1 AND revoked IS NULL",
        )
        .bind(id.as_str())
        .bind(DbTime(at))
        .execute(&mut *self.write().await?)
        .await?;
        self.tenancy.changed();
        Ok(revoked > 0)
    }

    async fn has_active_admin_key(&self) -> StoreResult<bool> {
        let found: Option<i32> =
            Sql::<DB>::new("SELECT 1 FROM api_keys WHERE kind = $1 AND revoked IS NULL LIMIT 1")
                .bind(KeyKind::Admin.as_str())
                .scalar_optional(&mut *self.read().await?)
                .await?;
        Ok(found.is_some())
    }

    async fn put_admin_key(&self, id: &KeyId, hash: &str, at: Timestamp) -> StoreResult<()> {
        Sql::<DB>::new(
            "INSERT INTO api_keys (key_id, key_hash, kind, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_id) DO UPDATE SET key_hash = excluded.key_hash, revoked = NULL",
        )
        .bind(id.as_str())
        .bind(hash)
        .bind(KeyKind::Admin.as_str())
        .bind(DbTime(at))
        .execute(&mut *self.write().await?)
        .await?;
        self.tenancy.changed();
        Ok(())
    }
}
