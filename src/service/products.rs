use super::{reachable, Hub};
use crate::domain::credentials::{generate_webhook_secret, NewApiKey};
use crate::domain::tenancy::{ApiKey, Principal, ADMIN_OR_PARTNER, ADMIN_PARTNER_OR_PRODUCT};
use crate::domain::tenants::{DisplayName, Product, WebhookHealth, WebhookStatus, WebhookUrl};
use crate::domain::{time, KeyId, PartnerId, ProductId};
use crate::error::ApiResult;
use crate::input::{id, text, Fields, FromInput, Patch};
use serde::Serialize;

pub struct NewProduct {
    pub name: DisplayName,
    pub partner_id: Option<PartnerId>,
    pub webhook_url: Option<WebhookUrl>,
}

impl FromInput for NewProduct {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let name = f.required("name", text(DisplayName::parse));
        let partner_id = f.optional("partner_id", id::<PartnerId>);
        let webhook_url = f.optional("webhook_url", text(WebhookUrl::parse));
        Some(Self {
            name: name?,
            partner_id,
            webhook_url,
        })
    }
}

/// `PATCH /v1/products/{id}`: a merge patch of `name` and `webhook_url`.
pub struct ProductPatch {
    pub name: Option<DisplayName>,
    pub webhook_url: Patch<WebhookUrl>,
}

impl FromInput for ProductPatch {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let name = f.patch("name", text(DisplayName::parse));
        let webhook_url = f.patch("webhook_url", text(WebhookUrl::parse));
        let name = match name {
            Patch::Set(name) => Some(name),
            Patch::Absent => None,
            // A product always has a name: `null` cannot clear it.
            Patch::Null => f.reject("name", "must not be null")?,
        };
        Some(Self { name, webhook_url })
    }
}

/// A product just created, with its first API key and its signing secret: the only
/// response that ever shows them.
#[derive(Serialize)]
pub struct CreatedProduct {
    #[serde(flatten)]
    pub product: Product,
    pub key_id: KeyId,
    pub api_key: String,
    pub webhook_secret: String,
}

impl Hub {
    pub async fn create_product(
        &self,
        who: &Principal,
        input: NewProduct,
    ) -> ApiResult<CreatedProduct> {
        who.require(ADMIN_OR_PARTNER)?;
        // A partner's products are its own unless it names another partner.
        let partner_id = match (who, input.partner_id) {
            (Principal::Partner(me), None) => Some(me.clone()),
            (_, named) => named,
        };
        if let Some(id) = &partner_id {
            let partner = self.store.get_partner(id).await?;
            reachable(partner, "partner", |p| {
                who.reaches_partner(Some(&p.partner_id))
            })?;
        }
        let now = time::now();
        let product = Product {
            product_id: ProductId::generate(),
            partner_id,
            name: input.name,
            webhook_url: input.webhook_url,
            webhook_secret: generate_webhook_secret(),
            webhook_status: WebhookStatus::Enabled,
            webhook_disabled_reason: None,
            webhook_health: WebhookHealth::Healthy,
            failing_since: None,
            created: now,
            updated: now,
        };
        let secret = NewApiKey::generate();
        let key = ApiKey {
            key_id: KeyId::generate(),
            principal: Principal::Product(product.product_id.clone()),
            created: now,
            revoked: None,
        };
        self.store
            .insert_product(&product, &key, &secret.hash)
            .await?;
        Ok(CreatedProduct {
            webhook_secret: product.webhook_secret.clone(),
            product,
            key_id: key.key_id,
            api_key: secret.plaintext,
        })
    }

    pub async fn get_product(&self, who: &Principal, id: &ProductId) -> ApiResult<Product> {
        who.require(ADMIN_PARTNER_OR_PRODUCT)?;
        let product = self.store.get_product(id).await?;
        reachable(product, "product", |p| reaches_product(who, p))
    }

    pub async fn update_product(
        &self,
        who: &Principal,
        id: &ProductId,
        patch: ProductPatch,
    ) -> ApiResult<Product> {
        let mut product = self.get_product(who, id).await?;
        let before = product.clone();
        if let Some(name) = patch.name {
            product.name = name;
        }
        match patch.webhook_url {
            Patch::Absent => {}
            Patch::Null => product.webhook_url = None,
            Patch::Set(url) => product.webhook_url = Some(url),
        }
        if product != before {
            product.updated = time::now();
            self.store.update_product(&product).await?;
        }
        Ok(product)
    }
}

/// The admin, the product's partner, or the product itself.
impl Hub {
    /// `GET /v1/products`: the admin's (all, or one partner's), or a partner's own, in
    /// creation order; never their secrets.
    pub async fn list_products(
        &self,
        who: &Principal,
        query: super::accounts::TenantQuery,
    ) -> ApiResult<super::Page<Product>> {
        who.require(ADMIN_OR_PARTNER)?;
        let partner = self.listed_partner(who, query.partner_id).await?;
        let page = crate::storage::ProductPage {
            partner,
            after: query.cursor.map(|c| (c.at, ProductId::from_string(c.id))),
            limit: query.page_size + 1,
        };
        let rows = self.store.list_products(&page).await?;
        Ok(super::time_page(rows, query.page_size, |p| {
            crate::domain::cursor::TimeCursor {
                at: p.created,
                id: p.product_id.to_string(),
            }
        }))
    }
}

pub(super) fn reaches_product(who: &Principal, product: &Product) -> bool {
    match who {
        Principal::Product(me) => *me == product.product_id,
        _ => who.reaches_partner(product.partner_id.as_ref()),
    }
}
