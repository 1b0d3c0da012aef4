use super::{reachable, time_page, Hub, Page};
use crate::domain::cursor::TimeCursor;
use crate::domain::tenancy::{Principal, ADMIN_OR_PARTNER};
use crate::domain::tenants::{Account, DedupePolicy, DisplayName, Region};
use crate::domain::{time, AccountId, PartnerId};
use crate::error::ApiResult;
use crate::input::{id, text, Fields, FromInput};
use crate::storage::AccountPage;

pub struct NewAccount {
    pub partner_id: PartnerId,
    pub name: DisplayName,
    pub default_region: Region,
    pub dedupe_policy: DedupePolicy,
}

impl FromInput for NewAccount {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let partner_id = f.required("partner_id", id::<PartnerId>);
        let name = f.required("name", text(DisplayName::parse));
        let default_region = f.optional("default_region", text(Region::parse));
        let dedupe_policy = f.optional("dedupe_policy", text(DedupePolicy::parse));
        Some(Self {
            partner_id: partner_id?,
            name: name?,
            default_region: default_region.unwrap_or_default(),
            dedupe_policy: dedupe_policy.unwrap_or_default(),
        })
    }
}

/// Paging through a tenant list: accounts and products (optionally one partner's),
/// partners (`partner_id` unused).
pub struct TenantQuery {
    pub partner_id: Option<PartnerId>,
    pub page_size: i64,
    pub cursor: Option<TimeCursor>,
}

pub type AccountQuery = TenantQuery;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// `page_size`: 1 to 500.
pub fn parse_page_size(raw: &str) -> Result<i64, String> {
    match raw.parse::<i64>() {
        Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {MAX_PAGE_SIZE}")),
    }
}

impl Hub {
    pub async fn create_account(&self, who: &Principal, input: NewAccount) -> ApiResult<Account> {
        who.require(ADMIN_OR_PARTNER)?;
        let partner = self.store.get_partner(&input.partner_id).await?;
        reachable(partner, "partner", |p| {
            who.reaches_partner(Some(&p.partner_id))
        })?;
        let now = time::now();
        let account = Account {
            account_id: AccountId::generate(),
            partner_id: input.partner_id,
            name: input.name,
            default_region: input.default_region,
            dedupe_policy: input.dedupe_policy,
            created: now,
            updated: now,
        };
        self.store.insert_account(&account).await?;
        Ok(account)
    }

    pub async fn get_account(&self, who: &Principal, id: &AccountId) -> ApiResult<Account> {
        who.require(ADMIN_OR_PARTNER)?;
        let account = self.store.get_account(id).await?;
        reachable(account, "account", |a| who.reaches_account(a))
    }

    pub async fn list_accounts(
        &self,
        who: &Principal,
        query: AccountQuery,
    ) -> ApiResult<Page<Account>> {
        who.require(ADMIN_OR_PARTNER)?;
        let partner = self.listed_partner(who, query.partner_id).await?;
        let page = AccountPage {
            partner,
            after: query.cursor.map(|c| (c.at, AccountId::from_string(c.id))),
            limit: query.page_size + 1,
        };
        let rows = self.store.list_accounts(&page).await?;
        Ok(time_page(rows, query.page_size, |a| TimeCursor {
            at: a.created,
            id: a.account_id.to_string(),
        }))
    }

    /// Whose tenants a list shows: the partner named (if `who` reaches it: `404`
    /// otherwise), else a partner key's own; `None` for all (the admin).
    pub(super) async fn listed_partner(
        &self,
        who: &Principal,
        named: Option<PartnerId>,
    ) -> ApiResult<Option<PartnerId>> {
        let partner = match (who, named) {
            (Principal::Partner(me), None) => Some(me.clone()),
            (_, named) => named,
        };
        if let Some(partner_id) = &partner {
            let found = self.store.get_partner(partner_id).await?;
            reachable(found, "partner", |p| {
                who.reaches_partner(Some(&p.partner_id))
            })?;
        }
        Ok(partner)
    }

    /// The account, if `who` may manage its activations and keys (admin or its partner).
    pub(super) async fn managed_account(
        &self,
        who: &Principal,
        id: &AccountId,
    ) -> ApiResult<Account> {
        let account = self.store.get_account(id).await?;
        reachable(account, "account", |a| {
            who.reaches_partner(Some(&a.partner_id))
        })
    }
}
