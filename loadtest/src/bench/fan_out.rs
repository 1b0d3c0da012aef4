//! Scenario 4, fan-out: create-to-receipt latency at a steady 200 creates/s to three receivers,
//! then saturation (deliveries/s, machine CPU per delivery) against the hub's own webhook
//! client posting the same signed bodies straight.

use super::load::{creator, run_n, steady_creates};
use super::report::Report;
use super::tenants::tenant;
use super::{sink, Sizes};
use crate::measure::{machine_cpu_seconds, peak_rss_mb, percentile, reset_peak_rss, sorted};
use customer_list::delivery::client::{AddressGuard, WebhookClient};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::Receiver;

pub(super) async fn fan_out(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
) {
    // Earlier scenarios queued deliveries nobody will take: out of the way.
    sqlx::query("UPDATE deliveries SET status = 'failed' WHERE status = 'pending'")
        .execute(pool)
        .await
        .unwrap();
    // As autovacuum would, before the scenario: the due-deliveries index sheds them.
    sqlx::query("VACUUM ANALYZE deliveries")
        .execute(pool)
        .await
        .unwrap();
    let mut sinks = Vec::new();
    for _ in 0..3 {
        sinks.push(sink().await);
    }
    let urls: Vec<String> = sinks.iter().map(|s| s.url.clone()).collect();
    let mut server = super::server(true).await;
    let t = tenant(http, &server.base, None, &urls).await;
    reset_peak_rss(server.pid());

    // (a) a steady 200 creates/s: time from each 201 to its receipt at each receiver.
    let total = 200 * sizes.steady_secs as usize;
    let (acked, refused) = steady_creates(http, &server.base, &t, "steady", 200, total, None).await;
    let accepted = total - refused;
    if refused > 0 {
        eprintln!("bench: {refused} of {total} steady creates were refused");
    }
    wait_for_receipts(&sinks, accepted * 3, Duration::from_secs(60)).await;
    let latencies = receipt_latencies(&sinks, &acked, None);
    let lat = latencies;
    let steady_rss = peak_rss_mb(server.pid());
    let split = where_the_time_goes(pool, &t.account, &acked).await;
    eprintln!("bench: 4a by the hub's own times: {split}");
    report.add(
        "4a. fan-out latency at 200 creates/s (600 deliveries/s)",
        &format!(
            "create 201 → receipt: p50 {:.2} ms / p99 {:.2} ms ({refused} of {total} refused); {split}",
            percentile(&lat, 50.0),
            percentile(&lat, 99.0)
        ),
        "ms (p99)",
        percentile(&lat, 99.0),
        None,
        "p50 ≤ 2 ms, p99 ≤ 10 ms",
        steady_rss,
    );
    for sink in &sinks {
        sink.clear();
        sink.keep_requests(true);
    }

    // (b) saturation: a burst of creates as fast as they are accepted.
    reset_peak_rss(server.pid());
    let cpu0 = machine_cpu_seconds();
    let started = Instant::now();
    let (_, refused) = run_n(16, sizes.burst, creator(http, &server.base, &t, "burst")).await;
    let deliveries = (sizes.burst - refused) * 3;
    wait_for_receipts(&sinks, deliveries, Duration::from_secs(300)).await;
    let cpu = machine_cpu_seconds() - cpu0;
    let (first, last) = receipt_span(&sinks);
    let rate = deliveries as f64 / last.duration_since(first).as_secs_f64().max(1e-6);
    let burst_rss = peak_rss_mb(server.pid());
    eprintln!(
        "bench: burst of {} creates took {:.1} s to deliver",
        sizes.burst,
        started.elapsed().as_secs_f64()
    );
    server.kill().await;

    // Baseline: the same signed bodies posted straight to the same receivers, 64 at a
    // time (the dispatcher's concurrency).
    let bodies: Vec<(String, testkit::Received)> = sinks
        .iter()
        .flat_map(|sink| {
            let url = sink.url.clone();
            sink.take_received()
                .into_iter()
                .map(move |r| (url.clone(), r))
        })
        .collect();
    for sink in &sinks {
        sink.keep_requests(false);
        sink.clear();
    }
    let (base_rate, base_cpu_ms) = post_straight(bodies, 64).await;
    report.add(
        "4b. fan-out saturation",
        &format!("deliveries/s ({} creates, {refused} refused)", sizes.burst),
        "/s",
        rate,
        Some(base_rate),
        "–",
        burst_rss,
    );
    report.add(
        "4b. fan-out saturation",
        "machine CPU per delivery, the create's share included",
        "ms",
        cpu * 1000.0 / deliveries as f64,
        Some(base_cpu_ms),
        "≤ 15 × baseline (stretch 8 ×)",
        burst_rss,
    );
}

