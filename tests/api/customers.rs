//! SPEC section 4 over HTTP on both backends: the record, validation, consent, updates,
//! deletes, vendor ids, tenancy, lists and bulk endpoints.

use crate::on_both_backends;
use crate::support::{Backend, Hub};
use serde_json::{json, Value};
use std::collections::HashSet;

const NOT_GRANTED: &str = "0001-01-01T00:00:00Z";

on_both_backends!(
    create_maps_every_field_and_each_product_sees_its_own_id,
    validation_names_every_bad_field_and_stores_nothing,
    permission_to_contact_round_trips,
    updates_merge_patch_version_and_if_match,
    updates_refuse_another_customers_email_or_phone,
    deletes_tombstone_and_release_ids,
    vendor_id_addressing_and_associations,
    tenancy_of_customers,
    accountless_customers_belong_to_their_product,
    list_sorts_filters_and_searches,
    batch_creates_with_a_result_per_item,
    paging_is_complete_while_customers_are_inserted,
    later_pages_repeat_the_first_pages_total,
    idempotency_keys_replay_the_first_response,
);

async fn create_maps_every_field_and_each_product_sees_its_own_id(backend: Backend) {
    let hub = Hub::new(backend).await;
    let body = json!({
        "id": "crm-42",
        "first_name": " Ada ", "last_name": "Lovelace",
        "email": "Ada@Example.COM",
        "phone": ["(306) 555-0100", "+1 306 555 0100", "306-555-0199"],
        "address": "1 Main St", "city": "Saskatoon", "state": "SK", "country": "ca",
        "tags": ["vip", "vip", "new"],
        "permission_to_contact": true,
    });
    let mut body = body;
    body["account_id"] = json!(hub.account);
    let r = hub.app.post("/v1/customers", hub.key("a"), body).await;
    r.expect(201);
    let c = &r.body;
    let id = c["customer_id"].as_str().unwrap();
    assert!(id.starts_with("CUSTOMER-"));
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/customers/{id}").as_str())
    );
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(c["vendor_customer_id"], "crm-42");
    assert_eq!(c["account_id"], hub.account);
    assert_eq!(c["first_name"], "Ada");
    assert_eq!(c["email"], json!(["ada@example.com"]));
    assert_eq!(
        c["phone"],
        json!(["+13065550100", "+13065550199"]),
        "E.164 in region CA, duplicates dropped"
    );
    assert_eq!(c["country"], "CA");
    assert_eq!(c["tags"], json!(["vip", "new"]));
    assert_eq!(c["origins"], json!([hub.product_id("a")]));
    assert_eq!(c["version"], 1);
    let granted = c["permission_to_contact"].as_str().unwrap();
    assert_ne!(granted, NOT_GRANTED);
    assert!(chrono::DateTime::parse_from_rfc3339(granted).is_ok());
    assert_eq!(c["created"], c["updated"]);
    let keys: HashSet<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: HashSet<&str> = [
        "customer_id",
        "vendor_customer_id",
        "account_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "country",
        "tags",
        "permission_to_contact",
        "origins",
        "version",
        "created",
        "updated",
    ]
    .into();
    assert_eq!(keys, expected);

    let path = format!("/v1/customers/{id}");
    let as_b = hub.app.get(&path, hub.key("b")).await;
    as_b.expect(200);
    assert!(
        as_b.body["vendor_customer_id"].is_null(),
        "b has no id of its own yet"
    );
    assert_eq!(as_b.body["email"], c["email"]);
    let as_admin = hub.app.get(&path, &hub.app.admin_key).await;
    assert!(as_admin.body["vendor_customer_id"].is_null());
    let as_a = hub.app.get(&path, hub.key("a")).await;
    assert_eq!(as_a.body, *c);

    // Without an id, the product's id is the hub's.
    let plain = hub.create("b", json!({"last_name": "Byron"})).await;
    assert_eq!(plain["vendor_customer_id"], plain["customer_id"]);
    assert_eq!(plain["permission_to_contact"], NOT_GRANTED);
    assert_eq!(plain["email"], json!([]));
    assert!(plain["city"].is_null());
    assert_eq!(
        hub.app.events_of(id).await,
        vec![("customer.created".to_owned(), 1)]
    );
}

