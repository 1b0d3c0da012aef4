//! How a timestamp is bound as a query parameter on each backend: `timestamptz` on
//! Postgres, fixed-width RFC 3339 text on SQLite (so text order is time order; sqlx's own
//! SQLite encoding varies in width and would sort wrongly).

use crate::domain::time::{to_fixed_text, Timestamp};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Encode, Postgres, Sqlite, Type};

#[derive(Clone, Copy, Debug)]
pub struct DbTime(pub Timestamp);

impl Type<Sqlite> for DbTime {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(to_fixed_text(&self.0), buf)
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Timestamp as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <Timestamp as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}
