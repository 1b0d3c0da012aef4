//! Configuration: every setting is an environment variable with a matching `--flag`
//! (SPEC section 8).

use clap::{Args, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://customer-list.db";

#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Database URL: `sqlite://<file>` (created when missing) or `postgres://...`.
    #[arg(long, env = "CUSTOMER_LIST_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(
        long,
        env = "CUSTOMER_LIST_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,

    /// The bootstrap admin key (at least 32 characters). When unset, a key is generated on
    /// first start and printed once on stderr.
    #[arg(
        long,
        env = "CUSTOMER_LIST_ADMIN_KEY",
        global = true,
        hide_env_values = true
    )]
    pub admin_key: Option<String>,

    /// Log format.
    #[arg(long, env = "CUSTOMER_LIST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// A configuration for the given database with every other setting at its default.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            listen: "127.0.0.1:0".into(),
            admin_key: None,
            log_format: LogFormat::Text,
        }
    }
}

/// Installs the global tracing subscriber: logs to stderr, filtered by `RUST_LOG`
/// (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
