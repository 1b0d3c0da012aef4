//! Scenario 3, list and search latency on a large database, first, middle and last pages.

use super::load::run_n;
use super::report::Report;
use super::tenants::{phone, surname, Tenant};
use super::{Sizes, ADMIN_KEY};
use crate::measure::{peak_rss_mb, percentile, reset_peak_rss, round, sorted};
use customer_list::domain::cursor::KeyCursor;
use serde_json::json;
use sqlx::{PgPool, Row};
use std::time::Instant;

/// Fills the database up to about `total_customers` over `accounts` accounts (the big
/// account is the one the import filled), with SQL on the server side.
pub(super) async fn fill(pool: &PgPool, sizes: &Sizes, big: &Tenant) {
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

pub(super) async fn list_and_search(
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
    let mut server = super::server(false).await;
    reset_peak_rss(server.pid());
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
    let mut middle_by_last_name = String::new();
    for (sort, column) in [("created", "created"), ("last_name", "last_name_sort")] {
        queries.push((
            format!("list by {sort}, first page"),
            format!("sort={sort}"),
            "list",
        ));
        let middle = cursor(sort, column, n / 2).await;
        if sort == "last_name" {
            middle_by_last_name = middle.clone();
        }
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
    console_pages(report, sizes, pool, &server.base, big, &middle_by_last_name).await;
    let rss = peak_rss_mb(server.pid());
    report.figures.last_mut().unwrap().peak_rss_mb = rss.map(|r| round(r, 1));
    server.kill().await;
}

/// The console's pages on the big account, signed in as the admin: each page's time to
/// the last byte on loopback (an upper bound of its server time), at 1 and 16 at once.
async fn console_pages(
    report: &mut Report,
    sizes: &Sizes,
    pool: &PgPool,
    base: &str,
    big: &Tenant,
    middle_cursor: &str,
) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{base}/console/sign-in"))
        .form(&[("key", ADMIN_KEY)])
        .send()
        .await
        .expect("console sign-in");
    assert_eq!(signed_in.status(), 303, "the admin signs in to the console");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let account = &big.account;
    // A customer from the middle of the account.
    let customer: String = sqlx::query_scalar(
        "SELECT customer_id FROM customers WHERE scope = $1 AND status = 'live' \
         ORDER BY created, customer_id OFFSET $2 LIMIT 1",
    )
    .bind(account)
    .bind(sizes.import as i64 / 2)
    .fetch_one(pool)
    .await
    .unwrap();
    let product = &big.receivers[0];
    let probe = sizes.import / 3;
    let pages = [
        (
            "customers, first page",
            format!("/console/customers?account_id={account}"),
        ),
        (
            "customers by last name, middle page",
            format!(
                "/console/customers?account_id={account}&sort=last_name&cursor={middle_cursor}"
            ),
        ),
        (
            "customers, search",
            format!("/console/customers?account_id={account}&q=import{probe}"),
        ),
        ("a customer", format!("/console/customers/{customer}")),
        (
            "duplicates",
            format!("/console/duplicates?account_id={account}"),
        ),
        (
            "products on the account",
            format!("/console/products?account_id={account}"),
        ),
        (
            "a product's deliveries",
            format!("/console/products/{product}"),
        ),
        (
            "a product's deliveries to one customer",
            format!("/console/products/{product}?customer_id={customer}"),
        ),
        ("tenants", "/console/tenants".to_owned()),
    ];
    for (name, path) in pages {
        let url = format!("{base}{path}");
        let first = client
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 200, "{name}: {path}");
        for concurrency in [1usize, 16] {
            let (client, url, cookie) = (client.clone(), url.clone(), cookie.clone());
            let (lat, failed) = run_n(concurrency, sizes.requests, move |_| {
                let request = client.get(&url).header("cookie", &cookie);
                async move {
                    match request.send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            })
            .await;
            let lat = sorted(lat);
            let (p50, p99) = (percentile(&lat, 50.0), percentile(&lat, 99.0));
            let mut figure = format!("p50 {p50:.2} ms / p99 {p99:.2} ms");
            if failed > 0 {
                figure.push_str(&format!(" ({failed} failed)"));
            }
            let target = if concurrency == 1 {
                "p99 ≤ 50 ms"
            } else {
                "–"
            };
            report.add(
                &format!("3c. console: {name} (c={concurrency})"),
                &figure,
                "ms (p99)",
                p99,
                None,
                target,
                None,
            );
        }
    }
}
