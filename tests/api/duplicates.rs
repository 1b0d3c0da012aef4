//! SPEC section 5 on both backends: duplicates detected under concurrency by the
//! database, the three `on_duplicate` modes, dedupe policies, and every resolution path.

use crate::on_both_backends;
use crate::support::{Backend, Hub, Resp};
use serde_json::{json, Value};

on_both_backends!(
    racing_creates_with_one_email_make_one_customer,
    racing_creates_with_one_phone_in_many_formats_make_one_customer,
    racing_rejects_store_nothing,
    racing_merges_fold_into_one_customer,
    dedupe_policies_email_and_none,
    conflict_records_merge_with_prefer_and_dry_run,
    conflict_records_are_kept_or_discarded,
    live_customers_merge_with_their_associations,
);

/// Sends 50 creates at once, each with its own body; returns the responses.
async fn race(hub: &Hub, mode: &str, bodies: Vec<Value>) -> Vec<Resp> {
    let url = format!("/v1/customers?on_duplicate={mode}");
    let calls = bodies.into_iter().map(|mut body| {
        body["account_id"] = json!(hub.account);
        let url = url.clone();
        async move { hub.app.post(&url, hub.key("a"), body).await }
    });
    futures::future::join_all(calls).await
}

fn statuses(responses: &[Resp]) -> (usize, usize, usize) {
    let count = |s: u16| responses.iter().filter(|r| r.status == s).count();
    (count(201), count(200), count(409))
}

async fn totals(hub: &Hub) -> (u64, u64) {
    let customers = hub
        .app
        .get(
            &format!("/v1/customers?account_id={}", hub.account),
            &hub.account_key,
        )
        .await;
    let conflicts = hub
        .app
        .get(
            &format!("/v1/conflicts?account_id={}", hub.account),
            &hub.account_key,
        )
        .await;
    conflicts.expect(200);
    (
        customers.body["total_results"].as_u64().unwrap(),
        conflicts.body["total_results"].as_u64().unwrap(),
    )
}

async fn racing_creates_with_one_email_make_one_customer(backend: Backend) {
    let hub = Hub::new(backend).await;
    let variants = [
        "Ada@Example.COM",
        "ada@example.com",
        " ADA@example.com ",
        "ada@EXAMPLE.com",
    ];
    let bodies = (0..50)
        .map(|i| json!({"first_name": format!("Ada {i}"), "email": variants[i % 4]}))
        .collect();
    let responses = race(&hub, "conflict", bodies).await;
    assert_eq!(statuses(&responses), (1, 0, 49));
    let winner = responses
        .iter()
        .find(|r| r.status == 201)
        .unwrap()
        .str("customer_id");
    for r in responses.iter().filter(|r| r.status == 409) {
        r.expect_problem(409, "duplicate");
        assert_eq!(r.body["conflicting_customer_id"], winner);
        assert_eq!(
            r.body["matched_on"],
            json!([{"field": "email", "value": "ada@example.com"}])
        );
        assert!(r.str("conflict_id").starts_with("CONFLICT-"));
    }
    assert_eq!(totals(&hub).await, (1, 49));
}

async fn racing_creates_with_one_phone_in_many_formats_make_one_customer(backend: Backend) {
    let hub = Hub::new(backend).await;
    let formats = [
        "(306) 555-0100",
        "+1 306-555-0100",
        "306.555.0100",
        "+13065550100",
        "1 306 555 0100",
    ];
    let bodies = (0..50)
        .map(|i| json!({"last_name": format!("N{i}"), "phone": formats[i % 5]}))
        .collect();
    let responses = race(&hub, "conflict", bodies).await;
    assert_eq!(statuses(&responses), (1, 0, 49));
    for r in responses.iter().filter(|r| r.status == 409) {
        assert_eq!(
            r.body["matched_on"],
            json!([{"field": "phone", "value": "+13065550100"}])
        );
    }
    assert_eq!(totals(&hub).await, (1, 49));
}

async fn racing_rejects_store_nothing(backend: Backend) {
    let hub = Hub::new(backend).await;
    let bodies = (0..50)
        .map(|i| json!({"first_name": format!("Ada {i}"), "email": "ada@example.com"}))
        .collect();
    let responses = race(&hub, "reject", bodies).await;
    assert_eq!(statuses(&responses), (1, 0, 49));
    for r in responses.iter().filter(|r| r.status == 409) {
        r.expect_problem(409, "duplicate");
        assert!(
            r.body.get("conflict_id").is_none(),
            "reject stores no conflict record"
        );
        assert!(r.body["conflicting_customer_id"].is_string());
    }
    assert_eq!(totals(&hub).await, (1, 0));
}

