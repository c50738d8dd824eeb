//! Calls: search and detail with the transcript (personal data: every read is audited).
//!
//! Calls carry no tenant of their own: a call belongs to its campaign's tenant, and calls with
//! no campaign (inbound callers matching no lead) to the `default` tenant.

use std::collections::HashSet;

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

async fn tenant_campaigns(c: &Console, tenant: &str) -> Result<HashSet<String>, Response> {
    c.0.store
        .list_campaigns(tenant, None)
        .await
        .map(|l| l.into_iter().map(|c| c.id).collect())
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn visible(tenant: &str, campaigns: &HashSet<String>, campaign: Option<&String>) -> bool {
    match campaign {
        Some(c) => campaigns.contains(c),
        None => tenant == "default",
    }
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
    let campaigns = match tenant_campaigns(&c, &t.tenant).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(campaign) = &q.campaign
        && !campaigns.contains(campaign)
    {
        return Json(json!({ "calls": [] })).into_response();
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // Calls carry no tenant: with a campaign the database does the limit; without one the
    // tenant's calls are picked from the newest 10,000.
    let filter = CallFilter {
        campaign: q.campaign.clone(),
        phone: q.phone.clone(),
        outcome: q.outcome.clone(),
        limit: Some(if q.campaign.is_some() { limit } else { 10_000 }),
        ..CallFilter::default()
    };
    let all = match c.0.store.list_calls(&filter).await {
        Ok(all) => all,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let calls: Vec<_> = all
        .into_iter()
        .filter(|call| visible(&t.tenant, &campaigns, call.campaign.as_ref()))
        .take(limit as usize)
        .collect();
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
    let campaigns = match tenant_campaigns(&c, &t.tenant).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let record = match c.0.store.call(&id).await {
        Ok(Some(r)) if visible(&t.tenant, &campaigns, r.campaign.as_ref()) => r,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("no call {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(r) = audit(&c, &t, "read_call", &id, json!({})).await {
        return r;
    }
    Json(json!({ "call": record })).into_response()
}
