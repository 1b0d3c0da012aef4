//! The OpenAPI document: served, complete, and every operation it lists is served.

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// Every endpoint of the contract (SPEC sections 4 to 8), as (method, path).
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v1/customers"),
    ("get", "/v1/customers"),
    ("get", "/v1/customers/{customer_id}"),
    ("patch", "/v1/customers/{customer_id}"),
    ("delete", "/v1/customers/{customer_id}"),
    ("put", "/v1/customers/{customer_id}/vendor-id"),
    ("post", "/v1/customers/associations"),
    ("post", "/v1/customers/batch"),
    ("get", "/v1/customers/export"),
    ("get", "/v1/conflicts"),
    ("post", "/v1/conflicts/{conflict_id}/merge"),
    ("post", "/v1/conflicts/{conflict_id}/keep"),
    ("delete", "/v1/conflicts/{conflict_id}"),
    ("post", "/v1/customers/{customer_id}/merge"),
    ("get", "/v1/events"),
    ("get", "/v1/events/head"),
    (
        "post",
        "/v1/accounts/{account_id}/products/{product_id}/resync",
    ),
    ("get", "/v1/products/{product_id}/deliveries"),
    ("post", "/v1/deliveries/{delivery_id}/retry"),
    ("post", "/v1/products/{product_id}/webhook/enable"),
    ("post", "/v1/products/{product_id}/webhook/rotate-secret"),
    ("post", "/v1/partners"),
    ("post", "/v1/accounts"),
    ("get", "/v1/accounts"),
    ("get", "/v1/accounts/{account_id}"),
    ("post", "/v1/products"),
    ("get", "/v1/products/{product_id}"),
    ("patch", "/v1/products/{product_id}"),
    ("put", "/v1/accounts/{account_id}/products/{product_id}"),
    ("delete", "/v1/accounts/{account_id}/products/{product_id}"),
    ("get", "/v1/accounts/{account_id}/products"),
    ("post", "/v1/partners/{partner_id}/keys"),
    ("post", "/v1/accounts/{account_id}/keys"),
    ("post", "/v1/products/{product_id}/keys"),
    ("delete", "/v1/keys/{key_id}"),
    ("get", "/v1/partners"),
    ("get", "/v1/products"),
    ("get", "/v1/keys"),
    ("get", "/v1/me"),
    ("get", "/v1/customers/{customer_id}/consent"),
    ("post", "/v1/customers/{customer_id}/erase"),
    ("get", "/v1/customers/{customer_id}/export"),
    ("get", "/v1/erasures/{erasure_id}"),
    ("get", "/v1/erasures"),
    ("post", "/v1/imports"),
    ("get", "/v1/imports"),
    ("get", "/v1/imports/{import_id}"),
    ("get", "/v1/imports/{import_id}/errors"),
    ("delete", "/v1/suppressions"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

on_both_backends!(the_document_covers_every_route_and_every_route_is_served);

async fn the_document_covers_every_route_and_every_route_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    for (method, path) in CONTRACT {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        documented.len(),
        CONTRACT.len(),
        "no undocumented extras: {documented:?}"
    );

    // Every documented operation is served: with made-up ids it may be refused, but never
    // as an unknown route or method.
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "X-1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        let r = app
            .call(method.clone(), &concrete, Some(&app.admin_key), body)
            .await;
        assert_ne!(r.status, 405, "{method} {path}");
        assert!(
            !(r.status == 404 && r.body["detail"] == "route not found"),
            "{method} {path} is not served"
        );
        assert!(r.status < 500, "{method} {path}: {}", r.body);
    }

    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(
        html.contains("swagger-ui-bundle.js") && !html.contains("https://"),
        "assets come from the binary"
    );
    let bundle = app
        .client
        .get(format!("{}/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
}
