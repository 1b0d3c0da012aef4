//! Tenant isolation, fuzzed: random keys of every kind against random resource ids of
//! every tenant on every endpoint of the OpenAPI document. Never a 2xx outside the key's
//! tenant, never a 5xx. Seeded and bounded (set ISOLATION_FUZZ_REQUESTS to run longer).

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Everything of one tenant: its ids by kind, and its keys by kind.
struct Tenant {
    ids: HashMap<&'static str, Vec<String>>,
    keys: Vec<(&'static str, String)>,
}

async fn tenant(app: &TestApp, n: usize) -> Tenant {
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let product = app
        .post(
            "/v1/products",
            &app.admin_key,
            json!({"name": format!("p{n}"), "partner_id": partner}),
        )
        .await;
    let product_id = product.str("product_id");
    app.activate(&account, &product_id, "two_way").await;
    let product_key = product.str("api_key");
    let customer = app
        .post("/v1/customers", &product_key, json!({"account_id": account, "id": format!("v{n}"), "first_name": "A", "email": format!("t{n}@example.com")}))
        .await;
    let customer_id = customer.str("customer_id");
    let conflict = app
        .post(
            "/v1/customers",
            &product_key,
            json!({"account_id": account, "first_name": "B", "email": format!("t{n}@example.com")}),
        )
        .await;
    let conflict_id = conflict.str("conflict_id");
    let (partner_key_id, partner_key) = app.issue_key("partners", &partner).await;
    let (account_key_id, account_key) = app.issue_key("accounts", &account).await;
    let (spare_key_id, _) = app.issue_key("products", &product_id).await;
    let mut ids = HashMap::new();
    ids.insert("partner_id", vec![partner]);
    ids.insert("account_id", vec![account]);
    ids.insert("product_id", vec![product_id]);
    ids.insert("customer_id", vec![customer_id, format!("v{n}")]);
    ids.insert("conflict_id", vec![conflict_id]);
    ids.insert("key_id", vec![partner_key_id, account_key_id, spare_key_id]);
    ids.insert("delivery_id", vec![format!("msg_x.MP-{n}")]);
    let keys = vec![
        ("partner", partner_key),
        ("account", account_key),
        ("product", product_key),
    ];
    Tenant { ids, keys }
}

on_both_backends!(random_keys_never_reach_another_tenant);

async fn random_keys_never_reach_another_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenants = [tenant(&app, 1).await, tenant(&app, 2).await];
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/v1/") {
            for method in item.as_object().unwrap().keys() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let requests: usize = std::env::var("ISOLATION_FUZZ_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("ISOLATION_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outside_2xx = Vec::new();
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for _ in 0..requests {
        let (method, path) = &operations[rng.gen_range(0..operations.len())];
        let me = rng.gen_range(0..2);
        let (kind, key) = tenants[me].keys[rng.gen_range(0..3)].clone();
        // Fill every path parameter with an id of either tenant (or garbage), noting
        // whether any belongs to the other tenant.
        let mut foreign = false;
        let mut concrete = Vec::new();
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let owner = rng.gen_range(0..3);
                let value = match (owner, tenants[0].ids.get(name)) {
                    (2, _) | (_, None) => format!("nope-{}", rng.gen::<u32>()),
                    (t, Some(_)) => {
                        let choices = &tenants[t].ids[name];
                        foreign |= t != me;
                        choices[rng.gen_range(0..choices.len())].clone()
                    }
                };
                concrete.push(value);
            } else {
                concrete.push(segment.to_owned());
            }
        }
        // Bodies and queries may name the other tenant too; they count where the
        // endpoint reads them.
        let other = 1 - me;
        let pick = |rng: &mut StdRng, name: &str| {
            let t = if rng.gen_bool(0.5) { other } else { me };
            (tenants[t].ids[name][0].clone(), t != me)
        };
        let (account, foreign_account) = pick(&mut rng, "account_id");
        let (partner, foreign_partner) = pick(&mut rng, "partner_id");
        let (from, foreign_from) = pick(&mut rng, "customer_id");
        let reads_account = matches!(
            (method.as_str(), path.as_str()),
            ("GET", "/v1/customers") | ("GET", "/v1/conflicts") | ("POST", "/v1/customers")
        );
        let reads_partner = matches!(
            (method.as_str(), path.as_str()),
            ("GET", "/v1/accounts") | ("POST", "/v1/accounts") | ("POST", "/v1/products")
        );
        let reads_from = path.ends_with("/merge") && path.starts_with("/v1/customers/");
        foreign |= (reads_account && foreign_account)
            || (reads_partner && foreign_partner)
            || (reads_from && foreign_from);
        let mut url = concrete.join("/");
        url.push_str(&format!("?account_id={account}&partner_id={partner}"));
        let body = json!({
            "name": "n", "partner_id": partner, "account_id": account, "sync": "two_way",
            "first_name": format!("F{}", rng.gen::<u16>()), "vendor_customer_id": format!("w{}", rng.gen::<u16>()),
            "from": from, "customers": [{"account_id": account, "first_name": "x"}],
            "associations": [{"customer_id": from, "vendor_customer_id": "z"}],
        });
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let send_body =
            matches!(method, Method::POST | Method::PUT | Method::PATCH).then_some(body);
        let r = app.call(method.clone(), &url, Some(&key), send_body).await;
        *counts.entry(r.status).or_default() += 1;
        assert!(
            r.status < 500,
            "{kind} key: {method} {url} → {} {}",
            r.status,
            r.body
        );
        // A partner may activate any product of the catalogue on its own account, and
        // bulk endpoints answer 200 with per-item results (checked below): those 2xx
        // are in scope by design.
        let catalogue =
            path.contains("/products/{product_id}") && path.starts_with("/v1/accounts/");
        let bulk = path.ends_with("/batch") || path.ends_with("/associations");
        if (200..300).contains(&r.status) && foreign && !catalogue && !bulk {
            outside_2xx.push(format!("{kind} key: {method} {url} → {}", r.status));
        }
        if bulk && (200..300).contains(&r.status) {
            // An item succeeds only on the key's own tenant: the batch's account, or
            // the associated customer.
            let own = if path.ends_with("/batch") {
                !foreign_account
            } else {
                !foreign_from
            };
            for item in r.body["results"].as_array().unwrap() {
                let ok = (200..300).contains(&item["status"].as_u64().unwrap());
                if ok && !own {
                    outside_2xx.push(format!("{kind} key: {method} {url} item {item}"));
                }
            }
        }
    }
    assert!(
        outside_2xx.is_empty(),
        "2xx outside the key's tenant:\n{}",
        outside_2xx.join("\n")
    );
    // The run exercised refusals and successes alike.
    assert!(counts.keys().any(|s| (200..300).contains(s)), "{counts:?}");
    assert!(
        counts.contains_key(&404) && counts.contains_key(&403),
        "{counts:?}"
    );
}
