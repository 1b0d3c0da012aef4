//! `scripts/bench`: see `loadtest::bench`.
#[tokio::main]
async fn main() {
    loadtest::bench::run().await
}
