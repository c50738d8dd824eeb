//! Campaigns: list, one with its live figures, and their life (start, pause, resume, stop).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::dialer::db::CampaignStatus;
use serde::Deserialize;
use serde_json::json;

use super::{OPERATORS, READERS, allowed, audit, store_error};
use crate::{Console, error};

/// The tenant's campaigns.
#[utoipa::path(get, path = "/api/v1/campaigns", security(("token" = [])), responses(
    (status = 200, description = "campaigns"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn list(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, READERS, "list campaigns").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.list_campaigns(&t.tenant, None).await {
        Ok(list) => Json(json!({ "campaigns": list })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A campaign and its live figures (leads by state, attempts by disposition).
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", params(("id" = String, Path, description = "campaign id")),
    security(("token" = [])), responses(
    (status = 200, description = "the campaign and its stats"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such campaign in the tenant")))]
pub async fn get_one(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read campaigns").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let campaign = match c.0.store.campaign(&t.tenant, &id).await {
        Ok(Some(campaign)) => campaign,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no campaign {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match c
        .0
        .store
        .campaign_stats(&t.tenant, &id, chrono::Utc::now())
        .await
    {
        Ok(stats) => Json(json!({ "campaign": campaign, "stats": stats })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `POST /api/v1/campaigns/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Target,
}

/// `running` (start or resume), `paused` or `stopped`.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Running,
    Paused,
    Stopped,
}

/// Starts, pauses, resumes or stops a campaign.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/status", params(("id" = String, Path, description = "campaign id")),
    request_body = StatusChange, security(("token" = [])), responses(
    (status = 200, description = "the new status"),
    (status = 400, description = "not a status change"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor"),
    (status = 404, description = "no such campaign in the tenant"),
    (status = 409, description = "not allowed from the campaign's status")))]
pub async fn set_status(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, OPERATORS, "change a campaign's status").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let change: StatusChange = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("status change: {e}")),
    };
    let to = match change.status {
        Target::Running => CampaignStatus::Running,
        Target::Paused => CampaignStatus::Paused,
        Target::Stopped => CampaignStatus::Stopped,
    };
    match c.0.store.campaign(&t.tenant, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no campaign {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    match c
        .0
        .store
        .set_campaign_status(&t.tenant, &id, to, &format!("api:{}", t.name))
        .await
    {
        Ok(from) => {
            if let Err(r) = audit(&c, &t, "campaign_status", &id, json!({ "to": to })).await {
                return r;
            }
            Json(json!({ "campaign": id, "from": from, "status": to })).into_response()
        }
        Err(e) => store_error(e, StatusCode::CONFLICT),
    }
}
