//! Tenants (admin and partner): partners, accounts and their keys — create, issue a key
//! (shown once, on the page that answers the issuing form), revoke. The same use cases as
//! `/v1/partners`, `/v1/accounts` and the key endpoints, so a partner sees and changes only
//! its own.

use super::session::{Signed, SignedForm};
use super::{render, Frame};
use crate::domain::tenancy::Principal;
use crate::domain::{AccountId, KeyId, PartnerId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::input::parse_object;
use crate::service::accounts::{TenantQuery, MAX_PAGE_SIZE};
use crate::service::keys::KeyFilter;
use crate::service::sessions::Session;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    frame: Frame,
    is_admin: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    /// (whose, the key): shown once.
    issued: Option<(String, String)>,
    partners: Vec<(String, String)>,
    /// (id, name, region)
    accounts: Vec<(String, String, String)>,
    products: Vec<(String, String)>,
    /// The partner, account or product whose keys are shown: (id, name).
    selected: Option<(String, String)>,
    /// (key id, created, revoked), oldest first.
    keys: Vec<(String, String, Option<String>)>,
    /// The newest of those keys, or empty: an issuing form carries it, so that sending
    /// the form again (a reload of the page that showed a new key) issues nothing.
    newest: String,
}

/// The partner, account or product an id names.
fn subject_of(id: &str) -> Option<Principal> {
    PartnerId::parse(id)
        .map(Principal::Partner)
        .or_else(|| AccountId::parse(id).map(Principal::Account))
        .or_else(|| ProductId::parse(id).map(Principal::Product))
}

/// The key listing's filter naming `subject`.
fn filter_of(subject: &Principal) -> KeyFilter {
    let mut filter = KeyFilter::default();
    match subject {
        Principal::Partner(id) => filter.partner = Some(id.clone()),
        Principal::Account(id) => filter.account = Some(id.clone()),
        Principal::Product(id) => filter.product = Some(id.clone()),
        Principal::Admin => {}
    }
    filter
}

fn all() -> TenantQuery {
    TenantQuery {
        partner_id: None,
        page_size: MAX_PAGE_SIZE,
        cursor: None,
    }
}

