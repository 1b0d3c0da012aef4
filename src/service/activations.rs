//! Activations (SPEC section 7) and the backfill that catches a product up when it
//! starts receiving an account's changes (section 11).

use super::{reachable, Hub};
use crate::domain::tenancy::{Principal, ADMIN_OR_PARTNER};
use crate::domain::tenants::{Activation, SyncMode};
use crate::domain::{time, AccountId, BackfillId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::input::{text, Fields, FromInput};
use crate::storage::BackfillView;
use serde_json::Value;

pub struct ActivationInput {
    pub sync: SyncMode,
    /// Send the account's existing customers when the product starts receiving them.
    pub backfill: bool,
}

impl FromInput for ActivationInput {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let sync = f.required("sync", text(SyncMode::parse));
        let backfill = f
            .optional("backfill", |v: &Value| {
                v.as_bool()
                    .ok_or_else(|| "must be true or false".to_owned())
            })
            .unwrap_or(true);
        Some(Self {
            sync: sync?,
            backfill,
        })
    }
}

/// An activation as the API shows it: with its backfill's progress.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ActivationView {
    #[serde(flatten)]
    pub activation: Activation,
    pub backfill: BackfillView,
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
    ) -> ApiResult<(ActivationView, bool)> {
        who.require(ADMIN_OR_PARTNER)?;
        self.managed_account(who, account).await?;
        // Any existing product may be activated: products are the vendors' catalogue.
        let found = self.store.get_product(product).await?;
        let found = reachable(found, "product", |_| true)?;
        let before = self.store.get_activation(account, product).await?;
        let existed = before.is_some();
        let was_two_way = before.is_some_and(|a| a.sync == SyncMode::TwoWay);
        // A product with a webhook that starts receiving the account's changes gets the
        // customers it has not seen (SPEC section 11), started with the activation.
        let catching_up = input.sync == SyncMode::TwoWay && !was_two_way;
        let backfill = (catching_up && input.backfill && found.webhook_url.is_some())
            .then(BackfillId::generate);
        let now = time::now();
        let activation = self
            .store
            .upsert_activation(
                &Activation {
                    account_id: account.clone(),
                    product_id: product.clone(),
                    sync: input.sync,
                    created: now,
                    updated: now,
                },
                backfill.as_ref().map(BackfillId::as_str),
            )
            .await?;
        let view = self.activation_view(activation).await?;
        Ok((view, !existed))
    }

    /// `POST /v1/accounts/{a}/products/{p}/resync`: a new backfill of every live
    /// customer, for a product that lost its data (or the one running). Admin, partner,
    /// or the product itself.
    pub async fn resync(
        &self,
        who: &Principal,
        account: &AccountId,
        product: &ProductId,
    ) -> ApiResult<ActivationView> {
        match who {
            Principal::Product(own) if own == product => {}
            Principal::Product(_) => return Err(ApiError::not_found("activation")),
            _ => {
                who.require(ADMIN_OR_PARTNER)?;
                self.managed_account(who, account).await?;
            }
        }
        let Some(activation) = self.store.get_activation(account, product).await? else {
            return Err(ApiError::not_found("activation"));
        };
        let found = self.store.get_product(product).await?;
        let found = reachable(found, "product", |_| true)?;
        if activation.sync != SyncMode::TwoWay {
            return Err(ApiError::conflict(
                "resync_refused",
                "only a two-way activation receives the account's customers",
            ));
        }
        if found.webhook_url.is_none() {
            return Err(ApiError::conflict(
                "resync_refused",
                "the product has no webhook: it catches up through GET /v1/events/head, the list and the feed",
            ));
        }
        let id = BackfillId::generate();
        self.store
            .start_backfill(account, product, id.as_str(), time::now())
            .await?;
        self.activation_view(activation).await
    }

    /// An activation with its newest backfill (the dispatchers' backfill stage completes
    /// backfills as their last snapshots are recorded: reads write nothing).
    async fn activation_view(&self, activation: Activation) -> ApiResult<ActivationView> {
        let mut views = self.with_backfills(vec![activation]).await?;
        views.pop().ok_or_else(|| ApiError::not_found("activation"))
    }

    /// Activations with their newest backfills, in two queries for the account.
    async fn with_backfills(&self, activations: Vec<Activation>) -> ApiResult<Vec<ActivationView>> {
        let Some(first) = activations.first() else {
            return Ok(Vec::new());
        };
        let latest = self.store.latest_backfills(&first.account_id).await?;
        Ok(activations
            .into_iter()
            .map(|activation| {
                let backfill = latest
                    .iter()
                    .find(|b| b.product_id == activation.product_id.as_str())
                    .cloned()
                    .unwrap_or_else(|| BackfillView::none(activation.product_id.as_str()));
                ActivationView {
                    activation,
                    backfill,
                }
            })
            .collect())
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
            self.store
                .cancel_backfills(account, product, time::now())
                .await?;
            Ok(())
        } else {
            Err(ApiError::not_found("activation"))
        }
    }

    pub async fn list_activations(
        &self,
        who: &Principal,
        account: &AccountId,
    ) -> ApiResult<Vec<ActivationView>> {
        who.require(ADMIN_OR_PARTNER)?;
        self.managed_account(who, account).await?;
        let activations = self.store.list_activations(account).await?;
        self.with_backfills(activations).await
    }
}
