//! The load tools behind `scripts/bench` and `scripts/chaos`, as a library their two
//! binaries call: each scenario a module, the measurements they share in [`measure`],
//! the receiver and server launcher from the test kit (the same ones the integration
//! tests use). Traffic stays on loopback; every loop is bounded in time.

pub mod bench;
pub mod chaos;
pub mod measure;

/// A variable the calling script must set.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}
