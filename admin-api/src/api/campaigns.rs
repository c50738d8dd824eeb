//! Campaigns: create on a flow, change, delete (one that never dialed), upload leads, list, one
//! with its live figures, and their life (start, pause, resume, stop).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::dialer::campaign::CampaignSettings;
use bot_runtime::dialer::db::{CampaignChange, CampaignKind, CampaignStatus, NewCampaign};
use bot_runtime::dialer::import::{Assign, Filter, import_leads};
use bot_runtime::dialer::leads::{Encoding, ImportOptions};
use serde::{Deserialize, Deserializer};
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

/// The body of `POST /api/v1/campaigns`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaignForm {
    /// The campaign's name (unique in the tenant).
    pub id: String,
    /// `robot` (the default), `human` or `blended`.
    pub kind: Option<String>,
    /// The dialog flow's YAML text (validated; stored, versioned, with the campaign). Either
    /// this or `flow_name`.
    pub flow: Option<String>,
    /// A flow stored before (`POST /api/v1/flows`): its active version, or `flow_version`.
    pub flow_name: Option<String>,
    pub flow_version: Option<u32>,
    /// Dial rules, order, pacing, trunk, AMD, region (`CampaignSettings`); absent: defaults.
    #[schema(value_type = Object)]
    pub settings: Option<serde_json::Value>,
    pub caller_id: Option<String>,
    /// Most calls at once (default 10).
    pub max_concurrent: Option<u32>,
}

/// Creates a campaign (a draft) on a flow.
#[utoipa::path(post, path = "/api/v1/campaigns", request_body = NewCampaignForm, security(("token" = [])), responses(
    (status = 201, description = "created (draft)"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 409, description = "the name is taken"),
    (status = 422, description = "the flow or the settings are invalid (errors with line:column)")))]
