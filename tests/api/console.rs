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
);

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
        &format!("/console/tenants?account_id={other_account}"),
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
            ("account_id", other_account.as_str()),
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
