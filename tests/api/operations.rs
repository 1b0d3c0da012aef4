//! SPEC section 8 over HTTP: rate limits, CORS, metrics and logs.

use crate::on_both_backends;
use crate::support::{random_key, server, Backend, Pair, TestApp, TestDb};
use serde_json::json;
use std::time::Duration;

on_both_backends!(
    rate_limits_answer_429_with_retry_after,
    cors_allows_only_configured_origins,
    metrics_move_with_requests_and_deliveries,
    logs_carry_no_personal_data_or_keys,
);

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.rate_limit = 2).await;
    let partner = app.create_partner().await;
    let (_, key) = app.issue_key("partners", &partner).await;
    let mut limited = None;
    for _ in 0..20 {
        let r = app.get("/v1/accounts", &key).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        r.expect(200);
    }
    let limited = limited.expect("a burst over the limit is refused");
    limited.expect_problem(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Limits are per key.
    app.get("/v1/accounts", &app.admin_key).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    app.get("/v1/accounts", &key).await.expect(200);
}

async fn cors_allows_only_configured_origins(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.cors_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/customers", app.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let simple = app
        .client
        .get(format!("{}/v1/accounts", app.base))
        .bearer_auth(&app.admin_key)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
}

/// The value of a Prometheus sample whose line starts with `prefix` (summed over matches).
fn sample(text: &str, name: &str, contains: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && contains.iter().all(|c| l.contains(c)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_move_with_requests_and_deliveries(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.webhook_allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let scrape = || async {
        let r = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap();
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        r.text().await.unwrap()
    };
    let before = scrape().await;
    let Pair {
        account,
        writer_key,
        reader: _,
        receiver,
    } = app.writer_and_reader().await;
    let key = writer_key.as_str();
    app.post(
        "/v1/customers",
        key,
        json!({"account_id": account, "first_name": "Ada"}),
    )
    .await
    .expect(201);
    receiver
        .wait_until(Duration::from_secs(10), |r| !r.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = scrape().await;
    let created = [
        "route=\"/v1/customers\"",
        "method=\"POST\"",
        "status=\"201\"",
    ];
    assert!(
        sample(&after, "customer_list_http_requests_total", &created)
            > sample(&before, "customer_list_http_requests_total", &created)
    );
    assert!(after.contains("customer_list_http_request_duration_seconds_bucket"));
    assert!(sample(&after, "customer_list_events_written_total", &[]) >= 1.0);
    assert!(
        sample(
            &after,
            "customer_list_deliveries_total",
            &["outcome=\"delivered\""]
        ) >= 1.0
    );
    assert!(after.contains("customer_list_delivery_duration_seconds"));
    assert!(after.contains("customer_list_deliveries_pending"));
    assert!(after.contains("customer_list_webhooks_disabled"));
    assert!(after.contains("customer_list_backfills_running"));
    assert!(after.contains("customer_list_snapshots_pending"));
    assert!(
        sample(
            &after,
            "customer_list_db_pool_connections",
            &["state=\"open\""]
        ) >= 1.0
    );
}

async fn logs_carry_no_personal_data_or_keys(backend: Backend) {
    let db = TestDb::new(backend).await;
    let admin = format!("{}{}", random_key(), random_key());
    let env = [
        ("CUSTOMER_LIST_DATABASE_URL", db.url.clone()),
        ("CUSTOMER_LIST_ADMIN_KEY", admin.clone()),
        ("CUSTOMER_LIST_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ];
    let mut child = server(&env).await;
    let base = child.base.clone();
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key.to_owned())
            .json(&body)
            .send()
    };
    let partner: serde_json::Value = post("/v1/partners", &admin, json!({"name": "p"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account: serde_json::Value = post(
        "/v1/accounts",
        &admin,
        json!({"partner_id": partner["partner_id"], "name": "a"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret_email = "zelda.secret-person@private-example.com";
    let body = json!({"account_id": account["account_id"], "first_name": "Zeldaunique", "last_name": "Hiddenname",
        "email": secret_email, "phone": "+1 212 555 0199", "address": "42 Hidden Lane"});
    let created = post("/v1/customers", &admin, body.clone()).await.unwrap();
    assert_eq!(created.status(), 201);
    let duplicate = post("/v1/customers?q=Zeldaunique", &admin, body)
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    let search = client
        .get(format!(
            "{base}/v1/customers?account_id={}&q={secret_email}",
            account["account_id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    child.kill().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = child.log().join("\n");
    assert!(
        text.contains("request"),
        "request logs were captured: {text}"
    );
    for secret in [
        secret_email,
        "Zeldaunique",
        "Hiddenname",
        "2125550199",
        "Hidden Lane",
        admin.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret:?} appears in the logs");
    }
}