pub async fn create(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, super::ADMINS, "create campaigns").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let form: NewCampaignForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("campaign: {e}")),
    };
    let kind = match CampaignKind::from_name(form.kind.as_deref().unwrap_or("robot")) {
        Some(k) => k,
        None => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "kind: robot, human or blended",
            );
        }
    };
    let source = match (&form.flow, &form.flow_name) {
        (Some(text), None) if form.flow_version.is_none() => text.clone(),
        (None, Some(name)) => {
            let version = match version_or_active(&c, &t.tenant, name, form.flow_version).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let stored = match version {
                Some(v) => c.0.store.flow_source(&t.tenant, name, v).await,
                None => Ok(None),
            };
            match stored {
                Ok(Some(src)) => src,
                Ok(None) => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!(
                            "no stored flow {name:?} in that version (POST /api/v1/flows first)"
                        ),
                    );
                }
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give the flow's text as `flow`, or a stored flow as `flow_name` (and `flow_version`)",
            );
        }
    };
    let flow = match dialog_flows::load_str(&source, std::path::Path::new("flow")) {
        Ok(f) => f,
        Err(e) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, format!("the flow: {e}"));
        }
    };
    let settings = match &form.settings {
        Some(v) => match CampaignSettings::from_value(v) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("settings: {e}")),
        },
        None => CampaignSettings::default(),
    };
    let settings = match serde_json::to_value(&settings) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match c.0.store.campaign(&t.tenant, &form.id).await {
        Ok(Some(_)) => {
            return error(
                StatusCode::CONFLICT,
                format!("campaign {:?} exists", form.id),
            );
        }
        Ok(None) => {}
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    if let Err(e) =
        c.0.store
            .save_flow(&t.tenant, &flow.name, flow.version, &source)
            .await
    {
        return store_error(e, StatusCode::CONFLICT);
    }
    let new = NewCampaign {
        id: form.id.clone(),
        kind,
        flow: flow.name.clone(),
        flow_version: flow.version,
        caller_id: form.caller_id.clone(),
        max_concurrent: form.max_concurrent.unwrap_or(10),
        settings,
    };
    if let Err(e) = c.0.store.create_campaign(&t.tenant, &new).await {
        return store_error(e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let detail = json!({ "flow": flow.name, "version": flow.version });
    if let Err(r) = audit(&c, &t, "campaign.create", &form.id, detail).await {
        return r;
    }
    match c.0.store.campaign(&t.tenant, &form.id).await {
        Ok(Some(campaign)) => {
            (StatusCode::CREATED, Json(json!({ "campaign": campaign }))).into_response()
        }
        Ok(None) => error(StatusCode::INTERNAL_SERVER_ERROR, "the campaign vanished"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LeadsQuery {
    /// ISO 3166 region of national numbers (default: the campaign's).
    pub region: Option<String>,
    /// One segmentation condition, `FIELD OP VALUE` (as `callbot leads import --where`).
    #[serde(rename = "where")]
    pub condition: Option<String>,
}

/// Uploads a lead file (CSV body) and assigns the leads to the campaign; bad rows are reported
/// by row number while the good ones import.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/leads",
    params(("id" = String, Path, description = "campaign id"), LeadsQuery),
    request_body(content = String, content_type = "text/csv"), security(("token" = [])), responses(
    (status = 200, description = "the import report"),
    (status = 400, description = "bad query"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor"),
    (status = 404, description = "no such campaign in the tenant"),
    (status = 422, description = "the file cannot be read at all (no phone column, empty…)")))]
pub async fn upload_leads(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<LeadsQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, OPERATORS, "upload leads").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let axum::extract::Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let campaign = match c.0.store.campaign(&t.tenant, &id).await {
        Ok(Some(campaign)) => campaign,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no campaign {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let settings = match CampaignSettings::from_value(&campaign.settings) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let region = q.region.unwrap_or_else(|| settings.default_region.clone());
    let Ok(default_region) = region.parse() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("region {region:?} is not an ISO 3166 region code"),
        );
    };
    let conditions: Vec<String> = q.condition.into_iter().collect();
    let filter = match Filter::parse(&conditions) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let opts = ImportOptions {
        default_region,
        default_timezone: None,
        encoding: Encoding::Auto,
        delimiter: None,
    };
    let assign = Assign {
        campaign: id.clone(),
        filter,
        order: settings.order,
        due: chrono::Utc::now(),
    };
    let bytes = body.to_vec();
    let summary = import_leads(
        &c.0.store,
        &t.tenant,
        "api upload",
        std::io::Cursor::new(bytes),
        opts,
        Some(assign),
    )
    .await;
    match summary {
        Ok(s) => {
            let detail =
                json!({ "rows": s.file.rows, "inserted": s.inserted, "assigned": s.assigned });
            if let Err(r) = audit(&c, &t, "leads.import", &id, detail).await {
                return r;
            }
            Json(json!({ "report": s })).into_response()
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

/// `version` if given, else the flow's active version (`None`: the tenant has no such flow, or
/// none of its versions is active).
async fn version_or_active(
    c: &Console,
    tenant: &str,
    flow: &str,
    version: Option<u32>,
) -> Result<Option<u32>, Response> {
    if version.is_some() {
        return Ok(version);
    }
    match c.0.store.flow_info(tenant, flow).await {
        Ok(info) => Ok(info.and_then(|i| i.active)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// The body of `PATCH /api/v1/campaigns/{id}`: only the fields present change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// Run another stored flow (its active version, or `flow_version`) from the next call on.
    pub flow_name: Option<String>,
    /// A stored version of `flow_name`, or of the campaign's flow when `flow_name` is absent.
    pub flow_version: Option<u32>,
    /// The number shown to customers; `null` clears it (the trunk's default).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub caller_id: Option<Option<String>>,
    /// Most calls at once (at least 1).
    pub max_concurrent: Option<u32>,
    /// A JSON merge patch (RFC 7396) on the campaign's settings: the keys given replace those
    /// stored, objects merge, `null` removes a key (back to its default). The result is
    /// validated as a whole.
    #[schema(value_type = Object)]
    pub settings: Option<serde_json::Value>,
}

/// A field that is present, `null` included (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(
                    map.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

/// Changes a campaign's flow, caller id, concurrency or settings (draft, running or paused;
/// a running campaign takes the change on the dialer's next pass). Audited with what changed.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", params(("id" = String, Path, description = "campaign id")),
    request_body = CampaignPatch, security(("token" = [])), responses(
    (status = 200, description = "the campaign as changed"),
    (status = 400, description = "malformed body (an unknown field such as `kind` or `status`)"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 404, description = "no such campaign in the tenant"),
    (status = 409, description = "stopped or finished, or changed meanwhile"),
    (status = 422, description = "invalid settings, or no such stored flow version")))]
pub async fn update(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, super::ADMINS, "change campaigns").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let patch: CampaignPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("campaign change: {e}")),
    };
    let campaign = match c.0.store.campaign(&t.tenant, &id).await {
        Ok(Some(campaign)) => campaign,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no campaign {id:?}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Some(Some(caller_id)) = &patch.caller_id
        && let Err(e) = bot_runtime::dialer::db::check_caller_id(caller_id)
    {
        return error(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    if patch.max_concurrent == Some(0) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_concurrent: at least 1 (pause the campaign to stop dialing)",
        );
    }
    let flow = match (&patch.flow_name, patch.flow_version) {
        (None, None) => None,
        (name, version) => {
            let name = name.clone().unwrap_or_else(|| campaign.flow.clone());
            let version = match version_or_active(&c, &t.tenant, &name, version).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let Some(version) = version else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("flow {name:?} has no active version; give flow_version"),
                );
            };
            Some((name, version))
        }
    };
    let settings = match &patch.settings {
        None => None,
        Some(p) => {
            let mut merged = campaign.settings.clone();
            merge_patch(&mut merged, p);
            let checked = match CampaignSettings::from_value(&merged) {
                Ok(s) => s,
                Err(e) => {
                    return error(StatusCode::UNPROCESSABLE_ENTITY, format!("settings: {e}"));
                }
            };
            match serde_json::to_value(&checked) {
                Ok(v) => Some(v),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
    };
    let change = CampaignChange {
        flow,
        caller_id: patch.caller_id.clone(),
        max_concurrent: patch.max_concurrent,
        settings,
    };
    let actor = format!("api:{}", t.name);
    match c
        .0
        .store
        .update_campaign(&t.tenant, &id, &change, &actor)
        .await
    {
        Ok(Some(campaign)) => Json(json!({ "campaign": campaign })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no campaign {id:?}")),
        Err(bot_runtime::store::StoreError::Refused { reason, .. })
            if reason.contains("is not stored") =>
        {
            error(StatusCode::UNPROCESSABLE_ENTITY, reason)
        }
        Err(e) => store_error(e, StatusCode::CONFLICT),
    }
}

/// Deletes a campaign that never dialed (no attempts, no dial decisions) and is not running;
/// its leads stay. A campaign that dialed is a record: stop it instead.
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", params(("id" = String, Path, description = "campaign id")),
    security(("token" = [])), responses(
    (status = 200, description = "deleted: the leads taken off it"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 404, description = "no such campaign in the tenant"),
    (status = 409, description = "running, or it has dialed")))]
pub async fn delete(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, super::ADMINS, "delete campaigns").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let actor = format!("api:{}", t.name);
    match c.0.store.delete_campaign(&t.tenant, &id, &actor).await {
        Ok(Some(deleted)) => Json(json!({ "deleted": deleted })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no campaign {id:?}")),
        Err(e) => store_error(e, StatusCode::CONFLICT),
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A (a selection).
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut got = target.clone();
            merge_patch(&mut got, &patch);
            assert_eq!(got, want, "{target} + {patch}");
        }
    }
}
