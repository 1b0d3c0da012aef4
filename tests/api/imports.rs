//! SPEC section 12 on both backends: the account's list exported as CSV (streamed by the
//! list's keyset, with its filters and sort, formula-looking cells neutralized).

use crate::on_both_backends;
use crate::support::{Backend, TestApp};
use customer_list::domain::spreadsheet::{restore, EXPORT_COLUMNS};
use serde_json::{json, Value};

on_both_backends!(
    the_export_holds_every_matching_customer_in_the_lists_order,
    the_export_refuses_bad_filters_and_other_accounts,
    an_import_writes_its_rows_and_files_its_failures,
    an_import_applies_on_duplicate_and_refuses_unreadable_files,
    an_export_imports_back_as_it_was,
    an_import_is_started_once_per_idempotency_key,
    an_export_of_100000_customers_stays_under_100_mb,
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

/// Starts an import of `file` (a CSV body, or a form when a mapping goes with it).
async fn start_import(
    a: &Account,
    key: &str,
    query: &str,
    file: &[u8],
    mapping: Option<Value>,
) -> crate::support::Resp {
    upload(a, key, query, file, mapping, None).await.0
}

/// `POST /v1/imports`: the file as a raw CSV body, or with a mapping as a multipart form
/// (whose boundary is answered, reqwest's random pick); with an `Idempotency-Key` if given.
async fn upload(
    a: &Account,
    key: &str,
    query: &str,
    file: &[u8],
    mapping: Option<Value>,
    idempotency_key: Option<&str>,
) -> (crate::support::Resp, Option<String>) {
    let url = format!("{}/v1/imports?account_id={}{query}", a.app.base, a.account);
    let mut req = a.app.client.post(url).bearer_auth(key);
    if let Some(idempotency_key) = idempotency_key {
        req = req.header("idempotency-key", idempotency_key);
    }
    let boundary = match mapping {
        None => {
            req = req.header("content-type", "text/csv").body(file.to_vec());
            None
        }
        Some(mapping) => {
            let form = reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(file.to_vec()).file_name("customers.csv"),
                )
                .text("mapping", mapping.to_string());
            let boundary = form.boundary().to_owned();
            req = req.multipart(form);
            Some(boundary)
        }
    };
    (a.app.send(req).await, boundary)
}

/// Waits for the import to complete; answers its last view.
async fn completed(a: &Account, key: &str, id: &str) -> Value {
    a.app
        .wait_for(std::time::Duration::from_secs(120), || async {
            let r = a.app.get(&format!("/v1/imports/{id}"), key).await;
            r.expect(200);
            (r.body["status"] == json!("completed")).then_some(r.body)
        })
        .await
}

/// The error file's rows: (line, problem, the cells as sent).
async fn error_file(
    a: &Account,
    key: &str,
    id: &str,
) -> (Vec<String>, Vec<(u64, String, Vec<String>)>) {
    let r = a
        .app
        .client
        .get(format!("{}/v1/imports/{id}/errors", a.app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.unwrap();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").expect("a BOM first");
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let cells: Vec<String> = r.iter().map(|c| restore(c).to_owned()).collect();
            (
                cells[0].parse().unwrap(),
                cells[1].clone(),
                cells[2..].to_vec(),
            )
        })
        .collect();
    (header, rows)
}