async fn validation_names_every_bad_field_and_stores_nothing(backend: Backend) {
    let hub = Hub::new(backend).await;
    let key = hub.key("a");
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"first_name": "Ada, Countess"}), vec!["first_name"]),
        (json!({"last_name": "x".repeat(101)}), vec!["last_name"]),
        (
            json!({"first_name": "Ada", "email": ["ok@example.com", "nope"]}),
            vec!["email"],
        ),
        (
            json!({"email": (0..11).map(|i| format!("a{i}@example.com")).collect::<Vec<_>>()}),
            vec!["email"],
        ),
        (json!({"first_name": "Ada", "phone": "12"}), vec!["phone"]),
        (json!({"first_name": "Ada", "phone": [5]}), vec!["phone"]),
        (
            json!({"first_name": "Ada", "country": "XX"}),
            vec!["country"],
        ),
        (
            json!({"first_name": "Ada", "tags": (0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            vec!["tags"],
        ),
        (
            json!({"first_name": "Ada", "tags": ["x".repeat(51)]}),
            vec!["tags"],
        ),
        (
            json!({"first_name": "Ada", "address": "x".repeat(201)}),
            vec!["address"],
        ),
        (
            json!({"first_name": "Ada", "nickname": "A"}),
            vec!["nickname"],
        ),
        (
            json!({"first_name": "Ada", "permission_to_contact": "yes"}),
            vec!["permission_to_contact"],
        ),
        (json!({"first_name": "Ada", "id": ""}), vec!["id"]),
        (
            json!({"city": "Saskatoon"}),
            vec!["first_name", "last_name", "email", "phone"],
        ),
        (
            json!({"first_name": 1, "email": "x", "phone": "1", "state": ["SK"], "extra": 0}),
            vec!["first_name", "email", "phone", "state", "extra"],
        ),
    ];
    for (mut body, expected) in cases {
        body["account_id"] = json!(hub.account);
        let fields = hub
            .app
            .post("/v1/customers", key, body.clone())
            .await
            .expect_problem(400, "validation_failed");
        assert_eq!(fields, expected, "for {body}");
    }
    let list = hub
        .app
        .get(&format!("/v1/customers?account_id={}", hub.account), key)
        .await;
    list.expect(200);
    assert_eq!(list.body["total_results"], 0, "nothing was stored");
}

async fn permission_to_contact_round_trips(backend: Backend) {
    let hub = Hub::new(backend).await;
    let c = hub
        .create(
            "a",
            json!({"first_name": "Ada", "permission_to_contact": true}),
        )
        .await;
    let path = format!("/v1/customers/{}", c["customer_id"].as_str().unwrap());
    let granted = c["permission_to_contact"].clone();

    let again = hub
        .app
        .patch(&path, hub.key("a"), json!({"permission_to_contact": true}))
        .await;
    again.expect(200);
    assert_eq!(
        again.body["permission_to_contact"], granted,
        "a repeated grant keeps its moment"
    );
    assert_eq!(again.body["version"], 1, "and changes nothing");

    let withdrawn = hub
        .app
        .patch(&path, hub.key("a"), json!({"permission_to_contact": false}))
        .await;
    assert_eq!(withdrawn.body["permission_to_contact"], NOT_GRANTED);
    assert_eq!(withdrawn.body["version"], 2);

    let regranted = hub
        .app
        .patch(&path, hub.key("a"), json!({"permission_to_contact": true}))
        .await;
    assert_ne!(regranted.body["permission_to_contact"], NOT_GRANTED);
    assert_ne!(
        regranted.body["permission_to_contact"], granted,
        "a new grant has a new moment"
    );
    assert_eq!(regranted.body["version"], 3);
}

async fn updates_merge_patch_version_and_if_match(backend: Backend) {
    let hub = Hub::new(backend).await;
    let c = hub
        .create("a", json!({"first_name": "Ada", "city": "Saskatoon", "email": "ada@example.com", "tags": ["vip"]}))
        .await;
    let id = c["customer_id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");

    let r = hub
        .app
        .patch(
            &path,
            hub.key("b"),
            json!({"last_name": "Lovelace", "city": null, "phone": "306 555 0100"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["first_name"], "Ada", "absent fields are kept");
    assert_eq!(r.body["last_name"], "Lovelace");
    assert!(r.body["city"].is_null(), "null clears");
    assert_eq!(r.body["phone"], json!(["+13065550100"]));
    assert_eq!(
        r.body["origins"],
        json!([hub.product_id("a"), hub.product_id("b")])
    );
    assert!(r.body["updated"].as_str() > c["updated"].as_str());

    // A no-op patch: same version, no event.
    let same = hub
        .app
        .patch(
            &path,
            hub.key("c"),
            json!({"first_name": "Ada", "tags": ["vip"]}),
        )
        .await;
    same.expect(200);
    assert_eq!(same.body["version"], 2);
    assert_eq!(same.body["origins"], r.body["origins"]);

    // If-Match.
    let body = json!({"first_name": "Augusta"});
    let stale = hub
        .app
        .patch_if_match(&path, hub.key("a"), "\"1\"", body.clone())
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["code"], "precondition_failed");
    let fresh = hub
        .app
        .patch_if_match(&path, hub.key("a"), "\"2\"", body)
        .await;
    assert_eq!(fresh.status, 200);

    // Clearing every identifying field conflicts with the record (409, naming them);
    // a malformed or unknown field is refused, and another account is a conflict too.
    let fields = hub
        .app
        .patch(
            &path,
            hub.key("a"),
            json!({"first_name": null, "last_name": null, "email": null, "phone": []}),
        )
        .await
        .expect_problem(409, "identity_required");
    assert_eq!(fields, ["first_name", "last_name", "email", "phone"]);
    let fields = hub
        .app
        .patch(
            &path,
            hub.key("a"),
            json!({"account_id": "AG-elsewhere", "version": 9}),
        )
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["account_id", "version"]);
    let elsewhere = customer_list::domain::AccountId::generate();
    hub.app
        .patch(&path, hub.key("a"), json!({"account_id": elsewhere}))
        .await
        .expect_problem(409, "account_fixed");
    hub.app
        .patch(&path, hub.key("a"), json!({"account_id": hub.account}))
        .await
        .expect(200);

    let events = hub.app.events_of(id).await;
    let kinds: Vec<(&str, i64)> = events.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        kinds,
        [
            ("customer.created", 1),
            ("customer.updated", 2),
            ("customer.updated", 3)
        ]
    );
}