/// Where a steady create's time to receipt goes, by the hub's own clock: from the
/// event's time (taken before its write) to the first attempt's start (the create's
/// write and commit, the dispatcher's wake-up and claim), from the create's `201` at the
/// client to that start (the dispatcher's part alone), and the attempt itself (the POST
/// until the receiver answered): p50 / p99 over the account's first attempts. The
/// client's `201` instants are put on the wall clock the hub's times are on.
async fn where_the_time_goes(
    pool: &PgPool,
    account: &str,
    acked: &HashMap<String, Instant>,
) -> String {
    let rows: Result<Vec<(String, f64, f64, f64)>, _> = sqlx::query_as(
        "SELECT d.customer_id, \
           EXTRACT(EPOCH FROM a.attempted_at)::float8 * 1000, \
           EXTRACT(EPOCH FROM a.attempted_at - d.created)::float8 * 1000, \
           a.latency_ms::float8 \
         FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.delivery_id \
         WHERE d.account_id = $1 AND a.attempt = 1",
    )
    .bind(account)
    .fetch_all(pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return format!("(hub-side times not read: {e})"),
    };
    let (now, wall_now) = (Instant::now(), std::time::SystemTime::now());
    let wall_ms = |at: Instant| {
        let since_epoch = wall_now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (since_epoch - now.duration_since(at)).as_secs_f64() * 1000.0
    };
    let mut after_201 = Vec::new();
    let (mut wait, mut send) = (Vec::new(), Vec::new());
    for (customer, started_ms, since_event_ms, send_ms) in rows {
        wait.push(since_event_ms);
        send.push(send_ms);
        if let Some(at) = acked.get(&customer) {
            after_201.push(started_ms - wall_ms(*at));
        }
    }
    let (wait, send, after_201) = (sorted(wait), sorted(send), sorted(after_201));
    format!(
        "event → send start p50 {:.2} / p99 {:.2} ms, 201 → send start p50 {:.2} / p99 {:.2} ms, send p50 {:.0} / p99 {:.0} ms",
        percentile(&wait, 50.0),
        percentile(&wait, 99.0),
        percentile(&after_201, 50.0),
        percentile(&after_201, 99.0),
        percentile(&send, 50.0),
        percentile(&send, 99.0),
    )
}

/// (c) The dispatchers alone, 1, 2 and 4 servers on one Postgres: what the claim lock
/// lets several dispatchers do together.
pub(super) async fn dispatchers(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
) {
    let mut sinks = Vec::new();
    for _ in 0..3 {
        sinks.push(sink().await);
    }
    let mut one = None;
    for n in [1, 2, 4] {
        let Drain { rate, cpu_ms, busy } = drain_with(n, sizes, pool, http, &sinks).await;
        let one_rate = *one.get_or_insert(rate);
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        report.add(
            &format!("4c. {n} dispatcher(s) draining queued deliveries"),
            &format!(
                "deliveries/s ({} queued, first receipt to last; machine CPU {cpu_ms:.3} ms per delivery, {busy:.2} of {cores} cores busy); baseline: 1 dispatcher",
                sizes.burst * 3
            ),
            "/s",
            rate,
            (n > 1).then_some(one_rate),
            if n == 2 { "≥ 1.6 × one" } else { "–" },
            None,
        );
    }
}

