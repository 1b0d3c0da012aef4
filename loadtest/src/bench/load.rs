//! Load generators: a fixed number of operations, or as many as fit before a deadline,
//! on a number of concurrent tasks, timing each.

use super::tenants::{customer, Tenant};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An operation creating customer `i` (emails tagged `tag`) as the tenant's writer:
/// true on `201`.
pub(super) fn creator(
    http: &reqwest::Client,
    base: &str,
    t: &Tenant,
    tag: &'static str,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Clone
       + Send
       + 'static {
    let (client, url, key, account) = (
        http.clone(),
        format!("{base}/v1/customers"),
        t.writer_key.clone(),
        t.account.clone(),
    );
    move |i| {
        let request = client
            .post(&url)
            .bearer_auth(&key)
            .json(&customer(&account, tag, i));
        Box::pin(async move { matches!(request.send().await, Ok(r) if r.status() == 201) })
    }
}

/// Runs `op(i)` for i in 0..n on `concurrency` tasks; returns the latencies in ms of the
/// requests that succeeded, and how many failed.
pub(super) async fn run_n<F, Fut>(concurrency: usize, n: usize, op: F) -> (Vec<f64>, usize)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    run_until(
        concurrency,
        n,
        Instant::now() + Duration::from_secs(3600),
        op,
    )
    .await
}

/// `run_n`, stopping early at `deadline`.
pub(super) async fn run_until<F, Fut>(
    concurrency: usize,
    n: usize,
    deadline: Instant,
    op: F,
) -> (Vec<f64>, usize)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                if op(i).await {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    failed += 1;
                }
            }
            (lat, failed)
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        lat.extend(l);
        failed += f;
    }
    if failed > 0 {
        eprintln!("bench: {failed} of {n} requests failed");
    }
    (lat, failed)
}

/// Creates customers as the tenant's writer at a steady `per_second`, `n` of them or until
/// `stop` is set; returns when each created customer's `201` arrived (by customer id) and
/// how many creates were refused.
pub(super) async fn steady_creates(
    http: &reqwest::Client,
    base: &str,
    t: &Tenant,
    tag: &'static str,
    per_second: u32,
    n: usize,
    stop: Option<Arc<AtomicBool>>,
) -> (HashMap<String, Instant>, usize) {
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut tasks = Vec::new();
    for i in 0..n {
        tick.tick().await;
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let request = http
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&t.writer_key)
            .json(&customer(&t.account, tag, i));
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(r) = request.send().await else {
                return false;
            };
            let at = Instant::now();
            if r.status() != 201 {
                return false;
            }
            let Ok(body) = r.json::<Value>().await else {
                return false;
            };
            let id = body["customer_id"].as_str().unwrap_or_default().to_owned();
            acked.lock().unwrap().insert(id, at);
            true
        }));
    }
    let mut refused = 0;
    for task in tasks {
        if !task.await.unwrap() {
            refused += 1;
        }
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (acked, refused)
}
