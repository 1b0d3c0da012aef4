//! The web console (SPEC section 9), served by the binary under `/console`: askama
//! templates rendered on the server, htmx for partial updates (a request with
//! `HX-Request` gets the fragment it targets, a plain one the whole page), every asset
//! embedded in the binary. Pages call the same service layer as the JSON API, so tenancy,
//! validation and events are the very same code.

mod assets;
mod chart;
mod compare;
mod customer;
mod customers;
mod duplicates;
mod history;
mod imports;
mod merge;
mod privacy;
mod products;
mod session;
mod tenants;

use crate::http::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// Sign-ins the whole console takes per second (twice that in a burst).
pub const SIGN_INS_PER_SECOND: u32 = 5;

/// Cache-busting version of the embedded assets: the crate version.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/customers") }),
        )
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/customers", get(customers::list))
        .route("/console/customers/export", get(imports::export))
        .route(
            "/console/imports",
            get(imports::list)
                .post(imports::start)
                .layer(DefaultBodyLimit::max(crate::http::MAX_IMPORT_BYTES)),
        )
        .route(
            "/console/imports/preview",
            post(imports::show_preview).layer(DefaultBodyLimit::max(crate::http::MAX_IMPORT_BYTES)),
        )
        .route("/console/imports/{id}", get(imports::show))
        .route("/console/imports/{id}/errors", get(imports::errors))
        .route(
            "/console/customers/{id}",
            get(customer::show).post(customer::update),
        )
        .route("/console/customers/{id}/delete", post(customer::remove))
        .route("/console/customers/{id}/erase", post(privacy::erase))
        .route("/console/customers/{id}/export", get(privacy::export))
        .route("/console/erasures/{id}", get(privacy::receipt))
        .route("/console/privacy", get(privacy::privacy))
        .route("/console/privacy/lift", post(privacy::lift))
        .route(
            "/console/customers/{id}/merge",
            get(merge::show).post(merge::merge),
        )
        .route("/console/duplicates", get(duplicates::show))
        .route("/console/duplicates/{id}/{action}", post(duplicates::act))
        .route("/console/products", get(products::list))
        .route("/console/activations", post(products::activate_new))
        .route("/console/products/{id}", get(products::show))
        .route("/console/products/{id}/activation", post(products::change))
        .route(
            "/console/products/{id}/deactivate",
            post(products::deactivate),
        )
        .route("/console/products/{id}/enable", post(products::enable))
        .route("/console/products/{id}/resync", post(products::resync))
        .route("/console/products/{id}/rotate", post(products::rotate))
        .route(
            "/console/products/{id}/retry/{delivery}",
            post(products::retry),
        )
        .route("/console/tenants", get(tenants::show))
        .route("/console/tenants/keys", post(tenants::issue))
        .route(
            "/console/tenants/keys/{key_id}/revoke",
            post(tenants::revoke),
        )
        .route("/console/tenants/{what}", post(tenants::create))
        .route("/console/assets/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(security_headers))
}

/// What every console response carries: no framing, no sniffing, no referrer, and a
/// content security policy allowing only the binary's own assets.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What the page frame (`base.html`) shows: the asset version, who is signed in, the
/// session's CSRF token for the sign-out form, and the current section of the menu.
pub struct Frame {
    pub asset_version: &'static str,
    pub who: Option<String>,
    pub csrf: String,
    pub section: &'static str,
    /// Whether the menu offers the tenants page (admin and partners).
    pub manages_tenants: bool,
    /// Whether the menu offers products (admin, partners, and a product for itself).
    pub shows_products: bool,
    /// Whether the menu offers the privacy page (everyone but products).
    pub shows_privacy: bool,
}

impl Frame {
    /// The frame of a signed-in page in `section`.
    pub fn signed(session: &crate::service::sessions::Session, section: &'static str) -> Self {
        Self {
            asset_version: ASSET_VERSION,
            who: Some(session.signed_in_as.clone()),
            csrf: session.csrf_token.clone(),
            section,
            manages_tenants: matches!(
                session.key.principal,
                crate::domain::tenancy::Principal::Admin
                    | crate::domain::tenancy::Principal::Partner(_)
            ),
            shows_products: !matches!(
                session.key.principal,
                crate::domain::tenancy::Principal::Account(_)
            ),
            shows_privacy: !matches!(
                session.key.principal,
                crate::domain::tenancy::Principal::Product(_)
            ),
        }
    }

    /// The frame of the sign-in page (nobody signed in yet).
    pub fn signed_out() -> Self {
        Self {
            asset_version: ASSET_VERSION,
            who: None,
            csrf: String::new(),
            section: "sign-in",
            manages_tenants: false,
            shows_products: false,
            shows_privacy: false,
        }
    }
}

/// Whether htmx sent the request (it then swaps in a fragment, not a page).
fn is_htmx(headers: &HeaderMap) -> bool {
    headers
        .get("hx-request")
        .is_some_and(|v| v.as_bytes() == b"true")
}

/// A rendered template, or a plain error page when rendering itself failed.
fn render(status: StatusCode, template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    }
}

/// A refused request as a plain page: the API's status and its detail in words (a server
/// error stays the API's problem document).
fn refusal(err: crate::error::ApiError) -> Response {
    if err.status.is_server_error() {
        return err.into_response();
    }
    (err.status, err.detail).into_response()
}
