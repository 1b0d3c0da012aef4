use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = customer_list::cli::Cli::parse();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("customer-list: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
