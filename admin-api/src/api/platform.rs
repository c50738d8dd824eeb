//! The deployment's own business, for the `platform` role (tokens of the tenant `*`, made with
//! `callbot tokens create --tenant '*' --role platform`): tenants, each created with its first
//! admin token, and the retention policy. A tenant's readers see their own tenant and the policy;
//! the platform sees every tenant's record but none of their data (its other endpoints are the
//! global DNC list's, through `/api/v1/dnc`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::retention::RetentionPolicy;
use serde::Deserialize;
use serde_json::json;

use super::{allowed, audit, store_error};
use crate::{Console, error};

/// The platform role alone.
const PLATFORM: &[&str] = &["platform"];
/// A tenant's readers and the platform.
const READERS_AND_PLATFORM: &[&str] = &["admin", "supervisor", "auditor", "platform"];

/// Tenants: every one for the platform, the caller's own for a tenant's readers.
#[utoipa::path(get, path = "/api/v1/tenants", security(("token" = [])), responses(
    (status = 200, description = "tenants"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn list(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, READERS_AND_PLATFORM, "list tenants").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let list = if t.role == "platform" {
        c.0.store.tenants().await
    } else {
        c.0.store
            .tenant(&t.tenant)
            .await
            .map(|t| t.into_iter().collect())
    };
    match list {
        Ok(list) => Json(json!({ "tenants": list })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One tenant (a tenant's readers: their own only).
#[utoipa::path(get, path = "/api/v1/tenants/{id}", params(("id" = String, Path, description = "tenant id")),
    security(("token" = [])), responses(
    (status = 200, description = "the tenant"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such tenant, or not the caller's")))]
pub async fn get_one(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, READERS_AND_PLATFORM, "read tenants").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let found = if t.role == "platform" || t.tenant == id {
        c.0.store.tenant(&id).await
    } else {
        Ok(None)
    };
    match found {
        Ok(Some(tenant)) => Json(json!({ "tenant": tenant })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no tenant {id:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `POST /api/v1/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 64 lowercase letters, digits and `-`.
    pub id: String,
    /// The name shown to people.
    pub name: String,
    /// The name of the tenant's first admin token (default `admin`).
    pub admin_token_name: Option<String>,
}

/// Creates a tenant with its first admin token, which is in the answer once and never again.
#[utoipa::path(post, path = "/api/v1/tenants", request_body = NewTenant, security(("token" = [])), responses(
    (status = 201, description = "created: the tenant, its admin token's record and the token"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not platform"),
    (status = 409, description = "the id is taken"),
    (status = 422, description = "a bad id or an empty name")))]
pub async fn create(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, PLATFORM, "create tenants").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let new: NewTenant = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("tenant: {e}")),
    };
    match c.0.store.tenant(&new.id).await {
        Ok(Some(_)) => {
            return error(StatusCode::CONFLICT, format!("tenant {:?} exists", new.id));
        }
        Ok(None) => {}
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let actor = format!("api:{}", t.name);
    let tenant = match c.0.store.create_tenant(&new.id, &new.name, &actor).await {
        Ok(tenant) => tenant,
        Err(e) => return store_error(e, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let token_name = new.admin_token_name.as_deref().unwrap_or("admin");
    let (record, secret) = match c
        .0
        .store
        .create_api_token(&tenant.id, token_name, "admin")
        .await
    {
        Ok(made) => made,
        Err(e) => return store_error(e, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let detail = json!({ "name": tenant.name, "admin_token": record.id });
    if let Err(r) = audit(&c, &t, "tenant.create", &tenant.id, detail).await {
        return r;
    }
    (
        StatusCode::CREATED,
        Json(json!({ "tenant": tenant, "token": record, "secret": secret })),
    )
        .into_response()
}

/// The retention policy (one for the deployment): days recordings and transcripts are kept.
#[utoipa::path(get, path = "/api/v1/retention", security(("token" = [])), responses(
    (status = 200, description = "the policy (null: kept until deleted by hand)"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn retention(State(c): State<Console>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(
        &c,
        &headers,
        READERS_AND_PLATFORM,
        "read the retention policy",
    )
    .await
    {
        return r;
    }
    match c.0.store.retention_policy().await {
        Ok(p) => Json(json!({ "retention": p })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `PUT /api/v1/retention`: both periods, in days (null: kept until deleted).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionForm {
    pub recordings_days: Option<u32>,
    pub transcripts_days: Option<u32>,
}

/// Sets the retention policy; the dialer nodes apply it within the hour
/// (`callbot retention apply` at once).
#[utoipa::path(put, path = "/api/v1/retention", request_body = RetentionForm, security(("token" = [])), responses(
    (status = 200, description = "the policy set"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not platform"),
    (status = 422, description = "a period outside 1 to 36500 days")))]
pub async fn set_retention(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, PLATFORM, "set the retention policy").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let form: RetentionForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("retention: {e}")),
    };
    let policy = RetentionPolicy {
        recordings_days: form.recordings_days,
        transcripts_days: form.transcripts_days,
    };
    match c
        .0
        .store
        .set_retention_policy(&policy, &format!("api:{}", t.name))
        .await
    {
        Ok(()) => Json(json!({ "retention": policy })).into_response(),
        Err(e) => store_error(e, StatusCode::UNPROCESSABLE_ENTITY),
    }
}
