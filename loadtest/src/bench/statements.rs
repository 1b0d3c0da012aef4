//! Statements per create and per delivery (`scripts/statements`): the SQL the server sends
//! to Postgres, counted in the statement log of a cluster run with
//! `log_statement = all`, in three phases on one server with its dispatcher:
//!
//! 1. idle: its timed sweeps, per second;
//! 2. creates one at a time by a one-way product on an account whose three two-way
//!    products have no webhook (they read the feed): nothing is queued, so what the
//!    phase logged less the sweeps is the creates';
//! 3. the same creates, paced one every 50 ms, on an account whose three two-way products
//!    have receivers answering 200: less the sweeps and the creates' own statements, the
//!    rest is the dispatcher's, per delivery.
//!
//! Each phase prints its statements by kind (the first words of each), the profile a
//! reader needs to see what a create or a delivery costs.

use super::fan_out::wait_for_receipts;
use super::load::creator;
use super::report::Report;
use super::sink;
use super::tenants::{tenant, tenant_with};
use crate::env;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

/// Where the log stands now (its length in bytes).
fn mark(log: &str) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// The statements logged since `from`, by their first words.
fn statements_since(log: &str, from: u64) -> BTreeMap<String, usize> {
    let mut file = std::fs::File::open(log).expect("open the statement log");
    file.seek(SeekFrom::Start(from)).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let mut kinds = BTreeMap::new();
    for line in text.lines() {
        // `statement:` for the simple protocol (BEGIN, COMMIT), `execute <name>:` for
        // prepared statements.
        let Some(sql) = line
            .split_once("LOG:  statement: ")
            .map(|(_, s)| s)
            .or_else(|| {
                line.split_once("LOG:  execute ")
                    .and_then(|(_, s)| s.split_once(": "))
                    .map(|(_, s)| s)
            })
        else {
            continue;
        };
        let kind: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
        *kinds.entry(kind.chars().take(70).collect()).or_insert(0) += 1;
    }
    kinds
}

fn total(kinds: &BTreeMap<String, usize>) -> usize {
    kinds.values().sum()
}

fn print(phase: &str, kinds: &BTreeMap<String, usize>) {
    eprintln!("statements: {phase}: {} in all", total(kinds));
    let mut by_count: Vec<_> = kinds.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    for (kind, n) in by_count {
        eprintln!("statements:   {n:>6}  {kind}");
    }
}

pub(super) async fn statements(report: &mut Report, http: &reqwest::Client) {
    let log = env("BENCH_STATEMENT_LOG");
    let creates: usize = std::env::var("BENCH_STATEMENT_CREATES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let mut sinks = Vec::new();
    for _ in 0..3 {
        sinks.push(sink().await);
    }
    let urls: Vec<String> = sinks.iter().map(|s| s.url.clone()).collect();
    let mut server = super::server(true).await;
    let readers = tenant_with(http, &server.base, None, &[None, None, None]).await;
    let senders = tenant(http, &server.base, Some(&readers.partner), &urls).await;
    // What setting up woke settles first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let idle_secs = 10.0;
    let from = mark(&log);
    tokio::time::sleep(Duration::from_secs_f64(idle_secs)).await;
    let idle = statements_since(&log, from);
    print("idle, 10 s", &idle);
    let per_second = total(&idle) as f64 / idle_secs;

    let feed_create = creator(http, &server.base, &readers, "statements-feed");
    let webhook_create = creator(http, &server.base, &senders, "statements-webhook");
    let from = mark(&log);
    let started = Instant::now();
    for i in 0..creates {
        assert!(feed_create(i).await, "create {i}");
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let phase = statements_since(&log, from);
    print(&format!("{creates} creates, nothing queued"), &phase);
    let sweeps = per_second * (secs + 0.5);
    let per_create = (total(&phase) as f64 - sweeps) / creates as f64;

    let from = mark(&log);
    let started = Instant::now();
    for i in 0..creates {
        assert!(webhook_create(i).await, "create {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_receipts(&sinks, creates * 3, Duration::from_secs(60)).await;
    // The last attempts are recorded after their receipt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let secs = started.elapsed().as_secs_f64();
    let phase = statements_since(&log, from);
    print(&format!("{creates} creates, 3 deliveries each"), &phase);
    let deliveries = (creates * 3) as f64;
    let per_delivery =
        (total(&phase) as f64 - per_second * secs - per_create * creates as f64) / deliveries;
    server.kill().await;
    eprintln!(
        "statements: {per_second:.2} per idle second, {per_create:.2} per create, {per_delivery:.2} per delivery"
    );
    report.add(
        "statements per create",
        "SQL statements the server sends per create (nothing queued), idle sweeps taken out",
        "",
        per_create,
        None,
        "≤ 3",
        None,
    );
    report.add(
        "statements per delivery",
        "SQL statements per delivery (creates 50 ms apart to 3 receivers), the creates' own and the sweeps taken out",
        "",
        per_delivery,
        None,
        "–",
        None,
    );
}
