//! Health, readiness, metrics, the OpenAPI document, who am I, the audit log, agents and queues.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::OpenApi;

use super::{ApiDoc, OPERATORS, allowed, caller};
use crate::{Console, error};

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, description = "alive")))]
pub async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/api/v1/ready", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "the database does not answer")))]
pub async fn ready(State(c): State<Console>) -> Response {
    match c.0.store.list_campaigns("default", None).await {
        Ok(_) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

/// `GET /metrics`: Prometheus text format (calls in progress and finished, turn latency).
pub async fn metrics(State(c): State<Console>) -> Response {
    match &c.0.metrics {
        Some(m) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            m.render(),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "this server runs no calls"),
    }
}

/// The token's tenant, name and role.
#[utoipa::path(get, path = "/api/v1/whoami", security(("token" = [])), responses(
    (status = 200, description = "the caller"),
    (status = 401, description = "no or bad token")))]
pub async fn whoami(State(c): State<Console>, headers: HeaderMap) -> Response {
    match caller(&c, &headers).await {
        Ok(t) => {
            Json(json!({ "tenant": t.tenant, "name": t.name, "role": t.role })).into_response()
        }
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events before this time (RFC 3339), for paging.
    pub before: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The tenant's audit log, newest first: who did or read what, when.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), security(("token" = [])), responses(
    (status = 200, description = "audit events"),
    (status = 400, description = "bad query"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin, auditor or platform")))]
pub async fn audit_log(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let t = match allowed(
        &c,
        &headers,
        &["admin", "auditor", "platform"],
        "read the audit log",
    )
    .await
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match c.0.store.audit_events(&t.tenant, q.before, limit).await {
        Ok(events) => Json(json!({ "events": events })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The tenant's agents (without password hashes or SIP passwords).
#[utoipa::path(get, path = "/api/v1/agents", security(("token" = [])), responses(
    (status = 200, description = "agents"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor")))]
pub async fn agents(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, OPERATORS, "list agents").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.agents(&t.tenant).await {
        Ok(list) => Json(json!({
            "agents": list.iter().map(|a| json!({
                "id": a.id, "name": a.name, "role": a.role, "skills": a.skills,
                "sip_user": a.sip_user, "disabled": a.disabled,
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The tenant's queues.
#[utoipa::path(get, path = "/api/v1/queues", security(("token" = [])), responses(
    (status = 200, description = "queues"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor")))]
pub async fn queues(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, OPERATORS, "list queues").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.queues(&t.tenant).await {
        Ok(list) => Json(json!({ "queues": list })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
