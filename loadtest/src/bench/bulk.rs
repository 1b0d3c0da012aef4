//! Scenario 2, bulk import through `/v1/customers/batch`, against raw multi-row INSERTs of the
//! same rows.

use super::report::Report;
use super::tenants::{customer, phone, surname, tenant, Tenant};
use super::Sizes;
use crate::measure::{peak_rss_mb, reset_peak_rss};
use serde_json::{json, Value};
use sqlx::{PgPool, QueryBuilder, Row};
use std::time::Instant;

pub(super) async fn bulk_import(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    http: &reqwest::Client,
    urls: &[String],
) -> Tenant {
    let mut server = super::server(false).await;
    let t = tenant(http, &server.base, None, urls).await;
    reset_peak_rss(server.pid());
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
    let rss = peak_rss_mb(server.pid());
    server.kill().await;

    // Baseline: the same rows, raw multi-row INSERTs, 500 per transaction, into a second
    // account of the same shape.
    let b = {
        let mut server = super::server(false).await;
        let b = tenant(http, &server.base, Some(&t.partner), urls).await;
        server.kill().await;
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
pub(super) async fn raw_insert(pool: &PgPool, t: &Tenant, ns: &[usize]) {
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
