//! The benchmark behind `scripts/bench`: every figure of the hub measured next to a
//! baseline taken in the same run, on the same machine and database.
//!
//! 1. single creates (API, concurrency 16) vs the minimal transaction through pgbench, and
//!    on SQLite vs raw inserts of the same rows ([`creates`]);
//! 2. bulk import through `/v1/customers/batch` vs raw multi-row INSERTs of the same rows
//!    ([`bulk`]);
//! 3. list and search latency on a large database ([`list`]);
//! 4. fan-out latency at a steady rate, and saturation (deliveries/s, machine CPU per
//!    delivery) vs the same HTTP client posting the same signed bodies straight
//!    ([`fan_out`]);
//! 5. catching up: a backfill of the big account to one product (snapshots/s, machine CPU
//!    per snapshot vs the same bodies posted straight; live-delivery p99 to that product
//!    during the backfill vs without) ([`backfill`]);
//! 6. a CSV import through `POST /v1/imports` vs one raw `COPY` of the rows it wrote into
//!    the same tables ([`transfer`]);
//! 7. the CSV export of the big account in the full database vs a raw `COPY ... TO
//!    STDOUT` of the same rows ([`transfer`]);
//! 8. the server's peak resident memory in each.
//!
//! Environment (set by `scripts/bench`): BENCH_BIN (release customer-list binary),
//! BENCH_DATABASE_URL (an empty Postgres database), BENCH_PGBENCH (pgbench path),
//! BENCH_MODE (`quick` or `full`), BENCH_OUT (the JSON file to write).

mod backfill;
mod bulk;
mod creates;
mod fan_out;
mod list;
mod load;
mod report;
mod statements;
mod tenants;
mod transfer;

use crate::env;
use crate::measure::round;
use report::Report;
use serde_json::json;
use std::time::Instant;
use testkit::{Launch, Receiver, ServerProcess};

const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef0123456789";

/// How big each scenario is.
pub(crate) struct Sizes {
    create_secs: u64,
    import: usize,
    accounts: usize,
    total_customers: usize,
    requests: usize,
    steady_secs: u64,
    burst: usize,
}

impl Sizes {
    fn of(mode: &str) -> Self {
        if mode == "full" {
            Self {
                create_secs: 30,
                import: 100_000,
                accounts: 1_000,
                total_customers: 1_000_000,
                requests: 400,
                steady_secs: 10,
                burst: 5_000,
            }
        } else {
            Self {
                create_secs: 6,
                import: 10_000,
                accounts: 100,
                total_customers: 100_000,
                requests: 64,
                steady_secs: 3,
                burst: 1_000,
            }
        }
    }
}

/// The release server on the bench database, with or without its dispatcher.
async fn server(dispatcher: bool) -> ServerProcess {
    server_on(&env("BENCH_DATABASE_URL"), dispatcher).await
}

/// The release server on a given database.
async fn server_on(database_url: &str, dispatcher: bool) -> ServerProcess {
    let mut launch = Launch::new(env("BENCH_BIN"))
        .env("CUSTOMER_LIST_DATABASE_URL", database_url)
        .env("CUSTOMER_LIST_ADMIN_KEY", ADMIN_KEY)
        .env("CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8")
        .env("CUSTOMER_LIST_RATE_LIMIT", "1000000")
        .env("RUST_LOG", "error");
    if !dispatcher {
        launch = launch.arg("--no-dispatcher");
    }
    launch.start().await
}

/// A receiver as light as can be: 200 to everything, receipts only (bodies kept raw
/// when asked, for the baseline to replay).
async fn sink() -> Receiver {
    Receiver::builder()
        .keep_requests(false)
        .parse_json(false)
        .start()
        .await
}

pub async fn run() {
    let mode = std::env::var("BENCH_MODE").unwrap_or_else(|_| "quick".into());
    let sizes = Sizes::of(&mode);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&env("BENCH_DATABASE_URL"))
        .await
        .expect("connect to the bench database");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    // Receivers for the products of scenarios 1–3 (their deliveries stay queued: those
    // servers run without the dispatcher).
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(sink().await.url);
    }
    let mut report = Report::default();
    let started = Instant::now();
    // BENCH_ONLY=import,fan-out runs some scenarios alone, to iterate on one (list, export
    // and backfill need bulk's account).
    let only = std::env::var("BENCH_ONLY").ok();
    let wants = |name: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|n| n == name))
    };
    // First, on the empty database: the import's server runs its worker, so it would
    // also send the deliveries the later scenarios leave queued.
    if wants("import") {
        transfer::csv_import(&mut report, &sizes, &pool, &http).await;
    }
    if wants("creates") {
        creates::single_creates(&mut report, &sizes, &http, &urls).await;
    }
    // Only with a statement log to read (scripts/statements).
    if std::env::var("BENCH_STATEMENT_LOG").is_ok() && wants("statements") {
        statements::statements(&mut report, &http).await;
    }
    if wants("sqlite-creates") {
        creates::sqlite_creates(&mut report, &sizes, &http, &urls).await;
    }
    let big = if wants("bulk") {
        Some(bulk::bulk_import(&mut report, &sizes, &pool, &http, &urls).await)
    } else {
        None
    };
    if let Some(big) = &big {
        if wants("list") {
            list::list_and_search(&mut report, &sizes, &pool, &http, big).await;
        }
        if wants("export") {
            transfer::csv_export(&mut report, &pool, &http, big).await;
        }
    }
    if wants("fan-out") {
        fan_out::fan_out(&mut report, &sizes, &pool, &http).await;
    }
    if wants("dispatchers") {
        fan_out::dispatchers(&mut report, &sizes, &pool, &http).await;
    }
    if let (Some(big), true) = (&big, wants("backfill")) {
        backfill::backfill(&mut report, &pool, &http, big).await;
    }

    let table = report.markdown();
    println!("{table}");
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().lines()
            .find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(str::trim).unwrap_or("?"),
        "memory_gib": std::fs::read_to_string("/proc/meminfo").unwrap_or_default().lines().next()
            .and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()).map(|kb| round(kb / 1048576.0, 1)),
        "postgres": sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(&pool).await.unwrap_or_default(),
    });
    let out = json!({
        "mode": mode,
        "finished": chrono::Utc::now(),
        "seconds": round(started.elapsed().as_secs_f64(), 1),
        "machine": machine,
        "sizes": {"create_seconds": sizes.create_secs, "import": sizes.import, "accounts": sizes.accounts,
                  "customers": sizes.total_customers, "requests_per_query": sizes.requests,
                  "steady_seconds": sizes.steady_secs, "burst": sizes.burst},
        "figures": report.figures,
        "table": table,
    });
    let path = env("BENCH_OUT");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!(
        "bench: wrote {path} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
