//! Scenario 1, single creates at concurrency 16: on Postgres against pgbench running the
//! minimal transaction (and replaying the statements the server runs); on the embedded
//! SQLite default against raw inserts of the same rows through one connection.

use super::load::{creator, run_until};
use super::report::Report;
use super::tenants::tenant;
use super::Sizes;
use crate::env;
use crate::measure::{machine_cpu_seconds, peak_rss_mb, process_cpu_seconds, reset_peak_rss};
use std::time::{Duration, Instant};
use tokio::process::Command;

pub(super) async fn single_creates(
    report: &mut Report,
    sizes: &Sizes,
    http: &reqwest::Client,
    urls: &[String],
) {
    let mut server = super::server(false).await;
    let t = tenant(http, &server.base, None, urls).await;
    let (api_rate, rss) = creates_per_second(sizes, http, &server, &t, "creates").await;
    server.kill().await;

    let replay = pgbench(sizes, "replay", &pgbench_script(&t.account, &t.writer)).await;
    let minimal = pgbench(
        sizes,
        "minimal",
        &minimal_script(&t.account, &t.writer, &t.receivers),
    )
    .await;
    report.add(
        "1. single creates (c=16)",
        "creates/s; baseline: pgbench, the minimal transaction storing the same rows",
        "/s",
        api_rate,
        Some(minimal),
        "≥ 0.8 × minimal (stretch 1.5 ×)",
        rss,
    );
    report.add(
        "1. single creates (c=16)",
        "creates/s; baseline: pgbench replaying the statements the server runs (overhead of HTTP and our code)",
        "/s",
        api_rate,
        Some(replay),
        "–",
        rss,
    );
}