async fn updates_refuse_another_customers_email_or_phone(backend: Backend) {
    let hub = Hub::new(backend).await;
    let ada = hub
        .create(
            "a",
            json!({"first_name": "Ada", "email": "ada@example.com", "phone": "306 555 0100"}),
        )
        .await;
    let bob = hub
        .create(
            "a",
            json!({"first_name": "Bob", "email": "bob@example.com"}),
        )
        .await;
    let path = format!("/v1/customers/{}", bob["customer_id"].as_str().unwrap());
    for body in [
        json!({"email": ["bob@example.com", "ADA@example.com"]}),
        json!({"phone": "+1 306-555-0100"}),
    ] {
        let r = hub.app.patch(&path, hub.key("a"), body).await;
        r.expect_problem(409, "duplicate");
        assert_eq!(r.body["conflicting_customer_id"], ada["customer_id"]);
        assert!(r.body["matched_on"][0]["field"].is_string());
    }
    let unchanged = hub.app.get(&path, hub.key("a")).await;
    assert_eq!(unchanged.body["version"], 1);
    // Moving an email between customers works once its owner lets it go.
    let ada_path = format!("/v1/customers/{}", ada["customer_id"].as_str().unwrap());
    hub.app
        .patch(&ada_path, hub.key("a"), json!({"email": []}))
        .await
        .expect(200);
    hub.app
        .patch(&path, hub.key("a"), json!({"email": "ada@example.com"}))
        .await
        .expect(200);
}

