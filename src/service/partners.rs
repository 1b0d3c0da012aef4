use super::accounts::TenantQuery;
use super::{time_page, Hub, Page};
use crate::domain::cursor::TimeCursor;
use crate::domain::tenancy::{Principal, ADMIN_ONLY};
use crate::domain::tenants::{DisplayName, Partner};
use crate::domain::{time, PartnerId};
use crate::error::ApiResult;
use crate::input::{text, Fields, FromInput};

pub struct NewPartner {
    pub name: DisplayName,
}

impl FromInput for NewPartner {
    fn from_input(f: &mut Fields) -> Option<Self> {
        let name = f.required("name", text(DisplayName::parse));
        Some(Self { name: name? })
    }
}

impl Hub {
    pub async fn create_partner(&self, who: &Principal, input: NewPartner) -> ApiResult<Partner> {
        who.require(ADMIN_ONLY)?;
        let partner = Partner {
            partner_id: PartnerId::generate(),
            name: input.name,
            created: time::now(),
        };
        self.store.insert_partner(&partner).await?;
        Ok(partner)
    }

    /// `GET /v1/partners`: the admin's, in creation order.
    pub async fn list_partners(
        &self,
        who: &Principal,
        query: TenantQuery,
    ) -> ApiResult<Page<Partner>> {
        who.require(ADMIN_ONLY)?;
        let page = crate::storage::PartnerPage {
            partner: None,
            after: query.cursor.map(|c| (c.at, PartnerId::from_string(c.id))),
            limit: query.page_size + 1,
        };
        let rows = self.store.list_partners(&page).await?;
        Ok(time_page(rows, query.page_size, |p| TimeCursor {
            at: p.created,
            id: p.partner_id.to_string(),
        }))
    }
}
