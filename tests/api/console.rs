//! The console's rules over HTTP (SPEC section 9), on both backends: sign-in exchanges a
//! key for a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind https), a wrong
//! key is refused without saying whether it exists, forms need their CSRF token, a
//! session ends on sign-out, at expiry and when its key is revoked, and pages answer
//! htmx requests with fragments. The browser scenarios are in `console/` (Playwright).

use crate::on_both_backends;
use crate::support::{Backend, Hub};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::json;

fn browser() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Signs in with `key`; returns the session cookie (`name=value`) and the Set-Cookie
/// header as sent.
async fn sign_in(base: &str, key: &str, https: bool) -> (String, String) {
    let mut request = browser()
        .post(format!("{base}/console/sign-in"))
        .form(&[("key", key)]);
    if https {
        request = request.header("x-forwarded-proto", "https");
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "sign-in redirects"
    );
    assert_eq!(response.headers()[LOCATION], "/console/customers");
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (pair, set_cookie)
}

async fn page(base: &str, path: &str, cookie: &str) -> (StatusCode, String) {
    let response = browser()
        .get(format!("{base}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The CSRF token a signed-in page carries in its forms.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

on_both_backends!(
    sign_in_opens_a_session_the_key_never_reaches_the_browser,
    sessions_end_on_sign_out_revocation_and_expiry,
    forms_need_their_csrf_token,
    pages_show_only_what_the_key_may_see,
    tenants_are_for_the_admin_and_partners_each_its_own,
    a_reloaded_issuing_form_issues_no_second_key,
    sign_ins_are_rate_limited,
    a_customer_page_shows_its_history_and_what_each_product_was_sent,
    the_privacy_page_shows_the_accounts_own_erasures_and_lifts,
);

/// The privacy page lists the account's receipts and suppressions and nobody else's; a
/// lift through its form lets the email back; a product key is not shown the page.
async fn the_privacy_page_shows_the_accounts_own_erasures_and_lifts(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let erased = hub.create("a", json!({"email": "left@example.com"})).await;
    let id = erased["customer_id"].as_str().unwrap();
    let receipt = hub
        .app
        .post(
            &format!("/v1/customers/{id}/erase"),
            &hub.account_key,
            json!({"suppress": true}),
        )
        .await;
    receipt.expect(202);
    let erasure = receipt.str("erasure_id");
    let (cookie, _) = sign_in(base, &hub.account_key, false).await;
    let (status, html) = page(base, "/console/privacy", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("/console/erasures/{erasure}")),
        "{html}"
    );
    assert!(html.contains("1 kept from coming back"), "{html}");
    assert!(!html.contains("left@example.com"), "no value is shown");

    // Another account's key sees its own (empty) page whatever it asks for; another
    // partner's is refused the account.
    let other = hub.app.create_account(&hub.partner).await;
    let (_, other_key) = hub.app.issue_key("accounts", &other).await;
    let (other_cookie, _) = sign_in(base, &other_key, false).await;
    let path = format!("/console/privacy?account_id={}", hub.account);
    let (status, html) = page(base, &path, &other_cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(&erasure) && html.contains("0 kept from coming back"));
    let stranger = hub.app.create_partner().await;
    let (_, stranger_key) = hub.app.issue_key("partners", &stranger).await;
    let (stranger_cookie, _) = sign_in(base, &stranger_key, false).await;
    let (status, html) = page(base, &path, &stranger_cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains(&erasure));
    let (product_cookie, _) = sign_in(base, hub.key("a"), false).await;
    let (_, customers) = page(base, "/console/customers", &product_cookie).await;
    assert!(
        !customers.contains("href=\"/console/privacy\""),
        "no Privacy menu"
    );

    // The lift form: a bad phone is words next to the field, an email is lifted.
    let lift = |value: &'static str, csrf: String| {
        let (base, cookie, account) = (base.clone(), cookie.clone(), hub.account.clone());
        async move {
            let response = browser()
                .post(format!("{base}/console/privacy/lift"))
                .header(COOKIE, &cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("account_id", &account),
                    ("value", value),
                ])
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let csrf = csrf_of(&page(base, "/console/privacy", &cookie).await.1);
    let (status, html) = lift("12", csrf.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"value-error\"") && html.contains("aria-invalid=\"true\""));
    let (status, html) = lift("Left@Example.com", csrf.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Lifted") && html.contains("0 kept from coming back"),
        "{html}"
    );
    let (_, html) = lift("left@example.com", csrf).await;
    assert!(html.contains("Nothing to lift"), "{html}");
    hub.create("a", json!({"email": "left@example.com"})).await;
}

async fn sign_in_opens_a_session_the_key_never_reaches_the_browser(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let (cookie, set_cookie) = sign_in(base, &hub.account_key, false).await;
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: no Secure flag");
    assert!(
        !set_cookie.contains(&hub.account_key),
        "the key is not the cookie"
    );
    let (_, behind_https) = sign_in(base, &hub.account_key, true).await;
    assert!(behind_https.contains("; Secure"), "{behind_https}");

    let (status, html) = page(base, "/console/customers", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Customers</h1>") && html.contains("Sign out"));
    assert!(!html.contains(&hub.account_key), "no page shows the key");

    // A wrong key and an unknown one read the same, and nothing is set.
    for key in ["cl_unknown", "not even a key"] {
        let response = browser()
            .post(format!("{base}/console/sign-in"))
            .form(&[("key", key)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(SET_COOKIE).is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("That key was not accepted"), "{html}");
    }
    // Without a session a page sends the browser to sign in; htmx gets HX-Redirect.
    let response = browser()
        .get(format!("{base}/console/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/sign-in");
    let response = browser()
        .get(format!("{base}/console/customers"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["hx-redirect"], "/console/sign-in");
    // A NUL in the key is refused like any other input, before any lookup.
    let response = browser()
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("key=cl_%00")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
}

async fn sessions_end_on_sign_out_revocation_and_expiry(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;

    // Sign-out.
    let (cookie, _) = sign_in(base, &hub.account_key, false).await;
    let (_, html) = page(base, "/console/customers", &cookie).await;
    let response = browser()
        .post(format!("{base}/console/sign-out"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        page(base, "/console/customers", &cookie).await.0,
        StatusCode::SEE_OTHER
    );

    // Revocation: the key's sessions end on their next request.
    let (key_id, key) = hub.app.issue_key("accounts", &hub.account).await;
    let (cookie, _) = sign_in(base, &key, false).await;
    assert_eq!(
        page(base, "/console/customers", &cookie).await.0,
        StatusCode::OK
    );
    hub.app
        .delete(&format!("/v1/keys/{key_id}"), &hub.app.admin_key)
        .await
        .expect(204);
    assert_eq!(
        page(base, "/console/customers", &cookie).await.0,
        StatusCode::SEE_OTHER
    );

    // Expiry: a session past its end is no session.
    let store = customer_list::storage::connect(&hub.app.db.url)
        .await
        .unwrap();
    let key = store
        .list_keys(&customer_list::domain::tenancy::Principal::Account(
            customer_list::domain::AccountId::from_string(hub.account.clone()),
        ))
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.revoked.is_none())
        .unwrap();
    let id = "expired-session-id";
    let past = customer_list::domain::time::now() - chrono::Duration::hours(13);
    store
        .insert_session(&customer_list::storage::NewSession {
            session_hash: &customer_list::domain::credentials::digest(id),
            key_id: &key.key_id,
            csrf_token: "t",
            created: past,
            expires: past + chrono::Duration::hours(12),
        })
        .await
        .unwrap();
    let expired = format!("cl_session={id}");
    assert_eq!(
        page(base, "/console/customers", &expired).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        store
            .purge_sessions(customer_list::domain::time::now())
            .await
            .unwrap(),
        1
    );
}

async fn forms_need_their_csrf_token(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let (cookie, _) = sign_in(base, &hub.account_key, false).await;
    for body in [vec![], vec![("csrf", "forged")]] {
        let response = browser()
            .post(format!("{base}/console/sign-out"))
            .header(COOKIE, &cookie)
            .form(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    // The session survived the refused forms.
    assert_eq!(
        page(base, "/console/customers", &cookie).await.0,
        StatusCode::OK
    );
}

async fn pages_show_only_what_the_key_may_see(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let ada = hub
        .create(
            "a",
            json!({"id": "crm-ada", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}),
        )
        .await;
    hub.create(
        "a",
        json!({"first_name": "Grace", "email": "grace@example.com"}),
    )
    .await;
    let partner = hub.app.create_partner().await;
    let other_account = hub.app.create_account(&partner).await;

    let (cookie, _) = sign_in(base, &hub.account_key, false).await;
    let (status, html) = page(base, "/console/customers?q=ada", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Ada Lovelace") && !html.contains("Grace"),
        "{html}"
    );
    assert!(html.contains("1 customer<"), "the total");
    // A customer's page lists each product's own id for it, by product name.
    let (status, html) = page(
        base,
        &format!(
            "/console/customers/{}",
            ada["customer_id"].as_str().unwrap()
        ),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Ids in each product")
            && html.contains("crm-ada")
            && html.contains("Booking app"),
        "{html}"
    );
    // An htmx request gets the table alone.
    let response = browser()
        .get(format!("{base}/console/customers?sort=-first_name"))
        .header(COOKIE, &cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    let fragment = response.text().await.unwrap();
    assert!(
        !fragment.contains("<html") && fragment.contains("<table>"),
        "{fragment}"
    );
    assert!(
        fragment.find("Grace").unwrap() < fragment.find("Ada").unwrap(),
        "sorted"
    );
    // Another account's list: the API's 404, in words.
    let (status, html) = page(
        base,
        &format!("/console/customers?account_id={other_account}"),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("account not found"), "{html}");

    // The admin picks the account.
    let (cookie, _) = sign_in(base, &hub.app.admin_key, false).await;
    let (_, html) = page(
        base,
        &format!("/console/customers?account_id={}", hub.account),
        &cookie,
    )
    .await;
    assert!(html.contains("<select id=\"account_id\"") && html.contains("Ada Lovelace"));
}

async fn tenants_are_for_the_admin_and_partners_each_its_own(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let other_partner = hub.app.create_partner().await;
    let other_account = hub.app.create_account(&other_partner).await;

    let (cookie, _) = sign_in(base, &hub.account_key, false).await;
    assert_eq!(
        page(base, "/console/tenants", &cookie).await.0,
        StatusCode::FORBIDDEN
    );

    let (_, partner_key) = hub.app.issue_key("partners", &hub.partner).await;
    let (cookie, _) = sign_in(base, &partner_key, false).await;
    let (status, html) = page(base, "/console/tenants", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&hub.account) && !html.contains(&other_account),
        "its own accounts only"
    );
    assert!(!html.contains("Create partner"), "partners are the admin's");
    // Naming another partner's account shows no keys of it.
    let (_, html) = page(
        base,
        &format!("/console/tenants?keys_of={other_account}"),
        &cookie,
    )
    .await;
    assert!(!html.contains("id=\"keys-title\""), "{html}");
    // Issuing for another partner's account is refused like the API refuses it.
    let csrf = csrf_of(&html);
    let response = browser()
        .post(format!("{base}/console/tenants/keys"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("keys_of", other_account.as_str()),
            ("newest", ""),
        ])
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    assert!(
        html.contains("account not found") && !html.contains("cl_"),
        "{html}"
    );
}

/// The ids of the keys of a partner, account or product, oldest first.
async fn keys_of(app: &crate::support::TestApp, subject: &str) -> Vec<String> {
    let filter = if subject.starts_with("PARTNER-") {
        "partner_id"
    } else if subject.starts_with("AG-") {
        "account_id"
    } else {
        "product_id"
    };
    let r = app
        .get(&format!("/v1/keys?{filter}={subject}"), &app.admin_key)
        .await;
    r.expect(200);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The page that shows a new key answers a POST; reloading it sends the form again. The
/// form carries the newest key it saw, so the second sending issues nothing.
async fn a_reloaded_issuing_form_issues_no_second_key(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let (cookie, _) = sign_in(base, &hub.app.admin_key, false).await;
    for subject in [&hub.partner, &hub.account, &hub.product_id("a").to_owned()] {
        let before = keys_of(&hub.app, subject).await;
        let (_, html) = page(
            base,
            &format!("/console/tenants?keys_of={subject}"),
            &cookie,
        )
        .await;
        assert!(html.contains("id=\"keys-title\""), "{subject}: {html}");
        let newest = before.last().cloned().unwrap_or_default();
        let issue = || {
            browser()
                .post(format!("{base}/console/tenants/keys"))
                .header(COOKIE, &cookie)
                .form(&[
                    ("csrf", csrf_of(&html)),
                    ("keys_of", subject.clone()),
                    ("newest", newest.clone()),
                ])
                .send()
        };
        let first = issue().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        assert!(
            first.text().await.unwrap().contains("value=\"cl_"),
            "{subject}: shown once"
        );
        let again = issue().await.unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT);
        let again = again.text().await.unwrap();
        assert!(
            again.contains("no other was issued") && !again.contains("value=\"cl_"),
            "{again}"
        );
        assert_eq!(
            keys_of(&hub.app, subject).await.len(),
            before.len() + 1,
            "{subject}: one key, not two"
        );
    }
}

async fn sign_ins_are_rate_limited(backend: Backend) {
    let hub = Hub::new(backend).await;
    let base = &hub.app.base;
    let mut statuses = Vec::new();
    // Sent at once: far more than the burst the limit allows.
    let attempts = (0..3 * customer_list::console::SIGN_INS_PER_SECOND * 2).map(|_| {
        browser()
            .post(format!("{base}/console/sign-in"))
            .form(&[("key", "cl_wrong")])
            .send()
    });
    for response in futures::future::join_all(attempts).await {
        let response = response.unwrap();
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            let html = response.text().await.unwrap();
            assert!(html.contains("Too many sign-in attempts"), "{html}");
        }
        statuses.push(status);
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        limited > 0 && refused > 0 && limited + refused == statuses.len(),
        "{statuses:?}"
    );
}

/// History: each version with who made it and what changed; deliveries: what each
/// product was sent and whether it arrived.
async fn a_customer_page_shows_its_history_and_what_each_product_was_sent(backend: Backend) {
    let app = crate::support::TestApp::spawn_with(backend, |config| {
        config.webhook_allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let base = &app.base;
    let pair = app.writer_and_reader().await;
    let created = app
        .post(
            "/v1/customers",
            &pair.writer_key,
            json!({"account_id": pair.account, "first_name": "Grace", "email": "grace@example.com"}),
        )
        .await;
    created.expect(201);
    let id = created.str("customer_id");
    let (_, account_key) = app.issue_key("accounts", &pair.account).await;
    app.patch(
        &format!("/v1/customers/{id}"),
        &account_key,
        json!({"first_name": "Amazing Grace"}),
    )
    .await
    .expect(200);
    let (cookie, _) = sign_in(base, &account_key, false).await;
    let path = format!("/console/customers/{id}");
    // Both versions reach the reader; the page says they arrived.
    let html = app
        .wait_for(std::time::Duration::from_secs(10), || async {
            let (_, html) = page(base, &path, &cookie).await;
            (html.matches(">arrived<").count() == 2).then_some(html)
        })
        .await;
    let section = |from: &str, to: &str| {
        let start = html.find(from).unwrap_or_else(|| panic!("{from}: {html}"));
        let rest = &html[start..];
        rest[..rest.find(to).unwrap()].to_owned()
    };
    let history = section("<h2>History</h2>", "<h2>Sent to products</h2>");
    assert!(
        history.contains("customer.updated v2") && history.contains("customer.created v1"),
        "{history}"
    );
    assert!(
        history.contains("First name: <del>Grace</del> → <ins>Amazing Grace</ins>"),
        "{history}"
    );
    assert!(
        history.contains("Booking app"),
        "v1 by the writing product: {history}"
    );
    assert!(
        history.contains("not a product"),
        "v2 by the account's key: {history}"
    );
    let sent = section("<h2>Sent to products</h2>", "<h2>Edit</h2>");
    assert!(
        sent.contains("<td data-label=\"Product\">reader</td>"),
        "{sent}"
    );
    assert!(
        !sent.contains("<td data-label=\"Product\">Booking app</td>"),
        "the writer was sent nothing (v1 was its own; v2 has no webhook to go to): {sent}"
    );
    assert!(sent.contains("(last: HTTP 200)"), "{sent}");
}
