//! The HTTP API: one module per resource, each with its own router, merged here with
//! the cross-cutting layers (request ids, tracing, body limit, problem+json fallbacks).

mod accounts;
mod conflicts;
mod customers;
mod erasures;
pub(crate) use erasures::export_attachment;
pub mod extract;
mod health;
mod idempotency;
mod imports;
mod keys;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod partners;
mod products;
mod webhooks;

use crate::error::ApiError;
use crate::service::Hub;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use idempotency::RETENTION_HOURS as IDEMPOTENCY_RETENTION_HOURS;
pub(crate) use imports::csv_attachment;
pub use imports::MAX_IMPORT_BYTES;

/// Request bodies over this size are refused with `413`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The body limit of a route: 1 MiB, but 50 MB for an import's file (SPEC section 12).
pub fn body_limit(path: &str) -> usize {
    if path == "/v1/imports" {
        imports::MAX_IMPORT_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub limits: Arc<limits::RateLimits>,
    /// Console sign-ins, one bucket for all (SPEC section 9: sign-ins are rate-limited).
    pub sign_ins: Arc<limits::RateLimits>,
}

/// Every API route, and the OpenAPI document of them all (each route registers its
/// operation; `openapi::complete` then adds what holds across operations).
fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(partners::router())
        .merge(accounts::router())
        .merge(products::router())
        .merge(keys::router())
        .merge(customers::router())
        .merge(erasures::router())
        .merge(imports::router())
        .merge(conflicts::router())
        .merge(webhooks::router())
        .split_for_parts();
    openapi::complete(&mut document);
    (routes, document)
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi_document() -> serde_json::Value {
    openapi::to_json(&documented_routes().1)
}

pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        // Only the method, the route template and the request id: paths and queries
        // may carry personal data (vendor ids, search terms).
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "unmatched".to_owned());
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("request", method = %req.method(), route, request_id = id)
    });
    let (api, document) = documented_routes();
    let document = openapi::to_json(&document);
    api.merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document))
        .merge(crate::console::router())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            limits::REQUEST_TIMEOUT,
        ))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(tower::util::option_layer(limits::cors(cors_origins)))
        .with_state(state)
}