/// The same creates on the embedded SQLite default (a fresh file), then, once the server
/// is gone, the same rows inserted raw into that file through one connection with the
/// server's settings (WAL, synchronous=NORMAL): a transaction per create, one statement
/// per table, nothing looked up or checked.
pub(super) async fn sqlite_creates(
    report: &mut Report,
    sizes: &Sizes,
    http: &reqwest::Client,
    urls: &[String],
) {
    let dir = std::env::temp_dir().join(format!("bench-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bench.db");
    let mut server = super::server_on(&format!("sqlite://{}", file.display()), false).await;
    let t = tenant(http, &server.base, None, urls).await;
    let (api_rate, rss) = creates_per_second(sizes, http, &server, &t, "sqlite creates").await;
    server.kill().await;
    let raw = sqlite_minimal(sizes, &file, &t).await;
    let _ = std::fs::remove_dir_all(&dir);
    report.add(
        "1. single creates on SQLite (c=16)",
        "creates/s; baseline: the same rows inserted raw through one connection, a transaction per create",
        "/s",
        api_rate,
        Some(raw),
        "≥ 0.5 × raw",
        rss,
    );
}

/// Creates through the API at concurrency 16 for the scenario's time: creates/s, and the
/// server's peak memory.
async fn creates_per_second(
    sizes: &Sizes,
    http: &reqwest::Client,
    server: &testkit::ServerProcess,
    t: &super::tenants::Tenant,
    label: &str,
) -> (f64, Option<f64>) {
    reset_peak_rss(server.pid());
    let deadline = Instant::now() + Duration::from_secs(sizes.create_secs);
    let started = Instant::now();
    let (machine0, server0) = (machine_cpu_seconds(), process_cpu_seconds(server.pid()));
    let (ok, _) = run_until(
        16,
        usize::MAX,
        deadline,
        creator(http, &server.base, t, "single"),
    )
    .await;
    let rate = ok.len() as f64 / started.elapsed().as_secs_f64();
    let machine = machine_cpu_seconds() - machine0;
    let hub = process_cpu_seconds(server.pid()) - server0;
    eprintln!(
        "bench: {label}: {rate:.0}/s; machine CPU {:.2} ms per create, of which the hub process {:.2} ms",
        machine * 1000.0 / ok.len() as f64,
        hub * 1000.0 / ok.len() as f64
    );
    (rate, peak_rss_mb(server.pid()))
}

/// The raw-insert baseline on SQLite: creates/s.
async fn sqlite_minimal(sizes: &Sizes, file: &std::path::Path, t: &super::tenants::Tenant) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{Connection, Executor};
    let options = SqliteConnectOptions::new()
        .filename(file)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the bench's SQLite file");
    let (account, product) = (t.account.as_str(), t.writer.as_str());
    let deadline = Instant::now() + Duration::from_secs(sizes.create_secs);
    let started = Instant::now();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let now = customer_list::domain::time::to_fixed_text(&chrono::Utc::now());
        let id = format!("CUSTOMER-raw-{n}");
        let (email, phone) = (format!("raw{n}@example.com"), format!("+9{n}"));
        let consent = (n % 2 == 0).then_some(now.as_str());
        let data = serde_json::json!({"contact_id": id, "account_id": account, "first_name": "First",
            "last_name": "Qkaloba", "email": [email], "phone": [phone], "address": null, "city": null,
            "state": null, "country": null, "tags": [], "permission_to_contact": consent,
            "origin": product, "origins": [product], "vendor_customer_id": null, "version": 1,
            "created": now, "updated": now})
        .to_string();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO customers (customer_id, scope, account_id, status, first_name, last_name, \
             emails, phones, tags, permission_to_contact, origins, version, created, updated, \
             first_name_sort, last_name_sort, search) VALUES (?, ?, ?, 'live', 'First', 'Qkaloba', \
             json_array(?), json_array(?), '[]', ?, json_array(?), 1, ?, ?, 'first', 'qkaloba', ?)",
        )
        .bind(&id).bind(account).bind(account).bind(&email).bind(&phone).bind(consent)
        .bind(product).bind(&now).bind(&now).bind(format!("first qkaloba {email} 9{n}"))
        .execute(&mut *tx).await.unwrap();
        sqlx::query(
            "INSERT INTO customer_identifiers (scope, kind, value, customer_id) \
             VALUES (?, 'email', ?, ?), (?, 'phone', ?, ?)",
        )
        .bind(account)
        .bind(&email)
        .bind(&id)
        .bind(account)
        .bind(&phone)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(product).bind(&id).bind(account).bind(&id).bind(&now)
        .execute(&mut *tx).await.unwrap();
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO events (event_id, account_id, customer_id, type, version, origin_product_id, \
             data, vendor_ids, created) VALUES (?, ?, ?, 'customer.created', 1, ?, ?, json_object(?, ?), ?) \
             RETURNING seq",
        )
        .bind(format!("msg_raw_{n}")).bind(account).bind(&id).bind(product).bind(&data)
        .bind(product).bind(&id).bind(&now)
        .fetch_one(&mut *tx).await.unwrap();
        let mut deliveries = String::from(
            "INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, \
             version, status, attempts, next_attempt, lease_until, created, updated) VALUES ",
        );
        for (i, _) in t.receivers.iter().enumerate() {
            if i > 0 {
                deliveries.push_str(", ");
            }
            deliveries.push_str("(?, ?, ?, ?, ?, 1, 'pending', 0, ?, NULL, ?, ?)");
        }
        let mut insert = sqlx::query(&deliveries);
        for r in &t.receivers {
            insert = insert
                .bind(format!("msg_raw_{n}.{r}"))
                .bind(r)
                .bind(account)
                .bind(&id)
                .bind(seq)
                .bind(&now)
                .bind(&now)
                .bind(&now);
        }
        insert.execute(&mut *tx).await.unwrap();
        if consent.is_some() {
            sqlx::query(
                "INSERT INTO consent_history (scope, customer_id, granted, at, legal_basis, \
                 source_product_id, source_key_id, via) VALUES (?, ?, 1, ?, 'consent', ?, 'KEY-raw', 'create')",
            )
            .bind(account).bind(&id).bind(&now).bind(product)
            .execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
    eprintln!("bench: sqlite raw inserts: {rate:.0}/s");
    rate
}

