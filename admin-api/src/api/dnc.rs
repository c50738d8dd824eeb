//! The tenant's do-not-call list: read (audited), add one, add a CSV in bulk, remove. A
//! `platform` token (tenant `*`) works the same endpoints on the global list, which blocks a
//! number for every tenant.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::dialer::db::DncEntry;
use bot_runtime::dialer::dnc_file::{DncSource, read_dnc_csv};
use bot_runtime::dialer::phone;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{allowed, audit, store_error};
use crate::{Console, error};

/// Who reads a DNC list: the tenant's readers, and the platform the global one.
const DNC_READERS: &[&str] = &["admin", "supervisor", "auditor", "platform"];
/// Who adds to one.
const DNC_WRITERS: &[&str] = &["admin", "supervisor", "platform"];
/// Who removes from one.
const DNC_REMOVERS: &[&str] = &["admin", "platform"];

/// The tenant's DNC entries (personal data: the read is audited).
#[utoipa::path(get, path = "/api/v1/dnc", security(("token" = [])), responses(
    (status = 200, description = "entries"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn list(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, DNC_READERS, "read the DNC list").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(r) = audit(&c, &t, "read_dnc", &t.tenant, json!({})).await {
        return r;
    }
    match c.0.store.list_dnc(&t.tenant).await {
        Ok(entries) => Json(json!({ "entries": entries })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `POST /api/v1/dnc`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDnc {
    /// The number, E.164 or national (with `region`).
    pub phone: String,
    pub reason: String,
    /// ISO 3166 region for a national number (default US).
    pub region: Option<String>,
    /// When the entry lifts by itself (RFC 3339); absent: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Adds a number to the tenant's DNC list (effective for the next dial decision).
#[utoipa::path(post, path = "/api/v1/dnc", request_body = NewDnc, security(("token" = [])), responses(
    (status = 201, description = "added"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor"),
    (status = 422, description = "not a phone number, or an expiry in the past")))]
pub async fn add(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, DNC_WRITERS, "add DNC entries").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let new: NewDnc = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("DNC entry: {e}")),
    };
    let region = new.region.as_deref().unwrap_or("US");
    let Ok(region) = region.parse() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("region {region:?} is not an ISO 3166 region code"),
        );
    };
    let number = match phone::normalize(&new.phone, region) {
        Ok(p) => p.e164,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{:?}: {e}", new.phone),
            );
        }
    };
    if new.reason.trim().is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a DNC entry needs a reason",
        );
    }
    if new.expires_at.is_some_and(|e| e <= Utc::now()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the expiry is in the past",
        );
    }
    let entry = DncEntry {
        tenant: t.tenant.clone(),
        phone: number.clone(),
        reason: new.reason.clone(),
        source: "api".into(),
        added_by: format!("api:{}", t.name),
        added_at: Utc::now(),
        expires_at: new.expires_at,
    };
    if let Err(e) = c.0.store.add_dnc(std::slice::from_ref(&entry)).await {
        return store_error(e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if let Err(r) = audit(&c, &t, "dnc_add", &number, json!({ "reason": new.reason })).await {
        return r;
    }
    (StatusCode::CREATED, Json(json!({ "entry": entry }))).into_response()
}

/// Removes a number from the tenant's DNC list.
#[utoipa::path(delete, path = "/api/v1/dnc/{phone}", params(("phone" = String, Path, description = "E.164 number")),
    security(("token" = [])), responses(
    (status = 200, description = "removed"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 404, description = "not on the tenant's list")))]
pub async fn remove(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, DNC_REMOVERS, "remove DNC entries").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.remove_dnc(&t.tenant, &number).await {
        Ok(true) => {
            if let Err(r) = audit(&c, &t, "dnc_remove", &number, json!({})).await {
                return r;
            }
            Json(json!({ "removed": number })).into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("{number} is not on the list"),
        ),
        Err(e) => store_error(e, StatusCode::UNPROCESSABLE_ENTITY),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BulkQuery {
    /// ISO 3166 region of national numbers (default US).
    pub region: Option<String>,
}

/// Adds a CSV of numbers to the tenant's DNC list (columns `phone`, optional `reason` and
/// `expires_at`, RFC 3339). Bad rows are reported by line while the good ones are added.
#[utoipa::path(post, path = "/api/v1/dnc/bulk", params(BulkQuery),
    request_body(content = String, content_type = "text/csv"), security(("token" = [])), responses(
    (status = 200, description = "the report: rows read, numbers added, refused rows by line"),
    (status = 400, description = "bad query"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor"),
    (status = 422, description = "the file cannot be read at all (no phone column, empty…)")))]
pub async fn bulk(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<BulkQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, DNC_WRITERS, "add DNC entries").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let axum::extract::Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let region = q.region.as_deref().unwrap_or("US");
    let Ok(region) = region.parse() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("region {region:?} is not an ISO 3166 region code"),
        );
    };
    let src = DncSource {
        list: t.tenant.clone(),
        source: "api:bulk".into(),
        added_by: format!("api:{}", t.name),
        region,
        now: Utc::now(),
    };
    let file = match read_dnc_csv(&body[..], &src) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    if let Err(e) = c.0.store.add_dnc(&file.entries).await {
        return store_error(e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let detail =
        json!({ "rows": file.rows, "added": file.entries.len(), "errors": file.errors.len() });
    if let Err(r) = audit(&c, &t, "dnc.import", "api:bulk", detail).await {
        return r;
    }
    Json(json!({
        "rows": file.rows,
        "added": file.entries.len(),
        "errors": file.errors,
    }))
    .into_response()
}
