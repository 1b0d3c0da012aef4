//! Configuration: every setting is an environment variable with a matching `--flag`
//! (SPEC section 8).

use crate::delivery::schedule::{RetrySchedule, DEFAULT_SCHEDULE};
use crate::delivery::DispatchConfig;
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use std::time::Duration;

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

    /// Non-public address ranges webhooks may reach, comma-separated (e.g. 127.0.0.0/8).
    #[arg(long, env = "CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS", value_delimiter = ',', value_parser = parse_cidr, global = true)]
    pub webhook_allowed_cidrs: Vec<IpNet>,

    /// Seconds to wait before each retry of a failed webhook, comma-separated.
    #[arg(long, env = "CUSTOMER_LIST_WEBHOOK_RETRY_SCHEDULE", default_value = DEFAULT_SCHEDULE, value_parser = RetrySchedule::parse, global = true)]
    pub webhook_retry_schedule: RetrySchedule,

    /// Browser origins allowed to call the API (CORS), comma-separated; empty allows none.
    #[arg(
        long,
        env = "CUSTOMER_LIST_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Requests per second each API key may make (bursts of twice that are absorbed).
    #[arg(long, env = "CUSTOMER_LIST_RATE_LIMIT", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub rate_limit: u32,

    /// Seconds a webhook receiver has to answer.
    #[arg(long, env = "CUSTOMER_LIST_WEBHOOK_TIMEOUT", default_value_t = 15.0, value_parser = parse_timeout, global = true)]
    pub webhook_timeout: f64,
}

/// A CIDR range, or a single address.
fn parse_cidr(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is not a CIDR range such as 127.0.0.0/8"))
}

fn parse_timeout(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 600.0 => Ok(secs),
        _ => Err("must be a number of seconds from 0 to 600".into()),
    }
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
            webhook_allowed_cidrs: Vec::new(),
            webhook_retry_schedule: RetrySchedule::default(),
            webhook_timeout: 15.0,
            cors_origins: Vec::new(),
            rate_limit: 100,
        }
    }

    pub fn dispatch(&self) -> DispatchConfig {
        DispatchConfig {
            schedule: self.webhook_retry_schedule.clone(),
            timeout: Duration::from_secs_f64(self.webhook_timeout),
            allowed_cidrs: self.webhook_allowed_cidrs.clone(),
            ..DispatchConfig::default()
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
