//! The supervisors' side: the live wallboard of queues and agents.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::agent::session;
use crate::{Console, error};

/// `GET /api/supervisor/wallboard`: the desk's snapshot (queues: waiting, longest wait,
/// estimated wait, service level…; agents: status, time in it, calls and talk time), for
/// supervisors only.
pub async fn wallboard(State(c): State<Console>, headers: HeaderMap) -> Response {
    let (_, s) = match session(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if s.role != "supervisor" {
        return error(StatusCode::FORBIDDEN, "the wallboard is for supervisors");
    }
    match c.0.desk.snapshot().await {
        Ok(snapshot) => Json(json!({ "at": chrono::Utc::now(), "desk": snapshot })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
