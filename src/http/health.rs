//! `GET /healthz` (the process is alive) and `GET /readyz` (the database answers and
//! every migration is applied).

use super::AppState;
use crate::http::openapi as doc;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(super::metrics::render))
}

#[utoipa::path(
    get, path = "/healthz",
    operation_id = "health_healthz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The process is alive", body = doc::Status),
    ),
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get, path = "/readyz",
    operation_id = "health_readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The database answers and migrations are applied", body = doc::Status),
        (status = 503, description = "Not ready", body = doc::Status),
    ),
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let check = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.hub.store().check_ready(),
    )
    .await;
    match check {
        Ok(Ok(true)) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(Ok(false)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "migrations pending"})),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "database unreachable"})),
        ),
    }
}
