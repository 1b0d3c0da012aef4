//! SPEC section 10, "backups cannot be erased": after a restore from a backup,
//! `customer-list reapply-erasures` erases again every customer erased since the backup
//! was taken, from the receipts of the database as it was (a database URL) or from the
//! lines `customer-list erasures` printed; on both backends, with the real binary.

use crate::on_both_backends;
use crate::privacy::stored_text;
use crate::support::{loopback_hooks, receiver, Backend, TestApp, TestDb};
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(reapply_erasures_erases_again_after_a_restore);

const BIN: &str = env!("CARGO_BIN_EXE_customer-list");

/// Runs the binary on `db` with `args`; its stdout, or the test fails with its stderr.
async fn run(db: &TestDb, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("CUSTOMER_LIST_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .env("CUSTOMER_LIST_DATABASE_URL", &db.url)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run customer-list");
    assert!(
        out.status.success(),
        "customer-list {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

async fn erase(app: &TestApp, key: &str, id: &str, suppress: bool) -> String {
    let r = app
        .post(
            &format!("/v1/customers/{id}/erase"),
            key,
            json!({"suppress": suppress, "reason": "asked by phone"}),
        )
        .await;
    r.expect(202);
    r.str("erasure_id")
}

async fn reapply_erasures_erases_again_after_a_restore(backend: Backend) {
    let hooks = receiver().await;
    let app = TestApp::spawn_with(backend, loopback_hooks).await;
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let writer = app.create_product(Some(&partner)).await;
    let writer_key = writer["api_key"].as_str().unwrap().to_owned();
    app.activate(&account, writer["product_id"].as_str().unwrap(), "two_way")
        .await;
    let told = app
        .post(
            "/v1/products",
            &app.admin_key,
            json!({"name": "Loyalty", "webhook_url": hooks.url}),
        )
        .await;
    told.expect(201);
    app.activate(&account, &told.str("product_id"), "two_way")
        .await;
    let (_, account_key) = app.issue_key("accounts", &account).await;
    let create = |body: Value| {
        let (app, account, key) = (&app, &account, &writer_key);
        async move {
            let mut body = body;
            body["account_id"] = json!(account);
            let r = app.post("/v1/customers", key, body).await;
            r.expect(201);
            r.str("customer_id")
        }
    };
    // Erased before the backup: the backup already holds that erasure.
    let early = create(json!({"first_name": "Early", "email": "early@example.com"})).await;
    erase(&app, &account_key, &early, false).await;
    let kept = create(json!({"first_name": "Kept", "email": "kept@example.com"})).await;
    let gone = create(json!({"first_name": "Philippa", "last_name": "Quist",
        "email": "philippa.quist@example.com", "phone": "+13065550177"}))
    .await;

    // The backup: taken with the hub stopped, so that Postgres may copy the database.
    let db = app.into_database().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let taken = chrono::Utc::now();
    let restored_from_source = db.backup(backend).await;
    let restored_from_file = db.backup(backend).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // After the backup: one erasure of a customer the backup holds, one of a customer
    // made after it.
    let app = TestApp::spawn_on(backend, db, loopback_hooks, true).await;
    let erasure = erase(&app, &account_key, &gone, true).await;
    let late = create_on(&app, &writer_key, &account, "late@example.com").await;
    erase(&app, &account_key, &late, false).await;
    let told_of = |received: &[testkit::Received]| {
        received.iter().any(|r| {
            r.json["type"] == json!("customer.erased")
                && r.json["data"]["erasure_id"] == json!(erasure)
        })
    };
    let received = hooks.wait_until(Duration::from_secs(10), told_of).await;
    assert!(told_of(&received), "the product was told of the erasure");
    let original = app
        .get(&format!("/v1/erasures/{erasure}"), &account_key)
        .await;
    original.expect(200);
    let source = app.into_database().await;

    // What a cron job ships off-site, and the reapply from it and from the old database.
    let since = taken.to_rfc3339();
    let lines = run(&source, &["erasures", "--since", &since]).await;
    assert_eq!(
        lines.lines().count(),
        2,
        "two receipts since the backup: {lines}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &lines).unwrap();
    let summary = "2 receipts read: 1 customers erased again, 0 already erased here, \
                   1 not in this database\n";
    let from_source = ["reapply-erasures", "--since", &since, "--from", &source.url];
    assert_eq!(run(&restored_from_source, &from_source).await, summary);
    let path = file.path().to_str().unwrap();
    let from_file = ["reapply-erasures", "--since", &since, "--from", path];
    assert_eq!(run(&restored_from_file, &from_file).await, summary);
    // Run again, it finds everything done.
    assert_eq!(
        run(&restored_from_source, &from_source).await,
        "2 receipts read: 0 customers erased again, 1 already erased here, \
         1 not in this database\n"
    );

    for restored in [restored_from_source, restored_from_file] {
        hooks.clear();
        let app = TestApp::spawn_on(backend, restored, loopback_hooks, true).await;
        // The same answers as before the restore, under the same receipt.
        let r = app.get(&format!("/v1/customers/{gone}"), &writer_key).await;
        r.expect(404);
        assert_eq!(r.body["erasure_id"], json!(erasure));
        app.get(&format!("/v1/customers/{kept}"), &writer_key)
            .await
            .expect(200);
        let receipt = app
            .get(&format!("/v1/erasures/{erasure}"), &account_key)
            .await;
        receipt.expect(200);
        for field in [
            "requested",
            "requested_by",
            "reason",
            "suppressed",
            "customer_id",
        ] {
            assert_eq!(receipt.body[field], original.body[field], "{field}");
        }
        // Suppression is back too, and the product is told again with the id it knows.
        let again = app
            .post(
                "/v1/customers",
                &writer_key,
                json!({"account_id": account, "email": "Philippa.Quist@example.com"}),
            )
            .await;
        again.expect_problem(409, "suppressed");
        let received = hooks.wait_until(Duration::from_secs(10), told_of).await;
        assert!(
            told_of(&received),
            "the product is told again after the restore"
        );
        let text = stored_text(&app).await;
        for secret in ["Philippa", "Quist", "philippa.quist", "3065550177"] {
            assert!(
                !text.contains(secret),
                "{secret} is left in the restored database"
            );
        }
        assert!(
            text.contains("kept@example.com"),
            "the search reads real data"
        );
        app.stop().await;
    }
}

async fn create_on(app: &TestApp, key: &str, account: &str, email: &str) -> String {
    let r = app
        .post(
            "/v1/customers",
            key,
            json!({"account_id": account, "email": email}),
        )
        .await;
    r.expect(201);
    r.str("customer_id")
}
