//! Crash safety on Postgres: two servers share one database and its deliveries; one is
//! killed (SIGKILL) while its deliveries are in flight, and every event still reaches
//! every receiver, through the other server once the dead one's leases lapse.

use crate::support::{random_key, server, Backend, TestDb};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use testkit::Answer;

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Value,
) -> Value {
    let r = client
        .request(method, url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_delivery_postgres() {
    let db = TestDb::new(Backend::Postgres).await;
    let admin = format!("{}{}", random_key(), random_key());
    let env = [
        ("CUSTOMER_LIST_DATABASE_URL", db.url.clone()),
        ("CUSTOMER_LIST_ADMIN_KEY", admin.clone()),
        (
            "CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS",
            "127.0.0.0/8".to_owned(),
        ),
        ("CUSTOMER_LIST_WEBHOOK_TIMEOUT", "2".to_owned()),
        (
            "CUSTOMER_LIST_WEBHOOK_RETRY_SCHEDULE",
            "0.5,0.5,0.5,0.5,0.5,0.5".to_owned(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let mut victim = server(&env).await;
    let survivor = server(&env).await;
    let (victim_url, survivor_url) = (victim.base.clone(), survivor.base.clone());
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        let (url, key) = (format!("{survivor_url}{path}"), key.to_owned());
        let client = client.clone();
        async move { call(&client, reqwest::Method::POST, url, &key, body).await }
    };

    let receiver = crate::support::receiver().await;
    let partner = post("/v1/partners", &admin, json!({"name": "p"})).await["partner_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = post(
        "/v1/accounts",
        &admin,
        json!({"partner_id": partner, "name": "a"}),
    )
    .await["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let writer = post("/v1/products", &admin, json!({"name": "writer"})).await;
    let reader = post(
        "/v1/products",
        &admin,
        json!({"name": "reader", "webhook_url": receiver.url}),
    )
    .await;
    for product in [&writer, &reader] {
        let id = product["product_id"].as_str().unwrap();
        call(
            &client,
            reqwest::Method::PUT,
            format!("{survivor_url}/v1/accounts/{account}/products/{id}"),
            &admin,
            json!({"sync": "two_way"}),
        )
        .await;
    }
    // The receiver is slow at first, so deliveries are in flight when the victim dies.
    receiver.script(std::iter::repeat_n(
        Answer::Hang(Duration::from_millis(1500)),
        40,
    ));
    let writer_key = writer["api_key"].as_str().unwrap();
    let mut created = HashSet::new();
    for i in 0..40 {
        // Written through the victim: its in-process wake-up makes it claim first.
        let c = call(
            &client,
            reqwest::Method::POST,
            format!("{victim_url}/v1/customers"),
            writer_key,
            json!({"account_id": account, "first_name": format!("C{i}")}),
        )
        .await;
        created.insert(c["customer_id"].as_str().unwrap().to_owned());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while receiver.started() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(receiver.started() > 0, "deliveries began");
    victim.kill().await;

    let delivered = receiver
        .wait_until(Duration::from_secs(60), |r| {
            let ids: HashSet<&str> = r
                .iter()
                .filter(|x| x.answered == 200)
                .filter_map(|x| x.json["data"]["contact_id"].as_str())
                .collect();
            created.iter().all(|c| ids.contains(c.as_str()))
        })
        .await;
    let ids: HashSet<String> = delivered
        .iter()
        .filter(|x| x.answered == 200)
        .filter_map(|x| x.json["data"]["contact_id"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = created.iter().filter(|c| !ids.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "undelivered after the kill: {missing:?}"
    );
    receiver.assert_all_signed(reader["webhook_secret"].as_str().unwrap());

    // Some deliveries were taken over: claimed by the victim, then by the survivor.
    let reader_id = reader["product_id"].as_str().unwrap();
    let log = client
        .get(format!(
            "{survivor_url}/v1/products/{reader_id}/deliveries?page_size=100"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let taken_over = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attempts"].as_i64().unwrap() >= 2)
        .count();
    assert!(taken_over > 0, "the kill interrupted deliveries in flight");
    drop(survivor);
}
