//! SPEC section 6 on both backends: fan-out with Standard Webhooks signatures verified by
//! the official library, no echo, retries, 410, timeouts, ordering with coalescing, the
//! SSRF guard, the event feed, the delivery log, retry, re-enable and secret rotation.

use crate::on_both_backends;
use crate::support::{Backend, Pair, TestApp};
use customer_list::delivery::schedule::RetrySchedule;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use testkit::{Answer, Received, Receiver};

/// An account with products `a`, `b` (two-way), `c` (one-way) and `d` (not activated),
/// each with a webhook receiver.
struct Fanout {
    app: TestApp,
    account: String,
    products: HashMap<&'static str, Product>,
}

struct Product {
    id: String,
    key: String,
    secret: String,
    receiver: Receiver,
}

async fn fanout_with(
    backend: Backend,
    configure: impl FnOnce(&mut customer_list::config::Config),
) -> Fanout {
    let app = TestApp::spawn_with(backend, |config| {
        config.webhook_allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        config.webhook_retry_schedule = RetrySchedule::parse("0.2,0.2,0.2,0.2").unwrap();
        config.webhook_timeout = 1.0;
        configure(config);
    })
    .await;
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let mut products = HashMap::new();
    for (name, sync) in [
        ("a", Some("two_way")),
        ("b", Some("two_way")),
        ("c", Some("one_way")),
        ("d", None),
    ] {
        let receiver = crate::support::receiver().await;
        let body = json!({"name": name, "webhook_url": receiver.url});
        let created = app.post("/v1/products", &app.admin_key, body).await;
        created.expect(201);
        let id = created.str("product_id");
        if let Some(sync) = sync {
            app.activate(&account, &id, sync).await;
        }
        products.insert(
            name,
            Product {
                id,
                key: created.str("api_key"),
                secret: created.str("webhook_secret"),
                receiver,
            },
        );
    }
    Fanout {
        app,
        account,
        products,
    }
}

async fn fanout(backend: Backend) -> Fanout {
    fanout_with(backend, |_| {}).await
}

impl Fanout {
    fn p(&self, name: &str) -> &Product {
        &self.products[name]
    }

    async fn create(&self, product: &str, body: Value) -> Value {
        let mut body = body;
        body["account_id"] = json!(self.account);
        let r = self
            .app
            .post("/v1/customers", &self.p(product).key, body)
            .await;
        r.expect(201);
        r.body
    }

    /// Lets stray deliveries arrive, then checks every receiver's signatures.
    async fn settle_and_verify(&self) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        for p in self.products.values() {
            p.receiver.assert_all_signed(&p.secret);
        }
    }
}

const WAIT: Duration = Duration::from_secs(20);

fn versions(received: &[Received]) -> Vec<i64> {
    received
        .iter()
        .map(|r| r.json["data"]["version"].as_i64().unwrap())
        .collect()
}

on_both_backends!(
    changes_fan_out_signed_to_every_other_two_way_product,
    failures_are_retried_until_delivered,
    gone_disables_and_the_feed_keeps_events,
    slow_receivers_are_cut_at_the_timeout,
    hanging_sends_hold_one_of_256_sends_each,
    deliveries_arrive_in_version_order_with_coalescing,
    private_addresses_are_refused_unless_allowed,
    a_new_webhook_address_is_not_paused_by_the_old_ones_failures,
    the_feed_pages_the_products_events,
    rotated_secrets_sign_with_both,
    the_dispatcher_step_claims_sends_and_records,
    racing_dispatchers_keep_one_version_in_flight,
);

