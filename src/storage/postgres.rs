//! The production backend. Several servers may share one database.

use super::rows::{
    principal_columns, AccountRow, ActivationRow, KeyRow, PartnerRow, ProductRow, ACCOUNT_COLUMNS,
    ACTIVATION_COLUMNS, KEY_COLUMNS, PARTNER_COLUMNS, PRODUCT_COLUMNS,
};
use super::time::DbTime;
use super::{AccountPage, Store, StoreResult};
use crate::domain::tenancy::{ApiKey, KeyKind};
use crate::domain::tenants::{Account, Activation, Partner, Product};
use crate::domain::time::Timestamp;
use crate::domain::{AccountId, KeyId, PartnerId, ProductId};
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("customer-list");
        let pool = PgPoolOptions::new()
            .max_connections(20)
            // A request waiting on an exhausted or unreachable database fails fast with
            // 503 rather than hanging.
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn check_ready(&self) -> StoreResult<bool> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied as usize >= MIGRATOR.iter().count())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_partner(&self, partner: &Partner) -> StoreResult<()> {
        sqlx::query("INSERT INTO partners (partner_id, name, created) VALUES ($1, $2, $3)")
            .bind(partner.partner_id.as_str())
            .bind(partner.name.as_str())
            .bind(DbTime(partner.created))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_partner(&self, id: &PartnerId) -> StoreResult<Option<Partner>> {
        let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE partner_id = $1");
        let row: Option<PartnerRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Partner::from))
    }

    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        sqlx::query(
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1");
        let row: Option<AccountRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Account::try_from).transpose()
    }

    async fn list_accounts(&self, page: &AccountPage) -> StoreResult<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts \
             WHERE ($1::text IS NULL OR partner_id = $1) \
               AND ($2::timestamptz IS NULL OR (created, account_id) > ($2, $3)) \
             ORDER BY created, account_id LIMIT $4"
        );
        let (after_created, after_id) = match &page.after {
            Some((created, id)) => (Some(DbTime(*created)), Some(id.as_str())),
            None => (None, None),
        };
        let rows: Vec<AccountRow> = sqlx::query_as(&sql)
            .bind(page.partner.as_ref().map(PartnerId::as_str))
            .bind(after_created)
            .bind(after_id)
            .bind(page.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    async fn insert_product(&self, product: &Product, key: &ApiKey, hash: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO products (product_id, partner_id, name, webhook_url, webhook_secret, \
             webhook_status, webhook_disabled_reason, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(product.product_id.as_str())
        .bind(product.partner_id.as_ref().map(PartnerId::as_str))
        .bind(product.name.as_str())
        .bind(product.webhook_url.as_ref().map(|u| u.as_str()))
        .bind(&product.webhook_secret)
        .bind(product.webhook_status.as_str())
        .bind(product.webhook_disabled_reason.as_deref())
        .bind(DbTime(product.created))
        .bind(DbTime(product.updated))
        .execute(&mut *tx)
        .await?;
        insert_key(&mut tx, key, hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_product(&self, id: &ProductId) -> StoreResult<Option<Product>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id = $1");
        let row: Option<ProductRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Product::try_from).transpose()
    }

    async fn update_product(&self, product: &Product) -> StoreResult<()> {
        sqlx::query(
            "UPDATE products SET name = $2, webhook_url = $3, updated = $4 WHERE product_id = $1",
        )
        .bind(product.product_id.as_str())
        .bind(product.name.as_str())
        .bind(product.webhook_url.as_ref().map(|u| u.as_str()))
        .bind(DbTime(product.updated))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upsert_activation(&self, activation: &Activation) -> StoreResult<Activation> {
        let sql = format!(
            "INSERT INTO activations (account_id, product_id, sync, created, updated) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (account_id, product_id) DO UPDATE \
               SET sync = excluded.sync, \
                   updated = CASE WHEN activations.sync = excluded.sync \
                                  THEN activations.updated ELSE excluded.updated END \
             RETURNING {ACTIVATION_COLUMNS}"
        );
        let row: ActivationRow = sqlx::query_as(&sql)
            .bind(activation.account_id.as_str())
            .bind(activation.product_id.as_str())
            .bind(activation.sync.as_str())
            .bind(DbTime(activation.updated))
            .fetch_one(&self.pool)
            .await?;
        Activation::try_from(row)
    }

    async fn get_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<Option<Activation>> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE account_id = $1 AND product_id = $2"
        );
        let row: Option<ActivationRow> = sqlx::query_as(&sql)
            .bind(account.as_str())
            .bind(product.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Activation::try_from).transpose()
    }

    async fn delete_activation(
        &self,
        account: &AccountId,
        product: &ProductId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM activations WHERE account_id = $1 AND product_id = $2")
            .bind(account.as_str())
            .bind(product.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_activations(&self, account: &AccountId) -> StoreResult<Vec<Activation>> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE account_id = $1 \
             ORDER BY created, product_id"
        );
        let rows: Vec<ActivationRow> = sqlx::query_as(&sql)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Activation::try_from).collect()
    }

    async fn insert_key(&self, key: &ApiKey, hash: &str) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_key(&mut conn, key, hash).await
    }

    async fn find_active_key(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked IS NULL");
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(ApiKey::try_from).transpose()
    }

    async fn get_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1");
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(ApiKey::try_from).transpose()
    }

    async fn revoke_key(&self, id: &KeyId, at: Timestamp) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked = $2 WHERE key_id = $1 AND revoked IS NULL")
                .bind(id.as_str())
                .bind(DbTime(at))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn has_active_admin_key(&self) -> StoreResult<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM api_keys WHERE kind = $1 AND revoked IS NULL LIMIT 1",
        )
        .bind(KeyKind::Admin.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn put_admin_key(&self, id: &KeyId, hash: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, kind, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_id) DO UPDATE SET key_hash = excluded.key_hash, revoked = NULL",
        )
        .bind(id.as_str())
        .bind(hash)
        .bind(KeyKind::Admin.as_str())
        .bind(DbTime(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

async fn insert_key(conn: &mut sqlx::PgConnection, key: &ApiKey, hash: &str) -> StoreResult<()> {
    let (kind, partner, account, product) = principal_columns(&key.principal);
    sqlx::query(
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}
