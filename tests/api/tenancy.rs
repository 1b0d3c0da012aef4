//! The tenancy matrix of SPEC section 2 over every endpoint of section 7: each key kind
//! in scope (2xx), out of scope (403), of another tenant (404), and no key (401).

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Two tenants, each a partner with an account and a product activated on it, and a key
/// of every kind.
struct World {
    app: TestApp,
    keys: HashMap<&'static str, String>,
    p1: String,
    a1: String,
    m1: String,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let app = TestApp::spawn(backend).await;
        let mut keys = HashMap::new();
        keys.insert("admin", app.admin_key.clone());
        let mut ids = Vec::new();
        for n in ["1", "2"] {
            let p = app.create_partner().await;
            let a = app.create_account(&p).await;
            let m = app.create_product(Some(&p)).await;
            let m_id = m["product_id"].as_str().unwrap().to_owned();
            app.activate(&a, &m_id, "two_way").await;
            let (_, partner_key) = app.issue_key("partners", &p).await;
            let (_, account_key) = app.issue_key("accounts", &a).await;
            keys.insert(leak(format!("partner{n}")), partner_key);
            keys.insert(leak(format!("account{n}")), account_key);
            keys.insert(
                leak(format!("product{n}")),
                m["api_key"].as_str().unwrap().to_owned(),
            );
            ids.push((p, a, m_id));
        }
        let (p1, a1, m1) = ids.swap_remove(0);
        Self {
            app,
            keys,
            p1,
            a1,
            m1,
        }
    }

    /// Sends the request as `who` (or with no key) and asserts the status.
    async fn expect(
        &self,
        who: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) {
        let key = (who != "none").then(|| self.keys[who].as_str());
        let r = self.app.call(method.clone(), path, key, body).await;
        assert_eq!(r.status, status, "{who} {method} {path}: {}", r.body);
        if status >= 400 {
            let code = match status {
                401 => "unauthorized",
                403 => "forbidden",
                _ => "not_found",
            };
            r.expect_problem(status, code);
        }
    }

    /// Asserts a whole row of the matrix for a request that can be repeated.
    async fn row(&self, method: Method, path: &str, body: Option<Value>, expected: &[(&str, u16)]) {
        for (who, status) in expected {
            self.expect(who, method.clone(), path, body.clone(), *status)
                .await;
        }
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

on_both_backends!(tenancy_matrix, revoked_and_unknown_keys_are_unauthorized);

async fn tenancy_matrix(backend: Backend) {
    let w = World::new(backend).await;
    let (p1, a1, m1) = (w.p1.clone(), w.a1.clone(), w.m1.clone());
    use Method as M;

    w.row(
        M::POST,
        "/v1/partners",
        Some(json!({"name": "N"})),
        &[
            ("admin", 201),
            ("partner1", 403),
            ("account1", 403),
            ("product1", 403),
            ("none", 401),
        ],
    )
    .await;

    let managed: &[(&str, u16)] = &[
        ("account1", 403),
        ("product1", 403),
        ("partner2", 404),
        ("none", 401),
    ];
    let rows: Vec<(Method, String, Option<Value>, u16)> = vec![
        (M::POST, format!("/v1/partners/{p1}/keys"), None, 201),
        (
            M::POST,
            "/v1/accounts".into(),
            Some(json!({"partner_id": p1, "name": "N"})),
            201,
        ),
        (M::GET, format!("/v1/accounts?partner_id={p1}"), None, 200),
        (M::GET, format!("/v1/accounts/{a1}"), None, 200),
        (
            M::POST,
            "/v1/products".into(),
            Some(json!({"partner_id": p1, "name": "N"})),
            201,
        ),
        (
            M::PUT,
            format!("/v1/accounts/{a1}/products/{m1}"),
            Some(json!({"sync": "two_way"})),
            200,
        ),
        (M::GET, format!("/v1/accounts/{a1}/products"), None, 200),
        (M::POST, format!("/v1/accounts/{a1}/keys"), None, 201),
        (M::POST, format!("/v1/products/{m1}/keys"), None, 201),
    ];
    for (method, path, body, ok) in rows {
        let mut expected = vec![("admin", ok), ("partner1", ok)];
        expected.extend_from_slice(managed);
        w.row(method, &path, body, &expected).await;
    }

    // A product may read and change itself; another tenant's product may not.
    for (method, body) in [(M::GET, None), (M::PATCH, Some(json!({"name": "Renamed"})))] {
        w.row(
            method,
            &format!("/v1/products/{m1}"),
            body,
            &[
                ("admin", 200),
                ("partner1", 200),
                ("product1", 200),
                ("account1", 403),
                ("partner2", 404),
                ("product2", 404),
                ("none", 401),
            ],
        )
        .await;
    }

    // Deactivation: each success needs its own activation.
    for (who, status) in [
        ("admin", 204),
        ("partner1", 204),
        ("account1", 403),
        ("product1", 403),
        ("partner2", 404),
        ("none", 401),
    ] {
        let m = w.app.create_product(None).await;
        let m = m["product_id"].as_str().unwrap();
        w.app.activate(&a1, m, "one_way").await;
        w.expect(
            who,
            M::DELETE,
            &format!("/v1/accounts/{a1}/products/{m}"),
            None,
            status,
        )
        .await;
    }

    // Revocation: the admin, the owning partner and the key's own account may revoke an
    // account key; other keys that may revoke keys in general get 404.
    for (who, status) in [
        ("admin", 204),
        ("partner1", 204),
        ("account1", 204),
        ("product1", 404),
        ("partner2", 404),
        ("account2", 404),
        ("none", 401),
    ] {
        let (key_id, _) = w.app.issue_key("accounts", &a1).await;
        w.expect(who, M::DELETE, &format!("/v1/keys/{key_id}"), None, status)
            .await;
    }
}

async fn revoked_and_unknown_keys_are_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.create_partner().await;
    let (key_id, key) = app.issue_key("partners", &p).await;
    app.get("/v1/accounts", &key).await.expect(200);

    app.call(
        Method::DELETE,
        &format!("/v1/keys/{key_id}"),
        Some(&key),
        None,
    )
    .await
    .expect(204);
    app.get("/v1/accounts", &key)
        .await
        .expect_problem(401, "unauthorized");
    app.get("/v1/accounts", "cl_not-a-key")
        .await
        .expect_problem(401, "unauthorized");
    app.call(Method::GET, "/v1/accounts", None, None)
        .await
        .expect_problem(401, "unauthorized");
    let basic = app
        .client
        .get(format!("{}/v1/accounts", app.base))
        .header("authorization", format!("Basic {}", app.admin_key))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

/// Replicas keep keys in memory for a moment (`storage::cache`): a key revoked through
/// one server is refused by that server at once and by every other within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_fails_on_every_server_within_a_second_postgres() {
    use crate::support::{replicas, Replicas};
    use std::time::{Duration, Instant};
    let Replicas {
        db: _db,
        admin,
        one: revoking,
        two: other,
    } = replicas(&[]).await;
    let client = reqwest::Client::new();
    let send = |method: Method, base: &str, path: &str, key: &str| {
        let request = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(key);
        match method {
            Method::POST => request.json(&json!({"name": "p"})),
            _ => request,
        }
        .send()
    };
    let created: Value = send(Method::POST, &revoking.base, "/v1/partners", &admin)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let partner = created["partner_id"].as_str().unwrap();
    let issued: Value = send(
        Method::POST,
        &revoking.base,
        &format!("/v1/partners/{partner}/keys"),
        &admin,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let (key_id, key) = (
        issued["key_id"].as_str().unwrap(),
        issued["api_key"].as_str().unwrap(),
    );
    for base in [&revoking.base, &other.base] {
        let status = send(Method::GET, base, "/v1/accounts", key)
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "the key works on every server first");
    }

    let revoked = send(
        Method::DELETE,
        &revoking.base,
        &format!("/v1/keys/{key_id}"),
        key,
    )
    .await
    .unwrap();
    assert_eq!(revoked.status(), 204);
    let at = Instant::now();
    let here = send(Method::GET, &revoking.base, "/v1/accounts", key)
        .await
        .unwrap();
    assert_eq!(here.status(), 401, "refused at once where it was revoked");
    loop {
        let there = send(Method::GET, &other.base, "/v1/accounts", key)
            .await
            .unwrap();
        if there.status() == 401 {
            break;
        }
        assert_eq!(there.status(), 200);
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "the other server still took the revoked key after {:?}",
            at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
