//! The one integration test binary. Every behaviour runs on SQLite and on Postgres
//! (`on_both_backends!`); Postgres comes from `CUSTOMER_LIST_TEST_POSTGRES_URL`, which
//! `scripts/test` sets.

mod contract;
mod support;

mod backfill;
mod cli;
mod console;
mod crash;
mod customers;
mod duplicates;
mod foundation;
mod fuzz_regressions;
mod hostile;
mod imports;
mod isolation;
mod listings;
mod openapi;
mod operations;
mod outage;
mod privacy;
mod restore;
mod storage;
mod tenancy;
mod webhooks;
