//! Products: those on an account with their sync mode (activate, change, deactivate),
//! for the admin and partners; a product's page (webhook status, enable, rotate the
//! secret — shown once — and its delivery log with each attempt's answer and retry), for
//! them and for the product itself. The same use cases as the activation and webhook
//! endpoints of `/v1`.

use super::customers::account_choices;
use super::history::{answer, when};
use super::session::{Signed, SignedForm};
use super::{render, Frame};
use crate::domain::tenancy::Principal;
use crate::domain::{AccountId, CustomerId, DeliveryId, ParseId, ProductId};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::parse_query;
use crate::http::AppState;
use crate::input::parse_object;
use crate::service::accounts::{TenantQuery, MAX_PAGE_SIZE};
use crate::service::activations::ActivationInput;
use crate::service::sessions::Session;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

pub struct ActivationRow {
    product_id: String,
    name: String,
    sync: String,
    since: String,
    /// The backfill, in words, and (while it runs) its progress as (sent, total).
    catching_up: String,
    progress: Option<(i64, i64)>,
}

/// A backfill's state in words (SPEC section 11).
fn catching_up(b: &crate::storage::BackfillView) -> (String, Option<(i64, i64)>) {
    match b.status.as_str() {
        "running" => (
            format!("Sending existing customers: {} of {}", b.sent, b.total),
            Some((b.sent, b.total.max(1))),
        ),
        "completed" => (
            format!(
                "Caught up {} ({} sent)",
                b.completed.as_ref().map(when).unwrap_or_default(),
                b.sent
            ),
            None,
        ),
        "cancelled" => ("Stopped when it was deactivated".to_owned(), None),
        _ => ("—".to_owned(), None),
    }
}

#[derive(Template)]
#[template(path = "console/products.html")]
struct ProductsPage {
    frame: Frame,
    notice: Option<&'static str>,
    error: Option<String>,
    accounts: Vec<(String, String)>,
    account_id: String,
    activations: Vec<ActivationRow>,
    inactive: Vec<(String, String)>,
}

pub struct DeliveryRow {
    delivery_id: String,
    event_type: String,
    version: i64,
    customer_id: String,
    status: String,
    created: String,
    next_attempt: Option<String>,
    /// (number, when, answer, latency ms, kept body)
    attempts: Vec<(i32, String, String, i64, Option<String>)>,
}

#[derive(Template)]
#[template(path = "console/product.html")]
struct ProductPage {
    frame: Frame,
    show_list_link: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    secret: Option<String>,
    product_id: String,
    name: String,
    webhook_url: Option<String>,
    webhook_status: String,
    disabled_reason: Option<String>,
    statuses: Vec<String>,
    status: String,
    customer: String,
    customer_error: Option<&'static str>,
    /// The query of the next (older) page of the log, when there is one.
    older: Option<String>,
    deliveries: Vec<DeliveryRow>,
    chart: String,
    hours: Vec<super::chart::HourRow>,
}

fn all() -> TenantQuery {
    TenantQuery {
        partner_id: None,
        page_size: MAX_PAGE_SIZE,
        cursor: None,
    }
}

