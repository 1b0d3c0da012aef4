//! The chaos run behind `scripts/chaos`: two servers on one Postgres; three products
//! creating, updating, associating and deleting customers concurrently; receivers that
//! fail about 30% of deliveries and sometimes hang past the timeout; servers SIGKILLed
//! and restarted; Postgres stopped once. Then it checks what the contract promises and
//! prints a one-line verdict. Traffic stays on loopback; every loop is bounded in time.
//!
//! Environment: CHAOS_DATABASE_URL, CHAOS_PG_STOP and CHAOS_PG_START (shell commands),
//! CHAOS_SECONDS (how long the writers run), CHAOS_BIN (the customer-list binary).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Router;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

const PRODUCTS: [&str; 3] = ["p1", "p2", "p3"];
/// p3 is activated one-way: it writes, and must receive nothing.
const ONE_WAY: &str = "p3";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}

/// The hub's webhook timeout in this run (seconds).
const WEBHOOK_TIMEOUT: i64 = 2;

/// One accepted webhook: (contact_id, version, type, origin, when the receiver took it).
type Accepted = (String, i64, String, Option<String>, DateTime<Utc>);

/// A receiver that fails ~30% of deliveries (500), hangs past the timeout ~5% of the
/// time, and records what it accepted.
#[derive(Default)]
struct Sink {
    accepted: Mutex<Vec<Accepted>>,
}

async fn receive(State(sink): State<Arc<Sink>>, body: Bytes) -> StatusCode {
    let roll: f64 = rand::random();
    if roll < 0.05 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        return StatusCode::OK; // too late: the hub gave up after 2 s and will retry
    }
    if roll < 0.30 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let data = &event["data"];
    sink.accepted.lock().unwrap().push((
        data["contact_id"].as_str().unwrap_or_default().to_owned(),
        data["version"].as_i64().unwrap_or_default(),
        event["type"].as_str().unwrap_or_default().to_owned(),
        data["origin"].as_str().map(str::to_owned),
        Utc::now(),
    ));
    StatusCode::OK
}

async fn start_sink() -> (String, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let app = Router::new().fallback(receive).with_state(sink.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, sink)
}

struct Server {
    child: Child,
    port: u16,
}

async fn start_server(port: u16) -> Server {
    let mut child = Command::new(env("CHAOS_BIN"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CUSTOMER_LIST_DATABASE_URL", env("CHAOS_DATABASE_URL"))
        .env("CUSTOMER_LIST_ADMIN_KEY", ADMIN)
        .env("CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8")
        .env("CUSTOMER_LIST_WEBHOOK_TIMEOUT", WEBHOOK_TIMEOUT.to_string())
        .env(
            "CUSTOMER_LIST_WEBHOOK_RETRY_SCHEDULE",
            "0.2,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
        )
        .env("CUSTOMER_LIST_RATE_LIMIT", "100000")
        .env("RUST_LOG", "error")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start customer-list");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening on") {
                return;
            }
        }
    })
    .await
    .expect("server starts");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, port }
}

const ADMIN: &str = "chaos-admin-key-0123456789abcdefghijklmnopqrstuvwxyz";

/// What a product knows it wrote and the hub acknowledged.
#[derive(Default)]
struct Ledger {
    /// customer → newest acknowledged version written by anyone, and by whom.
    acked: HashMap<String, (i64, String)>,
    deleted: HashSet<String>,
    /// Customers a delete was sent for without an answer (the server was killed, say):
    /// it may or may not have happened.
    maybe_deleted: HashSet<String>,
    writes: u64,
    /// Writes that got no answer: their outcome is unknown.
    unanswered: u64,
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let ports = [free_port().await, free_port().await];
    let servers: Arc<tokio::sync::Mutex<Vec<Server>>> = Arc::new(tokio::sync::Mutex::new(vec![
        start_server(ports[0]).await,
        start_server(ports[1]).await,
    ]));
    let base = |port: u16| format!("http://127.0.0.1:{port}");

