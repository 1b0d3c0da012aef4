//! The database outage: Postgres stopped for a few seconds while the servers run.

use super::ADMIN;
use crate::env;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Stops Postgres for a few seconds: requests must get 503 within a second, `/readyz`
/// must say not ready, and everything must recover by itself.
pub(super) async fn postgres_outage(http: &reqwest::Client, ports: [u16; 2]) -> Value {
    let run = |cmd: String| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !run(env("CHAOS_PG_STOP")) {
        return json!({"ok": false, "error": "could not stop postgres"});
    }
    let mut slowest = Duration::ZERO;
    let mut answers = HashMap::new();
    let mut ready_said_no = true;
    for i in 0..10 {
        let port = ports[i % 2];
        let started = Instant::now();
        let r = http
            .get(format!("http://127.0.0.1:{port}/v1/accounts"))
            .bearer_auth(ADMIN)
            .send()
            .await;
        slowest = slowest.max(started.elapsed());
        *answers
            .entry(r.map(|r| r.status().as_u16()).unwrap_or(0))
            .or_insert(0) += 1;
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        ready_said_no &= ready == 503;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let started_ok = run(env("CHAOS_PG_START"));
    let down_503 = answers.get(&503).copied().unwrap_or(0);
    // Recovery, by itself.
    let recover_deadline = Instant::now() + Duration::from_secs(30);
    let mut recovered = None;
    while Instant::now() < recover_deadline {
        let ok = http
            .get(format!("http://127.0.0.1:{}/v1/accounts", ports[0]))
            .bearer_auth(ADMIN)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            recovered = Some(recover_deadline - Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ok = started_ok
        && down_503 == 10
        && slowest < Duration::from_secs(1)
        && ready_said_no
        && recovered.is_some();
    json!({"ok": ok, "requests_503": down_503, "slowest_ms": slowest.as_millis() as u64, "readyz_unready": ready_said_no, "recovered": recovered.is_some()})
}