/// A CSV row joined by `sep`, quoting cells that need it.
fn csv_row(cells: &[String], sep: u8) -> String {
    let mut out = csv::WriterBuilder::new()
        .delimiter(sep)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    out.write_record(cells).unwrap();
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

async fn an_import_writes_its_rows_and_files_its_failures(backend: Backend) {
    let a = account(backend).await;
    let reader = a.app.create_product(None).await;
    let reader_key = reader["api_key"].as_str().unwrap().to_owned();
    a.app
        .activate(
            &a.account,
            reader["product_id"].as_str().unwrap(),
            "two_way",
        )
        .await;
    create_all(&a, vec![json!({"account_id": a.account, "email": "taken@example.com", "first_name": "Existing"})]).await;

    // 5,000 rows, `;`-separated with a BOM, a column the mapping skips; 50 bad rows:
    // 10 each of a bad email, a bad phone, too many cells, a duplicate of an earlier row
    // and a duplicate of the existing customer.
    let mut file = "\u{feff}Given;E-mail;Phone;Tags;Notes\n".to_owned();
    let (mut line, mut expected_failures, mut created_emails) = (2u64, Vec::new(), 0);
    for i in 0..5_000u64 {
        let kind = if i % 100 == 7 { (i / 100) % 5 } else { 9 };
        // Quoted newlines (in the skipped column: names hold no control characters).
        let note = if i % 250 == 0 {
            "a note\nover; two lines"
        } else {
            "a note; with ; in it"
        };
        let mut cells = vec![
            format!("Imported{i}"),
            format!("row{i}@example.com"),
            String::new(),
            "csv|import".to_owned(),
            note.to_owned(),
        ];
        match kind {
            0 => cells[1] = format!("not-an-email-{i}"),
            1 => cells[2] = "12".to_owned(),
            2 => cells.push("one too many".to_owned()),
            3 => cells[1] = "row1@example.com".to_owned(),
            4 => cells[1] = "TAKEN@example.com".to_owned(),
            _ => created_emails += 1,
        }
        if kind <= 2 {
            expected_failures.push((line, cells.clone()));
        }
        let text = csv_row(&cells, b';');
        line += text.matches('\n').count() as u64;
        file.push_str(&text);
    }
    let mapping = json!({"Given": "first_name", "E-mail": "email", "Notes": null});
    let r = start_import(&a, &a.writer_key, "", file.as_bytes(), Some(mapping)).await;
    r.expect(202);
    let id = r.str("import_id");
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/imports/{id}").as_str())
    );
    assert_eq!(r.body["rows"], json!(5_000));
    assert_eq!(r.body["on_duplicate"], json!("conflict"));
    let done = completed(&a, &a.writer_key, &id).await;
    assert_eq!(
        (
            done["processed"].as_i64(),
            done["created"].as_i64(),
            done["merged"].as_i64(),
            done["conflicts"].as_i64(),
            done["failed"].as_i64()
        ),
        (
            Some(5_000),
            Some(created_emails),
            Some(0),
            Some(20),
            Some(30)
        ),
        "{done}"
    );
    assert!(done["completed"].is_string());

    // The stored customers: the created rows (names with their newline, tags split).
    let listed = a
        .app
        .get(
            &format!(
                "/v1/customers?account_id={}&tag=import&page_size=1",
                a.account
            ),
            &a.app.admin_key,
        )
        .await;
    assert_eq!(
        listed.body["total_results"],
        json!(created_emails),
        "{}",
        listed.body
    );
    let found = a
        .app
        .get(
            &format!(
                "/v1/customers?account_id={}&q=row250@example.com",
                a.account
            ),
            &a.app.admin_key,
        )
        .await;
    let ann = &found.body["customers"][0];
    assert_eq!(ann["first_name"], json!("Imported250"));
    assert_eq!(ann["tags"], json!(["csv", "import"]));
    // The conflict records: 10 of the file's first created row, 10 of the existing one.
    let conflicts = a
        .app
        .get(
            &format!("/v1/conflicts?account_id={}&page_size=100", a.account),
            &a.app.admin_key,
        )
        .await;
    assert_eq!(
        conflicts.body["conflicts"].as_array().unwrap().len(),
        20,
        "{}",
        conflicts.body
    );

    // The error file: the failed rows as sent, in order, with their line and problem.
    let (header, failures) = error_file(&a, &a.writer_key, &id).await;
    assert_eq!(
        header,
        ["line", "problem", "Given", "E-mail", "Phone", "Tags", "Notes"]
    );
    assert_eq!(failures.len(), 30, "{failures:?}");
    for ((line, problem, cells), (want_line, want_cells)) in failures.iter().zip(&expected_failures)
    {
        assert_eq!((line, cells), (want_line, want_cells));
        let why = match cells[1].starts_with("not-an-email") {
            true => "email",
            false if cells.len() > 5 => "cells",
            false => "phone",
        };
        assert!(problem.contains(why), "line {line}: {problem}");
    }

    // The other product was told of every created customer. The feed shows an event once
    // every transaction older than its own has ended (on Postgres, in any database of the
    // server: other tests' run in parallel), so it is read until it has them all.
    let feed_created = || async {
        let mut created_events = 0;
        let mut after = String::new();
        loop {
            let page = a
                .app
                .get(&format!("/v1/events?limit=500{after}"), &reader_key)
                .await;
            page.expect(200);
            created_events += page.body["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == json!("customer.created"))
                .count() as i64;
            if page.body["has_more"] != json!(true) {
                return created_events;
            }
            after = format!("&after={}", page.str("next_cursor"));
        }
    };
    a.app
        .wait_for(std::time::Duration::from_secs(60), || async {
            (feed_created().await == created_emails + 1).then_some(())
        })
        .await;

    // Listed for the account; another product of the account sees only its own imports.
    let list = a
        .app
        .get(
            &format!("/v1/imports?account_id={}", a.account),
            &a.app.admin_key,
        )
        .await;
    list.expect(200);
    assert_eq!(list.body["imports"][0]["import_id"], json!(id));
    let theirs = a
        .app
        .get(
            &format!("/v1/imports?account_id={}", a.account),
            &reader_key,
        )
        .await;
    assert_eq!(theirs.body["imports"], json!([]));
    a.app
        .get(&format!("/v1/imports/{id}"), &reader_key)
        .await
        .expect(404);
}

async fn an_import_applies_on_duplicate_and_refuses_unreadable_files(backend: Backend) {
    let a = account(backend).await;
    create_all(&a, vec![json!({"account_id": a.account, "email": "taken@example.com", "first_name": "Existing"})]).await;
    let file = b"email,last_name,permission_to_contact\ntaken@example.com,Merged,yes\nfresh@example.com,New,no\n";
    let admin = a.app.admin_key.clone();
    let r = start_import(&a, &admin, "&on_duplicate=reject", file, None).await;
    r.expect(202);
    let done = completed(&a, &admin, &r.str("import_id")).await;
    assert_eq!(
        (done["created"].as_i64(), done["failed"].as_i64()),
        (Some(1), Some(1)),
        "{done}"
    );
    let (_, failures) = error_file(&a, &admin, &r.str("import_id")).await;
    assert_eq!(failures[0].0, 2);
    assert!(failures[0].1.contains("duplicate"), "{}", failures[0].1);
    let r = start_import(
        &a,
        &admin,
        "&on_duplicate=merge",
        b"email,last_name\ntaken@example.com,Merged\n",
        None,
    )
    .await;
    let done = completed(&a, &admin, &r.str("import_id")).await;
    assert_eq!(done["merged"], json!(1), "{done}");
    let found = a
        .app
        .get(
            &format!("/v1/customers?account_id={}&q=taken@example.com", a.account),
            &admin,
        )
        .await;
    assert_eq!(found.body["customers"][0]["last_name"], json!("Merged"));

    // Refused before anything is stored, naming what is wrong.
    let problem = |r: &crate::support::Resp| {
        r.body["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let r = start_import(&a, &admin, "", b"email,shoe_size\nx@example.com,42\n", None).await;
    r.expect(400);
    assert_eq!(problem(&r), "file");
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("shoe_size"));
    let r = start_import(&a, &admin, "", b"email,E-Mail\n", None).await;
    r.expect(400);
    let r = start_import(&a, &admin, "", b"email\n\xff\xfe\n", None).await;
    r.expect(400);
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    let r = start_import(&a, &admin, "", b"", None).await;
    r.expect(400);
    let r = start_import(&a, &admin, "", b"Mail\n", Some(json!({"Mail": "e-mail"}))).await;
    r.expect(400);
    assert_eq!(problem(&r), "mapping.Mail");
    let r = start_import(&a, &admin, "&on_duplicate=ignore", b"email\n", None).await;
    r.expect(400);
    assert_eq!(problem(&r), "on_duplicate");
    // Over 1 MiB is fine here; over 50 MB is not.
    let big = format!("email\n{}", "x@example.com\n".repeat(100_000));
    start_import(&a, &admin, "", big.as_bytes(), None)
        .await
        .expect(202);
    let huge = vec![b'a'; 50 * 1024 * 1024 + 1];
    start_import(&a, &admin, "", &huge, None).await.expect(413);
    let r = a
        .app
        .post_raw(
            &format!("/v1/imports?account_id={}", a.account),
            &admin,
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    r.expect(415);
    let list = a
        .app
        .get(&format!("/v1/imports?account_id={}", a.account), &admin)
        .await;
    assert_eq!(
        list.body["imports"].as_array().unwrap().len(),
        3,
        "only the readable files"
    );
}

async fn an_export_imports_back_as_it_was(backend: Backend) {
    let mut a = account(backend).await;
    create_all(&a, (0..300).map(|i| json!({"account_id": a.account, "first_name": format!("Round{i}"),
        "last_name": if i == 0 { "=cmd|' /C calc'!A0".to_owned() } else { format!("Trip{i}") },
        "email": [format!("r{i}@example.com"), format!("r{i}@example.org")], "phone": if i < 3 { json!(format!("+1306555010{i}")) } else { json!(null) },
        "address": "1 Main St, \"Suite\" 2", "city": "Zürich", "tags": ["a", "b"], "permission_to_contact": i % 2 == 0})).collect()).await;
    let admin = a.app.admin_key.clone();
    let (_, _, first) = export(
        &a,
        &admin,
        &format!("account_id={}&sort=last_name", a.account),
    )
    .await;
    // Into an empty account of another partner.
    let partner = a.app.create_partner().await;
    a.account = a.app.create_account(&partner).await;
    let r = start_import(&a, &admin, "", &first, None).await;
    r.expect(202);
    let done = completed(&a, &admin, &r.str("import_id")).await;
    assert_eq!(done["created"], json!(300), "{done}");
    let (_, _, second) = export(
        &a,
        &admin,
        &format!("account_id={}&sort=last_name", a.account),
    )
    .await;
    let strip = |body: &[u8]| -> Vec<Vec<String>> {
        rows(body)
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|(i, _)| {
                        ![
                            "customer_id",
                            "origins",
                            "created",
                            "updated",
                            "permission_to_contact",
                        ]
                        .contains(&EXPORT_COLUMNS[*i])
                    })
                    .map(|(_, c)| c.to_owned())
                    .collect()
            })
            .collect()
    };
    assert_eq!(strip(&first), strip(&second));
    // Consent travels (its time is the import's).
    let granted = |body: &[u8]| {
        rows(body)
            .iter()
            .filter(|r| !r[column("permission_to_contact")].is_empty())
            .count()
    };
    assert_eq!(granted(&first), granted(&second));
    let formula = rows(&second)
        .into_iter()
        .find(|r| r[column("first_name")] == *"Round0")
        .unwrap();
    assert_eq!(&formula[column("last_name")], "'=cmd|' /C calc'!A0");
}

