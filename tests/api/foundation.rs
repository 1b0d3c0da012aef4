//! Sections 3 and 7 over HTTP: partners, accounts, products, activations and keys, the
//! error format, bad input, and health.

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    accounts_are_created_read_and_paged,
    products_show_secrets_only_at_creation,
    activations_are_created_changed_and_listed,
    bad_input_names_every_field_and_stores_nothing,
    oversized_and_non_json_bodies_are_refused,
    health_routes_and_fallbacks,
    partner_keys_act_within_their_partner,
);

async fn accounts_are_created_read_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.create_partner().await;
    let r = app
        .post(
            "/v1/accounts",
            &app.admin_key,
            json!({"partner_id": p, "name": " Salon "}),
        )
        .await;
    r.expect(201);
    let id = r.str("account_id");
    assert!(id.starts_with("AG-"));
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/accounts/{id}").as_str())
    );
    assert_eq!(r.body["name"], "Salon");
    assert_eq!(r.body["default_region"], "US");
    assert_eq!(r.body["dedupe_policy"], "email_or_phone");
    assert_eq!(r.body["partner_id"], p);
    let created = r.str("created");
    assert!(created.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(&created).is_ok());

    let got = app.get(&format!("/v1/accounts/{id}"), &app.admin_key).await;
    got.expect(200);
    assert_eq!(got.body, r.body);

    let custom =
        json!({"partner_id": p, "name": "Barber", "default_region": "ca", "dedupe_policy": "none"});
    let r = app.post("/v1/accounts", &app.admin_key, custom).await;
    r.expect(201);
    assert_eq!(r.body["default_region"], "CA");
    assert_eq!(r.body["dedupe_policy"], "none");

    for _ in 0..3 {
        app.create_account(&p).await;
    }
    let other = app.create_partner().await;
    app.create_account(&other).await;

    let mut seen = Vec::new();
    let mut path = format!("/v1/accounts?partner_id={p}&page_size=2");
    loop {
        let page = app.get(&path, &app.admin_key).await;
        page.expect(200);
        for a in page.body["accounts"].as_array().unwrap() {
            assert_eq!(a["partner_id"], p);
            seen.push(a["account_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page.body["has_more"], true);
                path = format!("/v1/accounts?partner_id={p}&page_size=2&cursor={cursor}");
            }
            None => {
                assert_eq!(page.body["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "no account repeats across pages");

    let all = app.get("/v1/accounts", &app.admin_key).await;
    assert_eq!(all.body["accounts"].as_array().unwrap().len(), 6);
    app.get("/v1/accounts?page_size=0", &app.admin_key)
        .await
        .expect_problem(400, "validation_failed");
    let fields = app
        .get("/v1/accounts?cursor=garbage", &app.admin_key)
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["cursor"]);
    app.get(
        &format!("/v1/accounts/AG-{}", uuid::Uuid::now_v7()),
        &app.admin_key,
    )
    .await
    .expect_problem(404, "not_found");
}

async fn products_show_secrets_only_at_creation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"name": "CRM", "webhook_url": "https://crm.example.com/hooks"});
    let r = app.post("/v1/products", &app.admin_key, body).await;
    r.expect(201);
    let id = r.str("product_id");
    assert!(id.starts_with("MP-"));
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/products/{id}").as_str())
    );
    let secret = r.str("webhook_secret");
    assert!(secret.starts_with("whsec_"));
    let api_key = r.str("api_key");
    assert!(api_key.len() >= 43);
    assert_eq!(r.body["webhook_status"], "enabled");
    assert!(r.body["partner_id"].is_null());

    // The product's own key works at once and reads itself.
    let own = app.get(&format!("/v1/products/{id}"), &api_key).await;
    own.expect(200);
    let text = own.body.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&api_key),
        "secrets leak: {text}"
    );
    assert!(own.body.get("webhook_secret").is_none() && own.body.get("api_key").is_none());
    assert_eq!(own.body["webhook_url"], "https://crm.example.com/hooks");
    assert!(own.body["webhook_disabled_reason"].is_null());

    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/products/{id}"),
            Some(&api_key),
            Some(json!({"webhook_url": null})),
        )
        .await;
    patched.expect(200);
    assert!(patched.body["webhook_url"].is_null());
    assert_eq!(patched.body["name"], "CRM");
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/v1/products/{id}"),
            Some(&api_key),
            Some(json!({"name": "CRM 2", "webhook_url": "http://h.example/x"})),
        )
        .await;
    renamed.expect(200);
    assert_eq!(renamed.body["name"], "CRM 2");
    let fields = app
        .call(
            Method::PATCH,
            &format!("/v1/products/{id}"),
            Some(&api_key),
            Some(json!({"name": null, "webhook_url": "ftp://x"})),
        )
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["webhook_url", "name"]);
    let after = app.get(&format!("/v1/products/{id}"), &api_key).await;
    assert_eq!(
        after.body["name"], "CRM 2",
        "a refused patch changes nothing"
    );
}

