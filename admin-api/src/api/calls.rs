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