/// `Idempotency-Key` on `POST /v1/imports` (SPEC section 4): a retried upload answers the
/// first import, not a second one writing every row again, also when the retry is a
/// multipart form under a new boundary (each send picks its own); the key with another
/// file is refused.
async fn an_import_is_started_once_per_idempotency_key(backend: Backend) {
    let a = account(backend).await;
    let file = |tag: &str| {
        let mut f = String::from("first_name,email\n");
        for i in 0..20 {
            f.push_str(&format!("Idem{i},{tag}{i}@example.com\n"));
        }
        f.into_bytes()
    };
    let (first, _) = upload(&a, &a.writer_key, "", &file("raw"), None, Some("raw-1")).await;
    first.expect(202);
    let (again, _) = upload(&a, &a.writer_key, "", &file("raw"), None, Some("raw-1")).await;
    again.expect(202);
    assert_eq!(again.str("import_id"), first.str("import_id"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("location"), first.header("location"));

    let mapping = json!({"first_name": "first_name", "email": "email"});
    let form_upload = |tag: &'static str| {
        let (a, file, mapping) = (&a, file(tag), mapping.clone());
        async move { upload(a, &a.writer_key, "", &file, Some(mapping), Some("form-1")).await }
    };
    let (form, one) = form_upload("form").await;
    form.expect(202);
    let (retried, other) = form_upload("form").await;
    assert_ne!(one, other, "each send has a boundary of its own");
    retried.expect(202);
    assert_eq!(retried.str("import_id"), form.str("import_id"));

    let (reused, _) = form_upload("else").await;
    reused.expect_problem(422, "idempotency_key_reused");

    for started in [&first, &form] {
        let done = completed(&a, &a.writer_key, &started.str("import_id")).await;
        assert_eq!(done["created"], json!(20), "{done}");
    }
    let listed = a
        .app
        .get(
            &format!("/v1/imports?account_id={}", a.account),
            &a.writer_key,
        )
        .await;
    listed.expect(200);
    assert_eq!(
        listed.body["imports"].as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );
    let customers = a
        .app
        .get(
            &format!("/v1/customers?account_id={}", a.account),
            &a.writer_key,
        )
        .await;
    assert_eq!(customers.body["total_results"], json!(40));
}

