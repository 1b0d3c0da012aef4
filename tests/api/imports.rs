//! SPEC section 12 on both backends: the account's list exported as CSV (streamed by the
//! list's keyset, with its filters and sort, formula-looking cells neutralized).

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use customer_list::domain::spreadsheet::{restore, EXPORT_COLUMNS};
use serde_json::{json, Value};

on_both_backends!(
    the_export_holds_every_matching_customer_in_the_lists_order,
    the_export_refuses_bad_filters_and_other_accounts,
);

struct Account {
    app: TestApp,
    account: String,
    writer_key: String,
}

async fn account(backend: Backend) -> Account {
    let app = TestApp::spawn(backend).await;
    let partner = app.create_partner().await;
    let account = app.create_account(&partner).await;
    let writer = app.create_product(Some(&partner)).await;
    let writer_key = writer["api_key"].as_str().unwrap().to_owned();
    let writer = writer["product_id"].as_str().unwrap().to_owned();
    app.activate(&account, &writer, "two_way").await;
    Account {
        app,
        account,
        writer_key,
    }
}

/// Creates `customers` through the batch endpoint, 500 at a time.
async fn create_all(a: &Account, customers: Vec<Value>) {
    for chunk in customers.chunks(500) {
        let r = a
            .app
            .post(
                "/v1/customers/batch",
                &a.writer_key,
                json!({ "customers": chunk }),
            )
            .await;
        r.expect(200);
        for result in r.body["results"].as_array().unwrap() {
            assert_eq!(result["status"], json!(201), "{result}");
        }
    }
}

/// The export's raw response: status, content type and body bytes.
async fn export(a: &Account, key: &str, query: &str) -> (u16, String, Vec<u8>) {
    let r = a
        .app
        .client
        .get(format!("{}/v1/customers/export?{query}", a.app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, r.bytes().await.unwrap().to_vec())
}

/// The rows of an exported file (after its header), read by the `csv` crate.
fn rows(body: &[u8]) -> Vec<csv::StringRecord> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("a UTF-8 BOM first");
    let mut reader = csv::Reader::from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, EXPORT_COLUMNS);
    reader.records().map(Result::unwrap).collect()
}

fn column(name: &str) -> usize {
    EXPORT_COLUMNS.iter().position(|c| *c == name).unwrap()
}

/// Every customer id of the account's list in the list's order (`sort`), page by page.
async fn listed(a: &Account, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = a
            .app
            .get(
                &format!(
                    "/v1/customers?account_id={}&page_size=100&{query}{cursor}",
                    a.account
                ),
                &a.app.admin_key,
            )
            .await;
        page.expect(200);
        for c in page.body["customers"].as_array().unwrap() {
            ids.push(c["customer_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
}

async fn the_export_holds_every_matching_customer_in_the_lists_order(backend: Backend) {
    let a = account(backend).await;
    // More than two pages of the export's 1,000, names out of creation order.
    let mut customers: Vec<Value> = (0..2_300)
        .map(|i| {
            json!({"account_id": a.account, "first_name": format!("Client{i}"),
                   "last_name": format!("L{:04}", (i * 7919) % 2_300),
                   "email": format!("client{i}@example.com"),
                   "tags": if i % 10 == 0 { json!(["vip", "export"]) } else { json!(["export"]) }})
        })
        .collect();
    customers.push(json!({"account_id": a.account, "first_name": "=HYPERLINK(A1)",
        "last_name": "O\"Brien", "address": "1 Main St, \"Suite\" 2", "email": ["two@example.com", "emails@example.com"],
        "phone": "+13135550100", "city": "Zürich", "permission_to_contact": true, "tags": ["export"]}));
    create_all(&a, customers).await;

    let (status, kind, body) =
        export(&a, &a.app.admin_key, &format!("account_id={}", a.account)).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/csv; charset=utf-8");
    let all = rows(&body);
    assert_eq!(all.len(), 2_301);
    let ids: Vec<&str> = all.iter().map(|r| &r[column("customer_id")]).collect();
    assert_eq!(ids, listed(&a, "").await, "the list's order (created)");
    // The formula-looking cells are text in the file, and read back as sent.
    let odd = all
        .iter()
        .find(|r| r[column("email")].contains("two@example.com"))
        .unwrap();
    assert_eq!(&odd[column("first_name")], "'=HYPERLINK(A1)");
    assert_eq!(restore(&odd[column("first_name")]), "=HYPERLINK(A1)");
    assert_eq!(&odd[column("last_name")], "O\"Brien");
    assert_eq!(&odd[column("address")], "1 Main St, \"Suite\" 2");
    assert_eq!(&odd[column("email")], "two@example.com;emails@example.com");
    assert_eq!(&odd[column("phone")], "'+13135550100");
    assert_eq!(&odd[column("city")], "Zürich");
    assert!(odd[column("permission_to_contact")].starts_with("20"));
    let plain = all
        .iter()
        .find(|r| &r[column("email")] == "client10@example.com")
        .unwrap();
    assert_eq!(&plain[column("permission_to_contact")], "");
    assert_eq!(&plain[column("tags")], "vip;export");

    // The list's filters and sort.
    let (_, _, body) = export(
        &a,
        &a.app.admin_key,
        &format!("account_id={}&tag=vip&sort=-last_name", a.account),
    )
    .await;
    let vip = rows(&body);
    assert_eq!(vip.len(), 230);
    let ids: Vec<&str> = vip.iter().map(|r| &r[column("customer_id")]).collect();
    assert_eq!(ids, listed(&a, "tag=vip&sort=-last_name").await);
    let (_, _, body) = export(
        &a,
        &a.app.admin_key,
        &format!("account_id={}&q=client1999", a.account),
    )
    .await;
    let found = rows(&body);
    assert_eq!(found.len(), 1);
    assert_eq!(&found[0][column("first_name")], "Client1999");
    // A product sees its own ids.
    let (status, _, body) = export(&a, &a.writer_key, &format!("account_id={}", a.account)).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&body).len(), 2_301);
}

async fn the_export_refuses_bad_filters_and_other_accounts(backend: Backend) {
    let a = account(backend).await;
    let (status, kind, body) = export(
        &a,
        &a.app.admin_key,
        &format!(
            "account_id={}&sort=shoe_size&created_after=yesterday",
            a.account
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(kind, "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["sort", "created_after"], "{problem}");
    // Another partner's product cannot export this account.
    let other = a.app.create_partner().await;
    let stranger = a.app.create_product(Some(&other)).await;
    let key = stranger["api_key"].as_str().unwrap();
    let (status, _, _) = export(&a, key, &format!("account_id={}", a.account)).await;
    assert_eq!(status, 404);
    // An empty account: the header alone.
    let (status, _, body) =
        export(&a, &a.app.admin_key, &format!("account_id={}", a.account)).await;
    assert_eq!(status, 200);
    assert!(rows(&body).is_empty());
}
