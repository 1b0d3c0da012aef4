//! `GET /healthz` (the process is alive) and `GET /readyz` (the database answers and
//! every migration is applied).

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

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
