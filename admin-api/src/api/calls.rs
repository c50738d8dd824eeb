//! Calls: search and detail with the transcript (personal data: every read is audited).
//!
//! Calls carry no tenant of their own: a call belongs to the tenant whose dial attempt placed
//! it, and calls of no campaign (inbound callers matching no lead) to the `default` tenant.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::store::CallFilter;
use serde::Deserialize;
use serde_json::json;

use super::{READERS, allowed, audit};
use crate::{Console, error};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CallQuery {
    /// Calls of this campaign.
    pub campaign: Option<String>,
    /// Calls with this number (E.164).
    pub phone: Option<String>,
    /// Calls with this outcome.
    pub outcome: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Searches the tenant's calls, newest first.
#[utoipa::path(get, path = "/api/v1/calls", params(CallQuery), security(("token" = [])), responses(
    (status = 200, description = "calls (without transcripts)"),
    (status = 400, description = "bad query"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn list(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<Query<CallQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read calls").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = CallFilter {
        campaign: q.campaign.clone(),
        phone: q.phone.clone(),
        outcome: q.outcome.clone(),
        limit: Some(limit),
        tenant: Some(t.tenant.clone()),
        ..CallFilter::default()
    };
    let calls = match c.0.store.list_calls(&filter).await {
        Ok(calls) => calls,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let detail = json!({ "campaign": q.campaign, "phone": q.phone, "count": calls.len() });
    if let Err(r) = audit(&c, &t, "read_calls", "calls", detail).await {
        return r;
    }
    Json(json!({ "calls": calls })).into_response()
}

/// A call with its transcript, path, slots, legs and latencies.
#[utoipa::path(get, path = "/api/v1/calls/{id}", params(("id" = String, Path, description = "call id")),
    security(("token" = [])), responses(
    (status = 200, description = "the call record"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such call in the tenant")))]
pub async fn get_one(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read calls").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.call_is_tenants(&t.tenant, &id).await {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::NOT_FOUND, format!("no call {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let record = match c.0.store.call(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no call {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(r) = audit(&c, &t, "read_call", &id, json!({})).await {
        return r;
    }
    Json(json!({ "call": record })).into_response()
}

/// A call's recording as a WAV file (8 kHz, two channels: the customer left, callbot or the
/// agent right), opened with the keys that sealed it and checked against the record's SHA-256.
/// Personal data: every download is audited.
#[utoipa::path(get, path = "/api/v1/calls/{id}/recording", params(("id" = String, Path, description = "call id")),
    security(("token" = [])), responses(
    (status = 200, description = "the WAV file", content_type = "audio/wav"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such call in the tenant, or it has no recording (not recorded, or purged by the retention policy)"),
    (status = 500, description = "the stored file does not match the call record or cannot be opened")))]
pub async fn recording(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "download recordings").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.call_is_tenants(&t.tenant, &id).await {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::NOT_FOUND, format!("no call {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let record = match c.0.store.call(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no call {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some(rec) = record.recording else {
        return error(
            StatusCode::NOT_FOUND,
            format!("call {id} has no recording (not recorded, or purged by the retention policy)"),
        );
    };
    let store = c.0.store.clone();
    let wav = match tokio::task::spawn_blocking(move || store.read_recording(&rec)).await {
        Ok(Ok(wav)) => wav,
        Ok(Err(e)) => {
            tracing::error!(call = %id, error = %e, "a recording cannot be served");
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let detail = json!({ "bytes": wav.len() });
    if let Err(r) = audit(&c, &t, "recording.download", &id, detail).await {
        return r;
    }
    (
        [
            (axum::http::header::CONTENT_TYPE, "audio/wav".to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.wav\""),
            ),
        ],
        wav,
    )
        .into_response()
}