async fn deletes_tombstone_and_release_ids(backend: Backend) {
    let hub = Hub::new(backend).await;
    let c = hub
        .create(
            "a",
            json!({"id": "crm-1", "first_name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    let id = c["customer_id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");
    hub.app.delete(&path, hub.key("b")).await.expect(204);
    hub.app
        .get(&path, hub.key("a"))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .get(&path, &hub.app.admin_key)
        .await
        .expect_problem(404, "not_found");
    hub.app
        .patch(&path, hub.key("a"), json!({"first_name": "X"}))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .delete(&path, hub.key("a"))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .get("/v1/customers/crm-1?id_type=vendor", hub.key("a"))
        .await
        .expect_problem(404, "not_found");
    let list = hub
        .app
        .get(
            &format!("/v1/customers?account_id={}", hub.account),
            hub.key("a"),
        )
        .await;
    assert_eq!(list.body["total_results"], 0);
    assert_eq!(
        list.body["customers"],
        json!([]),
        "deleted customers are not listed"
    );
    let events = hub.app.events_of(id).await;
    assert_eq!(events.last().unwrap(), &("customer.deleted".to_owned(), 2));
    // The email and the vendor id are free again.
    let again = hub
        .create("a", json!({"id": "crm-1", "email": "ada@example.com"}))
        .await;
    assert_ne!(again["customer_id"], c["customer_id"]);
}

async fn vendor_id_addressing_and_associations(backend: Backend) {
    let hub = Hub::new(backend).await;
    let ada = hub
        .create("a", json!({"id": "crm-42", "first_name": "Ada"}))
        .await;
    let bob = hub
        .create("a", json!({"id": "crm-43", "first_name": "Bob"}))
        .await;
    let ada_id = ada["customer_id"].as_str().unwrap();
    let by_vendor = hub
        .app
        .get("/v1/customers/crm-42?id_type=vendor", hub.key("a"))
        .await;
    by_vendor.expect(200);
    assert_eq!(by_vendor.body["customer_id"], ada_id);
    hub.app
        .get("/v1/customers/crm-42?id_type=vendor", hub.key("b"))
        .await
        .expect_problem(404, "not_found");
    let patched = hub
        .app
        .patch(
            "/v1/customers/crm-42?id_type=vendor",
            hub.key("a"),
            json!({"last_name": "Lovelace"}),
        )
        .await;
    patched.expect(200);
    assert_eq!(patched.body["last_name"], "Lovelace");

    // B associates its own id, and then addresses the customer by it.
    let put = hub
        .app
        .put(
            &format!("/v1/customers/{ada_id}/vendor-id"),
            hub.key("b"),
            json!({"vendor_customer_id": "pos-7"}),
        )
        .await;
    put.expect(200);
    assert_eq!(put.body["vendor_customer_id"], "pos-7");
    let as_b = hub
        .app
        .get("/v1/customers/pos-7?id_type=vendor", hub.key("b"))
        .await;
    assert_eq!(as_b.body["customer_id"], ada_id);
    assert_eq!(
        hub.app
            .get(&format!("/v1/customers/{ada_id}"), hub.key("a"))
            .await
            .body["vendor_customer_id"],
        "crm-42"
    );

    // Within one product and account, a vendor id names one customer.
    let taken = hub
        .app
        .put(
            &format!(
                "/v1/customers/{}/vendor-id",
                bob["customer_id"].as_str().unwrap()
            ),
            hub.key("b"),
            json!({"vendor_customer_id": "pos-7"}),
        )
        .await;
    taken.expect_problem(409, "duplicate");
    assert_eq!(taken.body["conflicting_customer_id"], ada_id);
    let dup_create = hub
        .app
        .post(
            "/v1/customers",
            hub.key("a"),
            json!({"account_id": hub.account, "id": "crm-43", "first_name": "Eve"}),
        )
        .await;
    dup_create.expect_problem(409, "duplicate");
    assert_eq!(
        dup_create.body["conflicting_customer_id"],
        bob["customer_id"]
    );
    hub.app
        .put(
            &format!("/v1/customers/{ada_id}/vendor-id"),
            &hub.app.admin_key,
            json!({"vendor_customer_id": "x"}),
        )
        .await
        .expect_problem(403, "forbidden");
    let fields = hub
        .app
        .put(
            &format!("/v1/customers/{ada_id}/vendor-id"),
            hub.key("b"),
            json!({"vendor_customer_id": 5}),
        )
        .await
        .expect_problem(400, "validation_failed");
    assert_eq!(fields, ["vendor_customer_id"]);

    // Bulk: a result per item, in order.
    let bulk = hub
        .app
        .post(
            "/v1/customers/associations",
            hub.key("c"),
            json!({"associations": [
                {"customer_id": ada_id, "vendor_customer_id": "erp-1"},
                {"customer_id": customer_list::domain::CustomerId::generate(), "vendor_customer_id": "erp-2"},
                {"customer_id": bob["customer_id"], "vendor_customer_id": "erp-1"},
                {"customer_id": bob["customer_id"]},
                {"customer_id": bob["customer_id"], "vendor_customer_id": "erp-3"},
            ]}),
        )
        .await;
    bulk.expect(200);
    let statuses: Vec<u64> = bulk.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 404, 409, 400, 200]);
    assert_eq!(
        bulk.body["results"][0]["customer"]["vendor_customer_id"],
        "erp-1"
    );
    assert_eq!(
        bulk.body["results"][3]["problem"]["errors"][0]["field"],
        "vendor_customer_id"
    );
    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"customer_id": ada_id, "vendor_customer_id": format!("v{i}")}))
        .collect();
    hub.app
        .post(
            "/v1/customers/associations",
            hub.key("c"),
            json!({"associations": too_many}),
        )
        .await
        .expect_problem(400, "validation_failed");
}