async fn racing_merges_fold_into_one_customer(backend: Backend) {
    let hub = Hub::new(backend).await;
    // Every request brings a tag of its own, so every merge really changes the customer.
    let bodies = (0..50)
        .map(
            |i| json!({"first_name": "Ada", "email": "ada@example.com", "tags": [format!("t{i}")]}),
        )
        .collect();
    let responses = race(&hub, "merge", bodies).await;
    assert_eq!(
        statuses(&responses),
        (1, 49, 0),
        "{:?}",
        responses.iter().find(|r| r.status >= 400)
    );
    let ids: std::collections::HashSet<String> =
        responses.iter().map(|r| r.str("customer_id")).collect();
    assert_eq!(ids.len(), 1, "every merge returned the one customer");
    assert_eq!(totals(&hub).await, (1, 0));
    let id = ids.into_iter().next().unwrap();
    let merged = hub
        .app
        .get(&format!("/v1/customers/{id}"), &hub.account_key)
        .await;
    assert_eq!(
        merged.body["tags"].as_array().unwrap().len(),
        50,
        "no merge was lost"
    );
    assert_eq!(merged.body["version"], 50);
}

async fn dedupe_policies_email_and_none(backend: Backend) {
    let hub = &Hub::new(backend).await;
    for (policy, same_email, same_phone) in [
        ("email", 409, 201),
        ("none", 201, 201),
        ("email_or_phone", 409, 409),
    ] {
        let body = json!({"partner_id": hub.partner, "name": policy, "dedupe_policy": policy});
        let account = hub
            .app
            .post("/v1/accounts", &hub.app.admin_key, body)
            .await
            .str("account_id");
        hub.app
            .activate(&account, hub.product_id("a"), "two_way")
            .await;
        let create = |body: Value| {
            let mut body = body;
            body["account_id"] = json!(account);
            async move {
                hub.app
                    .post("/v1/customers?on_duplicate=reject", hub.key("a"), body)
                    .await
                    .status
            }
        };
        assert_eq!(
            create(
                json!({"first_name": "A", "email": "a@example.com", "phone": "+1 306 555 0100"})
            )
            .await,
            201
        );
        assert_eq!(
            create(json!({"first_name": "B", "email": "a@example.com"})).await,
            same_email,
            "{policy}: email"
        );
        assert_eq!(
            create(json!({"first_name": "C", "phone": "(306) 555-0100"})).await,
            same_phone,
            "{policy}: phone"
        );
    }
}

