//! The SQL both backends share: standard SQL with `$N` placeholders, timestamps bound
//! as [`DbTime`](super::time::DbTime). `sql_store!` implements [`Store`](super::Store)
//! for a backend from these shared methods plus the backend's own items (its name and
//! its `MIGRATOR`), so each query is written once and still runs on both.

macro_rules! sql_store {
    ($store:ident, $db:ty, $conn:ty; $($specific:tt)*) => {
        mod sql_store {
            #[allow(unused_imports)]
            use super::*;
            use $crate::domain::tenancy::{ApiKey, KeyKind};
            use $crate::domain::tenants::{Account, Activation, Partner, Product};
            use $crate::domain::time::Timestamp;
            use $crate::domain::{AccountId, KeyId, PartnerId, ProductId};
            use $crate::storage::rows::{
                principal_columns, AccountRow, ActivationRow, KeyRow, PartnerRow, ProductRow,
                ACCOUNT_COLUMNS, ACTIVATION_COLUMNS, KEY_COLUMNS, PARTNER_COLUMNS, PRODUCT_COLUMNS,
            };
            use $crate::storage::time::DbTime;
            use $crate::storage::{AccountPage, Store, StoreResult};
            use sqlx::QueryBuilder;

            #[async_trait::async_trait]
            impl Store for super::$store {
                $($specific)*

                async fn migrate(&self) -> StoreResult<()> {
                    super::MIGRATOR.run(&self.pool).await?;
                    Ok(())
                }

                async fn check_ready(&self) -> StoreResult<bool> {
                    let applied: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                            .fetch_one(&self.pool)
                            .await?;
                    Ok(applied as usize >= super::MIGRATOR.iter().count())
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
        // Conditions are added only when present, so the planner sees a plain range
        // over the (partner_id, created, account_id) index.
        let mut sql = QueryBuilder::<$db>::new(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE TRUE"));
        if let Some(partner) = &page.partner {
            sql.push(" AND partner_id = ").push_bind(partner.as_str());
        }
        if let Some((created, id)) = &page.after {
            sql.push(" AND (created, account_id) > (")
                .push_bind(DbTime(*created))
                .push(", ")
                .push_bind(id.as_str())
                .push(")");
        }
        sql.push(" ORDER BY created, account_id LIMIT ").push_bind(page.limit);
        let rows: Vec<AccountRow> = sql.build_query_as().fetch_all(&self.pool).await?;
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


async fn insert_key(conn: &mut $conn, key: &ApiKey, hash: &str) -> StoreResult<()> {
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

        }
    };
}

pub(super) use sql_store;
