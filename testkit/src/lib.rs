//! The test kit: what the integration tests (`tests/api`), the bench and the chaos run
//! (`loadtest/`) share, so each exists once.
//!
//! - [`Receiver`]: a webhook receiver on a real socket that records what it is sent and
//!   answers as it is told;
//! - [`Launch`] / [`ServerProcess`]: the built `customer-list serve` as a child process,
//!   started on a port of its own and ready when it says it listens.

mod receiver;
mod server;

pub use receiver::{Answer, Receipt, Received, Receiver, ReceiverBuilder};
pub use server::{peak_rss_mb, reset_peak_rss, Launch, ServerProcess};