async fn page(
    state: &AppState,
    session: &Session,
    selected: Option<String>,
    notice: Option<&'static str>,
    outcome: Result<Option<(String, String)>, ApiError>,
) -> Response {
    let who = &session.key.principal;
    if !matches!(who, Principal::Admin | Principal::Partner(_)) {
        let forbidden = ApiError::forbidden_because("only the admin and partners manage tenants");
        return (StatusCode::FORBIDDEN, forbidden.detail).into_response();
    }
    let refused = outcome.as_ref().err().map(|err| err.status);
    let built: ApiResult<TenantsPage> = async {
        let partners = match who {
            Principal::Admin => state
                .hub
                .list_partners(who, all())
                .await?
                .items
                .into_iter()
                .map(|p| (p.partner_id.to_string(), p.name.as_str().to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        let accounts: Vec<(String, String, String)> = state
            .hub
            .list_accounts(who, all())
            .await?
            .items
            .into_iter()
            .map(|a| {
                let region = a.default_region.as_str().to_owned();
                (a.account_id.to_string(), a.name.as_str().to_owned(), region)
            })
            .collect();
        let products: Vec<(String, String)> = state
            .hub
            .list_products(who, all())
            .await?
            .items
            .into_iter()
            .map(|p| (p.product_id.to_string(), p.name.as_str().to_owned()))
            .collect();
        // Only what this page lists can be selected.
        let selected = selected.and_then(|id| {
            let listed = |list: &[(String, String)]| list.iter().find(|(i, _)| *i == id).cloned();
            listed(&partners).or_else(|| listed(&products)).or_else(|| {
                let a = accounts.iter().find(|a| a.0 == id)?;
                Some((a.0.clone(), a.1.clone()))
            })
        });
        let keys = match selected.as_ref().and_then(|(id, _)| subject_of(id)) {
            Some(subject) => {
                let filter = filter_of(&subject);
                state
                    .hub
                    .list_keys(who, filter)
                    .await?
                    .into_iter()
                    .map(|k| {
                        let revoked = k
                            .revoked
                            .map(|r| r.format("%Y-%m-%d %H:%M UTC").to_string());
                        (
                            k.key_id.to_string(),
                            k.created.format("%Y-%m-%d %H:%M UTC").to_string(),
                            revoked,
                        )
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let newest = keys
            .last()
            .map(|k: &(String, String, Option<String>)| k.0.clone())
            .unwrap_or_default();
        let (issued, error) = match outcome {
            Ok(issued) => (issued, None),
            Err(err) => (None, Some(err.detail)),
        };
        // Name the key's account as the page does.
        let issued = issued.map(|(whose, key)| {
            (
                selected.as_ref().map_or(whose, |(_, name)| name.clone()),
                key,
            )
        });
        Ok(TenantsPage {
            frame: Frame::signed(session, "tenants"),
            is_admin: *who == Principal::Admin,
            notice,
            error,
            issued,
            partners,
            accounts,
            products,
            selected,
            keys,
            newest,
        })
    }
    .await;
    match built {
        Ok(page) => render(refused.unwrap_or(StatusCode::OK), &page),
        Err(err) => err.into_response(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    Signed(session): Signed,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(err) => return err.into_response(),
    };
    let notice = match params.get("done").map(String::as_str) {
        Some("partner") => Some("Partner created."),
        Some("account") => Some("Account created."),
        Some("revoked") => Some("Key revoked: it stopped working at once."),
        _ => None,
    };
    page(
        &state,
        &session,
        params.get("keys_of").cloned(),
        notice,
        Ok(None),
    )
    .await
}

/// The form's fields as a JSON object, for the API's own input types (blank = absent).
fn object_of(form: &HashMap<String, String>, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| {
            let value = form.get(*f)?.trim();
            (!value.is_empty()).then(|| (f.to_string(), Value::String(value.to_owned())))
        })
        .collect()
}

pub async fn create(
    State(state): State<AppState>,
    Path(what): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let who = &session.key.principal;
    let done = match what.as_str() {
        "partners" => match parse_object(object_of(&form, &["name"])) {
            Ok(input) => state
                .hub
                .create_partner(who, input)
                .await
                .map(|_| "partner"),
            Err(err) => Err(err),
        },
        "accounts" => {
            match parse_object(object_of(&form, &["partner_id", "name", "default_region"])) {
                Ok(input) => state
                    .hub
                    .create_account(who, input)
                    .await
                    .map(|_| "account"),
                Err(err) => Err(err),
            }
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match done {
        Ok(done) => Redirect::to(&format!("/console/tenants?done={done}")).into_response(),
        Err(err) if err.status.is_client_error() => {
            // Name the bad fields in words.
            let fields: Vec<String> = err
                .field_errors()
                .into_iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect();
            let detail = if fields.is_empty() {
                err.detail.clone()
            } else {
                fields.join("; ")
            };
            let shown = ApiError::new(err.status, err.code, err.title, detail);
            page(&state, &session, None, None, Err(shown)).await
        }
        Err(err) => err.into_response(),
    }
}

/// Issues a key for the partner, account or product named by the form; the answer shows
/// it, once. A form sent again (a reload of that answer) finds a key newer than the one
/// it was opened with and issues nothing.
pub async fn issue(
    State(state): State<AppState>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let whose = form.get("keys_of").cloned().unwrap_or_default();
    let who = &session.key.principal;
    let Some(subject) = subject_of(&whose) else {
        return page(
            &state,
            &session,
            None,
            None,
            Err(ApiError::not_found("account")),
        )
        .await;
    };
    let kind = subject.kind().as_str();
    let newest = match state.hub.list_keys(who, filter_of(&subject)).await {
        Ok(keys) => keys
            .last()
            .map(|k| k.key_id.to_string())
            .unwrap_or_default(),
        Err(err) => return page(&state, &session, None, None, Err(err)).await,
    };
    if form.get("newest").map(String::as_str) != Some(newest.as_str()) {
        let again = ApiError::conflict(
            "already_issued",
            "A key was issued since this page was opened, so no other was issued. Issue again if you need another.",
        );
        return page(&state, &session, Some(whose), None, Err(again)).await;
    }
    let issued = state
        .hub
        .issue_key(who, subject)
        .await
        .map(|key| Some((format!("{kind} {whose}"), key.api_key)));
    page(&state, &session, Some(whose), None, issued).await
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let account = form.get("keys_of").cloned().unwrap_or_default();
    let Some(key) = KeyId::parse(&key_id) else {
        return page(
            &state,
            &session,
            Some(account),
            None,
            Err(ApiError::not_found("key")),
        )
        .await;
    };
    match state.hub.revoke_key(&session.key.principal, &key).await {
        Ok(()) => Redirect::to(&format!("/console/tenants?done=revoked&keys_of={account}"))
            .into_response(),
        Err(err) if err.status.is_client_error() => {
            page(&state, &session, Some(account), None, Err(err)).await
        }
        Err(err) => err.into_response(),
    }
}
