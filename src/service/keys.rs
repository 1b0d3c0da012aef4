use super::products::reaches_product;
use super::{reachable, Hub};
use crate::domain::credentials::{hash_api_key, NewApiKey};
use crate::domain::tenancy::{ApiKey, Principal, ADMIN_OR_PARTNER, ANY_KEY};
use crate::domain::{time, AccountId, KeyId, PartnerId, ProductId};
use crate::error::{ApiError, ApiResult};
use serde::Serialize;

/// The id of the admin key configured by `CUSTOMER_LIST_ADMIN_KEY`.
pub const BOOTSTRAP_KEY_ID: &str = KeyId::BOOTSTRAP;

/// Shortest operator-supplied admin key accepted: 32 characters.
pub const MIN_CONFIGURED_KEY_LEN: usize = 32;

/// A key just issued: the only response that shows its secret.
#[derive(Debug, Serialize)]
pub struct IssuedKey {
    pub key_id: KeyId,
    pub api_key: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub subject: Subject,
    pub created: crate::domain::time::Timestamp,
}

/// Whom a key acts for, as response fields.
#[derive(Debug, Serialize)]
pub struct Subject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

impl From<&Principal> for Subject {
    fn from(principal: &Principal) -> Self {
        let (mut partner_id, mut account_id, mut product_id) = (None, None, None);
        match principal {
            Principal::Admin => {}
            Principal::Partner(id) => partner_id = Some(id.to_string()),
            Principal::Account(id) => account_id = Some(id.to_string()),
            Principal::Product(id) => product_id = Some(id.to_string()),
        }
        Self {
            partner_id,
            account_id,
            product_id,
        }
    }
}

/// A key as listed: never its secret, nor its digest.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub key_id: KeyId,
    pub kind: &'static str,
    pub created: crate::domain::time::Timestamp,
    pub revoked: Option<crate::domain::time::Timestamp>,
}

/// `GET /v1/keys`: whose keys. Filters combine (a key has one subject, so two name none);
/// without one, the caller's own.
#[derive(Debug, Default)]
pub struct KeyFilter {
    pub partner: Option<PartnerId>,
    pub account: Option<AccountId>,
    pub product: Option<ProductId>,
}

/// `GET /v1/me`: the calling key and whom it acts for (an account's or product's
/// partner too, when it has one).
#[derive(Debug, Serialize)]
pub struct Me {
    pub kind: &'static str,
    pub key_id: KeyId,
    #[serde(flatten)]
    pub subject: Subject,
}

impl Hub {
    /// Resolves a presented key, by its digest (`hash_api_key`), to the key (whom it acts
    /// for, its id and dates); `None` when unknown or revoked.
    pub async fn authenticate(&self, digest: &str) -> ApiResult<Option<ApiKey>> {
        Ok(self.store.find_active_key(digest).await?)
    }

    /// `GET /v1/me`.
    pub async fn me(&self, key: &ApiKey) -> ApiResult<Me> {
        let mut subject = Subject::from(&key.principal);
        subject.partner_id = match &key.principal {
            Principal::Account(id) => self.store.get_account(id).await?.map(|a| a.partner_id),
            Principal::Product(id) => self.store.get_product(id).await?.and_then(|p| p.partner_id),
            Principal::Partner(id) => Some(id.clone()),
            Principal::Admin => None,
        }
        .map(|id| id.to_string());
        Ok(Me {
            kind: key.principal.kind().as_str(),
            key_id: key.key_id.clone(),
            subject,
        })
    }

    /// `GET /v1/keys`: the keys of a subject `who` owns (`reaches_subject`), revoked ones
    /// too, oldest first.
    pub async fn list_keys(&self, who: &Principal, filter: KeyFilter) -> ApiResult<Vec<KeyView>> {
        who.require(ANY_KEY)?;
        let named: Vec<Principal> = [
            filter.partner.map(Principal::Partner),
            filter.account.map(Principal::Account),
            filter.product.map(Principal::Product),
        ]
        .into_iter()
        .flatten()
        .collect();
        let subjects = if named.is_empty() {
            vec![who.clone()]
        } else {
            named
        };
        for subject in &subjects {
            if !self.reaches_subject(who, subject).await? {
                return Err(ApiError::not_found(subject.kind().as_str()));
            }
        }
        let [subject] = subjects.as_slice() else {
            return Ok(Vec::new());
        };
        let keys = self.store.list_keys(subject).await?;
        Ok(keys
            .into_iter()
            .map(|k| KeyView {
                kind: k.principal.kind().as_str(),
                key_id: k.key_id,
                created: k.created,
                revoked: k.revoked,
            })
            .collect())
    }

