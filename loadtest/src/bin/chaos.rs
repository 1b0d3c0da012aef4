//! `scripts/chaos`: see `loadtest::chaos`.
#[tokio::main]
async fn main() {
    std::process::exit(loadtest::chaos::run().await)
}
