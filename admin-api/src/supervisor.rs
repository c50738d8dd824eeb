//! The supervisors' side: the live wallboard of queues and agents, and listen-in.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::agent::desk_session;
use crate::{Console, error};

/// `GET /api/supervisor/wallboard`: the desk's snapshot (queues: waiting, longest wait,
/// estimated wait, service level…; agents: status, time in it, calls and talk time), for
/// supervisors only.
pub async fn wallboard(State(c): State<Console>, headers: HeaderMap) -> Response {
    let (_, s) = match desk_session(&c, &headers) {
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

/// The body of `POST /api/supervisor/listen`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenForm {
    /// The call (as on the wallboard: an agent's `on_call` status).
    pub call: String,
    /// The supervisor's WebRTC offer.
    pub sdp: String,
}

/// `POST /api/supervisor/listen`: a supervisor listens in on a live call (the customer and the
/// agent mixed) through a WebRTC leg; answers `{"sdp": answer}`. The leg ends with the call.
pub async fn listen(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (_, s) = match desk_session(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if s.role != "supervisor" {
        return error(StatusCode::FORBIDDEN, "listening in is for supervisors");
    }
    let form: ListenForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("listen form: {e}")),
    };
    // Listening in hears the customer: a read of personal data, audited first.
    let actor = format!("console:{}", s.agent);
    if let Err(e) =
        c.0.store
            .audit(&s.tenant, &actor, "call.listen", &form.call, json!({}))
            .await
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("audit log: {e}"));
    }
    let (leg, answer) =
        match telephony::webrtc_leg::WebRtcLeg::answer(&form.sdp, &c.0.cfg.webrtc).await {
            Ok(x) => x,
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the softphone's offer: {e}"),
                );
            }
        };
    let leg = bot_runtime::agents::softphone::connected_leg(leg);
    match c.0.desk.listen(&form.call, leg).await {
        Ok(()) => {
            tracing::info!(supervisor = %s.agent, call = %form.call, "listen-in started");
            Json(json!({ "call": form.call, "sdp": answer })).into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}