async fn tenancy_of_customers(backend: Backend) {
    let hub = Hub::new(backend).await;
    let c = hub.create("a", json!({"first_name": "Ada"})).await;
    let path = format!("/v1/customers/{}", c["customer_id"].as_str().unwrap());
    // A product not activated on the account sees nothing of it.
    hub.app
        .post(
            "/v1/customers",
            hub.key("d"),
            json!({"account_id": hub.account, "first_name": "X"}),
        )
        .await
        .expect_problem(404, "not_found");
    hub.app
        .get(&path, hub.key("d"))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .patch(&path, hub.key("d"), json!({"first_name": "X"}))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .delete(&path, hub.key("d"))
        .await
        .expect_problem(404, "not_found");
    hub.app
        .get(
            &format!("/v1/customers?account_id={}", hub.account),
            hub.key("d"),
        )
        .await
        .expect_problem(404, "not_found");
    // The one-way product writes and reads.
    hub.create("c", json!({"first_name": "Oneway"})).await;
    hub.app.get(&path, hub.key("c")).await.expect(200);
    // The account key sees its account, and only it.
    hub.app.get(&path, &hub.account_key).await.expect(200);
    let mine = hub.app.get("/v1/customers", &hub.account_key).await;
    mine.expect(200);
    assert_eq!(mine.body["total_results"], 2);
    assert_eq!(mine.body["customers"].as_array().unwrap().len(), 2);
    let other_partner = hub.app.create_partner().await;
    let other_account = hub.app.create_account(&other_partner).await;
    hub.app
        .get(
            &format!("/v1/customers?account_id={other_account}"),
            &hub.account_key,
        )
        .await
        .expect_problem(404, "not_found");
    let (_, other_key) = hub.app.issue_key("accounts", &other_account).await;
    hub.app
        .get(&path, &other_key)
        .await
        .expect_problem(404, "not_found");
    hub.app
        .post(
            "/v1/customers",
            &other_key,
            json!({"account_id": hub.account, "first_name": "X"}),
        )
        .await
        .expect_problem(404, "not_found");
    let created = hub
        .app
        .post("/v1/customers", &other_key, json!({"first_name": "Own"}))
        .await;
    created.expect(201);
    assert_eq!(
        created.body["account_id"], other_account,
        "an account key writes to its own account"
    );
    // The partner reaches its account's customers; another partner does not.
    let (_, partner_key) = hub.app.issue_key("partners", &hub.partner).await;
    hub.app.get(&path, &partner_key).await.expect(200);
    let (_, other_partner_key) = hub.app.issue_key("partners", &other_partner).await;
    hub.app
        .get(&path, &other_partner_key)
        .await
        .expect_problem(404, "not_found");
    hub.app
        .post("/v1/customers", &partner_key, json!({"first_name": "X"}))
        .await
        .expect_problem(403, "forbidden");
    hub.app
        .get(&path, "cl_unknown")
        .await
        .expect_problem(401, "unauthorized");
}

async fn accountless_customers_belong_to_their_product(backend: Backend) {
    let hub = Hub::new(backend).await;
    let r = hub
        .app
        .post(
            "/v1/customers",
            hub.key("a"),
            json!({"first_name": "Solo", "phone": "(212) 555-0100"}),
        )
        .await;
    r.expect(201);
    assert!(r.body["account_id"].is_null());
    assert_eq!(
        r.body["phone"],
        json!(["+12125550100"]),
        "read in the default region US"
    );
    let id = r.str("customer_id");
    let path = format!("/v1/customers/{id}");
    hub.app.get(&path, hub.key("a")).await.expect(200);
    hub.app.get(&path, &hub.app.admin_key).await.expect(200);
    for other in [hub.key("b"), hub.account_key.as_str()] {
        hub.app
            .get(&path, other)
            .await
            .expect_problem(404, "not_found");
    }
    hub.app
        .patch(&path, hub.key("a"), json!({"last_name": "Only"}))
        .await
        .expect(200);
    assert!(
        hub.app.events_of(&id).await.is_empty(),
        "account-less customers are never synced"
    );
    // Duplicates and vendor ids are scoped to the owning product.
    hub.app
        .post(
            "/v1/customers?on_duplicate=reject",
            hub.key("a"),
            json!({"first_name": "Again", "phone": "212-555-0100"}),
        )
        .await
        .expect_problem(409, "duplicate");
    hub.app
        .post(
            "/v1/customers",
            hub.key("b"),
            json!({"first_name": "Other", "phone": "212-555-0100"}),
        )
        .await
        .expect(201);
}