async fn activations_are_created_changed_and_listed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.create_partner().await;
    let a = app.create_account(&p).await;
    let m = app.create_product(None).await;
    let m = m["product_id"].as_str().unwrap();
    let path = format!("/v1/accounts/{a}/products/{m}");
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&app.admin_key),
            Some(json!({"sync": "two_way"})),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["sync"], "two_way");
    let r2 = app
        .call(
            Method::PUT,
            &path,
            Some(&app.admin_key),
            Some(json!({"sync": "one_way"})),
        )
        .await;
    r2.expect(200);
    assert_eq!(r2.body["sync"], "one_way");
    assert_eq!(r2.body["created"], r.body["created"]);
    let fields = app
        .call(
            Method::PUT,
            &path,
            Some(&app.admin_key),
            Some(json!({"sync": "sideways"})),
        )
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["sync"]);

    let list = app
        .get(&format!("/v1/accounts/{a}/products"), &app.admin_key)
        .await;
    list.expect(200);
    let activations = list.body["activations"].as_array().unwrap();
    assert_eq!(activations.len(), 1);
    assert_eq!(activations[0]["product_id"], m);
    assert_eq!(activations[0]["sync"], "one_way");

    let missing = format!("/v1/accounts/{a}/products/MP-missing");
    app.call(
        Method::PUT,
        &missing,
        Some(&app.admin_key),
        Some(json!({"sync": "two_way"})),
    )
    .await
    .expect_problem(404, "not_found");
    app.call(Method::DELETE, &path, Some(&app.admin_key), None)
        .await
        .expect(204);
    app.call(Method::DELETE, &path, Some(&app.admin_key), None)
        .await
        .expect_problem(404, "not_found");
    let list = app
        .get(&format!("/v1/accounts/{a}/products"), &app.admin_key)
        .await;
    assert!(list.body["activations"].as_array().unwrap().is_empty());
}

