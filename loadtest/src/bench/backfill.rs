//! Scenario 5, catching up: a product activated on the big account (every customer of the
//! bulk import, in the database the list scenario filled) receives each of them as a
//! `customer.snapshot`. Snapshots/s and machine CPU per snapshot against the same signed
//! bodies posted straight; then the live-delivery latency to that product during a
//! backfill (a resync) against the same latency without one.

use super::fan_out::{post_straight, receipt_latencies, wait_for_receipts};
use super::load::steady_creates;
use super::report::Report;
use super::tenants::{api, Tenant};
use super::{sink, ADMIN_KEY};
use crate::measure::{
    machine_cpu_seconds, peak_rss_mb, percentile, process_cpu_seconds, reset_peak_rss,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The dispatcher's share of its 64 sends that snapshots may take (`DispatchConfig`):
/// the baseline posts at the same concurrency.
const SNAPSHOT_CONCURRENCY: usize = 16;
/// Live creates per second while a backfill runs, and without one.
const LIVE_RATE: u32 = 50;

pub(super) async fn backfill(
    report: &mut Report,
    pool: &PgPool,
    http: &reqwest::Client,
    big: &Tenant,
) {
    let mut server = super::server(true).await;
    let base = server.base.clone();
    let account = &big.account;
    // Only the new product receives: the big account's receivers leave it.
    for p in &big.receivers {
        let path = format!("/v1/accounts/{account}/products/{p}");
        api(http, &base, "DELETE", &path, ADMIN_KEY, Value::Null).await;
    }
    let customers: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE scope = $1 AND status = 'live'")
            .bind(account)
            .fetch_one(pool)
            .await
            .unwrap();
    let customers = customers as usize;
    let sink = sink().await;
    sink.keep_requests(true);
    let body = json!({"partner_id": big.partner, "name": "late", "webhook_url": sink.url});
    let product = api(http, &base, "POST", "/v1/products", ADMIN_KEY, body).await;
    let product = product["product_id"].as_str().unwrap().to_owned();
    let activation = format!("/v1/accounts/{account}/products/{product}");

    // (a) the backfill alone.
    reset_peak_rss(server.pid());
    let cpu0 = machine_cpu_seconds();
    let (hub0, bench0) = (
        process_cpu_seconds(server.pid()),
        process_cpu_seconds(std::process::id()),
    );
    let started = Instant::now();
    let sync = json!({"sync": "two_way"});
    api(http, &base, "PUT", &activation, ADMIN_KEY, sync).await;
    let done = completed(http, &base, account, &product, Duration::from_secs(900)).await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = machine_cpu_seconds() - cpu0;
    let hub = process_cpu_seconds(server.pid()) - hub0;
    let bench = process_cpu_seconds(std::process::id()) - bench0;
    let rss = peak_rss_mb(server.pid());
    let snapshots = sink
        .receipts()
        .iter()
        .filter(|r| r.kind == "customer.snapshot" && r.accepted())
        .count();
    assert_eq!(snapshots, customers, "one snapshot per customer: {done}");
    assert_eq!(done["sent"], json!(customers), "{done}");
    let bodies: Vec<(String, testkit::Received)> = sink
        .take_received()
        .into_iter()
        .map(|r| (sink.url.clone(), r))
        .collect();
    sink.keep_requests(false);
    sink.clear();
    let (base_rate, base_cpu_ms) = post_straight(bodies, SNAPSHOT_CONCURRENCY).await;
    sink.clear();
    let scenario = format!("5a. backfill of {customers} customers to one product");
    report.add(
        &scenario,
        "snapshots/s (activation → completed)",
        "/s",
        customers as f64 / secs,
        Some(base_rate),
        "–",
        rss,
    );
    let per = |seconds: f64| seconds * 1000.0 / customers as f64;
    report.add(
        &scenario,
        &format!(
            "machine CPU per snapshot (hub {:.3} ms, receiver and load {:.3} ms, the rest: Postgres)",
            per(hub),
            per(bench)
        ),
        "ms",
        per(cpu),
        Some(base_cpu_ms),
        "≤ 10 × baseline",
        rss,
    );

    // (b) live creates to that product while a resync sends every customer again.
    reset_peak_rss(server.pid());
    let resync = format!("{activation}/resync");
    api(http, &base, "POST", &resync, ADMIN_KEY, Value::Null).await;
    let finished = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (http, base, account, product, finished) = (
            http.clone(),
            base.clone(),
            account.clone(),
            product.clone(),
            finished.clone(),
        );
        tokio::spawn(async move {
            completed(&http, &base, &account, &product, Duration::from_secs(900)).await;
            finished.store(true, Ordering::Relaxed);
        })
    };
    let limit = 900 * LIVE_RATE as usize;
    let (during, refused) = steady_creates(
        http,
        &base,
        big,
        "during-backfill",
        LIVE_RATE,
        limit,
        Some(finished),
    )
    .await;
    watcher.await.unwrap();
    let created = during.len();
    wait_for_receipts(
        std::slice::from_ref(&sink),
        customers + created,
        Duration::from_secs(60),
    )
    .await;
    let with = receipt_latencies(
        std::slice::from_ref(&sink),
        &during,
        Some("customer.created"),
    );
    let rss = peak_rss_mb(server.pid());
    sink.clear();

    // (c) the same number of live creates at the same rate, no backfill running.
    let (after, refused_after) =
        steady_creates(http, &base, big, "after-backfill", LIVE_RATE, created, None).await;
    wait_for_receipts(
        std::slice::from_ref(&sink),
        after.len(),
        Duration::from_secs(60),
    )
    .await;
    let without = receipt_latencies(
        std::slice::from_ref(&sink),
        &after,
        Some("customer.created"),
    );
    server.kill().await;
    report.add(
        &format!("5b. live deliveries to that product ({LIVE_RATE} creates/s)"),
        &format!(
            "create 201 → receipt p99 during a backfill ({} creates, {refused} refused; p50 {:.2} ms) vs without ({} creates, {refused_after} refused; p50 {:.2} ms)",
            with.len(),
            percentile(&with, 50.0),
            without.len(),
            percentile(&without, 50.0),
        ),
        "ms (p99)",
        percentile(&with, 99.0),
        Some(percentile(&without, 99.0)),
        "≤ 2 × baseline",
        rss,
    );
}

/// The product's backfill once it completed.
async fn completed(
    http: &reqwest::Client,
    base: &str,
    account: &str,
    product: &str,
    limit: Duration,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let list = api(
            http,
            base,
            "GET",
            &format!("/v1/accounts/{account}/products"),
            ADMIN_KEY,
            Value::Null,
        )
        .await;
        let backfill = list["activations"]
            .as_array()
            .and_then(|all| all.iter().find(|a| a["product_id"] == json!(product)))
            .map(|a| a["backfill"].clone())
            .unwrap_or(Value::Null);
        if backfill["status"] == json!("completed") {
            return backfill;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill did not complete: {backfill}"
        );
        // As a console page would poll: the count of what was sent is a read of its own.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