async fn list_sorts_filters_and_searches(backend: Backend) {
    let hub = Hub::new(backend).await;
    let people = [
        (
            "a",
            "Ada",
            "Lovelace",
            "ada@example.com",
            "306 555 0101",
            vec!["vip"],
        ),
        (
            "b",
            "Charles",
            "Babbage",
            "charles@engine.org",
            "306 555 0102",
            vec![],
        ),
        (
            "a",
            "Grace",
            "Hopper",
            "grace@navy.mil",
            "306 555 0103",
            vec!["vip", "navy"],
        ),
        (
            "b",
            "alan",
            "turing",
            "alan@bletchley.uk",
            "306 555 0104",
            vec![],
        ),
        (
            "a",
            "Mary",
            "Somerville",
            "mary@example.com",
            "306 555 0105",
            vec!["new"],
        ),
    ];
    let mut ids = Vec::new();
    for (i, (product, first, last, email, phone, tags)) in people.iter().enumerate() {
        let c = hub
            .create(product, json!({"id": format!("v{i}"), "first_name": first, "last_name": last, "email": email, "phone": phone, "tags": tags}))
            .await;
        ids.push(c["customer_id"].as_str().unwrap().to_owned());
    }
    let base = format!("/v1/customers?account_id={}", hub.account);
    let names = |r: &crate::support::Resp, field: &str| -> Vec<String> {
        r.body["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[field].as_str().unwrap().to_owned())
            .collect()
    };
    let key = &hub.account_key;

    let all = hub.app.get(&base, key).await;
    all.expect(200);
    assert_eq!(all.body["total_results"], 5);
    assert_eq!(all.body["has_more"], false);
    assert!(all.body["next_cursor"].is_null());
    assert_eq!(names(&all, "customer_id"), ids, "default sort: created");
    let newest = hub.app.get(&format!("{base}&sort=-created"), key).await;
    assert_eq!(
        names(&newest, "customer_id"),
        ids.iter().rev().cloned().collect::<Vec<_>>()
    );
    let by_last = hub.app.get(&format!("{base}&sort=last_name"), key).await;
    assert_eq!(
        names(&by_last, "last_name"),
        ["Babbage", "Hopper", "Lovelace", "Somerville", "turing"]
    );
    let by_last_desc = hub
        .app
        .get(&format!("{base}&sort=-last_name&page_size=2"), key)
        .await;
    assert_eq!(names(&by_last_desc, "last_name"), ["turing", "Somerville"]);
    let cursor = by_last_desc.body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = hub
        .app
        .get(
            &format!("{base}&sort=-last_name&page_size=2&cursor={cursor}"),
            key,
        )
        .await;
    assert_eq!(names(&next, "last_name"), ["Lovelace", "Hopper"]);
    assert_eq!(next.body["total_results"], 5);
    let by_first = hub.app.get(&format!("{base}&sort=first_name"), key).await;
    assert_eq!(
        names(&by_first, "first_name"),
        ["Ada", "alan", "Charles", "Grace", "Mary"]
    );

    let q = |query: &str| format!("{base}&{query}");
    let find = |r: &crate::support::Resp| names(r, "first_name");
    assert_eq!(find(&hub.app.get(&q("q=GRACE@"), key).await), ["Grace"]);
    assert_eq!(
        find(&hub.app.get(&q("q=(306)%20555-0104"), key).await),
        ["alan"]
    );
    assert_eq!(find(&hub.app.get(&q("q=3065550105"), key).await), ["Mary"]);
    assert_eq!(find(&hub.app.get(&q("q=lovel"), key).await), ["Ada"]);
    assert_eq!(
        find(&hub.app.get(&q("q=example.com&sort=-created"), key).await),
        ["Mary", "Ada"]
    );
    assert!(
        find(&hub.app.get(&q("q=%25"), key).await).is_empty(),
        "wildcards are literal"
    );
    assert_eq!(
        find(&hub.app.get(&q("tag=vip"), key).await),
        ["Ada", "Grace"]
    );
    assert_eq!(
        find(&hub.app.get(&q("tag=navy&q=grace"), key).await),
        ["Grace"]
    );
    let origin_b = hub
        .app
        .get(&q(&format!("origin={}", hub.product_id("b"))), key)
        .await;
    assert_eq!(find(&origin_b), ["Charles", "alan"]);
    assert_eq!(origin_b.body["total_results"], 2);
    assert_eq!(
        find(&hub.app.get(&q("vendor_customer_id=v2"), hub.key("a")).await),
        ["Grace"]
    );
    assert!(
        find(&hub.app.get(&q("vendor_customer_id=v2"), hub.key("b")).await).is_empty(),
        "another product's id"
    );

    let third = hub.app.get(&format!("/v1/customers/{}", ids[2]), key).await;
    let created = third.body["created"].as_str().unwrap().to_owned();
    let enc = |t: &str| t.replace(':', "%3A").replace('+', "%2B");
    assert_eq!(
        find(
            &hub.app
                .get(&q(&format!("created_after={}", enc(&created))), key)
                .await
        ),
        ["alan", "Mary"]
    );
    assert_eq!(
        find(
            &hub.app
                .get(&q(&format!("created_before={}", enc(&created))), key)
                .await
        ),
        ["Ada", "Charles"]
    );
    hub.app
        .patch(
            &format!("/v1/customers/{}", ids[0]),
            hub.key("a"),
            json!({"city": "London"}),
        )
        .await
        .expect(200);
    let touched = hub.app.get(&format!("/v1/customers/{}", ids[0]), key).await;
    let since = touched.body["updated"].as_str().unwrap().to_owned();
    assert_eq!(
        find(
            &hub.app
                .get(&q(&format!("updated_since={}", enc(&since))), key)
                .await
        ),
        ["Ada"]
    );

    for (query, field) in [
        ("sort=age", "sort"),
        ("page_size=501", "page_size"),
        ("created_after=yesterday", "created_after"),
        ("cursor=abc", "cursor"),
    ] {
        let fields = hub
            .app
            .get(&q(query), key)
            .await
            .expect_problem(400, "validation_failed");
        assert_eq!(fields, [field]);
    }
    let wrong_sort = hub
        .app
        .get(&q(&format!("sort=created&cursor={cursor}")), key)
        .await;
    assert_eq!(
        wrong_sort.expect_problem(400, "validation_failed"),
        ["cursor"]
    );
    // Only an account key may leave out account_id: which key may is its scope.
    hub.app
        .get("/v1/customers", hub.key("a"))
        .await
        .expect_problem(403, "forbidden");
    hub.app
        .get("/v1/customers?account_id=AG-1", hub.key("a"))
        .await
        .expect_problem(400, "validation_failed");
}

async fn batch_creates_with_a_result_per_item(backend: Backend) {
    let hub = Hub::new(backend).await;
    let body = json!({"customers": [
        {"account_id": hub.account, "id": "b1", "first_name": "Ada", "email": "ada@example.com"},
        {"account_id": hub.account, "first_name": "Bad, Name"},
        {"account_id": hub.account, "first_name": "Ada again", "email": "ADA@example.com"},
        "not an object",
        {"account_id": hub.account, "id": "b1", "first_name": "Same id"},
        {"account_id": hub.account, "last_name": "Byron", "phone": "306 555 0100"},
    ]});
    let r = hub
        .app
        .post("/v1/customers/batch", hub.key("a"), body)
        .await;
    r.expect(200);
    let results = r.body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 409, 400, 409, 201]);
    assert_eq!(results[0]["customer"]["vendor_customer_id"], "b1");
    assert_eq!(results[1]["problem"]["errors"][0]["field"], "first_name");
    assert_eq!(results[2]["problem"]["code"], "duplicate");
    assert_eq!(
        results[2]["problem"]["conflicting_customer_id"],
        results[0]["customer"]["customer_id"]
    );
    assert!(results[2]["problem"]["conflict_id"]
        .as_str()
        .unwrap()
        .starts_with("CONFLICT-"));
    assert_eq!(results[5]["customer"]["phone"], json!(["+13065550100"]));
    let list = hub
        .app
        .get(
            &format!("/v1/customers?account_id={}", hub.account),
            hub.key("a"),
        )
        .await;
    assert_eq!(
        list.body["total_results"], 2,
        "conflict records are not listed"
    );
    assert_eq!(list.body["customers"].as_array().unwrap().len(), 2);
    let conflict_id = results[2]["problem"]["conflict_id"].as_str().unwrap();
    let conflict = hub
        .app
        .get(&format!("/v1/customers/{conflict_id}"), hub.key("a"))
        .await;
    conflict.expect(200);
    assert_eq!(
        conflict.body["conflict"]["conflicting_customer_id"],
        results[0]["customer"]["customer_id"]
    );
    assert_eq!(
        conflict.body["conflict"]["matched_on"],
        json!([{"field": "email", "value": "ada@example.com"}])
    );

    let merged = hub
        .app
        .post("/v1/customers/batch?on_duplicate=merge", hub.key("b"), json!({"customers": [
            {"account_id": hub.account, "first_name": "Ignored", "last_name": "Lovelace", "email": "ada@example.com", "tags": ["vip"]},
        ]}))
        .await;
    let item = &merged.body["results"][0];
    assert_eq!(item["status"], 200);
    assert_eq!(
        item["customer"]["first_name"], "Ada",
        "filled, not overwritten"
    );
    assert_eq!(item["customer"]["last_name"], "Lovelace");
    assert_eq!(item["customer"]["tags"], json!(["vip"]));
    assert_eq!(
        item["customer"]["vendor_customer_id"],
        item["customer"]["customer_id"]
    );

    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"account_id": hub.account, "first_name": format!("N{i}")}))
        .collect();
    hub.app
        .post(
            "/v1/customers/batch",
            hub.key("a"),
            json!({"customers": too_many}),
        )
        .await
        .expect_problem(400, "validation_failed");
    hub.app
        .post(
            "/v1/customers/batch",
            hub.key("a"),
            json!({"customers": []}),
        )
        .await
        .expect_problem(400, "validation_failed");
}

