//! Who may do what (SPEC section 2).
//!
//! Every rule is decided in two steps, always in this order:
//! 1. **kind**: may this kind of key take this action at all? If not: `403`. This step
//!    looks at no resource, so it leaks nothing.
//! 2. **reach**: is the resource within the key's tenant? If not, or if it does not
//!    exist: `404`, so the existence of other tenants' resources is never revealed.

use super::ids::{AccountId, KeyId, PartnerId, ProductId};
use super::tenants::Account;
use super::time::Timestamp;

/// The identity behind an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Partner(PartnerId),
    Account(AccountId),
    Product(ProductId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Admin,
    Partner,
    Account,
    Product,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Partner => "partner",
            Self::Account => "account",
            Self::Product => "product",
        }
    }
}

/// Why an action was refused; mapped to `403` and `404`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The key may see the resource (or the action names none) but not do this.
    Forbidden,
    /// The resource is another tenant's, or does not exist.
    NotFound,
}

/// Who may take an action, by key kind (step 1).
pub struct Allowed(pub &'static [KeyKind]);

pub const ADMIN_ONLY: Allowed = Allowed(&[KeyKind::Admin]);
pub const ADMIN_OR_PARTNER: Allowed = Allowed(&[KeyKind::Admin, KeyKind::Partner]);
pub const ADMIN_PARTNER_OR_PRODUCT: Allowed =
    Allowed(&[KeyKind::Admin, KeyKind::Partner, KeyKind::Product]);
pub const ADMIN_PARTNER_OR_ACCOUNT: Allowed =
    Allowed(&[KeyKind::Admin, KeyKind::Partner, KeyKind::Account]);
pub const ANY_KEY: Allowed = Allowed(&[
    KeyKind::Admin,
    KeyKind::Partner,
    KeyKind::Account,
    KeyKind::Product,
]);

impl Principal {
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Admin => KeyKind::Admin,
            Self::Partner(_) => KeyKind::Partner,
            Self::Account(_) => KeyKind::Account,
            Self::Product(_) => KeyKind::Product,
        }
    }

    /// Step 1: the kind check.
    pub fn require(&self, allowed: Allowed) -> Result<(), Denied> {
        if allowed.0.contains(&self.kind()) {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }

    /// Step 2 for partner-owned things (a partner, its accounts, its products):
    /// the admin reaches all; a partner key reaches only what its partner owns.
    pub fn reaches_partner(&self, owner: Option<&PartnerId>) -> bool {
        match self {
            Self::Admin => true,
            Self::Partner(me) => owner == Some(me),
            _ => false,
        }
    }

    /// Step 2 for an account: the admin, its partner, or its own account key. Product
    /// reach (through activations) needs storage and is checked by the caller.
    pub fn reaches_account(&self, account: &Account) -> bool {
        match self {
            Self::Account(me) => *me == account.account_id,
            _ => self.reaches_partner(Some(&account.partner_id)),
        }
    }
}

/// An API key as stored: its public id and whom it acts for. The secret itself is
/// never stored, only its digest.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub key_id: KeyId,
    pub principal: Principal,
    pub created: Timestamp,
    pub revoked: Option<Timestamp>,
}

/// Who makes a change: the key's principal (what decides access) and the key itself
/// (what records such as the consent history name as the source).
#[derive(Clone, Debug, PartialEq)]
pub struct Actor {
    pub key_id: KeyId,
    pub principal: Principal,
}

impl Actor {
    pub fn of(key: &ApiKey) -> Self {
        Self {
            key_id: key.key_id.clone(),
            principal: key.principal.clone(),
        }
    }
}

/// An actor is checked as its principal.
impl std::ops::Deref for Actor {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_check_comes_first_and_says_forbidden() {
        let account = Principal::Account(AccountId::generate());
        assert_eq!(account.require(ADMIN_OR_PARTNER), Err(Denied::Forbidden));
        assert_eq!(Principal::Admin.require(ADMIN_ONLY), Ok(()));
    }

    #[test]
    fn partner_reach_is_ownership() {
        let mine = PartnerId::generate();
        let other = PartnerId::generate();
        let partner = Principal::Partner(mine.clone());
        assert!(partner.reaches_partner(Some(&mine)));
        assert!(!partner.reaches_partner(Some(&other)));
        assert!(!partner.reaches_partner(None));
        assert!(Principal::Admin.reaches_partner(None));
    }
}
