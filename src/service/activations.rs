use super::{reachable, Hub};
use crate::domain::tenancy::{Principal, ADMIN_OR_PARTNER};
use crate::domain::tenants::{Activation, SyncMode};
use crate::domain::{time, AccountId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::input::{text, Fields, FromInput};

pub struct ActivationInput {
    pub sync: SyncMode,
}

impl FromInput for ActivationInput {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let sync = f.required("sync", text(SyncMode::parse));
        Some(Self { sync: sync? })
    }
}

impl Hub {
    /// Activates a product on an account, or changes its sync mode. Returns the
    /// activation and whether it is new.
    pub async fn activate(
        &self,
        who: &Principal,
        account: &AccountId,
        product: &ProductId,
        input: ActivationInput,
    ) -> ApiResult<(Activation, bool)> {
        who.require(ADMIN_OR_PARTNER)?;
        self.managed_account(who, account).await?;
        // Any existing product may be activated: products are the vendors' catalogue.
        let found = self.store.get_product(product).await?;
        reachable(found, "product", |_| true)?;
        let existed = self.store.get_activation(account, product).await?.is_some();
        let now = time::now();
        let activation = self
            .store
            .upsert_activation(&Activation {
                account_id: account.clone(),
                product_id: product.clone(),
                sync: input.sync,
                created: now,
                updated: now,
            })
            .await?;
        Ok((activation, !existed))
    }

    pub async fn deactivate(
        &self,
        who: &Principal,
        account: &AccountId,
        product: &ProductId,
    ) -> ApiResult<()> {
        who.require(ADMIN_OR_PARTNER)?;
        self.managed_account(who, account).await?;
        if self.store.delete_activation(account, product).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("activation"))
        }
    }

    pub async fn list_activations(
        &self,
        who: &Principal,
        account: &AccountId,
    ) -> ApiResult<Vec<Activation>> {
        who.require(ADMIN_OR_PARTNER)?;
        self.managed_account(who, account).await?;
        Ok(self.store.list_activations(account).await?)
    }
}