/// `total_results` is counted for the first page; its cursor carries the count, so later
/// pages of that listing repeat it even when customers were added meanwhile.
async fn later_pages_repeat_the_first_pages_total(backend: Backend) {
    let hub = Hub::new(backend).await;
    let add = |i: usize| json!({"account_id": hub.account, "first_name": format!("T{i}")});
    for i in 0..3 {
        hub.app
            .post("/v1/customers", hub.key("a"), add(i))
            .await
            .expect(201);
    }
    let base = format!("/v1/customers?account_id={}&page_size=2", hub.account);
    let first = hub.app.get(&base, &hub.account_key).await;
    assert_eq!(first.body["total_results"], 3);
    hub.app
        .post("/v1/customers", hub.key("a"), add(3))
        .await
        .expect(201);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = hub
        .app
        .get(&format!("{base}&cursor={cursor}"), &hub.account_key)
        .await;
    assert_eq!(second.body["total_results"], 3, "the first page's count");
    assert_eq!(second.body["customers"].as_array().unwrap().len(), 2);
    let fresh = hub.app.get(&base, &hub.account_key).await;
    assert_eq!(fresh.body["total_results"], 4, "a new listing counts again");
}

async fn paging_is_complete_while_customers_are_inserted(backend: Backend) {
    let hub = Hub::new(backend).await;
    let name = |i: usize| format!("N{:05}", (i * 7919) % 10007);
    let batch = |from: usize, n: usize| {
        let customers: Vec<Value> = (from..from + n)
            .map(|i| json!({"account_id": hub.account, "first_name": "P", "last_name": name(i), "email": format!("p{i}@example.com")}))
            .collect();
        json!({ "customers": customers })
    };
    for start in (0..3000).step_by(500) {
        let r = hub
            .app
            .post("/v1/customers/batch", hub.key("a"), batch(start, 500))
            .await;
        r.expect(200);
        assert!(r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == 201));
    }
    let existing: HashSet<String> = {
        let mut all = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/customers?account_id={}&page_size=500", hub.account);
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = hub.app.get(&path, &hub.account_key).await;
            for c in page.body["customers"].as_array().unwrap() {
                all.insert(c["customer_id"].as_str().unwrap().to_owned());
            }
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        all
    };
    assert_eq!(existing.len(), 3000);

    for (round, sort) in ["created", "-last_name"].into_iter().enumerate() {
        // Another client keeps inserting while this one pages.
        let writer = {
            let client = hub.app.client.clone();
            let url = format!("{}/v1/customers/batch", hub.app.base);
            let key = hub.key("b").to_owned();
            let bodies: Vec<Value> = (0..10)
                .map(|k| batch(10_000 + round * 1000 + k * 25, 25))
                .collect();
            tokio::spawn(async move {
                for body in bodies {
                    let r = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            })
        };
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!(
                "/v1/customers?account_id={}&page_size=100&sort={sort}",
                hub.account
            );
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = hub.app.get(&path, &hub.account_key).await;
            page.expect(200);
            seen.extend(
                page.body["customers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["customer_id"].as_str().unwrap().to_owned()),
            );
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        writer.await.unwrap();
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "sort {sort}: no customer repeats");
        let missed = existing.iter().filter(|id| !unique.contains(id)).count();
        assert_eq!(
            missed, 0,
            "sort {sort}: every customer that existed at the start is seen"
        );
    }
}

