//! The benchmark behind `scripts/bench`: every figure of the hub measured next to a
//! baseline taken in the same run, on the same machine and database.
//!
//! 1. single creates (API, concurrency 16) vs the same SQL statements through pgbench;
//! 2. bulk import through `/v1/customers/batch` vs raw multi-row INSERTs of the same rows;
//! 3. list and search latency on a large database;
//! 4. fan-out latency at a steady rate, and saturation (deliveries/s, machine CPU per
//!    delivery) vs the same HTTP client posting the same signed bodies straight;
//! 5. the server's peak resident memory in each.
//!
//! Environment (set by `scripts/bench`): BENCH_BIN (release customer-list binary),
//! BENCH_DATABASE_URL (an empty Postgres database), BENCH_PGBENCH (pgbench path),
//! BENCH_MODE (`quick` or `full`), BENCH_OUT (the JSON file to write).
//! Traffic stays on loopback; every loop is bounded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use customer_list::delivery::client::{AddressGuard, WebhookClient};
use customer_list::domain::cursor::KeyCursor;
use serde_json::{json, Value};
use sqlx::{PgPool, QueryBuilder, Row};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef0123456789";
const SURNAMES: usize = 500;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}

/// How big each scenario is.
struct Sizes {
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

/// One line of the result table.
#[derive(serde::Serialize)]
struct Figure {
    scenario: String,
    figure: String,
    unit: String,
    hub: f64,
    baseline: Option<f64>,
    ratio: Option<f64>,
    target: String,
    peak_rss_mb: Option<f64>,
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        scenario: &str,
        figure: &str,
        unit: &str,
        hub: f64,
        baseline: Option<f64>,
        target: &str,
        rss: Option<f64>,
    ) {
        let ratio = baseline.filter(|b| *b > 0.0).map(|b| round(hub / b, 3));
        eprintln!("bench: {scenario} / {figure}: {hub:.3} {unit} (baseline {baseline:?})");
        self.figures.push(Figure {
            scenario: scenario.into(),
            figure: figure.into(),
            unit: unit.into(),
            hub: round(hub, 3),
            baseline: baseline.map(|b| round(b, 3)),
            ratio,
            target: target.into(),
            peak_rss_mb: rss.map(|r| round(r, 1)),
        });
    }

    fn markdown(&self) -> String {
        let mut out = String::from(
            "| Scenario | Figure | Hub | Baseline | Ratio | Target | Server peak RSS |\n|---|---|---:|---:|---:|---|---:|\n",
        );
        for f in &self.figures {
            let baseline = f.baseline.map(|b| format!("{b}")).unwrap_or("–".into());
            let ratio = f.ratio.map(|r| format!("{r}")).unwrap_or("–".into());
            let rss = f
                .peak_rss_mb
                .map(|r| format!("{r} MB"))
                .unwrap_or("–".into());
            out.push_str(&format!(
                "| {} | {} | {} {} | {} | {} | {} | {} |\n",
                f.scenario, f.figure, f.hub, f.unit, baseline, ratio, f.target, rss
            ));
        }
        out
    }
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

// ---------------------------------------------------------------- the server process

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(dispatcher: bool) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut args = vec!["serve"];
        if !dispatcher {
            args.push("--no-dispatcher");
        }
        let child = Command::new(env("BENCH_BIN"))
            .args(&args)
            .env("CUSTOMER_LIST_DATABASE_URL", env("BENCH_DATABASE_URL"))
            .env("CUSTOMER_LIST_LISTEN", format!("127.0.0.1:{port}"))
            .env("CUSTOMER_LIST_ADMIN_KEY", ADMIN_KEY)
            .env("CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8")
            .env("CUSTOMER_LIST_RATE_LIMIT", "1000000")
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return Self { child, base };
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Resets the kernel's peak-RSS mark (VmHWM) so the next reading covers one scenario.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }

    /// CPU time (user + system) the server process has used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the parenthesized command name; utime and stime are 14th and 15th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse().ok())
            .collect();
        fields.iter().sum::<f64>() / 100.0
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Busy CPU time of the whole machine so far (every process), from /proc/stat.
fn machine_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 8 && *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy / 100.0 // USER_HZ
}

