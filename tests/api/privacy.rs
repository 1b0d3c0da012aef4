//! SPEC section 10 on both backends: the consent history (every change of
//! `permission_to_contact` with how it was obtained and who made it).

use crate::on_both_backends;
use crate::support::{Backend, Hub};
use serde_json::{json, Value};

on_both_backends!(
    the_consent_history_records_each_change_with_its_source,
    a_consent_object_needs_a_change_of_consent,
    a_merge_that_grants_consent_records_it,
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