async fn idempotency_keys_replay_the_first_response(backend: Backend) {
    let hub = Hub::new(backend).await;
    let send = |key: &str, idem: &str, body: Value| {
        hub.app.send(
            hub.app
                .client
                .post(format!("{}/v1/customers", hub.app.base))
                .bearer_auth(key.to_owned())
                .header("idempotency-key", idem.to_owned())
                .json(&body),
        )
    };
    let body = json!({"account_id": hub.account, "first_name": "Ada", "email": "ada@example.com"});
    let first = send(hub.key("a"), "k-1", body.clone()).await;
    assert_eq!(first.status, 201);
    let location = first.headers["location"].clone();
    let first_body = first.body.clone();
    let again = send(hub.key("a"), "k-1", body.clone()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers["location"], location);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first_body, "the first response, unchanged");

    let other_body = send(
        hub.key("a"),
        "k-1",
        json!({"account_id": hub.account, "first_name": "Eve"}),
    )
    .await;
    assert_eq!(other_body.status, 422);
    assert_eq!(other_body.body["code"], "idempotency_key_reused");

    // A settled error is replayed too; another key is another request.
    let dup = send(hub.key("a"), "k-2", body.clone()).await;
    assert_eq!(dup.status, 409);
    let dup_body = dup.body.clone();
    let dup_again = send(hub.key("a"), "k-2", body.clone()).await;
    assert_eq!(dup_again.status, 409);
    assert_eq!(
        dup_again.body, dup_body,
        "the same conflict record, not a second"
    );

    // Keys belong to the API key that sent them.
    let fresh = json!({"account_id": hub.account, "first_name": "Bob"});
    assert_eq!(send(hub.key("b"), "k-1", fresh).await.status, 201);

    let bad = send(hub.key("a"), &"x".repeat(256), body.clone()).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["errors"][0]["field"], "Idempotency-Key");

    let list = hub
        .app
        .get(
            &format!("/v1/customers?account_id={}", hub.account),
            hub.key("a"),
        )
        .await;
    assert_eq!(list.body["total_results"], 2, "Ada once, and Bob");
}
