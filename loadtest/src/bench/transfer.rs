//! Scenarios 6 and 7 (SPEC section 12): a CSV import through `POST /v1/imports` against a
//! raw `COPY` of the very rows it wrote into the same tables, and the export of the big
//! account (100,000 customers in the 1,000,000-customer database) against a raw
//! `COPY ... TO STDOUT` of the same rows.

use super::report::Report;
use super::tenants::{phone, surname, tenant_with, Tenant};
use super::Sizes;
use crate::measure::{machine_cpu_seconds, peak_rss_mb, process_cpu_seconds, reset_peak_rss};
use futures_util::StreamExt;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// The tables an import writes for its rows, in the order their foreign keys allow
/// filling them, each with the column that names its account.
const WRITTEN: [(&str, &str); 6] = [
    ("customers", "account_id"),
    ("customer_identifiers", "scope"),
    ("associations", "scope"),
    ("events", "account_id"),
    ("consent_history", "scope"),
    ("deliveries", "account_id"),
];

/// A spreadsheet as a business would bring it: names, email, phone and consent.
fn csv_file(rows: usize) -> Vec<u8> {
    let mut out = String::from("first_name,last_name,email,phone,permission_to_contact\n");
    for n in 0..rows {
        out.push_str(&format!(
            "First{},{},csv{n}@example.com,{},{}\n",
            n % 997,
            surname(n),
            phone(n + 800_000),
            if n % 2 == 0 { "yes" } else { "no" }
        ));
    }
    out.into_bytes()
}

pub(super) async fn csv_import(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
) {
    // Imports run where deliveries do; the other products read the feed (no webhook), so
    // the dispatcher has nothing to send and the figure is the import's alone.
    let mut server = super::server(true).await;
    let t = tenant_with(http, &server.base, None, &[None, None, None]).await;
    let file = csv_file(sizes.import);
    reset_peak_rss(server.pid());
    let (machine0, server0) = (machine_cpu_seconds(), process_cpu_seconds(server.pid()));
    let started = Instant::now();
    let r = http
        .post(format!(
            "{}/v1/imports?account_id={}",
            server.base, t.account
        ))
        .bearer_auth(&t.writer_key)
        .header("content-type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let id = r.json::<Value>().await.unwrap()["import_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = loop {
        let view: Value = http
            .get(format!("{}/v1/imports/{id}", server.base))
            .bearer_auth(&t.writer_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["status"] == "completed" {
            break view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "import stuck: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let machine = machine_cpu_seconds() - machine0;
    let hub = process_cpu_seconds(server.pid()) - server0;
    let rss = peak_rss_mb(server.pid());
    server.kill().await;
    assert_eq!(done["created"], sizes.import, "every row created: {done}");
    let api_rate = sizes.import as f64 / elapsed;
    eprintln!(
        "bench: import: {:.3} ms of machine CPU per row, of which the hub process {:.3} ms",
        machine * 1000.0 / sizes.import as f64,
        hub * 1000.0 / sizes.import as f64
    );

    let (raw_rate, counts) = copy_again(pool, &t).await;
    report.add(
        &format!(
            "6. CSV import of {} rows (POST /v1/imports → completed)",
            sizes.import
        ),
        &format!("rows/s; baseline: one COPY of the rows it wrote ({counts})"),
        "/s",
        api_rate,
        Some(raw_rate),
        "≥ 0.5 × raw COPY",
        rss,
    );
}

/// The baseline of the import: every row it wrote for its account is copied out, deleted
/// (the tables then vacuumed, so the space is as reusable as before) and written again
/// by one raw `COPY ... FROM STDIN` per table in one transaction. Answers rows of the
/// file per second, and the rows per table.
async fn copy_again(pool: &PgPool, t: &Tenant) -> (f64, String) {
    let mut conn = pool.acquire().await.unwrap();
    let mut saved = Vec::new();
    for (table, column) in WRITTEN {
        let mut out = conn
            .copy_out_raw(&format!(
                "COPY (SELECT * FROM {table} WHERE {column} = '{}') TO STDOUT (FORMAT binary)",
                t.account
            ))
            .await
            .unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = out.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        drop(out);
        let rows: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"))
                .bind(&t.account)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        saved.push((table, column, bytes, rows));
    }
    // The rows are the import's own (nothing else refers to them); without the foreign
    // keys' checks, which would scan the deliveries table once per event deleted.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (table, column, _, _) in saved.iter().rev() {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(&t.account)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query("SET session_replication_role = DEFAULT")
        .execute(&mut *conn)
        .await
        .unwrap();
    let tables: Vec<&str> = WRITTEN.iter().map(|(table, _)| *table).collect();
    sqlx::query(&format!("VACUUM ANALYZE {}", tables.join(", ")))
        .execute(&mut *conn)
        .await
        .unwrap();

    let customers = saved[0].3 as f64;
    let started = Instant::now();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    for (table, _, bytes, _) in &saved {
        let mut copy = tx
            .copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
            .await
            .unwrap();
        copy.send(bytes.as_slice()).await.unwrap();
        copy.finish().await.unwrap();
    }
    tx.commit().await.unwrap();
    let rate = customers / started.elapsed().as_secs_f64();
    let counts = saved
        .iter()
        .filter(|(_, _, _, rows)| *rows > 0)
        .map(|(table, _, _, rows)| format!("{rows} {table}"))
        .collect::<Vec<_>>()
        .join(", ");
    (rate, counts)
}

pub(super) async fn csv_export(
    report: &mut Report,
    pool: &PgPool,
    http: &reqwest::Client,
    big: &Tenant,
) {
    let mut server = super::server(false).await;
    reset_peak_rss(server.pid());
    let started = Instant::now();
    let mut r = http
        .get(format!(
            "{}/v1/customers/export?account_id={}",
            server.base, big.account
        ))
        .bearer_auth(&big.writer_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(chunk) = r.chunk().await.unwrap() {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
        bytes += chunk.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss = peak_rss_mb(server.pid());
    server.kill().await;
    let rows = lines - 1;

    // Baseline: the same customers, in the same order, with the caller's own ids, straight
    // out of Postgres as CSV.
    let mut conn = pool.acquire().await.unwrap();
    let started = Instant::now();
    let mut out = conn
        .copy_out_raw(&format!(
            "COPY (SELECT c.customer_id, a.vendor_customer_id, c.first_name, c.last_name, c.emails, \
               c.phones, c.address, c.city, c.state, c.country, c.tags, c.permission_to_contact, \
               c.origins, c.created, c.updated \
             FROM customers c LEFT JOIN associations a \
               ON a.customer_id = c.customer_id AND a.product_id = '{}' \
             WHERE c.scope = '{}' AND c.status = 'live' ORDER BY c.created, c.customer_id) \
             TO STDOUT (FORMAT csv, HEADER)",
            big.writer, big.account
        ))
        .await
        .unwrap();
    let mut raw_lines = 0usize;
    while let Some(chunk) = out.next().await {
        raw_lines += chunk.unwrap().iter().filter(|&&b| b == b'\n').count();
    }
    let raw_rate = (raw_lines - 1) as f64 / started.elapsed().as_secs_f64();
    assert_eq!(raw_lines, lines, "the same rows both ways");
    report.add(
        &format!(
            "7. CSV export of {rows} customers ({:.1} MB) in the full database",
            bytes as f64 / 1e6
        ),
        "rows/s; baseline: COPY (SELECT … ORDER BY created) TO STDOUT (FORMAT csv)",
        "/s",
        rows as f64 / elapsed,
        Some(raw_rate),
        "peak RSS < 100 MB",
        rss,
    );
}
