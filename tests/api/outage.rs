//! SPEC section 6, "Back from an outage", on both backends with the production retry
//! schedule: a receiver that answers 503 to everything for 3 minutes while 200 customers
//! change is not hit by every change (after 5 consecutive failures, one probe per
//! interval), no delivery fails for good, and within a minute of coming back it holds
//! the newest version of every one of them.

use crate::on_both_backends;
use crate::support::{loopback_hooks, Backend, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_backends!(a_receiver_back_from_an_outage_converges_within_a_minute);

const OUTAGE: Duration = Duration::from_secs(180);

async fn a_receiver_back_from_an_outage_converges_within_a_minute(backend: Backend) {
    let app = TestApp::spawn_with(backend, loopback_hooks).await;
    let down = Arc::new(AtomicBool::new(false));
    let hooks = {
        let down = down.clone();
        testkit::Receiver::builder()
            .otherwise(move || match down.load(Ordering::SeqCst) {
                true => testkit::Answer::Status(503),
                false => testkit::Answer::Status(200),
            })
            .start()
            .await
    };
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let writer = app.create_product(Some(&partner)).await;
    let writer_key = writer["api_key"].as_str().unwrap().to_owned();
    app.activate(&account, writer["product_id"].as_str().unwrap(), "two_way")
        .await;
    let r = app
        .post(
            "/v1/products",
            &app.admin_key,
            json!({"name": "Loyalty", "webhook_url": hooks.url}),
        )
        .await;
    r.expect(201);
    let (reader, reader_key) = (r.str("product_id"), r.str("api_key"));
    app.activate(&account, &reader, "two_way").await;
    let customers: Vec<Value> = (0..200)
        .map(|i| json!({"account_id": account, "first_name": format!("Guest{i}")}))
        .collect();
    let r = app
        .post(
            "/v1/customers/batch",
            &writer_key,
            json!({ "customers": customers }),
        )
        .await;
    r.expect(200);
    let ids: Vec<String> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["customer"]["customer_id"].as_str().unwrap().to_owned())
        .collect();
    hooks
        .wait_until(Duration::from_secs(20), |r| r.len() >= 200)
        .await;
    hooks.clear();

    // Down for 3 minutes, while each of the 200 changes (over the first 100 s).
    down.store(true, Ordering::SeqCst);
    let outage = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        app.patch(
            &format!("/v1/customers/{id}"),
            &writer_key,
            json!({"last_name": format!("Changed{i}")}),
        )
        .await
        .expect(200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let product = app
        .get(&format!("/v1/products/{reader}"), &reader_key)
        .await;
    assert_eq!(
        product.body["webhook_health"],
        json!("failing"),
        "{}",
        product.body
    );
    assert!(product.body["failing_since"].is_string());
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    let during = hooks.received();
    down.store(false, Ordering::SeqCst);
    let back = Instant::now();

    // The breaker opened after 5 failures (and what was in flight then); from there on,
    // one request per probe interval, the first 5 s apart.
    let times: Vec<Instant> = during.iter().map(|r| r.at).collect();
    assert!(times.len() >= 5, "{} requests", times.len());
    let settled = times[4] + Duration::from_secs(2);
    let probes: Vec<Instant> = times.iter().copied().filter(|t| *t > settled).collect();
    for pair in probes.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(4_500), "probes {gap:?} apart");
    }
    assert!(
        during.len() <= 5 + 64 + 8,
        "{} requests during a 3-minute outage",
        during.len()
    );
    eprintln!(
        "outage: {} requests in {:?} ({} probes after the breaker opened)",
        during.len(),
        OUTAGE,
        probes.len()
    );

    // Back: every customer's newest version within a minute.
    let newest: HashMap<&str, String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), format!("Changed{i}")))
        .collect();
    let converged = loop {
        let mut held: HashMap<String, String> = HashMap::new();
        for r in hooks.received().iter().filter(|r| r.answered == 200) {
            let data = &r.json["data"];
            if let (Some(id), Some(last)) =
                (data["contact_id"].as_str(), data["last_name"].as_str())
            {
                held.insert(id.to_owned(), last.to_owned());
            }
        }
        if newest.iter().all(|(id, last)| held.get(*id) == Some(last)) {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "{} of 200 newest versions after a minute",
            newest
                .iter()
                .filter(|(id, last)| held.get(**id) == Some(*last))
                .count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("outage: converged {converged:?} after the receiver came back");
    let failed = app
        .get(
            &format!("/v1/products/{reader}/deliveries?status=failed"),
            &reader_key,
        )
        .await;
    failed.expect(200);
    assert_eq!(
        failed.body["deliveries"],
        json!([]),
        "no delivery failed for good"
    );
    let product = app
        .get(&format!("/v1/products/{reader}"), &reader_key)
        .await;
    assert_eq!(product.body["webhook_health"], json!("healthy"));
    assert_eq!(product.body["failing_since"], Value::Null);
}
