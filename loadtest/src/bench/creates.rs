//! Scenario 1, single creates at concurrency 16, against pgbench replaying the statements the
//! server runs for one create.

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
    reset_peak_rss(server.pid());
    let deadline = Instant::now() + Duration::from_secs(sizes.create_secs);
    let started = Instant::now();
    let (machine0, server0) = (machine_cpu_seconds(), process_cpu_seconds(server.pid()));
    let (ok, _) = run_until(
        16,
        usize::MAX,
        deadline,
        creator(http, &server.base, &t, "single"),
    )
    .await;
    let api_rate = ok.len() as f64 / started.elapsed().as_secs_f64();
    let machine = machine_cpu_seconds() - machine0;
    let hub = process_cpu_seconds(server.pid()) - server0;
    eprintln!(
        "bench: creates: machine CPU {:.2} ms per create, of which the hub process {:.2} ms",
        machine * 1000.0 / ok.len() as f64,
        hub * 1000.0 / ok.len() as f64
    );
    let rss = peak_rss_mb(server.pid());
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
/// suppression check, then the one statement that writes every row (`WITH …`), with
/// pgbench variables for the new ids.
pub(super) fn pgbench_script(account: &str, product: &str) -> String {
    let write = |consent: &str| {
        format!(
            r#"WITH c AS (INSERT INTO customers (customer_id, scope, account_id, owner_product_id, status, first_name, last_name, emails, phones, address, city, state, country, tags, permission_to_contact, origins, version, created, updated, deleted, merged_into, conflict, first_name_sort, last_name_sort, search) VALUES ('CUSTOMER-pgb-' || :n, '{account}', '{account}', NULL, 'live', 'First', 'Qkaloba', jsonb_build_array('pgb' || :n || '@example.com'), jsonb_build_array('+9' || :n), NULL, NULL, NULL, NULL, '[]', now(), '["{product}"]', 1, now(), now(), NULL, NULL, NULL, 'first', 'qkaloba', 'first qkaloba pgb' || :n || '@example.com 9' || :n) RETURNING 1), i AS (INSERT INTO customer_identifiers (scope, kind, value, customer_id) VALUES ('{account}', 'email', 'pgb' || :n || '@example.com', 'CUSTOMER-pgb-' || :n), ('{account}', 'phone', '+9' || :n, 'CUSTOMER-pgb-' || :n) ON CONFLICT DO NOTHING RETURNING 1), a AS (INSERT INTO associations (product_id, customer_id, scope, vendor_customer_id, created) VALUES ('{product}', 'CUSTOMER-pgb-' || :n, '{account}', 'CUSTOMER-pgb-' || :n, now()) ON CONFLICT DO NOTHING RETURNING 1), e AS (INSERT INTO events (event_id, account_id, customer_id, type, version, origin_product_id, data, vendor_ids, created) VALUES ('msg_pgb_' || :n, '{account}', 'CUSTOMER-pgb-' || :n, 'customer.created', 1, '{product}', jsonb_build_object('city', NULL, 'tags', '[]'::jsonb, 'email', jsonb_build_array('pgb' || :n || '@example.com'), 'phone', jsonb_build_array('+9' || :n), 'state', NULL, 'origin', '{product}', 'address', NULL, 'country', NULL, 'created', now(), 'origins', '["{product}"]'::jsonb, 'updated', now(), 'version', 1, 'last_name', 'Qkaloba', 'account_id', '{account}', 'contact_id', 'CUSTOMER-pgb-' || :n, 'first_name', 'First', 'vendor_customer_id', NULL, 'permission_to_contact', now()), jsonb_build_object('{product}', 'CUSTOMER-pgb-' || :n), now()) RETURNING seq, event_id, account_id, customer_id, version, origin_product_id, created), d AS (INSERT INTO deliveries (delivery_id, product_id, account_id, customer_id, event_seq, version, status, attempts, next_attempt, lease_until, created, updated) SELECT e.event_id || '.' || a.product_id, a.product_id, e.account_id, e.customer_id, e.seq, e.version, 'pending', 0, e.created, NULL, e.created, e.created FROM e e JOIN activations a ON a.account_id = e.account_id AND a.sync = 'two_way' JOIN products p ON p.product_id = a.product_id AND p.webhook_url IS NOT NULL AND p.webhook_status = 'enabled' WHERE (e.origin_product_id IS NULL OR a.product_id <> e.origin_product_id) RETURNING 1), n AS (SELECT pg_notify('customer_list_deliveries', 'bench') FROM (SELECT 1 FROM d LIMIT 1) one){consent} SELECT (CASE WHEN (SELECT COUNT(*) FROM i) = 2 AND (SELECT COUNT(*) FROM a) = 1 THEN 0 ELSE customer_list_collided() END)::bigint, (SELECT COUNT(*) FROM d), (SELECT COUNT(*) FROM n);"#
        )
    };
    let consent = format!(
        ", h AS (INSERT INTO consent_history (scope, customer_id, granted, at, legal_basis, source_product_id, source_key_id, via) VALUES ('{account}', 'CUSTOMER-pgb-' || :n, true, now(), 'consent', '{product}', 'KEY-pgb', 'create'))"
    );
    format!(
        "\\set n random(1, 4000000000000000)\n\\set consent :n % 2\n\
         SELECT kind, digest FROM suppressions WHERE account_id = '{account}' AND digest IN ('pgb-email-' || :n, 'pgb-phone-' || :n);\n\
         \\if :consent = 0\n{}\n\\else\n{}\n\\endif\n",
        write(&consent),
        write("")
    )
}