/// Runs a pgbench script at the creates' concurrency and duration; answers its tps.
async fn pgbench(sizes: &Sizes, name: &str, script: &str) -> f64 {
    let path = std::env::temp_dir().join(format!("bench-{name}-{}.sql", std::process::id()));
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
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench ({name}) said: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The least SQL that stores what a create stores, written by hand from the schema: one
/// transaction with the customer, its two identifiers, the association, the event, a
/// delivery per receiving product and, for half the customers as in the hub's run, the
/// consent record. No lookups, no checks, no conflict handling; one round trip per
/// statement, as pgbench sends them.
pub(super) fn minimal_script(account: &str, product: &str, receivers: &[String]) -> String {
    let deliveries: Vec<String> = receivers
        .iter()
        .map(|r| {
            format!(
                "('msg_min_' || :n || '.{r}', '{r}', '{account}', 'CUSTOMER-min-' || :n, \
                 currval(pg_get_serial_sequence('events', 'seq')), 1, 'pending', 0, now(), NULL, now(), now())"
            )
        })
        .collect();
    format!(
        r#"\set n random(1, 4000000000000000)
\set consent :n % 2
BEGIN;
INSERT INTO customers (customer_id, scope, account_id, status, first_name, last_name, emails, phones, tags, permission_to_contact, origins, version, created, updated, first_name_sort, last_name_sort, search) VALUES ('CUSTOMER-min-' || :n, '{account}', '{account}', 'live', 'First', 'Qkaloba', jsonb_build_array('min' || :n || '@example.com'), jsonb_build_array('+9' || :n), '[]', CASE WHEN :consent = 0 THEN now() END, '["{product}"]', 1, now(), now(), 'first', 'qkaloba', 'first qkaloba min' || :n || '@example.com 9' || :n);
INSERT INTO customer_identifiers (scope, kind, value, customer_id) VALUES ('{account}', 'email', 'min' || :n || '@example.com', 'CUSTOMER-min-' || :n), ('{account}', 'phone', '+9' || :n, 'CUSTOMER-min-' || :n);
INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) VALUES ('{product}', 'CUSTOMER-min-' || :n, '{account}', 'CUSTOMER-min-' || :n, now());
INSERT INTO events (event_id, account_id, customer_id, type, version, origin_product_id, data, vendor_ids, created) VALUES ('msg_min_' || :n, '{account}', 'CUSTOMER-min-' || :n, 'customer.created', 1, '{product}', jsonb_build_object('city', NULL, 'tags', '[]'::jsonb, 'email', jsonb_build_array('min' || :n || '@example.com'), 'phone', jsonb_build_array('+9' || :n), 'state', NULL, 'origin', '{product}', 'address', NULL, 'country', NULL, 'created', now(), 'origins', '["{product}"]'::jsonb, 'updated', now(), 'version', 1, 'last_name', 'Qkaloba', 'account_id', '{account}', 'contact_id', 'CUSTOMER-min-' || :n, 'first_name', 'First', 'vendor_customer_id', NULL, 'permission_to_contact', now()), jsonb_build_object('{product}', 'CUSTOMER-min-' || :n), now());
INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, version, status, attempts, next_attempt, lease_until, created, updated) VALUES {deliveries};
\if :consent = 0
INSERT INTO consent_history (scope, customer_id, granted, at, legal_basis, source_product_id, source_key_id, via) VALUES ('{account}', 'CUSTOMER-min-' || :n, true, now(), 'consent', '{product}', 'KEY-min', 'create');
\endif
COMMIT;
"#,
        deliveries = deliveries.join(", ")
    )
}

