//! Domain types and rules of the contract. Pure: no I/O, no HTTP, no SQL.

pub mod consent;
pub mod credentials;
pub mod cursor;
pub mod customer;
pub mod ids;
pub mod import_file;
pub mod spreadsheet;
pub mod tenancy;
pub mod tenants;
pub mod time;
pub mod wire;

pub use ids::{
    AccountId, BackfillId, CustomerId, DeliveryId, ErasureId, EventId, ImportId, KeyId, ParseId,
    PartnerId, ProductId,
};