    // Tenancy: one account, three products with receivers.
    let admin_post = |path: String, body: Value| {
        let http = http.clone();
        async move {
            http.post(format!("{}{}", base(ports[0]), path))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let partner = admin_post("/v1/partners".into(), json!({"name": "chaos"})).await["partner_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = admin_post(
        "/v1/accounts".into(),
        json!({"partner_id": partner, "name": "chaos"}),
    )
    .await["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut products = HashMap::new();
    let mut sinks = HashMap::new();
    for name in PRODUCTS {
        let (url, sink) = start_sink().await;
        let p = admin_post(
            "/v1/products".into(),
            json!({"name": name, "webhook_url": url}),
        )
        .await;
        let id = p["product_id"].as_str().unwrap().to_owned();
        let sync = if name == ONE_WAY {
            "one_way"
        } else {
            "two_way"
        };
        http.put(format!(
            "{}/v1/accounts/{account}/products/{id}",
            base(ports[0])
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"sync": sync}))
        .send()
        .await
        .unwrap();
        products.insert(name, (id, p["api_key"].as_str().unwrap().to_owned()));
        sinks.insert(name, sink);
    }

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let known: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(seconds);

    // Writers: one per product, each a bounded loop of random writes against either server.
    let mut writers = Vec::new();
    for name in PRODUCTS {
        let (product_id, key) = products[name].clone();
        let (http, ledger, known, account) =
            (http.clone(), ledger.clone(), known.clone(), account.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let port = ports[rand::thread_rng().gen_range(0..2)];
                let url = format!("http://127.0.0.1:{port}");
                let target = {
                    let k = known.lock().unwrap();
                    (!k.is_empty()).then(|| k[rand::thread_rng().gen_range(0..k.len())].clone())
                };
                let roll: f64 = rand::random();
                let deleting = target.is_some() && roll >= 0.95;
                let result = if roll < 0.4 || target.is_none() {
                    http.post(format!("{url}/v1/customers")).bearer_auth(&key)
                        .json(&json!({"account_id": account, "id": format!("{name}-{n}"), "first_name": format!("N{n}"),
                            "email": format!("{name}-{n}@example.com")}))
                        .send().await
                } else if roll < 0.85 {
                    http.patch(format!("{url}/v1/customers/{}", target.clone().unwrap())).bearer_auth(&key)
                        .json(&json!({"last_name": format!("L{n}"), "tags": [format!("t{}", n % 7)]})).send().await
                } else if !deleting {
                    http.put(format!("{url}/v1/customers/{}/vendor-id", target.clone().unwrap())).bearer_auth(&key)
                        .json(&json!({"vendor_customer_id": format!("{name}-a{n}")})).send().await
                } else {
                    http.delete(format!("{url}/v1/customers/{}", target.clone().unwrap())).bearer_auth(&key).send().await
                };
                let Ok(response) = result else {
                    let mut l = ledger.lock().unwrap();
                    l.unanswered += 1;
                    if let Some(id) = target.filter(|_| deleting) {
                        l.maybe_deleted.insert(id);
                    }
                    continue;
                };
                let status = response.status();
                if !status.is_success() {
                    continue;
                }
                let body: Value = if status == StatusCode::NO_CONTENT { Value::Null } else { response.json().await.unwrap_or(Value::Null) };
                let mut l = ledger.lock().unwrap();
                l.writes += 1;
                if status == StatusCode::NO_CONTENT {
                    let id = target.unwrap();
                    l.deleted.insert(id.clone());
                    known.lock().unwrap().retain(|k| *k != id);
                } else if let (Some(id), Some(version)) = (body["customer_id"].as_str(), body["version"].as_i64()) {
                    let entry = l.acked.entry(id.to_owned()).or_insert((0, String::new()));
                    if version > entry.0 {
                        *entry = (version, product_id.clone());
                    }
                    if status == StatusCode::CREATED {
                        known.lock().unwrap().push(id.to_owned());
                    }
                }
            }
        }));
    }

    // Chaos: kill and restart servers, and stop Postgres once, while the writers run.
    let mut kills = 0;
    let mut outage = json!(null);
    let interval = Duration::from_secs_f64((seconds as f64 / 9.0).max(2.0));
    let mut next_kill = Instant::now() + interval;
    let mut pg_done = false;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !pg_done && Instant::now() > deadline - Duration::from_secs(seconds / 2) {
            pg_done = true;
            outage = postgres_outage(&http, ports).await;
        }
        if Instant::now() >= next_kill {
            next_kill = Instant::now() + interval;
            let victim = rand::thread_rng().gen_range(0..2);
            let mut s = servers.lock().await;
            let pid = s[victim].child.id().unwrap().to_string();
            std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap();
            let _ = s[victim].child.wait().await;
            kills += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let port = s[victim].port;
            s[victim] = start_server(port).await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }

    // Let deliveries drain: the hub has nothing pending, twice in a row.
    let drain_until = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    let mut last_pending = f64::NAN;
    let mut failures = Vec::new();
    while Instant::now() < drain_until && quiet < 2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let metrics = http
            .get(format!("{}/metrics", base(ports[0])))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let pending: f64 = metrics
            .lines()
            .find(|l| l.starts_with("customer_list_deliveries_pending"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(1.0);
        quiet = if pending == 0.0 { quiet + 1 } else { 0 };
        last_pending = pending;
    }
    if quiet < 2 {
        failures.push(format!(
            "deliveries did not drain in 120 s: {last_pending} pending"
        ));
    }

    // Verify.
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    let mut verified = 0;
    let mut hub = HashMap::new();
    for (id, (version, _)) in &ledger.acked {
        let r = http
            .get(format!("{}/v1/customers/{id}", base(ports[1])))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        if ledger.deleted.contains(id) {
            if r.status() != StatusCode::NOT_FOUND {
                failures.push(format!("deleted {id} answers {}", r.status()));
            }
            verified += 1;
            continue;
        }
        if r.status() == StatusCode::NOT_FOUND && ledger.maybe_deleted.contains(id) {
            verified += 1; // deleted by a request whose answer was lost
            continue;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match body["version"].as_i64() {
            Some(v) if v >= *version => {
                verified += 1;
                hub.insert(id.clone(), v);
            }
            other => failures.push(format!("acknowledged {id} v{version}, hub has {other:?}")),
        }
    }
    // Who caused each version, as the receivers were told: a write whose answer was lost
    // is still known to the other receivers by its `origin`.
    let mut origin_of: HashMap<(String, i64), String> = HashMap::new();
    for sink in sinks.values() {
        for (contact, version, _, origin, _) in sink.accepted.lock().unwrap().iter() {
            if let Some(origin) = origin {
                origin_of.insert((contact.clone(), *version), origin.clone());
            }
        }
    }
    let mut delivered = 0;
    // Older versions a receiver took late from requests the hub had already given up on.
    let mut processed_late = 0;
    for name in PRODUCTS {
        let (product_id, _) = &products[name];
        let accepted = sinks[name].accepted.lock().unwrap().clone();
        delivered += accepted.len();
        if name == ONE_WAY {
            if !accepted.is_empty() {
                failures.push(format!("one-way {name} received {} events", accepted.len()));
            }
            continue;
        }
        let mut view: HashMap<&str, i64> = HashMap::new();
        for (contact, version, _, origin, received) in &accepted {
            if origin.as_deref() == Some(product_id.as_str()) {
                failures.push(format!("{name} received its own change to {contact}"));
            }
            let seen = view.entry(contact.as_str()).or_insert(0);
            if *version < *seen {
                let late = abandoned_attempt(
                    &http,
                    &base(ports[1]),
                    product_id,
                    contact,
                    *version,
                    *received,
                )
                .await;
                match late {
                    Ok(attempt) => {
                        eprintln!("  note: {name} took {contact} v{version} after v{seen} at {received}, from an attempt the hub had abandoned: {attempt}");
                        processed_late += 1;
                    }
                    Err(log) => failures.push(format!("{name} saw {contact} v{version} after v{seen} at {received}; hub log: {log}")),
                }
            }
            *seen = (*seen).max(*version);
        }
        for (id, newest) in &hub {
            // The receiver's view: what it was sent, or what it wrote itself last.
            let own = ledger
                .acked
                .get(id)
                .filter(|(_, by)| by == product_id)
                .map(|(v, _)| *v)
                .unwrap_or(0);
            let caused = origin_of
                .get(&(id.clone(), *newest))
                .filter(|origin| *origin == product_id)
                .map(|_| *newest)
                .unwrap_or(0);
            let seen = view
                .get(id.as_str())
                .copied()
                .unwrap_or(0)
                .max(own)
                .max(caused);
            if seen != *newest {
                let log = delivery_log(&http, &base(ports[1]), product_id, id)
                    .await
                    .map(|log| log["deliveries"].to_string())
                    .unwrap_or_else(|e| e);
                failures.push(format!(
                    "{name}'s view of {id} is v{seen}, hub has v{newest}; hub log: {log}"
                ));
            }
        }
    }
    for s in servers.lock().await.iter_mut() {
        let _ = s.child.kill().await;
    }
    let outage_ok = outage["ok"].as_bool().unwrap_or(false);
    if !outage_ok {
        failures.push(format!("database outage: {outage}"));
    }
    if kills < 5 {
        failures.push(format!("only {kills} kills"));
    }
    let verdict = if failures.is_empty() { "PASS" } else { "FAIL" };
    println!(
        "chaos: {verdict} seconds={seconds} writes_acknowledged={} writes_unanswered={} customers_verified={verified} events_delivered={delivered} kills_survived={kills} abandoned_requests_processed_late={processed_late} outage={outage}",
        ledger.writes,
        ledger.unanswered
    );
    for f in failures.iter().take(20) {
        eprintln!("  {f}");
    }
    std::process::exit(if failures.is_empty() { 0 } else { 1 });
}

/// Whether a receiver that took `version` of `customer` at `received` (after a newer
/// version) took it from a request the hub had given up on, with the hub itself in
/// order. By the hub's own delivery log: an attempt of that version got no answer and
/// started at least the timeout before `received`, and every attempt of that version
/// started before the first attempt of any newer one. Such a request can still reach a
/// receiver slowed past the timeout after the hub moved on; nothing the hub does can
/// order it. Ok carries the abandoned attempt; Err the log, for the report.
async fn abandoned_attempt(
    http: &reqwest::Client,
    base: &str,
    product_id: &str,
    customer: &str,
    version: i64,
    received: DateTime<Utc>,
) -> Result<String, String> {
    let log = delivery_log(http, base, product_id, customer).await?;
    // (version, attempt) for every attempt the hub recorded for this pair.
    let attempts: Vec<(i64, &Value)> = log["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| {
            let v = d["version"].as_i64().unwrap_or_default();
            d["attempt_log"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |a| (v, a))
        })
        .collect();
    let started = |a: &Value| {
        a["attempted_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let last_of_version = attempts
        .iter()
        .filter(|(v, _)| *v == version)
        .filter_map(|(_, a)| started(a))
        .max();
    let first_of_newer = attempts
        .iter()
        .filter(|(v, _)| *v > version)
        .filter_map(|(_, a)| started(a))
        .min();
    let hub_in_order = match (last_of_version, first_of_newer) {
        (Some(old), Some(new)) => old < new,
        _ => true,
    };
    let abandoned = attempts.iter().find(|(v, a)| {
        *v == version
            && a["response_code"].is_null()
            && started(a)
                .is_some_and(|t| received - t >= chrono::Duration::seconds(WEBHOOK_TIMEOUT))
    });
    match abandoned {
        Some((_, a)) if hub_in_order => Ok(a.to_string()),
        _ => Err(log["deliveries"].to_string()),
    }
}

/// The hub's delivery log of one (product, customer), newest first.
async fn delivery_log(
    http: &reqwest::Client,
    base: &str,
    product_id: &str,
    customer: &str,
) -> Result<Value, String> {
    http.get(format!("{base}/v1/products/{product_id}/deliveries"))
        .query(&[("customer_id", customer), ("page_size", "500")])
        .bearer_auth(ADMIN)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops Postgres for a few seconds: requests must get 503 within a second, `/readyz`
/// must say not ready, and everything must recover by itself.
async fn postgres_outage(http: &reqwest::Client, ports: [u16; 2]) -> Value {
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