async fn conflict_records_merge_with_prefer_and_dry_run(backend: Backend) {
    let hub = Hub::new(backend).await;
    let ada = hub
        .create(
            "a",
            json!({"id": "crm-1", "first_name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    let ada_id = ada["customer_id"].as_str().unwrap();
    let body = json!({"account_id": hub.account, "id": "pos-9", "first_name": "Augusta", "last_name": "King",
        "email": "ADA@example.com", "phone": "306 555 0100", "tags": ["b"], "permission_to_contact": true});
    let dup = hub.app.post("/v1/customers", hub.key("b"), body).await;
    dup.expect_problem(409, "duplicate");
    let conflict_id = dup.str("conflict_id");

    let record = hub
        .app
        .get(&format!("/v1/customers/{conflict_id}"), hub.key("b"))
        .await;
    record.expect(200);
    assert_eq!(record.body["vendor_customer_id"], "pos-9");
    assert_eq!(record.body["first_name"], "Augusta");
    assert_eq!(record.body["conflict"]["conflicting_customer_id"], ada_id);
    let pending = hub
        .app
        .get(
            &format!("/v1/conflicts?account_id={}", hub.account),
            hub.key("c"),
        )
        .await;
    assert_eq!(
        pending.body["conflicts"][0]["customer_id"],
        conflict_id.as_str()
    );
    assert!(pending.body["conflicts"][0]["conflict"].is_object());
    hub.app
        .post(
            &format!("/v1/conflicts/{conflict_id}/merge"),
            hub.key("d"),
            json!({}),
        )
        .await
        .expect_problem(404, "not_found");

    let merge = format!("/v1/conflicts/{conflict_id}/merge");
    let dry = hub
        .app
        .post(
            &merge,
            &hub.account_key,
            json!({"prefer": "incoming", "dry_run": true}),
        )
        .await;
    dry.expect(200);
    assert_eq!(dry.body["customer_id"], ada_id);
    assert_eq!(dry.body["first_name"], "Augusta");
    assert_eq!(dry.body["last_name"], "King");
    let unchanged = hub
        .app
        .get(&format!("/v1/customers/{ada_id}"), &hub.account_key)
        .await;
    assert_eq!(unchanged.body["version"], 1, "a dry run changes nothing");
    assert_eq!(unchanged.body["first_name"], "Ada");
    assert_eq!(hub.app.events_of(ada_id).await.len(), 1);
    assert_eq!(totals(&hub).await, (1, 1));

    let fields = hub
        .app
        .post(&merge, &hub.account_key, json!({"prefer": "newest"}))
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["prefer"]);
    let merged = hub
        .app
        .post(&merge, &hub.account_key, json!({"prefer": "existing"}))
        .await;
    merged.expect(200);
    let m = &merged.body;
    assert_eq!(m["customer_id"], ada_id);
    assert_eq!(m["first_name"], "Ada", "the existing value wins");
    assert_eq!(m["last_name"], "King", "an empty field is filled");
    assert_eq!(m["phone"], json!(["+13065550100"]));
    assert_eq!(m["tags"], json!(["b"]));
    assert_ne!(m["permission_to_contact"], "0001-01-01T00:00:00Z");
    assert_eq!(
        m["origins"],
        json!([hub.product_id("a"), hub.product_id("b")])
    );
    assert_eq!(m["version"], 2);
    assert_eq!(totals(&hub).await, (1, 0));
    // The record's product now reaches the customer by its own id.
    let by_b = hub
        .app
        .get("/v1/customers/pos-9?id_type=vendor", hub.key("b"))
        .await;
    assert_eq!(by_b.body["customer_id"], ada_id);
    let kinds: Vec<String> = hub
        .app
        .events_of(ada_id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds, ["customer.created", "customer.updated"]);
    hub.app
        .get(&format!("/v1/customers/{conflict_id}"), hub.key("b"))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .post(&merge, &hub.account_key, json!({}))
        .await
        .expect_problem(404, "not_found");
}

async fn conflict_records_are_kept_or_discarded(backend: Backend) {
    let hub = &Hub::new(backend).await;
    hub.create(
        "a",
        json!({"first_name": "Ada", "email": "ada@example.com"}),
    )
    .await;
    let conflict = |body: Value| async move {
        let mut body = body;
        body["account_id"] = json!(hub.account);
        let r = hub.app.post("/v1/customers", hub.key("b"), body).await;
        r.expect_problem(409, "duplicate");
        r.str("conflict_id")
    };

    let c1 = conflict(json!({"id": "pos-10", "first_name": "Charles", "email": ["ada@example.com", "charles@example.com"]})).await;
    let kept = hub
        .app
        .call(
            reqwest::Method::POST,
            &format!("/v1/conflicts/{c1}/keep"),
            Some(hub.key("b")),
            None,
        )
        .await;
    kept.expect(201);
    let kept_id = kept.str("customer_id");
    assert!(kept_id.starts_with("CUSTOMER-"));
    assert_eq!(
        kept.body["email"],
        json!(["charles@example.com"]),
        "the matching email stays with Ada"
    );
    assert_eq!(kept.body["vendor_customer_id"], "pos-10");
    assert_eq!(kept.body["version"], 1);
    assert_eq!(
        hub.app.events_of(&kept_id).await,
        vec![("customer.created".to_owned(), 1)]
    );
    assert_eq!(totals(hub).await, (2, 0));
    hub.app
        .get(&format!("/v1/customers/{c1}"), hub.key("b"))
        .await
        .expect_problem(404, "not_found");

    // Nothing would identify a record whose only identifier is shared.
    let c2 = conflict(json!({"email": "ada@example.com"})).await;
    hub.app
        .call(
            reqwest::Method::POST,
            &format!("/v1/conflicts/{c2}/keep"),
            Some(&hub.account_key),
            None,
        )
        .await
        .expect_problem(409, "conflict_not_keepable");
    hub.app
        .delete(&format!("/v1/conflicts/{c2}"), &hub.account_key)
        .await
        .expect(204);
    hub.app
        .delete(&format!("/v1/conflicts/{c2}"), &hub.account_key)
        .await
        .expect_problem(404, "not_found");
    let c3 = conflict(json!({"first_name": "X", "email": "ada@example.com"})).await;
    hub.app
        .delete(&format!("/v1/customers/{c3}"), hub.key("b"))
        .await
        .expect(204);
    assert!(
        hub.app.events_of(&c3).await.is_empty(),
        "discarding emits nothing"
    );
    assert_eq!(totals(hub).await, (2, 0));
}

async fn live_customers_merge_with_their_associations(backend: Backend) {
    let hub = Hub::new(backend).await;
    let x = hub
        .create(
            "a",
            json!({"id": "crm-x", "first_name": "Ada", "email": "x@example.com", "tags": ["1"]}),
        )
        .await;
    let y = hub.create("b", json!({"id": "pos-y", "first_name": "Augusta", "last_name": "King", "email": "y@example.com", "phone": "306 555 0100"})).await;
    let (x_id, y_id) = (
        x["customer_id"].as_str().unwrap(),
        y["customer_id"].as_str().unwrap(),
    );
    hub.app
        .put(
            &format!("/v1/customers/{y_id}/vendor-id"),
            hub.key("c"),
            json!({"vendor_customer_id": "erp-y"}),
        )
        .await
        .expect(200);
    hub.app
        .put(
            &format!("/v1/customers/{y_id}/vendor-id"),
            hub.key("a"),
            json!({"vendor_customer_id": "crm-y"}),
        )
        .await
        .expect(200);

    let merge = format!("/v1/customers/{x_id}/merge");
    hub.app
        .post(&merge, &hub.account_key, json!({"from": x_id}))
        .await
        .expect_problem(409, "merge_refused");
    hub.app
        .post(&merge, &hub.account_key, json!({"from": "CUSTOMER-nope"}))
        .await
        .expect_problem(400, "validation_failed");
    let unknown = customer_list::domain::CustomerId::generate().to_string();
    hub.app
        .post(&merge, &hub.account_key, json!({"from": unknown}))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .post(&merge, hub.key("d"), json!({"from": y_id}))
        .await
        .expect_problem(404, "not_found");

    let merged = hub
        .app
        .post(&merge, &hub.account_key, json!({"from": y_id}))
        .await;
    merged.expect(200);
    let m = &merged.body;
    assert_eq!(m["customer_id"], x_id);
    assert_eq!(m["first_name"], "Ada");
    assert_eq!(m["last_name"], "King");
    assert_eq!(m["email"], json!(["x@example.com", "y@example.com"]));
    assert_eq!(m["phone"], json!(["+13065550100"]));
    assert_eq!(
        m["origins"],
        json!([hub.product_id("a"), hub.product_id("b")])
    );
    assert_eq!(m["version"], 2);

    let gone = hub
        .app
        .get(&format!("/v1/customers/{y_id}"), &hub.account_key)
        .await;
    gone.expect_problem(404, "not_found");
    assert_eq!(gone.body["merged_into"], x_id);
    // Every product's id follows the survivor; the survivor's own wins.
    for (product, id) in [("b", "pos-y"), ("c", "erp-y"), ("a", "crm-x")] {
        let r = hub
            .app
            .get(
                &format!("/v1/customers/{id}?id_type=vendor"),
                hub.key(product),
            )
            .await;
        assert_eq!(r.body["customer_id"], x_id, "{product} {id}");
        assert_eq!(r.body["vendor_customer_id"], id);
    }
    hub.app
        .get("/v1/customers/crm-y?id_type=vendor", hub.key("a"))
        .await
        .expect_problem(404, "not_found");
    let kinds: Vec<(String, i64)> = hub.app.events_of(x_id).await;
    assert_eq!(kinds.last().unwrap(), &("customer.merged".to_owned(), 2));
    // The absorbed identifiers now belong to the survivor.
    let dup = hub
        .app
        .post(
            "/v1/customers?on_duplicate=reject",
            hub.key("a"),
            json!({"account_id": hub.account, "email": "y@example.com"}),
        )
        .await;
    assert_eq!(dup.body["conflicting_customer_id"], x_id);
    assert_eq!(totals(&hub).await.0, 1);
}
