//! Leads: search (by number through the blind index, by campaign and state) and one lead's
//! history — its state in each campaign, every attempt, the dial decisions on its number with
//! their rules, its calls and whether it is on a do-not-call list. Personal data: every read
//! is audited.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::dialer::db::LeadQuery;
use bot_runtime::dialer::phone;
use bot_runtime::store::CallFilter;
use serde::Deserialize;
use serde_json::json;

use super::{READERS, allowed, audit};
use crate::{Console, error};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LeadSearch {
    /// The lead with this number (E.164, or national with `region`).
    pub phone: Option<String>,
    /// ISO 3166 region of a national `phone` (default US).
    pub region: Option<String>,
    /// Leads given to this campaign.
    pub campaign: Option<String>,
    /// With `campaign`: `ready` (still to dial) or `done`.
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many (paging).
    pub offset: Option<u64>,
}

/// Searches the tenant's leads, in import order.
#[utoipa::path(get, path = "/api/v1/leads", params(LeadSearch), security(("token" = [])), responses(
    (status = 200, description = "leads"),
    (status = 400, description = "bad query (a number that is not one, an unknown state)"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn search(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<Query<LeadSearch>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read leads").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let phone = match &q.phone {
        None => None,
        Some(raw) => {
            let region = q.region.as_deref().unwrap_or("US");
            let Ok(region) = region.parse() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("region {region:?} is not an ISO 3166 region code"),
                );
            };
            match phone::normalize(raw, region) {
                Ok(p) => Some(p.e164),
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("phone {raw:?}: {e}")),
            }
        }
    };
    if let Some(state) = &q.state {
        if q.campaign.is_none() {
            return error(StatusCode::BAD_REQUEST, "state needs a campaign");
        }
        if state != "ready" && state != "done" {
            return error(StatusCode::BAD_REQUEST, "state: ready or done");
        }
    }
    let lq = LeadQuery {
        phone: phone.clone(),
        campaign: q.campaign.clone(),
        state: q.state.clone(),
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        offset: q.offset.unwrap_or(0),
    };
    let leads = match c.0.store.search_leads(&t.tenant, &lq).await {
        Ok(l) => l,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let detail = json!({
        "phone": phone,
        "campaign": q.campaign,
        "state": q.state,
        "count": leads.len(),
    });
    if let Err(r) = audit(&c, &t, "read_leads", "leads", detail).await {
        return r;
    }
    Json(json!({ "leads": leads })).into_response()
}

/// A lead and its history.
#[utoipa::path(get, path = "/api/v1/leads/{id}", params(("id" = String, Path, description = "lead id")),
    security(("token" = [])), responses(
    (status = 200, description = "the lead, its campaigns, attempts, dial decisions, calls and DNC state"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such lead in the tenant")))]
pub async fn get_one(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read leads").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let lead = match store.lead(&t.tenant, &id).await {
        Ok(Some(l)) => l,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no lead {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let history = async {
        let campaigns = store.lead_campaigns(&t.tenant, &id).await?;
        let attempts = store.lead_all_attempts(&t.tenant, &id).await?;
        let decisions = store
            .decisions_for_phone(&t.tenant, &lead.phone, None)
            .await?;
        let dnc = store
            .dnc_check(&t.tenant, &lead.phone, chrono::Utc::now())
            .await?;
        let calls = store
            .list_calls(&CallFilter {
                phone: Some(lead.phone.clone()),
                tenant: Some(t.tenant.clone()),
                limit: Some(100),
                ..CallFilter::default()
            })
            .await?;
        Ok::<_, bot_runtime::store::StoreError>((campaigns, attempts, decisions, dnc, calls))
    };
    let (campaigns, attempts, decisions, dnc, calls) = match history.await {
        Ok(h) => h,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(r) = audit(&c, &t, "read_lead", &id, json!({})).await {
        return r;
    }
    Json(json!({
        "lead": lead,
        "campaigns": campaigns,
        "attempts": attempts,
        "decisions": decisions,
        "dnc": dnc,
        "calls": calls,
    }))
    .into_response()
}