async fn products_page(
    state: &AppState,
    session: &Session,
    mut params: HashMap<String, String>,
    refusal: Option<ApiError>,
) -> Response {
    let who = &session.key.principal;
    match who {
        Principal::Product(me) => {
            return Redirect::to(&format!("/console/products/{me}")).into_response()
        }
        Principal::Account(_) => {
            return (
                StatusCode::FORBIDDEN,
                "Products are managed by the account's partner.",
            )
                .into_response()
        }
        _ => {}
    }
    let notice = match params.remove("done").as_deref() {
        Some("activated") => Some("Activated."),
        Some("deactivated") => Some("Deactivated."),
        Some("resync") => Some("Sending every customer again."),
        _ => None,
    };
    let built: ApiResult<ProductsPage> = async {
        let accounts = account_choices(state, who, &mut params).await?;
        let account_id = params.get("account_id").cloned().unwrap_or_default();
        let products: Vec<(String, String)> = state
            .hub
            .list_products(who, all())
            .await?
            .items
            .into_iter()
            .map(|p| (p.product_id.to_string(), p.name.as_str().to_owned()))
            .collect();
        let name_of = |id: &str| {
            products
                .iter()
                .find(|(p, _)| p == id)
                .map_or_else(|| id.to_owned(), |(_, name)| name.clone())
        };
        let activations = match AccountId::parse(&account_id) {
            Some(account) => state.hub.list_activations(who, &account).await?,
            None => Vec::new(),
        };
        let rows: Vec<ActivationRow> = activations
            .iter()
            .map(|view| {
                let a = &view.activation;
                let (catching_up, progress) = catching_up(&view.backfill);
                ActivationRow {
                    product_id: a.product_id.to_string(),
                    name: name_of(a.product_id.as_str()),
                    sync: a.sync.as_str().to_owned(),
                    since: when(&a.created),
                    catching_up,
                    progress,
                }
            })
            .collect();
        let inactive = products
            .iter()
            .filter(|(id, _)| !rows.iter().any(|r| &r.product_id == id))
            .cloned()
            .collect();
        Ok(ProductsPage {
            frame: Frame::signed(session, "products"),
            notice,
            error: refusal.as_ref().map(|r| r.detail.clone()),
            accounts,
            account_id,
            activations: rows,
            inactive,
        })
    }
    .await;
    match built {
        Ok(page) => render(refusal.map_or(StatusCode::OK, |r| r.status), &page),
        Err(err) if err.status.is_client_error() => (err.status, err.detail).into_response(),
        Err(err) => err.into_response(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Signed(session): Signed,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => products_page(&state, &session, params, None).await,
        Err(err) => err.into_response(),
    }
}

/// Changes the sync mode of an activated product (the path names it).
pub async fn change(
    State(state): State<AppState>,
    Path(product): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    activate(state, session, form, product).await
}

/// Activates the product the form names.
pub async fn activate_new(
    State(state): State<AppState>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let product = form.get("product_id").cloned().unwrap_or_default();
    activate(state, session, form, product).await
}

async fn activate(
    state: AppState,
    session: Session,
    form: HashMap<String, String>,
    product: String,
) -> Response {
    let sync = form.get("sync").cloned().unwrap_or_default();
    let input = [("sync".to_owned(), serde_json::Value::String(sync))];
    let outcome = match (
        targets(&form, &product),
        parse_object::<ActivationInput>(input.into_iter().collect()),
    ) {
        (Ok((account, product)), Ok(input)) => state
            .hub
            .activate(&session.key.principal, &account, &product, input)
            .await
            .map(|_| ()),
        (Err(err), _) | (_, Err(err)) => Err(err),
    };
    settle(&state, &session, &form, "activated", outcome).await
}

pub async fn deactivate(
    State(state): State<AppState>,
    Path(product): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let outcome = match targets(&form, &product) {
        Ok((account, product)) => {
            state
                .hub
                .deactivate(&session.key.principal, &account, &product)
                .await
        }
        Err(err) => Err(err),
    };
    settle(&state, &session, &form, "deactivated", outcome).await
}

/// Sends the account's every customer to the product again (it lost its data).
pub async fn resync(
    State(state): State<AppState>,
    Path(product): Path<String>,
    SignedForm(session, form): SignedForm,
) -> Response {
    let outcome = match targets(&form, &product) {
        Ok((account, product)) => state
            .hub
            .resync(&session.key.principal, &account, &product)
            .await
            .map(|_| ()),
        Err(err) => Err(err),
    };
    settle(&state, &session, &form, "resync", outcome).await
}

/// The account (named by the form) and product (by `product`) a form acts on.
fn targets(form: &HashMap<String, String>, product: &str) -> ApiResult<(AccountId, ProductId)> {
    let account = form.get("account_id").and_then(|a| AccountId::parse(a));
    match (account, ProductId::parse(product)) {
        (Some(account), Some(product)) => Ok((account, product)),
        (None, _) => Err(ApiError::not_found("account")),
        (_, None) => Err(ApiError::not_found("product")),
    }
}

/// After an activation change: the list with a notice, or again with the refusal in words.
async fn settle(
    state: &AppState,
    session: &Session,
    form: &HashMap<String, String>,
    done: &str,
    outcome: ApiResult<()>,
) -> Response {
    let account_id = form.get("account_id").cloned().unwrap_or_default();
    match outcome {
        Ok(()) => Redirect::to(&format!(
            "/console/products?done={done}&account_id={account_id}"
        ))
        .into_response(),
        Err(err) if err.status.is_client_error() => {
            let back = HashMap::from([("account_id".to_owned(), account_id)]);
            products_page(state, session, back, Some(err)).await
        }
        Err(err) => err.into_response(),
    }
}

const STATUSES: [&str; 5] = ["", "pending", "delivered", "failed", "superseded"];

/// The delivery log's filters and position, as the page's query holds them.
#[derive(Default)]
struct LogView {
    status: String,
    customer: String,
    cursor: Option<String>,
}

async fn product_page(
    state: &AppState,
    session: &Session,
    id: &str,
    log: LogView,
    notice: Option<&'static str>,
    outcome: Result<Option<String>, ApiError>,
) -> Response {
    let who = &session.key.principal;
    let Some(product_id) = ProductId::parse(id) else {
        return (StatusCode::NOT_FOUND, "product not found").into_response();
    };
    let built: ApiResult<(Option<StatusCode>, ProductPage)> = async {
        let product = state.hub.get_product(who, &product_id).await?;
        let filter = STATUSES
            .contains(&log.status.as_str())
            .then_some(log.status.clone())
            .filter(|s| !s.is_empty());
        let customer = log.customer.trim();
        let customer_error = (!customer.is_empty() && CustomerId::parse(customer).is_none())
            .then_some(
                "Not a customer id: those start with CUSTOMER- (copy one from a customer's page).",
            );
        let customer_filter =
            (!customer.is_empty() && customer_error.is_none()).then(|| customer.to_owned());
        // A cursor this page did not write shows the first page.
        let before = log
            .cursor
            .as_deref()
            .and_then(|c| crate::service::webhooks::decode_log_cursor(c).ok());
        let stored_hours = state.hub.delivery_hours(who, &product_id).await?;
        let hours = super::chart::hours(crate::domain::time::now(), &stored_hours);
        let (deliveries, next) = if customer_error.is_some() {
            (Vec::new(), None)
        } else {
            state
                .hub
                .deliveries(who, &product_id, filter, customer_filter, before, 50)
                .await?
        };
        let older = next.map(|cursor| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("status", &log.status)
                .append_pair("customer_id", customer)
                .append_pair("cursor", &cursor)
                .finish()
        });
        let (secret, error) = match outcome {
            Ok(secret) => (secret, None),
            Err(err) => (None, Some((err.status, err.detail))),
        };
        Ok((
            error.as_ref().map(|e| e.0),
            ProductPage {
                frame: Frame::signed(session, "products"),
                show_list_link: !matches!(who, Principal::Product(_)),
                notice,
                error: error.map(|e| e.1),
                secret,
                product_id: product.product_id.to_string(),
                name: product.name.as_str().to_owned(),
                webhook_url: product.webhook_url.as_ref().map(|u| u.as_str().to_owned()),
                webhook_status: product.webhook_status.as_str().to_owned(),
                disabled_reason: product.webhook_disabled_reason.clone(),
                statuses: STATUSES.iter().map(|s| s.to_string()).collect(),
                chart: super::chart::svg(&hours),
                hours,
                customer: customer.to_owned(),
                customer_error,
                older,
                status: log.status.clone(),
                deliveries: deliveries
                    .into_iter()
                    .map(|d| DeliveryRow {
                        attempts: d
                            .attempt_log
                            .iter()
                            .map(|a| {
                                (
                                    a.attempt,
                                    when(&a.attempted_at),
                                    answer(a),
                                    a.latency_ms,
                                    a.response_body.clone(),
                                )
                            })
                            .collect(),
                        delivery_id: d.delivery_id,
                        event_type: d.event_type,
                        version: d.version,
                        customer_id: d.customer_id,
                        status: d.status,
                        created: when(&d.created),
                        next_attempt: d.next_attempt.as_ref().map(when),
                    })
                    .collect(),
            },
        ))
    }
    .await;
    match built {
        Ok((refused, page)) => render(refused.unwrap_or(StatusCode::OK), &page),
        Err(err) if err.status.is_client_error() => (err.status, err.detail).into_response(),
        Err(err) => err.into_response(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut params = match parse_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(err) => return err.into_response(),
    };
    let notice = match params.remove("done").as_deref() {
        Some("enabled") => Some("The webhook is enabled; pending deliveries go out again."),
        Some("retried") => Some("The delivery is due now."),
        _ => None,
    };
    let log = LogView {
        status: params.remove("status").unwrap_or_default(),
        customer: params.remove("customer_id").unwrap_or_default(),
        cursor: params.remove("cursor"),
    };
    product_page(&state, &session, &id, log, notice, Ok(None)).await
}

pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, _form): SignedForm,
) -> Response {
    let Some(product) = ProductId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "product not found").into_response();
    };
    match state
        .hub
        .enable_webhook(&session.key.principal, &product)
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/products/{id}?done=enabled")).into_response(),
        Err(err) => product_page(&state, &session, &id, LogView::default(), None, Err(err)).await,
    }
}

/// Rotates the signing secret: the new one is shown once, on this answer.
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, _form): SignedForm,
) -> Response {
    let Some(product) = ProductId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "product not found").into_response();
    };
    let rotated = state
        .hub
        .rotate_webhook_secret(&session.key.principal, &product)
        .await
        .map(|v| v["webhook_secret"].as_str().map(str::to_owned));
    product_page(&state, &session, &id, LogView::default(), None, rotated).await
}

pub async fn retry(
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
    SignedForm(session, _form): SignedForm,
) -> Response {
    let Some(delivery) = DeliveryId::parse(&delivery) else {
        return (StatusCode::NOT_FOUND, "delivery not found").into_response();
    };
    match state
        .hub
        .retry_delivery(&session.key.principal, delivery.as_str())
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/products/{id}?done=retried")).into_response(),
        Err(err) => product_page(&state, &session, &id, LogView::default(), None, Err(err)).await,
    }
}