// ---------------------------------------------------------------- receivers

#[derive(Default)]
struct Sink {
    receipts: Mutex<Vec<(String, Instant)>>,
    kept: Mutex<Vec<(HeaderMap, Bytes)>>,
    keep: std::sync::atomic::AtomicBool,
    count: AtomicU64,
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    sink.count.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = contact_id(&body) {
        sink.receipts.lock().unwrap().push((id, at));
    }
    if sink.keep.load(Ordering::Relaxed) {
        sink.kept.lock().unwrap().push((headers, body));
    }
    StatusCode::OK
}

/// `data.contact_id` without parsing the whole body into a tree.
fn contact_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        contact_id: String,
    }
    serde_json::from_slice::<Event>(body)
        .ok()
        .map(|e| e.data.contact_id)
}

async fn start_sink() -> (String, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let app = Router::new().fallback(receive).with_state(sink.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, sink)
}

// ---------------------------------------------------------------- tenants

struct Tenant {
    partner: String,
    account: String,
    /// The product that writes (one-way: it receives nothing).
    writer_key: String,
    writer: String,
    /// The three two-way products.
    receivers: Vec<String>,
}

async fn api(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Value,
) -> Value {
    let url = format!("{base}{path}");
    let req = match method {
        "PUT" => http.put(url),
        _ => http.post(url),
    };
    let resp = req.bearer_auth(key).json(&body).send().await.unwrap();
    let status = resp.status();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

async fn tenant(
    http: &reqwest::Client,
    base: &str,
    partner: Option<&str>,
    webhook_urls: &[String],
) -> Tenant {
    let partner = match partner {
        Some(p) => p.to_owned(),
        None => api(
            http,
            base,
            "POST",
            "/v1/partners",
            ADMIN_KEY,
            json!({"name": "bench"}),
        )
        .await["partner_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    let account = api(
        http,
        base,
        "POST",
        "/v1/accounts",
        ADMIN_KEY,
        json!({"partner_id": partner, "name": "bench", "default_region": "US"}),
    )
    .await["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product = |name: String, url: Option<String>, sync: &'static str| {
        let (http, base, partner, account) = (
            http.clone(),
            base.to_owned(),
            partner.clone(),
            account.clone(),
        );
        async move {
            let mut body = json!({"partner_id": partner, "name": name});
            if let Some(url) = url {
                body["webhook_url"] = json!(url);
            }
            let p = api(&http, &base, "POST", "/v1/products", ADMIN_KEY, body).await;
            let id = p["product_id"].as_str().unwrap().to_owned();
            api(
                &http,
                &base,
                "PUT",
                &format!("/v1/accounts/{account}/products/{id}"),
                ADMIN_KEY,
                json!({"sync": sync}),
            )
            .await;
            (id, p["api_key"].as_str().unwrap().to_owned())
        }
    };
    let (writer, writer_key) = product("writer".into(), None, "one_way").await;
    let mut receivers = Vec::new();
    for (i, url) in webhook_urls.iter().enumerate() {
        receivers.push(
            product(format!("receiver {i}"), Some(url.clone()), "two_way")
                .await
                .0,
        );
    }
    Tenant {
        partner,
        account,
        writer_key,
        writer,
        receivers,
    }
}

/// A valid, unique US number for `n` (< 8,000,000).
fn phone(n: usize) -> String {
    format!("+1212{}", 2_000_000 + n)
}

fn customer(account: &str, tag: &str, n: usize) -> Value {
    // The burst writes to the account of the steady run: other phone numbers.
    let n = if tag == "burst" { n + 500_000 } else { n };
    json!({
        "account_id": account,
        "first_name": format!("First{}", n % 997),
        "last_name": surname(n),
        "email": format!("{tag}{n}@example.com"),
        "phone": phone(n),
        "permission_to_contact": n % 2 == 0,
    })
}

/// One of SURNAMES made-up surnames.
fn surname(n: usize) -> String {
    const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "ne", "ro", "su", "ta", "vi", "zo", "be"];
    let k = n % SURNAMES;
    let mut s = String::from("Q");
    for digit in [k / 100, (k / 10) % 10, k % 10] {
        s.push_str(SYLLABLES[digit]);
    }
    s
}

// ---------------------------------------------------------------- load helpers

/// An operation creating customer `i` (emails tagged `tag`) as the tenant's writer:
/// true on `201`.
fn creator(
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
async fn run_n<F, Fut>(concurrency: usize, n: usize, op: F) -> (Vec<f64>, usize)
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
async fn run_until<F, Fut>(
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

// ---------------------------------------------------------------- 1. single creates

async fn single_creates(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
    urls: &[String],
) {
    let server = Server::start(false).await;
    let t = tenant(http, &server.base, None, urls).await;
    server.reset_peak();
    let deadline = Instant::now() + Duration::from_secs(sizes.create_secs);
    let started = Instant::now();
    let (machine0, server0) = (machine_cpu_seconds(), server.cpu_seconds());
    let (ok, _) = run_until(
        16,
        usize::MAX,
        deadline,
        creator(http, &server.base, &t, "single"),
    )
    .await;
    let api_rate = ok.len() as f64 / started.elapsed().as_secs_f64();
    let machine = machine_cpu_seconds() - machine0;
    let hub = server.cpu_seconds() - server0;
    eprintln!(
        "bench: creates: machine CPU {:.2} ms per create, of which the hub process {:.2} ms",
        machine * 1000.0 / ok.len() as f64,
        hub * 1000.0 / ok.len() as f64
    );
    let rss = server.peak_rss_mb();
    server.stop().await;

    let key_hash: String =
        sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE product_id = $1")
            .bind(&t.writer)
            .fetch_one(pool)
            .await
            .unwrap();
    let script = pgbench_script(&key_hash, &t.account, &t.writer);
    let path = std::env::temp_dir().join(format!("bench-create-{}.sql", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(env("BENCH_PGBENCH"))
        .args(["-n", "-M", "prepared", "-c", "16", "-j", "2", "-T"])
        .arg(sizes.create_secs.to_string())
        .arg("-f")
        .arg(&path)
        .arg(env("BENCH_DATABASE_URL"))
        .output()
        .await
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench said: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    report.add(
        "1. single creates (c=16)",
        "creates/s",
        "/s",
        api_rate,
        Some(tps),
        "≥ 0.8 × pgbench",
        rss,
    );
}

/// The statements the server runs for one create by a product (captured from the
/// Postgres statement log), with pgbench variables for the new ids.
fn pgbench_script(key_hash: &str, account: &str, product: &str) -> String {
    format!(
        r#"\set n random(1, 4000000000000000)
SELECT key_id, kind, partner_id, account_id, product_id, created, revoked FROM api_keys WHERE key_hash = '{key_hash}' AND revoked IS NULL;
SELECT account_id, product_id, sync, created, updated FROM activations WHERE account_id = '{account}' AND product_id = '{product}';
SELECT account_id, partner_id, name, default_region, dedupe_policy, created, updated FROM accounts WHERE account_id = '{account}';
BEGIN;
INSERT INTO customers (customer_id, scope, account_id, owner_product_id, status, first_name, last_name, emails, phones, address, city, state, country, tags, permission_to_contact, origins, version, created, updated, deleted, merged_into, conflict, first_name_sort, last_name_sort, search) VALUES ('CUSTOMER-pgb-' || :n, '{account}', '{account}', NULL, 'live', 'First', 'Qkaloba', jsonb_build_array('pgb' || :n || '@example.com'), jsonb_build_array('+9' || :n), NULL, NULL, NULL, NULL, '[]', now(), '["{product}"]', 1, now(), now(), NULL, NULL, NULL, 'first', 'qkaloba', 'first qkaloba pgb' || :n || '@example.com 9' || :n);
INSERT INTO customer_identifiers (scope, kind, value, customer_id) VALUES ('{account}', 'email', 'pgb' || :n || '@example.com', 'CUSTOMER-pgb-' || :n), ('{account}', 'phone', '+9' || :n, 'CUSTOMER-pgb-' || :n) ON CONFLICT DO NOTHING RETURNING customer_id, kind, value;
INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) VALUES ('{product}', 'CUSTOMER-pgb-' || :n, '{account}', 'CUSTOMER-pgb-' || :n, now()) ON CONFLICT DO NOTHING RETURNING customer_id;
INSERT INTO events (event_id, account_id, customer_id, type, version, origin_product_id, data, vendor_ids, created) VALUES ('msg_pgb_' || :n, '{account}', 'CUSTOMER-pgb-' || :n, 'customer.created', 1, '{product}', jsonb_build_object('city', NULL, 'tags', '[]'::jsonb, 'email', jsonb_build_array('pgb' || :n || '@example.com'), 'phone', jsonb_build_array('+9' || :n), 'state', NULL, 'origin', '{product}', 'address', NULL, 'country', NULL, 'created', now(), 'origins', '["{product}"]'::jsonb, 'updated', now(), 'version', 1, 'last_name', 'Qkaloba', 'account_id', '{account}', 'contact_id', 'CUSTOMER-pgb-' || :n, 'first_name', 'First', 'vendor_customer_id', NULL, 'permission_to_contact', now()), jsonb_build_object('{product}', 'CUSTOMER-pgb-' || :n), now());
INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, version, status, attempts, next_attempt, lease_until, created, updated) SELECT e.event_id || '.' || a.product_id, a.product_id, e.account_id, e.customer_id, e.seq, e.version, 'pending', 0, e.created, NULL, e.created, e.created FROM events e JOIN activations a ON a.account_id = e.account_id AND a.sync = 'two_way' JOIN products p ON p.product_id = a.product_id AND p.webhook_url IS NOT NULL AND p.webhook_status = 'enabled' WHERE (e.origin_product_id IS NULL OR a.product_id <> e.origin_product_id) AND e.event_id IN ('msg_pgb_' || :n);
SELECT pg_notify('customer_list_deliveries', '');
COMMIT;
"#
    )
}

// ---------------------------------------------------------------- 2. bulk import

async fn bulk_import(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
    urls: &[String],
) -> Tenant {
    let server = Server::start(false).await;
    let t = tenant(http, &server.base, None, urls).await;
    server.reset_peak();
    let started = Instant::now();
    for chunk in (0..sizes.import).collect::<Vec<_>>().chunks(500) {
        let customers: Vec<Value> = chunk
            .iter()
            .map(|&n| customer(&t.account, "import", n))
            .collect();
        let r = http
            .post(format!("{}/v1/customers/batch", server.base))
            .bearer_auth(&t.writer_key)
            .json(&json!({ "customers": customers }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let created = body["results"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["status"] == 201).count())
            .unwrap_or(0);
        assert_eq!(created, chunk.len(), "every item created: {body}");
    }
    let api_rate = sizes.import as f64 / started.elapsed().as_secs_f64();
    let rss = server.peak_rss_mb();
    server.stop().await;

    // Baseline: the same rows, raw multi-row INSERTs, 500 per transaction, into a second
    // account of the same shape.
    let b = {
        let server = Server::start(false).await;
        let b = tenant(http, &server.base, Some(&t.partner), urls).await;
        server.stop().await;
        b
    };
    let started = Instant::now();
    for chunk in (0..sizes.import).collect::<Vec<_>>().chunks(500) {
        raw_insert(pool, &b, chunk).await;
    }
    let raw_rate = sizes.import as f64 / started.elapsed().as_secs_f64();
    report.add(
        "2. bulk import (batches of 500)",
        "customers/s",
        "/s",
        api_rate,
        Some(raw_rate),
        "≥ 0.5 × raw INSERT",
        rss,
    );
    t
}

/// Inserts the rows the hub writes for created customers (customer, identifiers,
/// association, event, one delivery per receiving product) with multi-row INSERTs.
async fn raw_insert(pool: &PgPool, t: &Tenant, ns: &[usize]) {
    let now = chrono::Utc::now();
    let mut tx = pool.begin().await.unwrap();
    let id = |n: usize| format!("CUSTOMER-raw-{}-{n}", &t.account[3..]);
    let email = |n: usize| format!("raw{n}@example.com");
    let mut q = QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO customers (customer_id, scope, account_id, owner_product_id, status, first_name, last_name, \
         emails, phones, address, city, state, country, tags, permission_to_contact, origins, version, created, \
         updated, deleted, merged_into, conflict, first_name_sort, last_name_sort, search) ",
    );
    q.push_values(ns, |mut row, &n| {
        let first = format!("First{}", n % 997);
        let last = surname(n);
        row.push_bind(id(n))
            .push_bind(&t.account)
            .push_bind(&t.account)
            .push_bind(None::<String>)
            .push_bind("live")
            .push_bind(first.clone())
            .push_bind(last.clone())
            .push_bind(json!([email(n)]))
            .push_bind(json!([phone(n)]))
            .push_bind(None::<String>)
            .push_bind(None::<String>)
            .push_bind(None::<String>)
            .push_bind(None::<String>)
            .push_bind(json!([]))
            .push_bind((n % 2 == 0).then_some(now))
            .push_bind(json!([t.writer]))
            .push_bind(1i64)
            .push_bind(now)
            .push_bind(now)
            .push_bind(None::<chrono::DateTime<chrono::Utc>>)
            .push_bind(None::<String>)
            .push_bind(None::<Value>)
            .push_bind(first.to_lowercase())
            .push_bind(last.to_lowercase())
            .push_bind(format!(
                "{} {} {} {}",
                first.to_lowercase(),
                last.to_lowercase(),
                email(n),
                &phone(n)[1..]
            ));
    });
    q.build().execute(&mut *tx).await.unwrap();

    let mut q = QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO customer_identifiers (scope, kind, value, customer_id) ",
    );
    let pairs: Vec<(usize, bool)> = ns.iter().flat_map(|&n| [(n, true), (n, false)]).collect();
    q.push_values(&pairs, |mut row, &(n, is_email)| {
        row.push_bind(&t.account)
            .push_bind(if is_email { "email" } else { "phone" })
            .push_bind(if is_email { email(n) } else { phone(n) })
            .push_bind(id(n));
    });
    q.build().execute(&mut *tx).await.unwrap();

    let mut q = QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) ",
    );
    q.push_values(ns, |mut row, &n| {
        row.push_bind(&t.writer)
            .push_bind(id(n))
            .push_bind(&t.account)
            .push_bind(id(n))
            .push_bind(now);
    });
    q.build().execute(&mut *tx).await.unwrap();

    let mut q = QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO events (event_id, account_id, customer_id, type, version, origin_product_id, data, vendor_ids, created) ",
    );
    q.push_values(ns, |mut row, &n| {
        let data = json!({"account_id": t.account, "contact_id": id(n), "first_name": format!("First{}", n % 997),
            "last_name": surname(n), "email": [email(n)], "phone": [phone(n)], "address": null, "city": null,
            "state": null, "country": null, "tags": [], "permission_to_contact": now, "origin": t.writer,
            "origins": [t.writer], "version": 1, "created": now, "updated": now, "vendor_customer_id": null});
        row.push_bind(format!("msg_raw_{}", id(n)))
            .push_bind(&t.account)
            .push_bind(id(n))
            .push_bind("customer.created")
            .push_bind(1i64)
            .push_bind(&t.writer)
            .push_bind(data)
            .push_bind(json!({ t.writer.as_str(): id(n) }))
            .push_bind(now);
    });
    q.push(" RETURNING seq, customer_id");
    let seqs: Vec<(i64, String)> = q
        .build()
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let rows: Vec<(&(i64, String), &String)> = seqs
        .iter()
        .flat_map(|s| t.receivers.iter().map(move |p| (s, p)))
        .collect();
    let mut q = QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, version, status, \
         attempts, next_attempt, lease_until, created, updated) ",
    );
    q.push_values(&rows, |mut row, ((seq, customer), product)| {
        row.push_bind(format!("msg_raw_{customer}.{product}"))
            .push_bind(*product)
            .push_bind(&t.account)
            .push_bind(customer)
            .push_bind(*seq)
            .push_bind(1i64)
            .push_bind("pending")
            .push_bind(0i32)
            .push_bind(now)
            .push_bind(None::<chrono::DateTime<chrono::Utc>>)
            .push_bind(now)
            .push_bind(now);
    });
    q.build().execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