async fn changes_fan_out_signed_to_every_other_two_way_product(backend: Backend) {
    let hub = fanout(backend).await;
    let created = hub.create("a", json!({"id": "crm-1", "first_name": "Ada", "email": "ada@example.com", "permission_to_contact": true})).await;
    let id = created["customer_id"].as_str().unwrap();
    let got = hub
        .p("b")
        .receiver
        .wait_until(WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(got.len(), 1);
    let body = &got[0].json;
    assert_eq!(body["type"], "customer.created");
    assert!(body["timestamp"].is_string());
    let data = &body["data"];
    assert_eq!(data["contact_id"], id);
    assert!(
        data["vendor_customer_id"].is_null(),
        "b has no id of its own yet"
    );
    assert_eq!(data["account_id"], hub.account);
    assert_eq!(data["version"], 1);
    assert_eq!(data["origin"], hub.p("a").id);
    assert_eq!(data["permission_to_contact"], true, "a boolean in webhooks");
    assert_eq!(data["email"], json!(["ada@example.com"]));
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert!(got[0].headers["webhook-id"]
        .to_str()
        .unwrap()
        .starts_with("msg_"));

    // B associates and updates: A and nobody else hears of it.
    let path = format!("/v1/customers/{id}");
    hub.app
        .put(
            &format!("{path}/vendor-id"),
            &hub.p("b").key,
            json!({"vendor_customer_id": "pos-1"}),
        )
        .await
        .expect(200);
    hub.app
        .patch(&path, &hub.p("b").key, json!({"last_name": "Lovelace"}))
        .await
        .expect(200);
    let to_a = hub
        .p("a")
        .receiver
        .wait_until(WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_a[0].json["type"], "customer.updated");
    assert_eq!(
        to_a[0].json["data"]["vendor_customer_id"], "crm-1",
        "a sees its own id"
    );
    assert_eq!(to_a[0].json["data"]["last_name"], "Lovelace");
    assert_eq!(to_a[0].json["data"]["origin"], hub.p("b").id);

    // Deletes fan out too.
    hub.app.delete(&path, &hub.p("a").key).await.expect(204);
    let to_b = hub.p("b").receiver.wait_until(WAIT, |r| r.len() >= 2).await;
    assert_eq!(to_b[1].json["type"], "customer.deleted");
    assert_eq!(to_b[1].json["data"]["vendor_customer_id"], "pos-1");
    assert_eq!(to_b[1].json["data"]["version"], 3);

    hub.settle_and_verify().await;
    assert_eq!(
        hub.p("b").receiver.received().len(),
        2,
        "b never hears its own update"
    );
    assert_eq!(
        hub.p("a").receiver.received().len(),
        1,
        "a never hears its own create or delete"
    );
    assert!(
        hub.p("c").receiver.received().is_empty(),
        "one-way products receive nothing"
    );
    assert!(
        hub.p("d").receiver.received().is_empty(),
        "products not activated receive nothing"
    );
}

async fn failures_are_retried_until_delivered(backend: Backend) {
    let hub = fanout(backend).await;
    let b = hub.p("b");
    b.receiver
        .script([Answer::Status(500), Answer::StatusRetryAfter(503, 0)]);
    let c = hub.create("a", json!({"first_name": "Ada"})).await;
    let got = b.receiver.wait_until(WAIT, |r| r.len() >= 3).await;
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 503, 200]);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same webhook-id on every retry"
    );
    hub.settle_and_verify().await;

    let log = hub
        .app
        .get(&format!("/v1/products/{}/deliveries", b.id), &b.key)
        .await;
    log.expect(200);
    let delivery = &log.body["deliveries"][0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["customer_id"], c["customer_id"]);
    let codes: Vec<i64> = delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["response_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    assert_eq!(delivery["attempt_log"][0]["response_body"], "ok");
    assert!(delivery["attempt_log"][0]["latency_ms"].is_number());
    let filtered = hub
        .app
        .get(
            &format!("/v1/products/{}/deliveries?status=failed", b.id),
            &b.key,
        )
        .await;
    assert_eq!(filtered.body["deliveries"], json!([]));
    let by_customer = hub
        .app
        .get(
            &format!(
                "/v1/products/{}/deliveries?customer_id={}",
                b.id,
                c["customer_id"].as_str().unwrap()
            ),
            &hub.app.admin_key,
        )
        .await;
    assert_eq!(by_customer.body["deliveries"].as_array().unwrap().len(), 1);
    hub.app
        .get(
            &format!("/v1/products/{}/deliveries", b.id),
            &hub.p("a").key,
        )
        .await
        .expect_problem(404, "not_found");
}

