//! SPEC section 10 on both backends: the consent history (every change of
//! `permission_to_contact` with how it was obtained and who made it); erasure that leaves
//! no trace in any table, reaches every product and is followed in its receipt;
//! suppression; a person's export.

use crate::on_both_backends;
use crate::support::{receiver, Backend, Hub, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    the_consent_history_records_each_change_with_its_source,
    a_consent_object_needs_a_change_of_consent,
    a_merge_that_grants_consent_records_it,
    erasure_leaves_no_trace_and_reaches_every_product,
    suppression_refuses_an_erased_email_until_lifted,
    a_merge_cannot_bring_back_a_suppressed_phone,
    an_export_holds_everything_about_the_person,
);

async fn history(hub: &Hub, id: &str, key: &str) -> Value {
    let r = hub
        .app
        .get(&format!("/v1/customers/{id}/consent"), key)
        .await;
    r.expect(200);
    r.body
}

async fn the_consent_history_records_each_change_with_its_source(backend: Backend) {
    let hub = Hub::new(backend).await;
    let created = hub
        .create(
            "a",
            json!({
                "first_name": "Grace", "email": "grace@example.com", "permission_to_contact": true,
                "consent": {"method": "in-store sign-up", "text": "Yes, email me offers."}
            }),
        )
        .await;
    let id = created["customer_id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");
    hub.app
        .patch(
            &path,
            &hub.account_key,
            json!({"permission_to_contact": false}),
        )
        .await
        .expect(200);
    hub.app
        .patch(
            &path,
            hub.key("b"),
            json!({"permission_to_contact": true,
                   "consent": {"legal_basis": "contract", "method": "booking terms"}}),
        )
        .await
        .expect(200);
    // A change of another field records nothing.
    hub.app
        .patch(&path, hub.key("b"), json!({"city": "Regina"}))
        .await
        .expect(200);

    let account_key_id = me(&hub, &hub.account_key).await;
    let b_key_id = me(&hub, hub.key("b")).await;
    let a_key_id = me(&hub, hub.key("a")).await;
    let got = history(&hub, id, hub.key("b")).await;
    assert_eq!(got["customer_id"], json!(id));
    let now = hub.app.get(&path, &hub.account_key).await;
    assert_eq!(
        got["permission_to_contact"],
        now.body["permission_to_contact"]
    );
    let entries = got["history"].as_array().unwrap();
    let summary: Vec<(bool, &str, &str, Option<&str>, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["granted"].as_bool().unwrap(),
                e["via"].as_str().unwrap(),
                e["legal_basis"].as_str().unwrap(),
                e["source"]["product_id"].as_str(),
                e["source"]["key_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                true,
                "create",
                "consent",
                Some(hub.product_id("a")),
                a_key_id.as_str()
            ),
            (false, "update", "consent", None, account_key_id.as_str()),
            (
                true,
                "update",
                "contract",
                Some(hub.product_id("b")),
                b_key_id.as_str()
            ),
        ]
    );
    assert_eq!(entries[0]["method"], json!("in-store sign-up"));
    assert_eq!(entries[0]["text"], json!("Yes, email me offers."));
    assert_eq!(entries[1]["method"], Value::Null);
    assert_eq!(entries[2]["method"], json!("booking terms"));
    // Oldest first, and each at the time of its change.
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Whoever reads the customer reads its history; others get the same 404.
    let other = hub.app.create_account(&hub.partner).await;
    let (_, stranger) = hub.app.issue_key("accounts", &other).await;
    hub.app
        .get(&format!("/v1/customers/{id}/consent"), &stranger)
        .await
        .expect_problem(404, "not_found");
    // A batch item records its grant too.
    let batch = hub
        .app
        .post(
            "/v1/customers/batch",
            hub.key("a"),
            json!({"customers": [{"account_id": hub.account, "email": "ada@example.com",
                                  "permission_to_contact": true,
                                  "consent": {"method": "web form"}}]}),
        )
        .await;
    batch.expect(200);
    let ada = batch.body["results"][0]["customer"]["customer_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", batch.body))
        .to_owned();
    let got = history(&hub, &ada, hub.key("a")).await;
    assert_eq!(got["history"][0]["method"], json!("web form"));
}

