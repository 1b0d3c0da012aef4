//! `GET /metrics` in Prometheus text: requests by route and status with latency
//! histograms, events written, deliveries by outcome with their latency, pending
//! deliveries, disabled webhooks and database pool use.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets, in seconds: 0.5 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder (metrics are global to a process), installed once.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Counts every request and times it, labelled by method, route template and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("customer_list_http_requests_total", &labels).increment(1);
    metrics::histogram!("customer_list_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

#[utoipa::path(
    get, path = "/metrics",
    operation_id = "metrics_render", tag = "operations", security(()),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
    ),
)]
pub async fn render(State(state): State<AppState>) -> Response {
    let store = state.hub.store();
    if let Ok((pending, disabled)) = store.delivery_stats().await {
        metrics::gauge!("customer_list_deliveries_pending").set(pending as f64);
        metrics::gauge!("customer_list_webhooks_disabled").set(disabled as f64);
    }
    if let Ok((running, snapshots)) = store.backfill_stats().await {
        metrics::gauge!("customer_list_backfills_running").set(running as f64);
        metrics::gauge!("customer_list_snapshots_pending").set(snapshots as f64);
    }
    if let Ok(open) = store.open_erasures().await {
        metrics::gauge!("customer_list_erasures_in_progress").set(open as f64);
    }
    let (size, idle) = store.pool_stats();
    metrics::gauge!("customer_list_db_pool_connections", "state" => "open").set(size as f64);
    metrics::gauge!("customer_list_db_pool_connections", "state" => "idle").set(idle as f64);
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
