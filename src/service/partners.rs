use super::Hub;
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
}