async fn bad_input_names_every_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.create_partner().await;
    let key = app.admin_key.clone();
    let cases = [
        (
            json!({"partner_id": p, "name": "ok", "nickname": "x"}),
            vec!["nickname"],
        ),
        (json!({"partner_id": p, "name": 5}), vec!["name"]),
        (
            json!({"partner_id": p, "name": "x".repeat(201)}),
            vec!["name"],
        ),
        (json!({"partner_id": p, "name": "   "}), vec!["name"]),
        (
            json!({"partner_id": p, "name": "ok", "default_region": "ZZ"}),
            vec!["default_region"],
        ),
        (
            json!({"partner_id": p, "name": "ok", "default_region": 1}),
            vec!["default_region"],
        ),
        (
            json!({"partner_id": p, "name": "ok", "dedupe_policy": "phone"}),
            vec!["dedupe_policy"],
        ),
        (
            json!({"name": ["a"], "default_region": "USA", "extra": 1}),
            vec!["partner_id", "name", "default_region", "extra"],
        ),
    ];
    for (body, expected) in cases {
        let fields = app
            .post("/v1/accounts", &key, body.clone())
            .await
            .expect_problem(400, "validation_failed");
        assert_eq!(fields, expected, "for {body}");
    }
    for raw in [&b"{\"name\": "[..], b"[1, 2]", b"null", b"\"text\""] {
        let r = app
            .post_raw("/v1/accounts", &key, "application/json", raw.to_vec())
            .await;
        let fields = r.expect_problem(400, "validation_failed");
        assert_eq!(fields, ["body"]);
    }
    let product = app
        .post(
            "/v1/products",
            &key,
            json!({"name": "x", "webhook_url": "javascript:alert(1)"}),
        )
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(product, ["webhook_url"]);
    let partner = app
        .post("/v1/partners", &key, json!({}))
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(partner, ["name"]);

    let accounts = app.get("/v1/accounts", &key).await;
    assert_eq!(accounts.body["accounts"], json!([]), "nothing was stored");
    // No problem ever carries SQL or internals.
    let r = app
        .post(
            "/v1/accounts",
            &key,
            json!({"partner_id": "x'; DROP TABLE accounts; --", "name": "n"}),
        )
        .await;
    assert_eq!(r.expect_problem(400, "validation_failed"), ["partner_id"]);
    assert!(!r.body.to_string().to_lowercase().contains("select"));
}

async fn oversized_and_non_json_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = format!("{{\"name\": \"{}\"}}", "a".repeat(1024 * 1024 + 10));
    app.post_raw(
        "/v1/partners",
        &app.admin_key,
        "application/json",
        big.into_bytes(),
    )
    .await
    .expect_problem(413, "payload_too_large");
    app.post_raw(
        "/v1/partners",
        &app.admin_key,
        "text/plain",
        b"{\"name\":\"x\"}".to_vec(),
    )
    .await
    .expect_problem(415, "unsupported_media_type");
    app.post_raw(
        "/v1/partners",
        &app.admin_key,
        "application/json; charset=utf-8",
        b"{\"name\":\"x\"}".to_vec(),
    )
    .await
    .expect(201);
}

async fn health_routes_and_fallbacks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    health.expect(200);
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    ready.expect(200);
    assert_eq!(ready.body["status"], "ready");
    app.get("/v1/nothing-here", &app.admin_key)
        .await
        .expect_problem(404, "not_found");
    app.call(Method::DELETE, "/v1/partners", Some(&app.admin_key), None)
        .await
        .expect_problem(405, "method_not_allowed");
    let traced = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "req-123");
    let fresh = app.call(Method::GET, "/healthz", None, None).await;
    assert!(fresh
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));
    app.stop().await;
}

async fn partner_keys_act_within_their_partner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.create_partner().await;
    let other = app.create_partner().await;
    app.create_account(&other).await;
    let (_, key) = app.issue_key("partners", &p).await;
    // Without a partner_id, a partner creates and lists within its own partner.
    let product = app
        .post("/v1/products", &key, json!({"name": "Own app"}))
        .await;
    product.expect(201);
    assert_eq!(product.body["partner_id"], p);
    let account = app
        .post(
            "/v1/accounts",
            &key,
            json!({"partner_id": p, "name": "Mine"}),
        )
        .await;
    account.expect(201);
    let list = app.get("/v1/accounts", &key).await;
    let listed = list.body["accounts"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["account_id"], account.body["account_id"]);
    // A partner may activate any existing product (the vendors' catalogue) on its account.
    let vendor = app.create_product(None).await;
    let path = format!(
        "/v1/accounts/{}/products/{}",
        account.str("account_id"),
        vendor["product_id"].as_str().unwrap()
    );
    app.call(
        Method::PUT,
        &path,
        Some(&key),
        Some(json!({"sync": "one_way"})),
    )
    .await
    .expect(201);
}
