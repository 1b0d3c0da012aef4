//! SPEC section 11 on both backends: a product activated on an account that already has
//! customers receives all of them (as `customer.snapshot`) while others write, ends on the
//! hub's newest version of each and never receives an older version after a newer; live
//! changes go first; resync and deactivation; the snapshot handshake of a product without
//! a webhook (head, then the list, then the feed).

use crate::on_both_backends;
use crate::support::{loopback_hooks, receiver, Backend, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

on_both_backends!(
    a_product_activated_mid_traffic_ends_on_every_newest_version,
    live_changes_go_before_snapshots_and_resync_sends_all_again,
    deactivating_stops_a_backfill,
    one_way_to_two_way_backfills_and_backfill_false_opts_out,
    an_activation_is_stored_with_its_backfill_or_not_at_all,
    the_head_list_feed_handshake_misses_nothing,
);

const FIELDS: [&str; 6] = [
    "version",
    "first_name",
    "last_name",
    "email",
    "phone",
    "tags",
];

/// An account with a writing product and `n` customers (made in batches).
struct Account {
    app: TestApp,
    account: String,
    writer: String,
    writer_key: String,
    ids: Vec<String>,
}

async fn account_with(backend: Backend, n: usize) -> Account {
    let app = TestApp::spawn_with(backend, loopback_hooks).await;
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let writer = app.create_product(Some(&partner)).await;
    let writer_key = writer["api_key"].as_str().unwrap().to_owned();
    let writer = writer["product_id"].as_str().unwrap().to_owned();
    app.activate(&account, &writer, "two_way").await;
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(500) {
        let customers: Vec<Value> = (start..n.min(start + 500))
            .map(|i| {
                json!({"account_id": account, "first_name": format!("Client{i}"),
                       "last_name": "Backfill", "email": format!("client{i}@example.com"),
                       "tags": ["existing"]})
            })
            .collect();
        let r = app
            .post(
                "/v1/customers/batch",
                &writer_key,
                json!({ "customers": customers }),
            )
            .await;
        r.expect(200);
        for result in r.body["results"].as_array().unwrap() {
            assert_eq!(result["status"], json!(201), "{result}");
            ids.push(
                result["customer"]["customer_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    Account {
        app,
        account,
        writer,
        writer_key,
        ids,
    }
}

/// What a product holds after applying what it received, in arrival order; fails if a
/// customer's version ever went back.
fn product_view(received: &[testkit::Received]) -> (HashMap<String, Value>, usize) {
    let mut view: HashMap<String, Value> = HashMap::new();
    let mut snapshots = 0;
    for r in received.iter().filter(|r| r.answered < 300) {
        let kind = r.json["type"].as_str().unwrap_or_default();
        let data = &r.json["data"];
        let id = data["contact_id"].as_str().unwrap().to_owned();
        let version = data["version"].as_i64().unwrap();
        if let Some(held) = view.get(&id) {
            let before = held["version"].as_i64().unwrap();
            assert!(
                version >= before,
                "{id}: {kind} of version {version} arrived after version {before}"
            );
        }
        if kind == "customer.snapshot" {
            snapshots += 1;
        }
        match kind {
            "customer.deleted" | "customer.erased" => {
                view.remove(&id);
            }
            _ => {
                view.insert(id, data.clone());
            }
        }
    }
    (view, snapshots)
}

/// Every live customer of the account as the hub has it, by id.
async fn hub_view(app: &TestApp, account: &str, key: &str) -> HashMap<String, Value> {
    let mut all = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/customers?account_id={account}&page_size=500");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, key).await;
        r.expect(200);
        for c in r.body["customers"].as_array().unwrap() {
            all.insert(c["customer_id"].as_str().unwrap().to_owned(), c.clone());
        }
        match r.body["next_cursor"].as_str() {
            Some(next) if r.body["has_more"] == json!(true) => cursor = Some(next.to_owned()),
            _ => return all,
        }
    }
}

/// The differences between the hub's customers and a product's, field by field.
fn differences(hub: &HashMap<String, Value>, product: &HashMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (id, record) in hub {
        match product.get(id) {
            None => out.push(format!("{id} missing")),
            Some(held) => {
                for field in FIELDS {
                    if record[field] != held[field] {
                        out.push(format!(
                            "{id}.{field}: hub {} product {}",
                            record[field], held[field]
                        ));
                    }
                }
            }
        }
    }
    for id in product.keys().filter(|id| !hub.contains_key(*id)) {
        out.push(format!("{id} held but not live"));
    }
    out
}

/// A product with a webhook: its id, key and webhook secret.
async fn new_hooked_product(app: &TestApp, url: &str) -> (String, String, String) {
    let r = app
        .post(
            "/v1/products",
            &app.admin_key,
            json!({"name": "Loyalty", "webhook_url": url}),
        )
        .await;
    r.expect(201);
    (
        r.str("product_id"),
        r.str("api_key"),
        r.str("webhook_secret"),
    )
}

async fn activation(app: &TestApp, account: &str, product: &str) -> Value {
    let r = app
        .get(&format!("/v1/accounts/{account}/products"), &app.admin_key)
        .await;
    r.expect(200);
    r.body["activations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["product_id"] == json!(product))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The product's activation once its backfill completed (within `seconds`).
async fn completed(a: &Account, product: &str, seconds: u64) -> Value {
    a.app
        .wait_for(Duration::from_secs(seconds), || async {
            let now = activation(&a.app, &a.account, product).await;
            (now["backfill"]["status"] == json!("completed")).then_some(now)
        })
        .await
}

async fn a_product_activated_mid_traffic_ends_on_every_newest_version(backend: Backend) {
    let a = account_with(backend, 3_000).await;
    let hooks = receiver().await;
    let (product, product_key, secret) = new_hooked_product(&a.app, &hooks.url).await;
    // Another product writes meanwhile: 200 updates and 100 creates.
    let writes = {
        let (app_base, key, account, ids) = (
            a.app.base.clone(),
            a.writer_key.clone(),
            a.account.clone(),
            a.ids.clone(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..300 {
                let request = if i % 3 == 2 {
                    client.post(format!("{app_base}/v1/customers")).json(
                        &json!({"account_id": account, "first_name": format!("New{i}"), "last_name": "Meanwhile"}),
                    )
                } else {
                    let id = &ids[(i * 7) % ids.len()];
                    client
                        .patch(format!("{app_base}/v1/customers/{id}"))
                        .json(&json!({"last_name": format!("Changed{i}")}))
                };
                let status = request.bearer_auth(&key).send().await.unwrap().status();
                assert!(status.is_success(), "write {i}: {status}");
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let r = a
        .app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/accounts/{}/products/{product}", a.account),
            Some(&a.app.admin_key),
            Some(json!({"sync": "two_way"})),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["backfill"]["status"], json!("running"), "{}", r.body);
    writes.await.unwrap();
    let hub = hub_view(&a.app, &a.account, &product_key).await;
    assert_eq!(hub.len(), 3_100);
    let started = Instant::now();
    let (view, snapshots) = loop {
        let (view, snapshots) = product_view(&hooks.received());
        let left = differences(&hub, &view);
        if left.is_empty() {
            break (view, snapshots);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} differences, e.g. {:?}",
            left.len(),
            &left[..left.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view.len(), 3_100);
    let done = completed(&a, &product, 30).await;
    assert_eq!(
        done["backfill"]["sent"],
        json!(snapshots),
        "sent counts the snapshots delivered"
    );
    assert!(
        snapshots >= 2_800 && snapshots <= 3_000,
        "{snapshots} snapshots"
    );
    assert!(done["backfill"]["completed"].is_string());
    hooks.assert_all_signed(&secret);
}

async fn live_changes_go_before_snapshots_and_resync_sends_all_again(backend: Backend) {
    let a = account_with(backend, 3_000).await;
    let hooks = receiver().await;
    let (product, _, _) = new_hooked_product(&a.app, &hooks.url).await;
    a.app.activate(&a.account, &product, "two_way").await;
    // While snapshots are pending, a live change to that product goes first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = &a.ids[2_999];
    let changed = Instant::now();
    a.app
        .patch(
            &format!("/v1/customers/{id}"),
            &a.writer_key,
            json!({"first_name": "Urgent"}),
        )
        .await
        .expect(200);
    let got = hooks
        .wait_until(Duration::from_secs(5), |received| {
            received
                .iter()
                .any(|r| r.json["type"] == json!("customer.updated"))
        })
        .await;
    let arrived = changed.elapsed();
    assert!(
        got.iter()
            .any(|r| r.json["type"] == json!("customer.updated")),
        "the live change arrived"
    );
    assert!(
        arrived < Duration::from_secs(1),
        "live change took {arrived:?}"
    );
    let running = activation(&a.app, &a.account, &product).await;
    let sent = running["backfill"]["sent"].as_i64().unwrap();
    assert!(
        running["backfill"]["status"] == json!("running") && sent < 3_000,
        "snapshots were still pending when it arrived: {running}"
    );

    // Resync while one runs answers the running one.
    let again = a
        .app
        .post(
            &format!("/v1/accounts/{}/products/{product}/resync", a.account),
            &a.app.admin_key,
            json!({}),
        )
        .await;
    again.expect(202);
    assert_eq!(
        again.body["backfill"]["started"],
        running["backfill"]["started"]
    );
    let first = completed(&a, &product, 60).await;
    // The receiver lost its data: a resync sends every customer again.
    hooks.clear();
    let resync = a
        .app
        .post(
            &format!("/v1/accounts/{}/products/{product}/resync", a.account),
            &a.app.admin_key,
            json!({}),
        )
        .await;
    resync.expect(202);
    assert_ne!(
        resync.body["backfill"]["started"],
        first["backfill"]["started"]
    );
    let done = completed(&a, &product, 60).await;
    assert_eq!(done["backfill"]["sent"], json!(3_000));
    let (view, snapshots) = product_view(&hooks.received());
    assert_eq!((view.len(), snapshots), (3_000, 3_000));
    assert_eq!(view[id.as_str()]["first_name"], json!("Urgent"));
}

async fn deactivating_stops_a_backfill(backend: Backend) {
    let a = account_with(backend, 3_000).await;
    let hooks = receiver().await;
    let (product, _, _) = new_hooked_product(&a.app, &hooks.url).await;
    a.app.activate(&a.account, &product, "two_way").await;
    hooks
        .wait_until(Duration::from_secs(10), |r| r.len() >= 50)
        .await;
    let r = a
        .app
        .delete(
            &format!("/v1/accounts/{}/products/{product}", a.account),
            &a.app.admin_key,
        )
        .await;
    assert_eq!(r.status, 204);
    // What was in flight may still land; then nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = hooks.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = hooks.received().len();
    assert_eq!(settled, later, "no snapshot after the deactivation settled");
    assert!(later < 3_000, "the backfill stopped ({later} sent)");
}

/// A backfill starts when a product with a webhook becomes two-way, from one-way too, and
/// not with `backfill: false`; a resync is for the admin, partner or the product itself,
/// and only for a product with a webhook.
async fn one_way_to_two_way_backfills_and_backfill_false_opts_out(backend: Backend) {
    let a = account_with(backend, 300).await;
    let hooks = receiver().await;
    let (product, key, _) = new_hooked_product(&a.app, &hooks.url).await;
    let put = |product: String, body: Value| {
        let a = &a;
        async move {
            let path = format!("/v1/accounts/{}/products/{product}", a.account);
            a.app
                .call(
                    reqwest::Method::PUT,
                    &path,
                    Some(&a.app.admin_key),
                    Some(body),
                )
                .await
        }
    };
    let r = put(product.clone(), json!({"sync": "one_way"})).await;
    r.expect(201);
    assert_eq!(r.body["backfill"]["status"], json!("none"), "{}", r.body);
    let r = put(product.clone(), json!({"sync": "two_way"})).await;
    r.expect(200);
    assert_eq!(r.body["backfill"]["status"], json!("running"), "{}", r.body);
    let done = completed(&a, &product, 60).await;
    assert_eq!(done["backfill"]["sent"], json!(300));
    assert_eq!(product_view(&hooks.received()).1, 300);

    let quiet = receiver().await;
    let (other, other_key, _) = new_hooked_product(&a.app, &quiet.url).await;
    let r = put(other.clone(), json!({"sync": "two_way", "backfill": false})).await;
    r.expect(201);
    assert_eq!(r.body["backfill"]["status"], json!("none"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(quiet.received().is_empty(), "opted out: nothing sent");

    let resync = |product: &str| format!("/v1/accounts/{}/products/{product}/resync", a.account);
    a.app
        .post(&resync(&product), &key, json!({}))
        .await
        .expect(202);
    a.app
        .post(&resync(&product), &other_key, json!({}))
        .await
        .expect_problem(404, "not_found");
    a.app
        .post(&resync(&a.writer), &a.app.admin_key, json!({}))
        .await
        .expect_problem(409, "resync_refused");
}

/// The activation and its backfill are one write: when the backfill cannot be stored
/// (here a trigger refuses it, as a database going down between the two would), the
/// activation is not stored either, so the caller's retry starts the backfill. Were the
/// activation kept, the retry would find the product two-way already and the account's
/// existing customers would never reach it.
async fn an_activation_is_stored_with_its_backfill_or_not_at_all(backend: Backend) {
    let a = account_with(backend, 200).await;
    let hooks = receiver().await;
    let (product, _, _) = new_hooked_product(&a.app, &hooks.url).await;
    match backend {
        Backend::Sqlite => {
            a.app
                .db
                .execute(
                    "CREATE TRIGGER refuse_backfills BEFORE INSERT ON backfills \
                     BEGIN SELECT RAISE(ABORT, 'refused'); END",
                )
                .await
        }
        Backend::Postgres => {
            a.app
                .db
                .execute(
                    "CREATE FUNCTION refuse_backfills() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
                )
                .await;
            a.app
                .db
                .execute(
                    "CREATE TRIGGER refuse_backfills BEFORE INSERT ON backfills \
                     FOR EACH ROW EXECUTE FUNCTION refuse_backfills()",
                )
                .await
        }
    }
    let path = format!("/v1/accounts/{}/products/{product}", a.account);
    let put = || {
        a.app.call(
            reqwest::Method::PUT,
            &path,
            Some(&a.app.admin_key),
            Some(json!({"sync": "two_way"})),
        )
    };
    let r = put().await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        activation(&a.app, &a.account, &product).await,
        Value::Null,
        "no activation without its backfill"
    );

    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_backfills",
        Backend::Postgres => "DROP TRIGGER refuse_backfills ON backfills",
    };
    a.app.db.execute(drop).await;
    let r = put().await;
    r.expect(201);
    assert_eq!(r.body["backfill"]["status"], json!("running"), "{}", r.body);
    let done = completed(&a, &product, 60).await;
    assert_eq!(done["backfill"]["sent"], json!(200));
    assert_eq!(product_view(&hooks.received()).1, 200);
}

async fn the_head_list_feed_handshake_misses_nothing(backend: Backend) {
    let a = account_with(backend, 300).await;
    let reader = a.app.create_product(None).await;
    let reader_key = reader["api_key"].as_str().unwrap().to_owned();
    a.app
        .activate(
            &a.account,
            reader["product_id"].as_str().unwrap(),
            "two_way",
        )
        .await;
    // 50 writes run while the reader catches up.
    let writes = {
        let (base, key, account, ids) = (
            a.app.base.clone(),
            a.writer_key.clone(),
            a.account.clone(),
            a.ids.clone(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..50 {
                let request = match i % 5 {
                    0 => client
                        .post(format!("{base}/v1/customers"))
                        .json(&json!({"account_id": account, "first_name": format!("Late{i}")})),
                    4 => client.delete(format!("{base}/v1/customers/{}", ids[i])),
                    _ => client
                        .patch(format!("{base}/v1/customers/{}", ids[i * 3]))
                        .json(&json!({"last_name": format!("During{i}")})),
                };
                let status = request.bearer_auth(&key).send().await.unwrap().status();
                assert!(status.is_success(), "write {i}: {status}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // The handshake: the head, then every page of the list, then the feed from the head.
    let head = a.app.get("/v1/events/head", &reader_key).await;
    head.expect(200);
    let mut view: HashMap<String, Value> = hub_view(&a.app, &a.account, &reader_key).await;
    let mut after = head.str("cursor");
    let apply = |events: &[Value], view: &mut HashMap<String, Value>| {
        for e in events {
            let data = &e["data"];
            let id = data["contact_id"].as_str().unwrap().to_owned();
            match e["type"].as_str().unwrap() {
                "customer.deleted" | "customer.erased" => {
                    view.remove(&id);
                }
                _ => {
                    let newer = view
                        .get(&id)
                        .is_none_or(|held| held["version"].as_i64() <= data["version"].as_i64());
                    if newer {
                        view.insert(id, data.clone());
                    }
                }
            }
        }
    };
    let finished = |view: &HashMap<String, Value>, hub: &HashMap<String, Value>| {
        differences(hub, view).is_empty()
    };
    let mut writes = Some(writes);
    let started = Instant::now();
    loop {
        let page = a
            .app
            .get(&format!("/v1/events?after={after}&limit=500"), &reader_key)
            .await;
        page.expect(200);
        apply(page.body["events"].as_array().unwrap(), &mut view);
        after = page.str("next_cursor");
        if page.body["has_more"] == json!(true) {
            continue;
        }
        if let Some(w) = writes.take() {
            if !w.is_finished() {
                writes = Some(w);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            w.await.unwrap();
        }
        let hub = hub_view(&a.app, &a.account, &a.writer_key).await;
        if finished(&view, &hub) {
            assert_eq!(hub.len(), 300 + 10 - 10);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still differing: {:?}",
            &differences(&hub, &view)[..3.min(differences(&hub, &view).len())]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