// ---------------------------------------------------------------- 3. list and search

/// Fills the database up to about `total_customers` over `accounts` accounts (the big
/// account is the one the import filled), with SQL on the server side.
async fn fill(pool: &PgPool, sizes: &Sizes, big: &Tenant) {
    let others = sizes.accounts - 1;
    // Earlier scenarios left customers of their own: fill up to the total.
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers")
        .fetch_one(pool)
        .await
        .unwrap();
    let per = sizes.total_customers.saturating_sub(existing as usize) / others;
    sqlx::query(
        "INSERT INTO accounts (account_id, partner_id, name, default_region, dedupe_policy, created, updated) \
         SELECT 'AG-fill-' || g, $1, 'fill ' || g, 'US', 'email_or_phone', now(), now() FROM generate_series(1, $2) g",
    )
    .bind(&big.partner)
    .bind(others as i64)
    .execute(pool)
    .await
    .unwrap();
    // In slices, so no one statement runs for minutes.
    let slice = 100_000usize;
    let total = per * others;
    let mut from = 0;
    while from < total {
        let to = (from + slice).min(total);
        sqlx::query(
            "INSERT INTO customers (customer_id, scope, account_id, owner_product_id, status, first_name, last_name, \
             emails, phones, address, city, state, country, tags, permission_to_contact, origins, version, created, \
             updated, deleted, merged_into, conflict, first_name_sort, last_name_sort, search) \
             SELECT 'CUSTOMER-fill-' || g, 'AG-fill-' || (g % $3 + 1), 'AG-fill-' || (g % $3 + 1), NULL, 'live', \
               'First' || (g % 997), 'Q' || translate(left(md5(g::text), 6), '0123456789', 'ghijklmnop'), \
               jsonb_build_array('fill' || g || '@example.com'), jsonb_build_array('+1313' || (2000000 + g)), \
               NULL, NULL, NULL, NULL, '[]', NULL, $4, 1, now() - (g || ' ms')::interval, now(), NULL, NULL, NULL, \
               'first' || (g % 997), 'q' || translate(left(md5(g::text), 6), '0123456789', 'ghijklmnop'), \
               'first' || (g % 997) || ' q' || translate(left(md5(g::text), 6), '0123456789', 'ghijklmnop') \
                 || ' fill' || g || '@example.com 1313' || (2000000 + g) \
             FROM generate_series($1, $2) g",
        )
        .bind(from as i64 + 1)
        .bind(to as i64)
        .bind(others as i64)
        .bind(json!([big.writer]))
        .execute(pool)
        .await
        .unwrap();
        from = to;
    }
    // What autovacuum does to a freshly loaded table (visibility map, statistics).
    sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
}