/// The id of the key `key` (from `GET /v1/me`).
async fn me(hub: &Hub, key: &str) -> String {
    let r = hub.app.get("/v1/me", key).await;
    r.expect(200);
    r.str("key_id")
}

async fn a_consent_object_needs_a_change_of_consent(backend: Backend) {
    let hub = Hub::new(backend).await;
    // A create without a grant cannot say how a grant was obtained.
    let mut body = json!({"account_id": hub.account, "email": "no@example.com",
                          "consent": {"method": "nothing"}});
    let r = hub
        .app
        .post("/v1/customers", hub.key("a"), body.clone())
        .await;
    assert_eq!(r.expect_problem(400, "validation_failed"), vec!["consent"]);
    body["consent"] = json!({"legal_basis": "whim"});
    body["permission_to_contact"] = json!(true);
    let r = hub
        .app
        .post("/v1/customers", hub.key("a"), body.clone())
        .await;
    assert_eq!(r.expect_problem(400, "validation_failed"), vec!["consent"]);
    let listed = hub
        .app
        .get(
            &format!("/v1/customers?account_id={}", hub.account),
            &hub.account_key,
        )
        .await;
    assert_eq!(listed.body["total_results"], json!(0), "nothing was stored");

    let created = hub
        .create(
            "a",
            json!({"email": "yes@example.com", "permission_to_contact": true}),
        )
        .await;
    let id = created["customer_id"].as_str().unwrap();
    // Granting what is granted is no change: the consent object is refused, nothing moves.
    let r = hub
        .app
        .patch(
            &format!("/v1/customers/{id}"),
            hub.key("a"),
            json!({"permission_to_contact": true, "consent": {"method": "again"}}),
        )
        .await;
    assert_eq!(r.expect_problem(400, "validation_failed"), vec!["consent"]);
    let r = hub
        .app
        .patch(
            &format!("/v1/customers/{id}"),
            hub.key("a"),
            json!({"city": "Regina", "consent": {"method": "again"}}),
        )
        .await;
    assert_eq!(r.expect_problem(400, "validation_failed"), vec!["consent"]);
    let now = hub
        .app
        .get(&format!("/v1/customers/{id}"), hub.key("a"))
        .await;
    assert_eq!(now.body["version"], json!(1));
    assert_eq!(
        history(&hub, id, hub.key("a")).await["history"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn a_merge_that_grants_consent_records_it(backend: Backend) {
    let hub = Hub::new(backend).await;
    let survivor = hub.create("a", json!({"email": "s@example.com"})).await;
    let absorbed = hub
        .create(
            "a",
            json!({"email": "t@example.com", "permission_to_contact": true}),
        )
        .await;
    let id = survivor["customer_id"].as_str().unwrap();
    hub.app
        .post(
            &format!("/v1/customers/{id}/merge"),
            &hub.account_key,
            json!({"from": absorbed["customer_id"]}),
        )
        .await
        .expect(200);
    let got = history(&hub, id, &hub.account_key).await;
    let entries = got["history"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{got}");
    assert_eq!(entries[0]["via"], json!("merge"));
    assert_eq!(entries[0]["granted"], json!(true));
    assert_eq!(entries[0]["source"]["product_id"], Value::Null);
}

/// Every table's rows as text, to search for what must be gone: on SQLite the database
/// file itself after a checkpoint (so free pages count too), on Postgres every live row.
pub(crate) async fn stored_text(app: &TestApp) -> String {
    match app.backend {
        Backend::Sqlite => {
            use sqlx::ConnectOptions;
            let path = app.db.url.trim_start_matches("sqlite://").to_owned();
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await
                .unwrap();
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await
                .unwrap();
            drop(conn);
            let mut text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                text.push_str(&String::from_utf8_lossy(&wal));
            }
            text
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut text = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                text.push_str(&format!("\n[{table}]\n"));
                text.push_str(&rows.join("\n"));
            }
            pool.close().await;
            text
        }
    }
}

async fn erasure_leaves_no_trace_and_reaches_every_product(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.webhook_allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        // One retry a second later: the failing receiver's delivery fails for good soon.
        config.webhook_retry_schedule =
            customer_list::delivery::schedule::RetrySchedule::parse("1").unwrap();
    })
    .await;
    let hooks = receiver().await;
    let broken = testkit::Receiver::builder()
        .otherwise(|| testkit::Answer::Status(500))
        .start()
        .await;
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let product = |name: &str, hook: bool| {
        let body = match hook {
            true => json!({"name": name, "webhook_url": hooks.url}),
            false => json!({"name": name}),
        };
        let app = &app;
        async move {
            let r = app.post("/v1/products", &app.admin_key, body).await;
            r.expect(201);
            (r.str("product_id"), r.str("api_key"))
        }
    };
    let (writer, writer_key) = product("Booking", false).await;
    let (two_way, _) = product("Loyalty", true).await;
    let (one_way, _) = product("Reviews", true).await;
    let (silent, _) = product("Front desk", false).await;
    let failing = app
        .post(
            "/v1/products",
            &app.admin_key,
            json!({"name": "Newsletter", "webhook_url": broken.url}),
        )
        .await
        .str("product_id");
    for (p, sync) in [
        (&writer, "two_way"),
        (&two_way, "two_way"),
        (&one_way, "one_way"),
        (&silent, "two_way"),
        (&failing, "two_way"),
    ] {
        app.activate(&account, p, sync).await;
    }
    let (_, account_key) = app.issue_key("accounts", &account).await;
    let secret = (
        "Augusta",
        "Byron",
        "augusta.byron@example.com",
        "+13065550199",
        "Piccadilly 13",
    );
    let created = app
        .send(
            app.client
                .post(format!("{}/v1/customers", app.base))
                .bearer_auth(&writer_key)
                .header("idempotency-key", "erase-me-1")
                .json(&json!({
                    "account_id": account, "id": "booking-77",
                    "first_name": secret.0, "last_name": secret.1, "email": secret.2,
                    "phone": secret.3, "address": secret.4, "tags": ["byron-tag"],
                    "permission_to_contact": true, "consent": {"method": "paper form by Byron"}
                })),
        )
        .await;
    created.expect(201);
    let id = created.str("customer_id");
    // Each version reaches the two-way product before the next is written: a pending
    // older version is superseded by a newer one, and the test needs both sent.
    app.wait_for(Duration::from_secs(10), || async {
        (!hooks.delivered().is_empty()).then_some(())
    })
    .await;
    app.patch(
        &format!("/v1/customers/{id}"),
        &account_key,
        json!({"city": "Byronville"}),
    )
    .await
    .expect(200);
    // A conflict record that matched it (it copies the matched values).
    let conflict = app
        .post(
            "/v1/customers",
            &writer_key,
            json!({"account_id": account, "email": secret.2, "first_name": "Byron-twin"}),
        )
        .await;
    conflict.expect_problem(409, "duplicate");
    // Both versions reached the two-way product before the erasure.
    app.wait_for(Duration::from_secs(10), || async {
        (hooks.delivered().len() >= 2).then_some(())
    })
    .await;

    let erased = app
        .post(
            &format!("/v1/customers/{id}/erase"),
            &writer_key,
            json!({"reason": "asked in person", "suppress": true}),
        )
        .await;
    erased.expect(202);
    let receipt = erased.body.clone();
    let erasure_id = receipt["erasure_id"].as_str().unwrap().to_owned();
    assert!(erasure_id.starts_with("ERASURE-"));
    assert_eq!(receipt["customer_id"], json!(id));
    assert_eq!(receipt["suppressed"], json!(true));
    assert_eq!(receipt["requested_by"]["product_id"], json!(writer));
    let status_of = |receipt: &Value, product: &str| -> String {
        receipt["products"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["product_id"] == json!(product))
            .map(|p| p["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{product} not in {receipt}"))
    };
    assert_eq!(status_of(&receipt, &writer), "requester");
    assert_eq!(status_of(&receipt, &silent), "unreachable");
    assert_eq!(status_of(&receipt, &two_way), "pending");
    assert_eq!(status_of(&receipt, &one_way), "pending");

    // Gone everywhere, by id and by the product's own id, saying which erasure.
    let by_id = app.get(&format!("/v1/customers/{id}"), &account_key).await;
    by_id.expect_problem(404, "not_found");
    assert_eq!(by_id.body["erasure_id"], json!(erasure_id));
    let by_vendor = app
        .get("/v1/customers/booking-77?id_type=vendor", &writer_key)
        .await;
    by_vendor.expect_problem(404, "not_found");
    assert_eq!(by_vendor.body["erasure_id"], json!(erasure_id));
    let listed = app
        .get(&format!("/v1/customers?account_id={account}"), &account_key)
        .await;
    assert_eq!(listed.body["total_results"], json!(0));
    let conflicts = app
        .get(&format!("/v1/conflicts?account_id={account}"), &account_key)
        .await;
    assert_eq!(
        conflicts.body["total_results"],
        json!(0),
        "{}",
        conflicts.body
    );

    // Both products with a webhook acknowledge; the receipt completes.
    let done = app
        .wait_for(Duration::from_secs(15), || async {
            let r = app
                .get(&format!("/v1/erasures/{erasure_id}"), &account_key)
                .await;
            (r.body["status"] == json!("completed")).then_some(r.body)
        })
        .await;
    assert_eq!(status_of(&done, &two_way), "acknowledged");
    assert_eq!(status_of(&done, &one_way), "acknowledged");
    assert_eq!(status_of(&done, &failing), "failed");
    assert_eq!(status_of(&done, &silent), "unreachable");
    assert_eq!(status_of(&done, &writer), "requester");
    let error = done["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == json!(failing))
        .map(|p| p["error"].clone())
        .unwrap();
    assert!(error.as_str().is_some_and(|e| e.contains("500")), "{error}");
    assert!(done["completed"].is_string());
    eprintln!(
        "erasure receipt: {}",
        done["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["status"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let erased_bodies: Vec<Value> = hooks
        .delivered()
        .into_iter()
        .map(|r| r.json)
        .filter(|b| b["type"] == json!("customer.erased"))
        .collect();
    assert_eq!(
        erased_bodies.len(),
        2,
        "to the two-way and the one-way product"
    );
    for body in &erased_bodies {
        assert_eq!(body["data"]["erasure_id"], json!(erasure_id));
        assert_eq!(body["data"]["contact_id"], json!(id));
        let text = body.to_string();
        assert!(
            !text.contains("Byron") && !text.contains("augusta"),
            "{text}"
        );
    }
    // The receipts of the account list it.
    let page = app
        .get(&format!("/v1/erasures?account_id={account}"), &account_key)
        .await;
    page.expect(200);
    assert_eq!(page.body["erasures"][0]["erasure_id"], json!(erasure_id));
    // Another account's key reads neither the receipt nor the list (the same 404).
    let other = app.create_account(&partner).await;
    let (_, stranger) = app.issue_key("accounts", &other).await;
    app.get(&format!("/v1/erasures/{erasure_id}"), &stranger)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/v1/erasures?account_id={account}"), &stranger)
        .await
        .expect_problem(404, "not_found");

    // No table holds anything of the person (on SQLite: not even the file's free pages).
    let stored = stored_text(&app).await;
    for value in [
        secret.0,
        secret.1,
        secret.2,
        "5550199",
        secret.4,
        "byron-tag",
        "Byronville",
        "paper form",
        "booking-77",
        "Byron-twin",
    ] {
        if let Some(at) = stored.find(value) {
            let from = stored.floor_char_boundary(at.saturating_sub(300));
            let to = stored.ceil_char_boundary((at + 200).min(stored.len()));
            panic!("{value} is still stored: …{}…", &stored[from..to]);
        }
    }
    // The figures a closing note quotes (shown with --no-capture).
    eprintln!(
        "erasure search on {:?}: 10 values, {} bytes searched{}",
        app.backend,
        stored.len(),
        match app.backend {
            Backend::Postgres => format!(", every row of {} tables", stored.matches("\n[").count()),
            Backend::Sqlite => " (the database file and its WAL after a checkpoint)".to_owned(),
        }
    );
    // The idempotent response that held it is gone: the key starts afresh.
    let again = app
        .send(
            app.client
                .post(format!("{}/v1/customers", app.base))
                .bearer_auth(&writer_key)
                .header("idempotency-key", "erase-me-1")
                .json(&json!({"account_id": account, "first_name": "Someone else"})),
        )
        .await;
    again.expect(201);
    assert_ne!(again.str("customer_id"), id);
}

async fn suppression_refuses_an_erased_email_until_lifted(backend: Backend) {
    let hub = Hub::new(backend).await;
    let first = hub
        .create(
            "a",
            json!({"email": "gone@example.com", "phone": "+13065550123"}),
        )
        .await;
    let id = first["customer_id"].as_str().unwrap();
    hub.app
        .post(
            &format!("/v1/customers/{id}/erase"),
            &hub.account_key,
            json!({"suppress": true}),
        )
        .await
        .expect(202);
    let refused = hub
        .app
        .post(
            "/v1/customers",
            hub.key("a"),
            json!({"account_id": hub.account, "email": "GONE@example.com"}),
        )
        .await;
    refused.expect_problem(409, "suppressed");
    assert_eq!(refused.body["field"], json!("email"));
    assert!(
        !refused.body.to_string().contains("gone@"),
        "the value is not echoed"
    );
    let phone = hub
        .app
        .post(
            "/v1/customers",
            hub.key("a"),
            json!({"account_id": hub.account, "phone": "(306) 555-0123"}),
        )
        .await;
    phone.expect_problem(409, "suppressed");
    assert_eq!(phone.body["field"], json!("phone"));
    // A batch item fails alone; an update adding it is refused too.
    let batch = hub
        .app
        .post(
            "/v1/customers/batch",
            hub.key("a"),
            json!({"customers": [
                {"account_id": hub.account, "email": "gone@example.com"},
                {"account_id": hub.account, "email": "kept@example.com"}]}),
        )
        .await;
    batch.expect(200);
    assert_eq!(
        batch.body["results"][0]["status"],
        json!(409),
        "{}",
        batch.body
    );
    assert_eq!(
        batch.body["results"][1]["status"],
        json!(201),
        "{}",
        batch.body
    );
    let other = batch.body["results"][1]["customer"]["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.app
        .patch(
            &format!("/v1/customers/{other}"),
            hub.key("a"),
            json!({"email": ["kept@example.com", "gone@example.com"]}),
        )
        .await
        .expect_problem(409, "suppressed");
    // Another account is not concerned.
    let elsewhere = hub.app.create_account(&hub.partner).await;
    hub.app
        .activate(&elsewhere, hub.product_id("a"), "two_way")
        .await;
    hub.app
        .post(
            "/v1/customers",
            hub.key("a"),
            json!({"account_id": elsewhere, "email": "gone@example.com"}),
        )
        .await
        .expect(201);
    // Lifted, it may be added again.
    let lift = |body: Value| {
        let hub = &hub;
        async move {
            hub.app
                .send(
                    hub.app
                        .client
                        .delete(format!("{}/v1/suppressions", hub.app.base))
                        .bearer_auth(&hub.account_key)
                        .json(&body),
                )
                .await
        }
    };
    assert_eq!(
        lift(json!({"account_id": hub.account, "email": "Gone@Example.com"}))
            .await
            .status,
        204
    );
    // Idempotent: lifting what is not suppressed answers the same.
    assert_eq!(
        lift(json!({"account_id": hub.account, "email": "gone@example.com"}))
            .await
            .status,
        204
    );
    hub.app
        .post(
            "/v1/customers",
            hub.key("a"),
            json!({"account_id": hub.account, "email": "gone@example.com"}),
        )
        .await
        .expect(201);
    // A product key may not lift one.
    let r = hub
        .app
        .send(
            hub.app
                .client
                .delete(format!("{}/v1/suppressions", hub.app.base))
                .bearer_auth(hub.key("a"))
                .json(&json!({"account_id": hub.account, "phone": "+13065550123"})),
        )
        .await;
    assert_eq!(r.status, 403);
}

/// On an account that de-duplicates on email alone, two customers may share a phone:
/// erasing one with suppression leaves the phone on the other, and a merge that would add
/// it to a third customer is refused like a create.
async fn a_merge_cannot_bring_back_a_suppressed_phone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let partner = app.create_partner().await;
    let account = app
        .post(
            "/v1/accounts",
            &app.admin_key,
            json!({"partner_id": partner, "name": "Studio", "default_region": "CA",
                   "dedupe_policy": "email"}),
        )
        .await
        .str("account_id");
    let product = app.create_product(Some(&partner)).await;
    let key = product["api_key"].as_str().unwrap().to_owned();
    app.activate(&account, product["product_id"].as_str().unwrap(), "two_way")
        .await;
    let create = |email: &str, phone: Option<&str>| {
        let mut body = json!({"account_id": account, "email": email});
        if let Some(phone) = phone {
            body["phone"] = json!(phone);
        }
        let (app, key) = (&app, &key);
        async move {
            let r = app.post("/v1/customers", key, body).await;
            r.expect(201);
            r.str("customer_id")
        }
    };
    let erased = create("erased@example.com", Some("+13065550142")).await;
    let sharer = create("sharer@example.com", Some("+13065550142")).await;
    let survivor = create("survivor@example.com", None).await;
    app.post(
        &format!("/v1/customers/{erased}/erase"),
        &key,
        json!({"suppress": true}),
    )
    .await
    .expect(202);
    let refused = app
        .post(
            &format!("/v1/customers/{survivor}/merge"),
            &key,
            json!({"from": sharer}),
        )
        .await;
    refused.expect_problem(409, "suppressed");
    assert_eq!(refused.body["field"], json!("phone"));
    assert!(!refused.body.to_string().contains("550142"));
    // Nothing moved: both are still live as they were.
    app.get(&format!("/v1/customers/{sharer}"), &key)
        .await
        .expect(200);
    let r = app.get(&format!("/v1/customers/{survivor}"), &key).await;
    r.expect(200);
    assert_eq!(r.body["phone"], json!([]));
}

async fn an_export_holds_everything_about_the_person(backend: Backend) {
    let hub = Hub::new(backend).await;
    let created = hub
        .create(
            "a",
            json!({"id": "a-1", "first_name": "Mary", "email": "mary@example.com",
                   "permission_to_contact": true, "consent": {"method": "web form"}}),
        )
        .await;
    let id = created["customer_id"].as_str().unwrap();
    let absorbed = hub
        .create("b", json!({"email": "mary.s@example.com"}))
        .await;
    hub.app
        .post(
            &format!("/v1/customers/{id}/merge"),
            &hub.account_key,
            json!({"from": absorbed["customer_id"]}),
        )
        .await
        .expect(200);
    hub.app
        .post(
            "/v1/customers",
            hub.key("b"),
            json!({"account_id": hub.account, "email": "mary@example.com", "last_name": "Twin"}),
        )
        .await
        .expect_problem(409, "duplicate");
    let r = hub
        .app
        .get(&format!("/v1/customers/{id}/export"), &hub.account_key)
        .await;
    r.expect(200);
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"{id}.json\"").as_str())
    );
    let doc = &r.body;
    assert_eq!(doc["customer"]["customer_id"], json!(id));
    assert_eq!(doc["consent_history"][0]["method"], json!("web form"));
    let products: Vec<&str> = doc["associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["vendor_customer_id"].as_str().unwrap())
        .collect();
    assert!(products.contains(&"a-1"), "{products:?}");
    let types: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["customer.created", "customer.merged"]);
    assert_eq!(doc["merged_ids"], json!([absorbed["customer_id"]]));
    assert_eq!(doc["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["conflicts"][0]["last_name"], json!("Twin"));
    assert!(doc["deliveries"].is_array() && doc["exported"].is_string());
}
