//! Background jobs other than deliveries (those are `delivery`): each leased in the
//! database, so that any server may run it and a dead server's job is taken over.

pub mod imports;