/// The export streams (SPEC section 12): a 100,000-customer account goes out page by page,
/// and the server (its own process, as deployed) never holds more than a page of it. The
/// account is 1,000 customers written through the API, each copied 99 times in SQL.
async fn an_export_of_100000_customers_stays_under_100_mb(backend: Backend) {
    let a = account(backend).await;
    create_all(&a, (0..1_000).map(|i| json!({"account_id": a.account,
        "first_name": format!("Stream{i}"), "last_name": format!("Memory{}", i % 37),
        "email": [format!("s{i}@example.com"), format!("s{i}.other@example.org")],
        "phone": format!("+1212{}", 2_000_000 + i), "address": format!("{i} Long Street, Suite {i}"),
        "city": "Saskatoon", "state": "SK", "country": "CA", "tags": ["export", "memory"],
        "permission_to_contact": i % 2 == 0})).collect()).await;
    let admin = a.app.admin_key.clone();
    let db = a.app.into_database().await;
    db.execute(
        "WITH RECURSIVE copy(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM copy WHERE n < 99) \
         INSERT INTO customers (customer_id, scope, account_id, owner_product_id, status, first_name, \
           last_name, emails, phones, address, city, state, country, tags, permission_to_contact, \
           origins, version, created, updated, first_name_sort, last_name_sort, search) \
         SELECT c.customer_id || '-' || copy.n, c.scope, c.account_id, c.owner_product_id, c.status, \
           c.first_name, c.last_name, c.emails, c.phones, c.address, c.city, c.state, c.country, \
           c.tags, c.permission_to_contact, c.origins, c.version, c.created, c.updated, \
           c.first_name_sort, c.last_name_sort, c.search \
         FROM customers c CROSS JOIN copy",
    )
    .await;

    let server = crate::support::server(&[
        ("CUSTOMER_LIST_DATABASE_URL", db.url.clone()),
        ("CUSTOMER_LIST_ADMIN_KEY", admin),
        ("RUST_LOG", "warn".to_owned()),
    ])
    .await;
    server.reset_peak_memory();
    let idle = server.peak_memory_mb().expect("the server's memory");
    let mut body = reqwest::Client::new()
        .get(format!(
            "{}/v1/customers/export?account_id={}&sort=last_name",
            server.base, a.account
        ))
        .bearer_auth(&a.writer_key)
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(chunk) = body.chunk().await.unwrap() {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
        bytes += chunk.len();
    }
    let peak = server.peak_memory_mb().expect("the server's memory");
    assert_eq!(lines, 100_001, "the header and every customer");
    assert!(
        peak < 100.0,
        "peak {peak:.1} MB (idle {idle:.1} MB) for an export of {bytes} bytes"
    );
}
