//! Hostile input (issue 13): every id, filter, header and body field of every operation
//! in the OpenAPI document gets each character the hub refuses (NUL, other control
//! characters, an unpaired surrogate) and an over-long value; each answer is a `4xx`
//! naming what was wrong (`404` for an id in the path), never a `5xx`, on both backends.
//! The operations and their fields are read from the document, so a new one is covered
//! the day it is documented.

use crate::on_both_backends;
use crate::support::{receiver, Backend, Hub};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What is sent in place of a value: text (JSON and query), or raw JSON text for what a
/// Rust string cannot hold (an unpaired surrogate).
#[derive(Clone, Debug)]
enum Hostile {
    Text(String),
    LoneSurrogate,
}

fn hostile_values(valid: &str) -> Vec<Hostile> {
    let mut values: Vec<Hostile> = ["\u{0}", "\u{1}", "\u{1f}", "\u{7f}", "\u{85}", "\u{9f}"]
        .iter()
        .map(|c| Hostile::Text(format!("{valid}{c}")))
        .collect();
    values.push(Hostile::Text(format!("\u{0}{valid}")));
    values.push(Hostile::Text("x".repeat(5000)));
    values.push(Hostile::LoneSurrogate);
    values
}

/// The text of a hostile value in a URL (path segment or query value).
fn in_url(value: &Hostile) -> String {
    match value {
        Hostile::Text(text) => urlencoding(text),
        // U+D800 as UTF-8 would encode it: not UTF-8 at all.
        Hostile::LoneSurrogate => "%ED%A0%80".to_owned(),
    }
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A JSON body with `value` at `path` (a field, or `field/0/inner` inside an array of
/// objects), as raw JSON text.
fn body_with(path: &[&str], value: &Hostile) -> String {
    const MARK: &str = "\"@HOSTILE@\"";
    fn nest(path: &[&str]) -> Value {
        match path {
            [] => json!("@HOSTILE@"),
            [field, "0", rest @ ..] => json!({ *field: [nest(rest)] }),
            [field, rest @ ..] => json!({ *field: nest(rest) }),
        }
    }
    let raw = nest(path).to_string();
    let replacement = match value {
        Hostile::Text(text) => Value::String(text.clone()).to_string(),
        Hostile::LoneSurrogate => "\"\\ud800\"".to_owned(),
    };
    raw.replace(MARK, &replacement)
}

/// The body fields of an operation, from its request schema: top-level properties, and
/// the properties of objects inside array properties (bulk items) as `field/0/inner`.
fn body_fields(doc: &Value, schema: &Value, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let schema = resolve(doc, schema);
    for combinator in ["allOf", "anyOf", "oneOf"] {
        for part in schema[combinator].as_array().into_iter().flatten() {
            body_fields(doc, part, prefix, out);
        }
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let mut path = prefix.to_vec();
        path.push(name.clone());
        let property = resolve(doc, property);
        let items = resolve(doc, &property["items"]);
        if items["properties"].is_object() || items["allOf"].is_array() {
            path.push("0".into());
            body_fields(doc, &items, &path, out);
        } else if !out.contains(&path) {
            out.push(path);
        }
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => resolve(doc, doc.pointer(&reference[1..]).unwrap_or(&Value::Null)),
        None => schema,
    }
}

/// The fields a `400` names.
fn named_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect()
}

on_both_backends!(every_field_of_every_operation_refuses_what_cannot_be_stored);

async fn every_field_of_every_operation_refuses_what_cannot_be_stored(backend: Backend) {
    let hub = Hub::new(backend).await;
    let app = &hub.app;
    let admin = app.admin_key.clone();
    let product = hub.key("a").to_owned();

    // Real ids for every path parameter, so each operation gets past its lookups and
    // reads the field under test: a customer, a conflict record, a delivery, a key.
    let hook = receiver().await;
    let b = hub.product_id("b").to_owned();
    app.call(
        Method::PATCH,
        &format!("/v1/products/{b}"),
        Some(&admin),
        Some(json!({"webhook_url": hook.url})),
    )
    .await
    .expect(200);
    let customer = hub
        .create(
            "a",
            json!({"first_name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    let customer_id = customer["customer_id"].as_str().unwrap().to_owned();
    let conflict = app
        .post(
            "/v1/customers",
            hub.key("b"),
            json!({"account_id": hub.account, "email": "ada@example.com"}),
        )
        .await;
    let conflict_id = conflict.body["conflict_id"]
        .as_str()
        .or(conflict.body["customer_id"].as_str())
        .expect("a conflict id")
        .to_owned();
    let deliveries = app
        .wait_for(std::time::Duration::from_secs(10), || async {
            let r = app
                .get(&format!("/v1/products/{b}/deliveries"), &admin)
                .await;
            r.body["deliveries"][0]["delivery_id"]
                .as_str()
                .map(str::to_owned)
        })
        .await;
    let (key_id, _) = app.issue_key("accounts", &hub.account).await;
    let ids: HashMap<&str, String> = HashMap::from([
        ("customer_id", customer_id),
        ("conflict_id", conflict_id),
        ("account_id", hub.account.clone()),
        ("product_id", hub.product_id("a").to_owned()),
        ("partner_id", hub.partner.clone()),
        ("key_id", key_id),
        ("delivery_id", deliveries),
    ]);

    let doc = customer_list::http::openapi_document();
    let mut sent = 0;
    let mut failures = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Customer-side operations as a product on the account; the rest as admin.
            let key = if ["/v1/customers", "/v1/conflicts", "/v1/events"]
                .iter()
                .any(|p| template.starts_with(p))
            {
                &product
            } else {
                &admin
            };
            let parameters: Vec<&Value> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(&doc, p))
                .collect();
            let path_of = |hostile: Option<(&str, &Hostile)>| {
                let mut path = template.clone();
                for p in parameters.iter().filter(|p| p["in"] == "path") {
                    let name = p["name"].as_str().unwrap();
                    let value = match hostile {
                        Some((target, value)) if target == name => in_url(value),
                        _ => ids[name].clone(),
                    };
                    path = path.replace(&format!("{{{name}}}"), &value);
                }
                path
            };
            let has_body = operation["requestBody"].is_object();
            let send = |path: String,
                        query: String,
                        header: Option<(&str, HeaderValue)>,
                        body: Option<String>| {
                let mut url = format!("{}{}", app.base, path);
                if !query.is_empty() {
                    url = format!("{url}?{query}");
                }
                let mut request = app.client.request(method.clone(), url).bearer_auth(key);
                if let Some((name, value)) = header {
                    request = request.header(name, value);
                }
                match body {
                    Some(body) => {
                        request = request
                            .header("content-type", "application/json")
                            .body(body)
                    }
                    None if has_body => {
                        request = request
                            .header("content-type", "application/json")
                            .body("{}")
                    }
                    None => {}
                }
                app.send(request)
            };
            let mut check = |what: String, status: u16, body: &Value, expect: Expect| {
                sent += 1;
                let ok = match &expect {
                    Expect::NotFound => status == 404,
                    Expect::Names(field) => {
                        status == 400 && named_fields(body).iter().any(|f| f == field)
                    }
                    Expect::Refused => (400..500).contains(&status),
                };
                if !ok {
                    failures.push(format!("{what}: {status} {body} (expected {expect:?})"));
                }
            };

            for p in &parameters {
                let name = p["name"].as_str().unwrap();
                let valid = ids.get(name).cloned().unwrap_or_else(|| "x".to_owned());
                for value in hostile_values(&valid) {
                    let what = format!("{method} {template} {} {name}={value:?}", p["in"]);
                    match p["in"].as_str().unwrap() {
                        "path" => {
                            // With a valid body, so only the id can be what is refused.
                            let body = valid_body(template, &ids);
                            let r = send(
                                path_of(Some((name, &value))),
                                String::new(),
                                None,
                                body.clone(),
                            )
                            .await;
                            check(what.clone(), r.status, &r.body, Expect::NotFound);
                            // The same segment read as the product's own id.
                            if template.starts_with("/v1/customers/{customer_id}") {
                                let r = send(
                                    path_of(Some((name, &value))),
                                    "id_type=vendor".into(),
                                    None,
                                    body,
                                )
                                .await;
                                check(
                                    format!("{what} id_type=vendor"),
                                    r.status,
                                    &r.body,
                                    Expect::NotFound,
                                );
                            }
                        }
                        "query" => {
                            let query = format!("{name}={}", in_url(&value));
                            let r = send(path_of(None), query, None, None).await;
                            check(what, r.status, &r.body, Expect::Names(name.to_owned()));
                        }
                        "header" => {
                            // HTTP cannot carry NUL or other controls in a header: a
                            // client library refuses to send them. What it can carry
                            // (bytes past ASCII, over-long values) is refused by name.
                            let raw = match &value {
                                Hostile::Text(text) if text.len() > 1000 => {
                                    text.clone().into_bytes()
                                }
                                Hostile::Text(text) if text.ends_with('\u{85}') => {
                                    text.clone().into_bytes()
                                }
                                _ => continue,
                            };
                            let header = HeaderValue::from_bytes(&raw).unwrap();
                            let r = send(path_of(None), String::new(), Some((name, header)), None)
                                .await;
                            check(what, r.status, &r.body, Expect::Names(name.to_owned()));
                        }
                        _ => {}
                    }
                }
            }

            let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            else {
                continue;
            };
            let mut fields = Vec::new();
            body_fields(&doc, schema, &[], &mut fields);
            assert!(
                !fields.is_empty(),
                "{method} {template}: no body fields found"
            );
            for field in fields {
                let path: Vec<&str> = field.iter().map(String::as_str).collect();
                for value in hostile_values("Ada") {
                    let what = format!("{method} {template} body {}={value:?}", field.join("/"));
                    let r = send(
                        path_of(None),
                        String::new(),
                        None,
                        Some(body_with(&path, &value)),
                    )
                    .await;
                    if path.len() > 1 && r.status < 300 {
                        // A bulk item: it fails alone, with its own 4xx.
                        let items = r
                            .body
                            .as_object()
                            .and_then(|o| o.values().find_map(Value::as_array));
                        let statuses: Vec<u64> = items
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i["status"].as_u64())
                            .collect();
                        let refused =
                            !statuses.is_empty() && statuses.iter().all(|s| (400..500).contains(s));
                        check(
                            what,
                            if refused { 400 } else { r.status },
                            &Value::Null,
                            Expect::Refused,
                        );
                    } else if matches!(value, Hostile::LoneSurrogate) {
                        // Not JSON text: the body as a whole is refused.
                        check(what, r.status, &r.body, Expect::Names("body".into()));
                    } else {
                        check(what, r.status, &r.body, Expect::Names(path[0].to_owned()));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} refused nothing or the wrong way:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(sent > 500, "only {sent} hostile requests were sent");
}

/// A body the operation accepts, where `{}` is not one.
fn valid_body(template: &str, ids: &HashMap<&str, String>) -> Option<String> {
    let body = match template {
        "/v1/customers/{customer_id}/merge" => json!({"from": ids["customer_id"]}),
        "/v1/customers/{customer_id}/vendor-id" => json!({"vendor_customer_id": "crm-9"}),
        "/v1/accounts/{account_id}/products/{product_id}" => json!({"sync": "two_way"}),
        _ => return None,
    };
    Some(body.to_string())
}

#[derive(Debug)]
enum Expect {
    /// A malformed id names nothing.
    NotFound,
    /// A `400` whose `errors` name this field.
    Names(String),
    /// Any `4xx`.
    Refused,
}