async fn gone_disables_and_the_feed_keeps_events(backend: Backend) {
    let hub = fanout(backend).await;
    let b = hub.p("b");
    b.receiver.script([Answer::Status(410)]);
    hub.create("a", json!({"first_name": "Ada"})).await;
    b.receiver.wait_until(WAIT, |r| !r.is_empty()).await;
    let product = hub
        .app
        .wait_for(WAIT, || async {
            let p = hub.app.get(&format!("/v1/products/{}", b.id), &b.key).await;
            (p.body["webhook_status"] == "disabled").then_some(p)
        })
        .await;
    assert!(product.body["webhook_disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    hub.create("a", json!({"first_name": "Bob"})).await;
    // On Postgres an event shows in the feed once every older transaction has ended,
    // so it may take a moment.
    hub.app
        .wait_for(WAIT, || async {
            let feed = hub.app.get("/v1/events", &b.key).await;
            feed.expect(200);
            (feed.body["events"].as_array().unwrap().len() == 2).then_some(())
        })
        .await; // a disabled webhook keeps its events in the feed
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.receiver.received().len(),
        1,
        "nothing is sent to a disabled webhook"
    );
    let failed = hub
        .app
        .get(
            &format!("/v1/products/{}/deliveries?status=failed", b.id),
            &b.key,
        )
        .await;
    let delivery_id = failed.body["deliveries"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Retry needs an enabled webhook; re-enabled, the retry goes out.
    hub.app
        .call(
            Method::POST,
            &format!("/v1/deliveries/{delivery_id}/retry"),
            Some(&b.key),
            None,
        )
        .await
        .expect_problem(409, "webhook_disabled");
    let enabled = hub
        .app
        .call(
            Method::POST,
            &format!("/v1/products/{}/webhook/enable", b.id),
            Some(&b.key),
            None,
        )
        .await;
    enabled.expect(200);
    assert_eq!(enabled.body["webhook_status"], "enabled");
    assert!(enabled.body["webhook_disabled_reason"].is_null());
    let retried = hub
        .app
        .call(
            Method::POST,
            &format!("/v1/deliveries/{delivery_id}/retry"),
            Some(&b.key),
            None,
        )
        .await;
    retried.expect(202);
    let got = b.receiver.wait_until(WAIT, |r| r.len() >= 2).await;
    assert_eq!(got[1].answered, 200);
    assert_eq!(got[1].json["data"]["first_name"], "Ada");
    hub.app
        .call(
            Method::POST,
            "/v1/deliveries/nope/retry",
            Some(&b.key),
            None,
        )
        .await
        .expect_problem(404, "not_found");
    hub.settle_and_verify().await;
}

async fn slow_receivers_are_cut_at_the_timeout(backend: Backend) {
    let hub = fanout(backend).await;
    let b = hub.p("b");
    b.receiver.script([Answer::Hang(Duration::from_secs(30))]);
    let started = Instant::now();
    hub.create("a", json!({"first_name": "Ada"})).await;
    // The first request hangs; the hub gives up on it after 1 s and retries.
    let log = hub
        .app
        .wait_for(WAIT, || async {
            let log = hub
                .app
                .get(&format!("/v1/products/{}/deliveries", b.id), &b.key)
                .await;
            (log.body["deliveries"][0]["status"] == "delivered").then_some(log)
        })
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not held for the 30 s hang"
    );
    let first = &log.body["deliveries"][0]["attempt_log"][0];
    assert!(first["response_code"].is_null());
    assert!(
        first["error"].as_str().unwrap().contains("timed out"),
        "{first}"
    );
    assert!(first["latency_ms"].as_i64().unwrap() >= 900);
}

/// A send that hangs holds one of the dispatcher's 256 sends until the timeout: with 100
/// of b's hanging, a's 100 deliveries go out meanwhile, not after the hangs time out (with
/// the 64 sends of before, b's hangs took every one for the whole timeout).
async fn hanging_sends_hold_one_of_256_sends_each(backend: Backend) {
    let timeout = Duration::from_secs(10);
    let hub = fanout_with(backend, |config| {
        config.webhook_timeout = timeout.as_secs_f64();
    })
    .await;
    let (a, b) = (hub.p("a"), hub.p("b"));
    b.receiver.script(std::iter::repeat_n(
        Answer::Hang(Duration::from_secs(60)),
        1_000,
    ));
    let customers: Vec<Value> = (0..100)
        .map(|i| json!({"account_id": hub.account, "first_name": format!("Hang{i}")}))
        .collect();
    let started = Instant::now();
    hub.app
        .post(
            "/v1/customers/batch",
            &hub.p("c").key,
            json!({ "customers": customers }),
        )
        .await
        .expect(200);
    a.receiver.wait_until(WAIT, |r| r.len() >= 100).await;
    assert!(
        started.elapsed() < timeout,
        "a's 100 deliveries waited {:?}, behind b's hanging sends",
        started.elapsed()
    );
    let deadline = Instant::now() + WAIT;
    while b.receiver.started() < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < timeout,
        "the check ran past the timeout"
    );
    assert_eq!(b.receiver.started(), 100, "b's sends in flight at once");
}