async fn list_and_search(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
    big: &Tenant,
) {
    let filled = Instant::now();
    fill(pool, sizes, big).await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE status = 'live'")
        .fetch_one(pool)
        .await
        .unwrap();
    eprintln!(
        "bench: {count} live customers over {} accounts (filled in {:.0} s)",
        sizes.accounts,
        filled.elapsed().as_secs_f64()
    );
    let server = Server::start(false).await;
    server.reset_peak();
    let account = &big.account;
    let n = sizes.import as i64;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE scope = $1 AND status = 'live'")
            .bind(account)
            .fetch_one(pool)
            .await
            .unwrap();
    let cursor = |sort: &'static str, column: &'static str, offset: i64| {
        let pool = pool.clone();
        let account = account.clone();
        async move {
            let sql = format!(
                "SELECT {column}, customer_id FROM customers WHERE scope = $1 AND status = 'live' \
                 ORDER BY {column}, customer_id OFFSET $2 LIMIT 1"
            );
            let row = sqlx::query(&sql)
                .bind(&account)
                .bind(offset)
                .fetch_one(&pool)
                .await
                .unwrap();
            let key = if column == "created" {
                let at: chrono::DateTime<chrono::Utc> = row.get(0);
                customer_list::domain::time::to_fixed_text(&at)
            } else {
                row.get::<String, _>(0)
            };
            // A cursor as the API makes it, with the total its first page counted.
            KeyCursor {
                total: Some(total),
                sort: sort.into(),
                key,
                id: row.get(1),
            }
            .encode()
        }
    };
    let mut queries: Vec<(String, String, &str)> = Vec::new();
    for (sort, column) in [("created", "created"), ("last_name", "last_name_sort")] {
        queries.push((
            format!("list by {sort}, first page"),
            format!("sort={sort}"),
            "list",
        ));
        let middle = cursor(sort, column, n / 2).await;
        queries.push((
            format!("list by {sort}, middle page"),
            format!("sort={sort}&cursor={middle}"),
            "list",
        ));
        let last = cursor(sort, column, n - 50).await;
        queries.push((
            format!("list by {sort}, last page"),
            format!("sort={sort}&cursor={last}"),
            "list",
        ));
    }
    let probe = sizes.import / 3;
    queries.push((
        "search email prefix".into(),
        format!("q=import{probe}"),
        "search",
    ));
    queries.push((
        "search phone digits".into(),
        format!("q={}", &phone(probe)[5..]),
        "search",
    ));
    queries.push((
        "search last name".into(),
        format!("q={}", surname(probe).to_lowercase()),
        "search",
    ));
    for (name, query, kind) in &queries {
        for concurrency in [1usize, 16] {
            let url = format!(
                "{}/v1/customers?account_id={account}&page_size=100&{query}",
                server.base
            );
            let (client, key) = (http.clone(), ADMIN_KEY.to_owned());
            // Warm the path once.
            let _ = client.get(&url).bearer_auth(&key).send().await;
            let (lat, failed) = run_n(concurrency, sizes.requests, move |_| {
                let (client, url, key) = (client.clone(), url.clone(), key.clone());
                async move {
                    match client.get(&url).bearer_auth(&key).send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            })
            .await;
            let lat = sorted(lat);
            let target = match (*kind, concurrency) {
                ("list", 1) => "p99 ≤ 10 ms",
                ("search", 1) => "p99 ≤ 25 ms",
                _ => "–",
            };
            let (p50, p99) = (percentile(&lat, 50.0), percentile(&lat, 99.0));
            let mut figure = format!("p50 {p50:.2} ms / p99 {p99:.2} ms");
            if failed > 0 {
                figure.push_str(&format!(" ({failed} failed)"));
            }
            report.add(
                &format!("3. {name} (c={concurrency})"),
                &figure,
                "ms (p99)",
                p99,
                None,
                target,
                None,
            );
        }
    }
    let rss = server.peak_rss_mb();
    report.figures.last_mut().unwrap().peak_rss_mb = rss.map(|r| round(r, 1));
    server.stop().await;
}

// ---------------------------------------------------------------- 4. fan-out

async fn fan_out(report: &mut Report, sizes: &Sizes, pool: &PgPool, http: &reqwest::Client) {
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
    let mut urls = Vec::new();
    for _ in 0..3 {
        let (url, sink) = start_sink().await;
        urls.push(url);
        sinks.push(sink);
    }
    let server = Server::start(true).await;
    let t = tenant(http, &server.base, None, &urls).await;
    server.reset_peak();

    // (a) a steady 200 creates/s: time from each 201 to its receipt at each receiver.
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let total = 200 * sizes.steady_secs as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut tasks = Vec::new();
    for i in 0..total {
        tick.tick().await;
        let (client, base, key, account, acked) = (
            http.clone(),
            server.base.clone(),
            t.writer_key.clone(),
            t.account.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v1/customers"))
                .bearer_auth(&key)
                .json(&customer(&account, "steady", i))
                .send()
                .await;
            let at = Instant::now();
            let Ok(r) = r else { return false };
            if r.status() != 201 {
                return false;
            }
            let Ok(body) = r.json::<Value>().await else {
                return false;
            };
            acked.lock().unwrap().insert(
                body["customer_id"].as_str().unwrap_or_default().to_owned(),
                at,
            );
            true
        }));
    }
    let mut refused = 0;
    for task in tasks {
        if !task.await.unwrap() {
            refused += 1;
        }
    }
    let accepted = total - refused;
    if refused > 0 {
        eprintln!("bench: {refused} of {total} steady creates were refused");
    }
    wait_for_receipts(&sinks, accepted * 3, Duration::from_secs(60)).await;
    let acked = acked.lock().unwrap().clone();
    let mut latencies = Vec::new();
    for sink in &sinks {
        for (id, at) in sink.receipts.lock().unwrap().iter() {
            if let Some(sent) = acked.get(id) {
                latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
            }
        }
    }
    let lat = sorted(latencies);
    let steady_rss = server.peak_rss_mb();
    report.add(
        "4a. fan-out latency at 200 creates/s (600 deliveries/s)",
        &format!(
            "create 201 → receipt: p50 {:.2} ms / p99 {:.2} ms ({refused} of {total} refused)",
            percentile(&lat, 50.0),
            percentile(&lat, 99.0)
        ),
        "ms (p99)",
        percentile(&lat, 99.0),
        None,
        "p50 ≤ 3 ms, p99 ≤ 15 ms",
        steady_rss,
    );
    for sink in &sinks {
        sink.receipts.lock().unwrap().clear();
        sink.count.store(0, Ordering::Relaxed);
        sink.keep.store(true, Ordering::Relaxed);
    }

    // (b) saturation: a burst of creates as fast as they are accepted.
    server.reset_peak();
    let cpu0 = machine_cpu_seconds();
    let started = Instant::now();
    let (_, refused) = run_n(16, sizes.burst, creator(http, &server.base, &t, "burst")).await;
    let deliveries = (sizes.burst - refused) * 3;
    wait_for_receipts(&sinks, deliveries, Duration::from_secs(300)).await;
    let cpu = machine_cpu_seconds() - cpu0;
    let (first, last) = receipt_span(&sinks);
    let rate = deliveries as f64 / last.duration_since(first).as_secs_f64().max(1e-6);
    let burst_rss = server.peak_rss_mb();
    eprintln!(
        "bench: burst of {} creates took {:.1} s to deliver",
        sizes.burst,
        started.elapsed().as_secs_f64()
    );
    server.stop().await;

    // Baseline: the hub's own webhook client posting the same signed bodies straight to
    // the same receivers, 64 at a time (the dispatcher's concurrency).
    let bodies: Vec<(String, HeaderMap, Bytes)> = sinks
        .iter()
        .zip(&urls)
        .flat_map(|(sink, url)| {
            let kept = std::mem::take(&mut *sink.kept.lock().unwrap());
            kept.into_iter().map(move |(h, b)| (url.clone(), h, b))
        })
        .collect();
    for sink in &sinks {
        sink.keep.store(false, Ordering::Relaxed);
        sink.receipts.lock().unwrap().clear();
    }
    let client = Arc::new(
        WebhookClient::new(
            Duration::from_secs(15),
            AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        )
        .unwrap(),
    );
    let bodies = Arc::new(bodies);
    let n = bodies.len();
    let cpu0 = machine_cpu_seconds();
    let started = Instant::now();
    let (_, base_failed) = run_n(64, n, move |i| {
        let (client, bodies) = (client.clone(), bodies.clone());
        async move {
            let (url, headers, body) = &bodies[i];
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
    let base_secs = started.elapsed().as_secs_f64();
    let base_cpu = machine_cpu_seconds() - cpu0;
    let base_rate = (n - base_failed) as f64 / base_secs;
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
        "machine CPU per delivery",
        "ms",
        cpu * 1000.0 / deliveries as f64,
        Some(base_cpu * 1000.0 / n as f64),
        "≤ 10 × baseline",
        burst_rss,
    );
}

async fn wait_for_receipts(sinks: &[Arc<Sink>], want: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got: usize = sinks.iter().map(|s| s.receipts.lock().unwrap().len()).sum();
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

fn receipt_span(sinks: &[Arc<Sink>]) -> (Instant, Instant) {
    let all: Vec<Instant> = sinks
        .iter()
        .flat_map(|s| {
            s.receipts
                .lock()
                .unwrap()
                .iter()
                .map(|(_, at)| *at)
                .collect::<Vec<_>>()
        })
        .collect();
    (*all.iter().min().unwrap(), *all.iter().max().unwrap())
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() {
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
        urls.push(start_sink().await.0);
    }
    let mut report = Report::default();
    let started = Instant::now();
    single_creates(&mut report, &sizes, &pool, &http, &urls).await;
    let big = bulk_import(&mut report, &sizes, &pool, &http, &urls).await;
    list_and_search(&mut report, &sizes, &pool, &http, &big).await;
    fan_out(&mut report, &sizes, &pool, &http).await;

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
