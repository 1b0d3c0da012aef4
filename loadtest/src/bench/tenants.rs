//! The tenants each scenario writes as, through the admin API, and the customers they
//! write.

use super::ADMIN_KEY;
use serde_json::{json, Value};

const SURNAMES: usize = 500;

pub(super) struct Tenant {
    pub(super) partner: String,
    pub(super) account: String,
    /// The product that writes (one-way: it receives nothing).
    pub(super) writer_key: String,
    pub(super) writer: String,
    /// The three two-way products.
    pub(super) receivers: Vec<String>,
}

pub(super) async fn api(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Value,
) -> Value {
    let url = format!("{base}{path}");
    let req = match method {
        "PUT" => http.put(url),
        "DELETE" => http.delete(url),
        "GET" => http.get(url),
        _ => http.post(url),
    };
    let req = if body.is_null() { req } else { req.json(&body) };
    let resp = req.bearer_auth(key).send().await.unwrap();
    let status = resp.status();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// A partner (new unless given), an account, a one-way writer and a two-way receiver per
/// webhook URL.
pub(super) async fn tenant(
    http: &reqwest::Client,
    base: &str,
    partner: Option<&str>,
    webhook_urls: &[String],
) -> Tenant {
    let receivers: Vec<Option<String>> = webhook_urls.iter().cloned().map(Some).collect();
    tenant_with(http, base, partner, &receivers).await
}

/// Like [`tenant`], with receivers that may have no webhook (they read the event feed:
/// nothing is queued for them).
pub(super) async fn tenant_with(
    http: &reqwest::Client,
    base: &str,
    partner: Option<&str>,
    receivers_webhooks: &[Option<String>],
) -> Tenant {
    let partner = match partner {
        Some(p) => p.to_owned(),
        None => api(
            http,
            base,
            "POST",
            "/v1/partners",
            ADMIN_KEY,
            json!({"name": "bench"}),
        )
        .await["partner_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    let account = api(
        http,
        base,
        "POST",
        "/v1/accounts",
        ADMIN_KEY,
        json!({"partner_id": partner, "name": "bench", "default_region": "US"}),
    )
    .await["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product = |name: String, url: Option<String>, sync: &'static str| {
        let (http, base, partner, account) = (
            http.clone(),
            base.to_owned(),
            partner.clone(),
            account.clone(),
        );
        async move {
            let mut body = json!({"partner_id": partner, "name": name});
            if let Some(url) = url {
                body["webhook_url"] = json!(url);
            }
            let p = api(&http, &base, "POST", "/v1/products", ADMIN_KEY, body).await;
            let id = p["product_id"].as_str().unwrap().to_owned();
            api(
                &http,
                &base,
                "PUT",
                &format!("/v1/accounts/{account}/products/{id}"),
                ADMIN_KEY,
                // A new account has nothing to catch up on: no backfill waits, unsent,
                // behind the servers run without a dispatcher for a later one to send.
                json!({"sync": sync, "backfill": false}),
            )
            .await;
            (id, p["api_key"].as_str().unwrap().to_owned())
        }
    };
    let (writer, writer_key) = product("writer".into(), None, "one_way").await;
    let mut receivers = Vec::new();
    for (i, url) in receivers_webhooks.iter().enumerate() {
        receivers.push(
            product(format!("receiver {i}"), url.clone(), "two_way")
                .await
                .0,
        );
    }
    Tenant {
        partner,
        account,
        writer_key,
        writer,
        receivers,
    }
}

/// A valid, unique US number for `n` (< 8,000,000).
pub(super) fn phone(n: usize) -> String {
    format!("+1212{}", 2_000_000 + n)
}

pub(super) fn customer(account: &str, tag: &str, n: usize) -> Value {
    // Writes to an account that holds others' customers take other phone numbers.
    let n = n + match tag {
        "burst" => 500_000,
        "during-backfill" => 600_000,
        "after-backfill" => 700_000,
        _ => 0,
    };
    json!({
        "account_id": account,
        "first_name": format!("First{}", n % 997),
        "last_name": surname(n),
        "email": format!("{tag}{n}@example.com"),
        "phone": phone(n),
        "permission_to_contact": n % 2 == 0,
    })
}

/// One of SURNAMES made-up surnames.
pub(super) fn surname(n: usize) -> String {
    const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "ne", "ro", "su", "ta", "vi", "zo", "be"];
    let k = n % SURNAMES;
    let mut s = String::from("Q");
    for digit in [k / 100, (k / 10) % 10, k % 10] {
        s.push_str(SYLLABLES[digit]);
    }
    s
}
