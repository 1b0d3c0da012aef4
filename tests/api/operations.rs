//! SPEC section 8 over HTTP: rate limits, CORS, metrics and logs.

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    rate_limits_answer_429_with_retry_after,
    cors_allows_only_configured_origins
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