/// `burst` creates queued by a server without its dispatcher, then sent by `n` servers
/// with theirs: deliveries/s from the first receipt to the last, and the whole machine's
/// CPU per delivery over the drain.
async fn drain_with(
    n: usize,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
    sinks: &[Receiver],
) -> Drain {
    for sink in sinks {
        sink.clear();
    }
    let urls: Vec<String> = sinks.iter().map(|s| s.url.clone()).collect();
    let mut writer = super::server(false).await;
    let t = tenant(http, &writer.base, None, &urls).await;
    let (_, refused) = run_n(16, sizes.burst, creator(http, &writer.base, &t, "drain")).await;
    writer.kill().await;
    let deliveries = (sizes.burst - refused) * 3;
    // Checkpointed and analysed, as between bursts in production: the drain's figure is
    // the dispatchers', not the creates' leftover writes.
    sqlx::query("VACUUM ANALYZE deliveries")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(super::server(true).await);
    }
    // From the first receipt: the servers' start-up is not the drain's.
    wait_for_receipts(sinks, 1, Duration::from_secs(60)).await;
    let (cpu0, started) = (machine_cpu_seconds(), Instant::now());
    let before: usize = sinks.iter().map(Receiver::receipt_count).sum();
    wait_for_receipts(sinks, deliveries, Duration::from_secs(300)).await;
    let cpu = machine_cpu_seconds() - cpu0;
    let busy = cpu / started.elapsed().as_secs_f64().max(1e-6);
    let (first, last) = receipt_span(sinks);
    for server in &mut servers {
        server.kill().await;
    }
    let rate = deliveries as f64 / last.duration_since(first).as_secs_f64().max(1e-6);
    eprintln!("bench: {n} dispatcher(s): {rate:.0} deliveries/s, the machine {busy:.2} cores busy");
    Drain {
        rate,
        cpu_ms: cpu * 1000.0 / (deliveries - before).max(1) as f64,
        busy,
    }
}

/// What a drain of queued deliveries measured.
struct Drain {
    /// Deliveries per second, first receipt to last.
    rate: f64,
    /// The whole machine's busy CPU per delivery, in ms.
    cpu_ms: f64,
    /// The whole machine's busy CPU over the drain, in cores.
    busy: f64,
}

pub(super) async fn wait_for_receipts(sinks: &[Receiver], want: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got: usize = sinks.iter().map(Receiver::receipt_count).sum();
        if got >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {want} deliveries arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// When the first and the last receipt arrived, over every receiver.
fn receipt_span(sinks: &[Receiver]) -> (Instant, Instant) {
    let all: Vec<Instant> = sinks
        .iter()
        .flat_map(|s| s.receipts().into_iter().map(|r| r.at))
        .collect();
    (*all.iter().min().unwrap(), *all.iter().max().unwrap())
}

/// The baseline of a delivery: the hub's own webhook client posting `bodies` (each to its
/// receiver's URL, with the signed headers the hub sent) straight, `concurrency` at a
/// time. Returns the requests/s and the machine CPU per request in ms.
pub(super) async fn post_straight(
    bodies: Vec<(String, testkit::Received)>,
    concurrency: usize,
) -> (f64, f64) {
    let client = Arc::new(
        WebhookClient::new(
            Duration::from_secs(15),
            AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        )
        .unwrap(),
    );
    let n = bodies.len();
    let bodies = Arc::new(bodies);
    let cpu0 = machine_cpu_seconds();
    let started = Instant::now();
    let (_, failed) = run_n(concurrency, n, move |i| {
        let (client, bodies) = (client.clone(), bodies.clone());
        async move {
            let (url, received) = &bodies[i];
            let (headers, body) = (&received.headers, &received.body);
            let mut send = reqwest::header::HeaderMap::new();
            for name in [
                "content-type",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
            ] {
                if let Some(v) = headers.get(name) {
                    send.insert(name, v.clone());
                }
            }
            matches!(client.post(url, send, body.to_vec()).await, Ok(a) if a.status == 200)
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = machine_cpu_seconds() - cpu0;
    ((n - failed) as f64 / secs, cpu * 1000.0 / n.max(1) as f64)
}

/// Milliseconds from each create's `201` (`acked`, by customer id) to its receipt at each
/// receiver (of events of `kind` only, when given), sorted.
pub(super) fn receipt_latencies(
    sinks: &[Receiver],
    acked: &HashMap<String, Instant>,
    kind: Option<&str>,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    for sink in sinks {
        for receipt in sink.receipts() {
            if kind.is_some_and(|k| receipt.kind != k) {
                continue;
            }
            if let Some(sent) = acked.get(&receipt.contact_id) {
                latencies.push(receipt.at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
            }
        }
    }
    sorted(latencies)
}