    /// Issues a new key for `subject` (a partner, account or product).
    pub async fn issue_key(&self, who: &Principal, subject: Principal) -> ApiResult<IssuedKey> {
        who.require(ADMIN_OR_PARTNER)?;
        if subject == Principal::Admin {
            return Err(ApiError::forbidden());
        }
        if !self.reaches_subject(who, &subject).await? {
            return Err(ApiError::not_found(subject.kind().as_str()));
        }
        let secret = NewApiKey::generate();
        let key = ApiKey {
            key_id: KeyId::generate(),
            principal: subject,
            created: time::now(),
            revoked: None,
        };
        self.store.insert_key(&key, &secret.hash).await?;
        Ok(IssuedKey {
            kind: key.principal.kind().as_str(),
            subject: Subject::from(&key.principal),
            key_id: key.key_id,
            api_key: secret.plaintext,
            created: key.created,
        })
    }

    /// Revokes a key; it stops working at once. The admin may revoke any key; others
    /// the keys of what they own (a partner: its own, its accounts' and its products').
    pub async fn revoke_key(&self, who: &Principal, key_id: &KeyId) -> ApiResult<()> {
        who.require(ANY_KEY)?;
        let key = self.store.get_key(key_id).await?;
        let key = reachable(key, "key", |k| k.revoked.is_none())?;
        if !self.reaches_subject(who, &key.principal).await? {
            return Err(ApiError::not_found("key"));
        }
        if !self.store.revoke_key(key_id, time::now()).await? {
            return Err(ApiError::not_found("key"));
        }
        Ok(())
    }

    /// Whether `who` owns `subject`: the admin owns all; a partner its own keys and its
    /// accounts' and products'; an account or product key only its own subject.
    async fn reaches_subject(&self, who: &Principal, subject: &Principal) -> ApiResult<bool> {
        if who == subject || *who == Principal::Admin {
            return Ok(match subject {
                Principal::Admin => true,
                Principal::Partner(id) => self.store.get_partner(id).await?.is_some(),
                Principal::Account(id) => self.store.get_account(id).await?.is_some(),
                Principal::Product(id) => self.store.get_product(id).await?.is_some(),
            });
        }
        let Principal::Partner(_) = who else {
            return Ok(false);
        };
        Ok(match subject {
            Principal::Admin => false,
            Principal::Partner(id) => who.reaches_partner(Some(id)),
            Principal::Account(id) => self
                .store
                .get_account(id)
                .await?
                .is_some_and(|a| who.reaches_partner(Some(&a.partner_id))),
            Principal::Product(id) => self
                .store
                .get_product(id)
                .await?
                .is_some_and(|p| reaches_product(who, &p)),
        })
    }

    /// Makes sure an admin key exists. With a configured key, stores its digest under
    /// a fixed id (the configuration stays the source of truth). Without one, generates a
    /// key on the first start only and returns it so the caller can print it once.
    pub async fn bootstrap_admin_key(
        &self,
        configured: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        if let Some(key) = configured {
            anyhow::ensure!(
                key.len() >= MIN_CONFIGURED_KEY_LEN,
                "CUSTOMER_LIST_ADMIN_KEY must be at least {MIN_CONFIGURED_KEY_LEN} characters of random text"
            );
            self.store
                .put_admin_key(
                    &KeyId::from_string(BOOTSTRAP_KEY_ID),
                    &hash_api_key(key),
                    time::now(),
                )
                .await?;
            return Ok(None);
        }
        if self.store.has_active_admin_key().await? {
            return Ok(None);
        }
        let secret = NewApiKey::generate();
        let key = ApiKey {
            key_id: KeyId::generate(),
            principal: Principal::Admin,
            created: time::now(),
            revoked: None,
        };
        self.store.insert_key(&key, &secret.hash).await?;
        Ok(Some(secret.plaintext))
    }
}
