//! SPEC section 7's listings: `GET /v1/partners`, `GET /v1/products`, `GET /v1/keys` and
//! `GET /v1/me`, each within the caller's reach.

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use customer_list::domain::{AccountId, PartnerId};
use serde_json::{json, Value};

fn ids(page: &Value, list: &str, id: &str) -> Vec<String> {
    page[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[id].as_str().unwrap().to_owned())
        .collect()
}

on_both_backends!(
    partners_and_products_page_within_reach,
    keys_list_whose_they_are_never_the_secret,
    me_names_the_calling_key,
);

async fn partners_and_products_page_within_reach(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_key.clone();
    let partners = [
        app.create_partner().await,
        app.create_partner().await,
        app.create_partner().await,
    ];
    let mine = &partners[0];
    let mut made = Vec::new();
    for partner in [
        Some(mine.as_str()),
        Some(mine.as_str()),
        Some(partners[1].as_str()),
        None,
    ] {
        made.push(
            app.create_product(partner).await["product_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Partners: the admin's, paged in creation order.
    let first = app.get("/v1/partners?page_size=2", &admin).await;
    first.expect(200);
    assert_eq!(ids(&first.body, "partners", "partner_id"), partners[..2]);
    assert_eq!(first.body["has_more"], true);
    let cursor = first.str("next_cursor");
    let rest = app
        .get(&format!("/v1/partners?page_size=2&cursor={cursor}"), &admin)
        .await;
    assert_eq!(ids(&rest.body, "partners", "partner_id"), partners[2..]);
    assert_eq!(rest.body["has_more"], false);
    assert!(rest.body["next_cursor"].is_null());
    let (_, partner_key) = app.issue_key("partners", mine).await;
    app.get("/v1/partners", &partner_key)
        .await
        .expect_problem(403, "forbidden");

    // Products: all for the admin, one partner's on request; a partner's own by default.
    let all = app.get("/v1/products", &admin).await;
    all.expect(200);
    assert_eq!(ids(&all.body, "products", "product_id"), made);
    assert!(
        all.body["products"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("webhook_secret").is_none() && p.get("api_key").is_none()),
        "no secrets: {}",
        all.body
    );
    let theirs = app
        .get(&format!("/v1/products?partner_id={}", partners[1]), &admin)
        .await;
    assert_eq!(ids(&theirs.body, "products", "product_id"), made[2..3]);
    let own = app.get("/v1/products?page_size=1", &partner_key).await;
    assert_eq!(ids(&own.body, "products", "product_id"), made[..1]);
    let cursor = own.str("next_cursor");
    let next = app
        .get(
            &format!("/v1/products?page_size=1&cursor={cursor}"),
            &partner_key,
        )
        .await;
    assert_eq!(ids(&next.body, "products", "product_id"), made[1..2]);
    assert_eq!(next.body["has_more"], false);
    // Another partner's, or one that does not exist: the same 404.
    for other in [partners[1].clone(), PartnerId::generate().to_string()] {
        app.get(&format!("/v1/products?partner_id={other}"), &partner_key)
            .await
            .expect_problem(404, "not_found");
    }
    let product_key = app.create_product(Some(mine)).await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/v1/products", &product_key)
        .await
        .expect_problem(403, "forbidden");
    // A cursor of another list is not a cursor of this one.
    app.get(&format!("/v1/products?cursor={cursor}x"), &admin)
        .await
        .expect_problem(400, "validation_failed");
}

async fn keys_list_whose_they_are_never_the_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_key.clone();
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let other_partner = app.create_partner().await;
    let other_account = app.create_account(&other_partner).await;
    let (partner_key_id, partner_key) = app.issue_key("partners", &partner).await;
    let (first_id, account_key) = app.issue_key("accounts", &account).await;
    let (second_id, _) = app.issue_key("accounts", &account).await;
    app.delete(&format!("/v1/keys/{second_id}"), &admin)
        .await
        .expect(204);

    let listed = app
        .get(&format!("/v1/keys?account_id={account}"), &admin)
        .await;
    listed.expect(200);
    assert_eq!(
        ids(&listed.body, "keys", "key_id"),
        [first_id.clone(), second_id.clone()]
    );
    let keys = listed.body["keys"].as_array().unwrap();
    assert!(keys.iter().all(|k| k["kind"] == "account"));
    assert!(keys[0]["revoked"].is_null() && keys[1]["revoked"].is_string());
    for key in keys {
        let mut fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            ["created", "key_id", "kind", "revoked"],
            "never the key"
        );
    }
    // Its partner may list it; an account lists itself, by default or by name.
    let by_partner = app
        .get(&format!("/v1/keys?account_id={account}"), &partner_key)
        .await;
    assert_eq!(ids(&by_partner.body, "keys", "key_id").len(), 2);
    let own = app.get("/v1/keys", &account_key).await;
    assert_eq!(
        ids(&own.body, "keys", "key_id"),
        [first_id.clone(), second_id.clone()]
    );
    let named = app
        .get(&format!("/v1/keys?account_id={account}"), &account_key)
        .await;
    assert_eq!(ids(&named.body, "keys", "key_id").len(), 2);
    let partners = app.get("/v1/keys", &partner_key).await;
    assert_eq!(ids(&partners.body, "keys", "key_id"), [partner_key_id]);
    // Outside its reach, or unknown: the same 404.
    for path in [
        format!("/v1/keys?account_id={other_account}"),
        format!("/v1/keys?account_id={}", AccountId::generate()),
        format!("/v1/keys?partner_id={other_partner}"),
    ] {
        app.get(&path, &partner_key)
            .await
            .expect_problem(404, "not_found");
        app.get(&path, &account_key)
            .await
            .expect_problem(404, "not_found");
    }
    // Two filters name two subjects; no key has both.
    let both = app
        .get(
            &format!("/v1/keys?account_id={account}&partner_id={partner}"),
            &admin,
        )
        .await;
    assert_eq!(both.body["keys"], json!([]));
    // The admin's own keys (the bootstrap one) without a filter.
    let admins = app.get("/v1/keys", &admin).await;
    assert!(ids(&admins.body, "keys", "key_id").contains(&"KEY-bootstrap-admin".to_owned()));
    app.get("/v1/keys?account_id=AG-1", &admin)
        .await
        .expect_problem(400, "validation_failed");
}

async fn me_names_the_calling_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let product = app.create_product(Some(&partner)).await;
    let loose_product = app.create_product(None).await;
    let (partner_key_id, partner_key) = app.issue_key("partners", &partner).await;
    let (account_key_id, account_key) = app.issue_key("accounts", &account).await;

    let me = app.get("/v1/me", &app.admin_key).await;
    me.expect(200);
    assert_eq!(
        me.body,
        json!({"kind": "admin", "key_id": "KEY-bootstrap-admin"})
    );
    let me = app.get("/v1/me", &partner_key).await;
    assert_eq!(
        me.body,
        json!({"kind": "partner", "key_id": partner_key_id, "partner_id": partner})
    );
    let me = app.get("/v1/me", &account_key).await;
    assert_eq!(
        me.body,
        json!({"kind": "account", "key_id": account_key_id, "account_id": account, "partner_id": partner})
    );
    let me = app
        .get("/v1/me", product["api_key"].as_str().unwrap())
        .await;
    assert_eq!(
        me.body,
        json!({"kind": "product", "key_id": product["key_id"], "product_id": product["product_id"],
            "partner_id": partner})
    );
    let me = app
        .get("/v1/me", loose_product["api_key"].as_str().unwrap())
        .await;
    assert_eq!(
        me.body,
        json!({"kind": "product", "key_id": loose_product["key_id"],
            "product_id": loose_product["product_id"]})
    );
    app.get("/v1/me", "cl_unknown")
        .await
        .expect_problem(401, "unauthorized");
}