async fn deliveries_arrive_in_version_order_with_coalescing(backend: Backend) {
    let hub = fanout(backend).await;
    let b = hub.p("b");
    // B is down while the 20 updates are made: every request fails until it is back.
    b.receiver
        .script(std::iter::repeat_n(Answer::Status(503), 10_000));
    let c = hub.create("a", json!({"first_name": "V1"})).await;
    let path = format!("/v1/customers/{}", c["customer_id"].as_str().unwrap());
    for v in 2..=21 {
        hub.app
            .patch(
                &path,
                &hub.p("a").key,
                json!({"first_name": format!("V{v}")}),
            )
            .await
            .expect(200);
    }
    b.receiver.clear_script();
    let got = b
        .receiver
        .wait_until(WAIT, |r| {
            r.iter()
                .any(|x| x.answered == 200 && x.json["data"]["version"] == 21)
        })
        .await;
    let delivered = versions(&b.receiver.delivered());
    assert_eq!(
        *delivered.last().unwrap(),
        21,
        "ends with the newest version"
    );
    assert!(
        delivered.windows(2).all(|w| w[0] < w[1]),
        "never an older version after a newer: {delivered:?}"
    );
    let all = versions(&got);
    assert!(
        all.windows(2).all(|w| w[0] <= w[1]),
        "attempts never go back in version: {all:?}"
    );
    assert!(
        delivered.len() < 21,
        "undelivered versions were coalesced: {delivered:?}"
    );
    hub.settle_and_verify().await;
    let superseded = hub
        .app
        .get(
            &format!(
                "/v1/products/{}/deliveries?status=superseded&page_size=100",
                b.id
            ),
            &b.key,
        )
        .await;
    assert!(!superseded.body["deliveries"].as_array().unwrap().is_empty());
}

async fn a_new_webhook_address_is_not_paused_by_the_old_ones_failures(backend: Backend) {
    let hub = fanout(backend).await;
    let b = hub.p("b");
    b.receiver
        .script(std::iter::repeat_n(Answer::Status(503), 200));
    for i in 0..5 {
        hub.create("a", json!({"first_name": format!("Down{i}")}))
            .await;
    }
    // Five consecutive failures: paused, waiting for a probe (5 s at first).
    let health = || async {
        let p = hub.app.get(&format!("/v1/products/{}", b.id), &b.key).await;
        p.body["webhook_health"].clone()
    };
    hub.app
        .wait_for(WAIT, || async {
            (health().await == json!("failing")).then_some(())
        })
        .await;
    let fresh = Receiver::start().await;
    hub.app
        .patch(
            &format!("/v1/products/{}", b.id),
            &hub.app.admin_key,
            json!({"webhook_url": fresh.url}),
        )
        .await
        .expect(200);
    assert_eq!(
        health().await,
        json!("healthy"),
        "a new address starts unpaused"
    );
    let started = Instant::now();
    hub.create("a", json!({"first_name": "Up"})).await;
    fresh
        .wait_until(WAIT, |r| {
            r.iter()
                .any(|x| x.json["data"]["first_name"] == json!("Up"))
        })
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "sent at once, not at the next probe: {:?}",
        started.elapsed()
    );
}