/// The statements the server runs for one create by a product (captured from the
/// Postgres statement log; its key, account and activation come from its cache): the
/// suppression check, the one statement that writes every row (`WITH …`), then the
/// signal to the other servers (`NOTIFY`, committed without waiting for the flush).
/// The server coalesces signals under load, so one per create is the most it sends.
/// pgbench variables stand for the new ids.
pub(super) fn pgbench_script(account: &str, product: &str) -> String {
    let write = |consent: &str| {
        format!(
            r#"WITH c AS (INSERT INTO customers (customer_id, scope, account_id, owner_product_id, status, first_name, last_name, emails, phones, address, city, state, country, tags, permission_to_contact, origins, version, created, updated, deleted, merged_into, conflict, first_name_sort, last_name_sort, search) VALUES ('CUSTOMER-pgb-' || :n, '{account}', '{account}', NULL, 'live', 'First', 'Qkaloba', jsonb_build_array('pgb' || :n || '@example.com'), jsonb_build_array('+9' || :n), NULL, NULL, NULL, NULL, '[]', now(), '["{product}"]', 1, now(), now(), NULL, NULL, NULL, 'first', 'qkaloba', 'first qkaloba pgb' || :n || '@example.com 9' || :n) RETURNING 1), i AS (INSERT INTO customer_identifiers (scope, kind, value, customer_id) VALUES ('{account}', 'email', 'pgb' || :n || '@example.com', 'CUSTOMER-pgb-' || :n), ('{account}', 'phone', '+9' || :n, 'CUSTOMER-pgb-' || :n) ON CONFLICT DO NOTHING RETURNING 1), a AS (INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) VALUES ('{product}', 'CUSTOMER-pgb-' || :n, '{account}', 'CUSTOMER-pgb-' || :n, now()) ON CONFLICT DO NOTHING RETURNING 1), e AS (INSERT INTO events (event_id, account_id, customer_id, type, version, origin_product_id, data, vendor_ids, created) VALUES ('msg_pgb_' || :n, '{account}', 'CUSTOMER-pgb-' || :n, 'customer.created', 1, '{product}', jsonb_build_object('city', NULL, 'tags', '[]'::jsonb, 'email', jsonb_build_array('pgb' || :n || '@example.com'), 'phone', jsonb_build_array('+9' || :n), 'state', NULL, 'origin', '{product}', 'address', NULL, 'country', NULL, 'created', now(), 'origins', '["{product}"]'::jsonb, 'updated', now(), 'version', 1, 'last_name', 'Qkaloba', 'account_id', '{account}', 'contact_id', 'CUSTOMER-pgb-' || :n, 'first_name', 'First', 'vendor_customer_id', NULL, 'permission_to_contact', now()), jsonb_build_object('{product}', 'CUSTOMER-pgb-' || :n), now()) RETURNING seq, event_id, account_id, customer_id, version, origin_product_id, created), d AS (INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, version, status, attempts, next_attempt, lease_until, created, updated) SELECT e.event_id || '.' || a.product_id, a.product_id, e.account_id, e.customer_id, e.seq, e.version, 'pending', 0, e.created, NULL, e.created, e.created FROM e e JOIN activations a ON a.account_id = e.account_id AND a.sync = 'two_way' JOIN products p ON p.product_id = a.product_id AND p.webhook_url IS NOT NULL AND p.webhook_status = 'enabled' WHERE (e.origin_product_id IS NULL OR a.product_id <> e.origin_product_id) RETURNING 1){consent} SELECT (CASE WHEN (SELECT COUNT(*) FROM i) = 2 AND (SELECT COUNT(*) FROM a) = 1 THEN 0 ELSE customer_list_collided() END)::bigint, (SELECT COUNT(*) FROM d);"#
        )
    };
    let consent = format!(
        ", h AS (INSERT INTO consent_history (scope, customer_id, granted, at, legal_basis, source_product_id, source_key_id, via) VALUES ('{account}', 'CUSTOMER-pgb-' || :n, true, now(), 'consent', '{product}', 'KEY-pgb', 'create'))"
    );
    format!(
        "\\set n random(1, 4000000000000000)\n\\set consent :n % 2\n\
         SELECT kind, digest FROM suppressions WHERE account_id = '{account}' AND digest IN ('pgb-email-' || :n, 'pgb-phone-' || :n);\n\
         \\if :consent = 0\n{}\n\\else\n{}\n\\endif\n\
         SELECT set_config('synchronous_commit', 'off', true), pg_notify('customer_list_deliveries', 'bench');\n",
        write(&consent),
        write("")
    )
}
