//! Console sessions (SPEC section 9): a key, checked once, is exchanged for a session
//! whose random id only the browser holds (the hub keeps its digest). A session acts as
//! its key while that key is not revoked, for 12 hours at most.

use super::Hub;
use crate::domain::credentials::{digest, hash_api_key, random_token};
use crate::domain::tenancy::{ApiKey, Principal};
use crate::domain::time::{self, Timestamp};
use crate::error::ApiResult;
use crate::storage::NewSession;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A session just opened: the cookie value (its id) and the CSRF token of its forms.
pub struct OpenedSession {
    pub id: String,
    pub csrf_token: String,
    pub expires: Timestamp,
}

/// A live session: the key it acts as, whom that is in words, and its CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    pub key: ApiKey,
    /// "Saskatoon Salon (account)", "the admin", …: what the console's header says.
    pub signed_in_as: String,
    pub csrf_token: String,
    pub expires: Timestamp,
}

impl Session {
    /// The session acting as its key.
    pub fn actor(&self) -> crate::domain::tenancy::Actor {
        crate::domain::tenancy::Actor::of(&self.key)
    }
}

impl Hub {
    /// Exchanges a presented API key for a session; `None` for a key that is unknown or
    /// revoked (the caller says only that the key was not accepted).
    pub async fn sign_in(&self, presented: &str) -> ApiResult<Option<OpenedSession>> {
        let Some(key) = self.authenticate(&hash_api_key(presented)).await? else {
            return Ok(None);
        };
        let id = random_token();
        let csrf_token = random_token();
        let now = time::now();
        let expires = now + chrono::Duration::hours(SESSION_HOURS);
        self.store
            .insert_session(&NewSession {
                session_hash: &digest(&id),
                key_id: &key.key_id,
                csrf_token: &csrf_token,
                created: now,
                expires,
            })
            .await?;
        Ok(Some(OpenedSession {
            id,
            csrf_token,
            expires,
        }))
    }

    /// The live session a cookie names, if any: not ended, its key not revoked.
    pub async fn session(&self, id: &str) -> ApiResult<Option<Session>> {
        let Some(found) = self.store.find_session(&digest(id), time::now()).await? else {
            return Ok(None);
        };
        let signed_in_as = self.signed_in_as(&found.key.principal).await?;
        Ok(Some(Session {
            key: found.key,
            signed_in_as,
            csrf_token: found.csrf_token,
            expires: found.expires,
        }))
    }

    /// Whom a key acts for, by name.
    async fn signed_in_as(&self, who: &Principal) -> ApiResult<String> {
        let named = |name: Option<String>, kind: &str, id: &str| match name {
            Some(name) => format!("{name} ({kind})"),
            None => format!("{kind} {id}"),
        };
        Ok(match who {
            Principal::Admin => "the admin".to_owned(),
            Principal::Partner(id) => {
                let name = self
                    .store
                    .get_partner(id)
                    .await?
                    .map(|p| p.name.as_str().to_owned());
                named(name, "partner", id.as_str())
            }
            Principal::Account(id) => {
                let name = self
                    .store
                    .get_account(id)
                    .await?
                    .map(|a| a.name.as_str().to_owned());
                named(name, "account", id.as_str())
            }
            Principal::Product(id) => {
                let name = self
                    .store
                    .get_product(id)
                    .await?
                    .map(|p| p.name.as_str().to_owned());
                named(name, "product", id.as_str())
            }
        })
    }

    pub async fn sign_out(&self, id: &str) -> ApiResult<()> {
        Ok(self.store.delete_session(&digest(id)).await?)
    }
}