async fn private_addresses_are_refused_unless_allowed(backend: Backend) {
    // No allowed ranges: the defaults of a production server.
    let hub = fanout_with(backend, |config| config.webhook_allowed_cidrs = Vec::new()).await;
    let b = hub.p("b");
    let port = b
        .receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for url in [
        b.receiver.url.clone(),
        format!("http://localhost:{port}/hooks"),
        format!("http://[::1]:{port}/hooks"),
        "http://10.0.0.1/hooks".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        hub.app
            .patch(
                &format!("/v1/products/{}", b.id),
                &hub.app.admin_key,
                json!({"webhook_url": url}),
            )
            .await
            .expect(200);
        let c = hub.create("a", json!({"first_name": "X"})).await;
        let customer = c["customer_id"].as_str().unwrap().to_owned();
        let log = hub
            .app
            .wait_for(WAIT, || async {
                let log = hub
                    .app
                    .get(
                        &format!("/v1/products/{}/deliveries?customer_id={customer}", b.id),
                        &b.key,
                    )
                    .await;
                let attempts = log.body["deliveries"][0]["attempt_log"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                (attempts >= 1).then_some(log)
            })
            .await;
        let attempt = &log.body["deliveries"][0]["attempt_log"][0];
        assert!(attempt["response_code"].is_null(), "{url}: {attempt}");
        let error = attempt["error"].as_str().unwrap();
        assert!(
            error.contains("not an address webhooks may reach")
                || error.contains("resolves to no address"),
            "{url}: {error}"
        );
    }
    assert!(
        b.receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
}

async fn the_feed_pages_the_products_events(backend: Backend) {
    let hub = fanout(backend).await;
    for i in 0..5 {
        hub.create("a", json!({"first_name": format!("A{i}")}))
            .await;
    }
    hub.create("b", json!({"first_name": "ByB"})).await;
    let b = hub.p("b");
    let got = b.receiver.wait_until(WAIT, |r| r.len() >= 5).await;
    let mut events = Vec::new();
    // Wait until the feed shows all five (see above), then page through it.
    hub.app
        .wait_for(WAIT, || async {
            let feed = hub.app.get("/v1/events?limit=100", &b.key).await;
            (feed.body["events"].as_array().unwrap().len() == 5).then_some(())
        })
        .await;
    let mut path = "/v1/events?limit=2".to_owned();
    loop {
        let page = hub.app.get(&path, &b.key).await;
        page.expect(200);
        let items = page.body["events"].as_array().unwrap().clone();
        let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
        let more = page.body["has_more"].as_bool().unwrap();
        events.extend(items);
        path = format!("/v1/events?limit=2&after={cursor}");
        if !more {
            let empty = hub.app.get(&path, &b.key).await;
            assert_eq!(empty.body["events"], json!([]));
            assert_eq!(
                empty.body["next_cursor"],
                cursor.as_str(),
                "an empty page keeps the position"
            );
            break;
        }
    }
    assert_eq!(events.len(), 5, "b's own create is not in its feed");
    // The same bodies as the webhooks, with the event id (webhooks for different
    // customers may arrive in any order, so match them by id).
    let webhooks: HashMap<String, &Value> = got
        .iter()
        .map(|w| {
            (
                w.headers["webhook-id"].to_str().unwrap().to_owned(),
                &w.json,
            )
        })
        .collect();
    for event in &events {
        let mut without_id = event.clone();
        let id = without_id.as_object_mut().unwrap().remove("id").unwrap();
        assert_eq!(
            &&without_id,
            webhooks
                .get(id.as_str().unwrap())
                .expect("a webhook for every feed event")
        );
    }
    let a_feed = hub.app.get("/v1/events", &hub.p("a").key).await;
    assert_eq!(a_feed.body["events"].as_array().unwrap().len(), 1);
    assert!(
        hub.app.get("/v1/events", &hub.p("c").key).await.body["events"]
            .as_array()
            .unwrap()
            .is_empty(),
        "one-way"
    );
    hub.app
        .get("/v1/events", &hub.app.admin_key)
        .await
        .expect_problem(403, "forbidden");
    let fields = hub
        .app
        .get("/v1/events?after=zzz", &b.key)
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["after"]);
}

async fn rotated_secrets_sign_with_both(backend: Backend) {
    let hub = fanout(backend).await;
    let b = hub.p("b");
    let rotated = hub
        .app
        .call(
            Method::POST,
            &format!("/v1/products/{}/webhook/rotate-secret", b.id),
            Some(&b.key),
            None,
        )
        .await;
    rotated.expect(200);
    let new_secret = rotated.str("webhook_secret");
    assert!(new_secret.starts_with("whsec_") && new_secret != b.secret);
    assert!(rotated.body["previous_secret_expires"].is_string());
    hub.create("a", json!({"first_name": "Ada"})).await;
    let got = b.receiver.wait_until(WAIT, |r| !r.is_empty()).await;
    let signature = got[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    b.receiver.assert_all_signed(&new_secret);
    b.receiver.assert_all_signed(&b.secret);
    hub.app
        .call(
            Method::POST,
            &format!("/v1/products/{}/webhook/rotate-secret", b.id),
            Some(&hub.p("a").key),
            None,
        )
        .await
        .expect_problem(404, "not_found");
}

/// The app without its background dispatcher, with a writer and a reader product.
async fn manual_pair(backend: Backend) -> (TestApp, Pair) {
    let app = TestApp::spawn_manual(backend, |config| {
        config.webhook_allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let pair = app.writer_and_reader().await;
    (app, pair)
}

/// `Dispatcher::step` driven by hand: nothing is sent until a step runs; one step claims,
/// sends and records; a second finds nothing due.
async fn the_dispatcher_step_claims_sends_and_records(backend: Backend) {
    let (
        app,
        Pair {
            account,
            writer_key,
            reader,
            receiver,
        },
    ) = manual_pair(backend).await;
    let key = writer_key.as_str();
    for name in ["Ada", "Bob"] {
        app.post(
            "/v1/customers",
            key,
            json!({"account_id": account, "first_name": name}),
        )
        .await
        .expect(201);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing is sent without a step"
    );
    assert_eq!(app.dispatcher.step().await.unwrap(), 2);
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(
        app.dispatcher.step().await.unwrap(),
        0,
        "nothing left to claim"
    );
    receiver.assert_all_signed(reader["webhook_secret"].as_str().unwrap());
    let log = app
        .get(
            &format!(
                "/v1/products/{}/deliveries",
                reader["product_id"].as_str().unwrap()
            ),
            &app.admin_key,
        )
        .await;
    assert!(log.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "delivered"));
}

/// Eight claimers on two connections to the database (two servers' dispatchers) race
/// while four writers keep changing two customers: a (product, customer) never has two
/// deliveries in flight at once, and its versions are claimed in increasing order.
/// (The chaos run found two versions of one customer sent at once; this is that race.)
async fn racing_dispatchers_keep_one_version_in_flight(backend: Backend) {
    use customer_list::domain::time;
    use customer_list::storage::{AttemptRecord, AttemptResult};
    use std::sync::{Arc, Mutex};
    let (
        app,
        Pair {
            account,
            writer_key,
            ..
        },
    ) = manual_pair(backend).await;
    let mut customers = Vec::new();
    for n in 0..2 {
        let created = app
            .post(
                "/v1/customers",
                &writer_key,
                json!({"account_id": account, "first_name": format!("C{n}")}),
            )
            .await;
        created.expect(201);
        customers.push(created.str("customer_id"));
    }
    let servers = [
        customer_list::storage::connect(&app.db.url).await.unwrap(),
        customer_list::storage::connect(&app.db.url).await.unwrap(),
    ];
    let deadline = Instant::now() + Duration::from_secs(4);
    // customer → version in flight; customer → last version claimed; what went wrong.
    let in_flight = Arc::new(Mutex::new(HashMap::<String, i64>::new()));
    let last_claimed = Arc::new(Mutex::new(HashMap::<String, i64>::new()));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut claimers = Vec::new();
    for n in 0..8 {
        let store = servers[n % 2].clone();
        let (in_flight, last_claimed, violations, writers_done) = (
            in_flight.clone(),
            last_claimed.clone(),
            violations.clone(),
            writers_done.clone(),
        );
        claimers.push(tokio::spawn(async move {
            let mut claims = 0;
            // Once the writers are done, until nothing is left to claim.
            let give_up = deadline + Duration::from_secs(30);
            let mut idle_after_writes = 0;
            while Instant::now() < give_up && idle_after_writes < 20 {
                let now = time::now();
                let claimed = match store
                    .claim_deliveries(now, now + chrono::Duration::seconds(60), 4, 4)
                    .await
                {
                    Ok(claimed) => claimed,
                    // SQLite's one writer may be busy past its timeout: claim again.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                };
                if claimed.is_empty() {
                    if writers_done.load(std::sync::atomic::Ordering::SeqCst) {
                        idle_after_writes += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                for d in &claimed {
                    claims += 1;
                    let customer = d.customer_id.as_str().to_owned();
                    if let Some(other) = in_flight
                        .lock()
                        .unwrap()
                        .insert(customer.clone(), d.version)
                    {
                        violations.lock().unwrap().push(format!(
                            "{customer}: v{} claimed while v{other} was in flight",
                            d.version
                        ));
                    }
                    let mut last = last_claimed.lock().unwrap();
                    let previous = last.insert(customer.clone(), d.version).unwrap_or(0);
                    if d.version < previous {
                        violations.lock().unwrap().push(format!(
                            "{customer}: v{} claimed after v{previous}",
                            d.version
                        ));
                    }
                }
                // The send: short, so that claims overlap writes.
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 3)).await;
                let at = time::now();
                let records: Vec<AttemptRecord> = claimed
                    .iter()
                    .map(|d| {
                        // Out of flight before the record commits: the next version can
                        // only be claimed after that.
                        in_flight.lock().unwrap().remove(d.customer_id.as_str());
                        AttemptRecord {
                            snapshot: false,
                            probe: false,
                            delivery_id: d.delivery_id.clone(),
                            product_id: d.product_id.clone(),
                            attempt: d.attempts,
                            at,
                            response_code: Some(200),
                            latency_ms: 1,
                            response_body: None,
                            error: None,
                            result: AttemptResult::Delivered,
                            disable_if_failing_since: at - chrono::Duration::days(5),
                        }
                    })
                    .collect();
                while store.record_attempts(&records).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            claims
        }));
    }
    // Four writers on two customers: versions follow each other closely.
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base, client, key, customers) = (
            app.base.clone(),
            app.client.clone(),
            writer_key.clone(),
            customers.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut writes = 0;
            while Instant::now() < deadline {
                let customer = &customers[(w + writes) % customers.len()];
                let status = client
                    .patch(format!("{base}/v1/customers/{customer}"))
                    .bearer_auth(&key)
                    .json(&json!({"last_name": format!("L{w}-{writes}")}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 200);
                writes += 1;
            }
            writes
        }));
    }
    let mut writes = 0;
    for writer in writers {
        writes += writer.await.unwrap();
    }
    writers_done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut claims = 0;
    for claimer in claimers {
        claims += claimer.await.unwrap();
    }
    let violations = violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:#?}");
    // Every customer's newest version was claimed last (nothing newer left behind).
    for customer in &customers {
        let newest = app
            .get(&format!("/v1/customers/{customer}"), &app.admin_key)
            .await
            .body["version"]
            .as_i64()
            .unwrap();
        assert_eq!(
            last_claimed.lock().unwrap().get(customer.as_str()),
            Some(&newest)
        );
    }
    assert!(
        claims >= 20,
        "{claims} claims for {writes} writes: the race did not run"
    );
    eprintln!("racing dispatchers on {backend:?}: {writes} writes, {claims} claims");
}
