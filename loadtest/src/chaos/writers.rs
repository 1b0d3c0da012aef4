//! The writers: one per product, each a bounded loop of random creates, updates,
//! associations and deletes against either server, keeping a ledger of what the hub
//! acknowledged.

use super::{Tenancy, PRODUCTS};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

/// What the products know they wrote and the hub acknowledged.
#[derive(Default)]
pub(super) struct Ledger {
    /// customer → newest acknowledged version written by anyone, and by whom.
    pub(super) acked: HashMap<String, (i64, String)>,
    pub(super) deleted: HashSet<String>,
    /// Customers a delete was sent for without an answer (the server was killed, say):
    /// it may or may not have happened.
    pub(super) maybe_deleted: HashSet<String>,
    pub(super) writes: u64,
    /// Writes that got no answer: their outcome is unknown.
    pub(super) unanswered: u64,
}

/// Runs every product's writer until `deadline`, `per_second` writes a second between
/// them at most; returns what they were told.
pub(super) async fn write_until(
    http: &reqwest::Client,
    tenancy: &Tenancy,
    ports: [u16; 2],
    deadline: Instant,
    per_second: f64,
) -> Ledger {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let known: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for name in PRODUCTS {
        let (product_id, key) = tenancy.products[name].clone();
        let (http, ledger, known, account) = (
            http.clone(),
            ledger.clone(),
            known.clone(),
            tenancy.account.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut pace =
                tokio::time::interval(Duration::from_secs_f64(PRODUCTS.len() as f64 / per_second));
            // A write slowed by a kill or the outage is not made up for by a burst.
            pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                pace.tick().await;
                n += 1;
                let port = ports[rand::thread_rng().gen_range(0..2)];
                let url = format!("http://127.0.0.1:{port}");
                let target = {
                    let k = known.lock().unwrap();
                    (!k.is_empty()).then(|| k[rand::thread_rng().gen_range(0..k.len())].clone())
                };
                let roll: f64 = rand::random();
                let deleting = target.is_some() && roll >= 0.95;
                let request = match &target {
                    Some(id) if (0.4..0.85).contains(&roll) => {
                        http.patch(format!("{url}/v1/customers/{id}")).json(
                            &json!({"last_name": format!("L{n}"), "tags": [format!("t{}", n % 7)]}),
                        )
                    }
                    Some(id) if roll >= 0.85 && !deleting => http
                        .put(format!("{url}/v1/customers/{id}/vendor-id"))
                        .json(&json!({"vendor_customer_id": format!("{name}-a{n}")})),
                    Some(id) if deleting => http.delete(format!("{url}/v1/customers/{id}")),
                    _ => http.post(format!("{url}/v1/customers")).json(&json!({
                        "account_id": account, "id": format!("{name}-{n}"),
                        "first_name": format!("N{n}"), "email": format!("{name}-{n}@example.com"),
                    })),
                };
                let Ok(response) = request.bearer_auth(&key).send().await else {
                    let mut l = ledger.lock().unwrap();
                    l.unanswered += 1;
                    if let Some(id) = target.filter(|_| deleting) {
                        l.maybe_deleted.insert(id);
                    }
                    continue;
                };
                let status = response.status();
                if !status.is_success() {
                    continue;
                }
                let body: Value = if status == StatusCode::NO_CONTENT {
                    Value::Null
                } else {
                    response.json().await.unwrap_or(Value::Null)
                };
                let mut l = ledger.lock().unwrap();
                l.writes += 1;
                if status == StatusCode::NO_CONTENT {
                    let id = target.expect("only a delete answers 204");
                    l.deleted.insert(id.clone());
                    known.lock().unwrap().retain(|k| *k != id);
                } else if let (Some(id), Some(version)) =
                    (body["customer_id"].as_str(), body["version"].as_i64())
                {
                    let entry = l.acked.entry(id.to_owned()).or_insert((0, String::new()));
                    if version > entry.0 {
                        *entry = (version, product_id.clone());
                    }
                    if status == StatusCode::CREATED {
                        known.lock().unwrap().push(id.to_owned());
                    }
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("a writer");
    }
    Arc::try_unwrap(ledger)
        .ok()
        .expect("the writers are done")
        .into_inner()
        .unwrap()
}
