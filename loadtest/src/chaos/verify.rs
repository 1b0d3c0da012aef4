//! The checks after the run: the hub holds every acknowledged write, and each receiver's
//! view of each customer is the hub's newest version, reached in order, with nothing of
//! its own sent back to it and nothing at all sent to the one-way product.

use super::writers::Ledger;
use super::{Tenancy, ADMIN, ONE_WAY, READERS, WEBHOOK_TIMEOUT};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;

/// What the checks found.
#[derive(Default)]
pub(super) struct Findings {
    pub(super) failures: Vec<String>,
    pub(super) verified: usize,
    pub(super) delivered: usize,
    /// Older versions a receiver took late from requests the hub had already given up on.
    pub(super) processed_late: usize,
}

/// Every acknowledged write is in the hub (at that version or newer), every delete is a
/// 404; returns the hub's version of each live customer.
pub(super) async fn hub_holds_every_acknowledged_write(
    http: &reqwest::Client,
    base: &str,
    ledger: &Ledger,
    findings: &mut Findings,
) -> HashMap<String, i64> {
    let mut hub = HashMap::new();
    for (id, (version, _)) in &ledger.acked {
        let r = http
            .get(format!("{base}/v1/customers/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        if ledger.deleted.contains(id) {
            if r.status() != StatusCode::NOT_FOUND {
                findings
                    .failures
                    .push(format!("deleted {id} answers {}", r.status()));
            }
            findings.verified += 1;
            continue;
        }
        if r.status() == StatusCode::NOT_FOUND && ledger.maybe_deleted.contains(id) {
            findings.verified += 1; // deleted by a request whose answer was lost
            continue;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match body["version"].as_i64() {
            Some(v) if v >= *version => {
                findings.verified += 1;
                hub.insert(id.clone(), v);
            }
            other => findings
                .failures
                .push(format!("acknowledged {id} v{version}, hub has {other:?}")),
        }
    }
    hub
}

/// Each receiver's view against the hub's versions.
pub(super) async fn receivers_converged(
    http: &reqwest::Client,
    base: &str,
    tenancy: &Tenancy,
    ledger: &Ledger,
    hub: &HashMap<String, i64>,
    findings: &mut Findings,
) {
    let accepted_by = |name: &str| -> Vec<testkit::Receipt> {
        tenancy.receivers[name]
            .receipts()
            .into_iter()
            .filter(testkit::Receipt::accepted)
            .collect()
    };
    // Who caused each version, as the receivers were told: a write whose answer was lost
    // is still known to the other receivers by its `origin`.
    let mut origin_of: HashMap<(String, i64), String> = HashMap::new();
    for name in READERS {
        for r in accepted_by(name) {
            if let Some(origin) = r.origin {
                origin_of.insert((r.contact_id, r.version), origin);
            }
        }
    }
    for name in READERS {
        let (product_id, _) = &tenancy.products[name];
        let accepted = accepted_by(name);
        findings.delivered += accepted.len();
        if name == ONE_WAY {
            if !accepted.is_empty() {
                findings
                    .failures
                    .push(format!("one-way {name} received {} events", accepted.len()));
            }
            continue;
        }
        let mut view: HashMap<&str, i64> = HashMap::new();
        for r in &accepted {
            let (contact, version) = (r.contact_id.as_str(), r.version);
            if r.origin.as_deref() == Some(product_id.as_str()) {
                findings
                    .failures
                    .push(format!("{name} received its own change to {contact}"));
            }
            let seen = view.entry(contact).or_insert(0);
            if version < *seen {
                match abandoned_attempt(http, base, product_id, contact, version, r.wall).await {
                    Ok(attempt) => {
                        eprintln!(
                            "  note: {name} took {contact} v{version} after v{seen} at {}, from \
                             an attempt the hub had abandoned: {attempt}",
                            r.wall
                        );
                        findings.processed_late += 1;
                    }
                    Err(log) => findings.failures.push(format!(
                        "{name} saw {contact} v{version} after v{seen} at {}; hub log: {log}",
                        r.wall
                    )),
                }
            }
            *seen = (*seen).max(version);
        }
        for (id, newest) in hub {
            // The receiver's view: what it was sent, or what it wrote itself last.
            let own = ledger
                .acked
                .get(id)
                .filter(|(_, by)| by == product_id)
                .map(|(v, _)| *v)
                .unwrap_or(0);
            let caused = origin_of
                .get(&(id.clone(), *newest))
                .filter(|origin| *origin == product_id)
                .map(|_| *newest)
                .unwrap_or(0);
            let seen = view
                .get(id.as_str())
                .copied()
                .unwrap_or(0)
                .max(own)
                .max(caused);
            if seen != *newest {
                let log = delivery_log(http, base, product_id, id)
                    .await
                    .map(|log| log["deliveries"].to_string())
                    .unwrap_or_else(|e| e);
                findings.failures.push(format!(
                    "{name}'s view of {id} is v{seen}, hub has v{newest}; hub log: {log}"
                ));
            }
        }
    }
}

/// Whether a receiver that took `version` of `customer` at `received` (after a newer
/// version) took it from a request the hub had given up on, with the hub itself in
/// order. By the hub's own delivery log: an attempt of that version got no answer and
/// started at least the timeout before `received`, and every attempt of that version
/// started before the first attempt of any newer one. Such a request can still reach a
/// receiver slowed past the timeout after the hub moved on; nothing the hub does can
/// order it. Ok carries the abandoned attempt; Err the log, for the report.
async fn abandoned_attempt(
    http: &reqwest::Client,
    base: &str,
    product_id: &str,
    customer: &str,
    version: i64,
    received: DateTime<Utc>,
) -> Result<String, String> {
    let log = delivery_log(http, base, product_id, customer).await?;
    // (version, attempt) for every attempt the hub recorded for this pair.
    let attempts: Vec<(i64, &Value)> = log["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| {
            let v = d["version"].as_i64().unwrap_or_default();
            d["attempt_log"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |a| (v, a))
        })
        .collect();
    let started = |a: &Value| {
        a["attempted_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let last_of_version = attempts
        .iter()
        .filter(|(v, _)| *v == version)
        .filter_map(|(_, a)| started(a))
        .max();
    let first_of_newer = attempts
        .iter()
        .filter(|(v, _)| *v > version)
        .filter_map(|(_, a)| started(a))
        .min();
    let hub_in_order = match (last_of_version, first_of_newer) {
        (Some(old), Some(new)) => old < new,
        _ => true,
    };
    let abandoned = attempts.iter().find(|(v, a)| {
        *v == version
            && a["response_code"].is_null()
            && started(a)
                .is_some_and(|t| received - t >= chrono::Duration::seconds(WEBHOOK_TIMEOUT))
    });
    match abandoned {
        Some((_, a)) if hub_in_order => Ok(a.to_string()),
        _ => Err(log["deliveries"].to_string()),
    }
}

/// The hub's delivery log of one (product, customer), newest first.
async fn delivery_log(
    http: &reqwest::Client,
    base: &str,
    product_id: &str,
    customer: &str,
) -> Result<Value, String> {
    http.get(format!("{base}/v1/products/{product_id}/deliveries"))
        .query(&[("customer_id", customer), ("page_size", "500")])
        .bearer_auth(ADMIN)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}
