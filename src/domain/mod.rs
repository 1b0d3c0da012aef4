//! Domain types and rules of the contract. Pure: no I/O, no HTTP, no SQL.

pub mod credentials;
pub mod cursor;
pub mod ids;
pub mod tenancy;
pub mod tenants;
pub mod time;

pub use ids::{AccountId, KeyId, PartnerId, ProductId};
