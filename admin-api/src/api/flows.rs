//! Dialog flows: upload (validated, with every problem's line and column), versions, the
//! source of a version, and activation (the tenant's live campaigns on the flow move to it).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ADMINS, READERS, allowed, audit, store_error};
use crate::{Console, error};

/// The tenant's flows, each with its versions and the active one.
#[utoipa::path(get, path = "/api/v1/flows", security(("token" = [])), responses(
    (status = 200, description = "flows"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent")))]
pub async fn list(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, READERS, "list flows").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.list_flows(&t.tenant).await {
        Ok(flows) => Json(json!({ "flows": flows })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Make the uploaded version the active one at once (default false).
    pub activate: Option<bool>,
}

/// Uploads a flow (its YAML as the body). The flow's own `flow:` and `version:` name it; a
/// version is immutable: the same text again changes nothing, other text under a stored
/// version is refused. Problems come back as `diagnostics`, each with line and column.
#[utoipa::path(post, path = "/api/v1/flows", params(UploadQuery),
    request_body(content = String, content_type = "application/yaml"), security(("token" = [])), responses(
    (status = 200, description = "this version was already stored with the same text"),
    (status = 201, description = "stored"),
    (status = 400, description = "bad query, or the body is not UTF-8"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 409, description = "this version is stored with other text"),
    (status = 422, description = "the flow is invalid (diagnostics with line and column)")))]
pub async fn upload(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, ADMINS, "upload flows").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Ok(source) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the flow is not UTF-8 text");
    };
    let flow = match dialog_flows::load_str(source, std::path::Path::new("flow.yaml")) {
        Ok(f) => f,
        Err(e) => {
            let body = json!({
                "error": format!("the flow has {} problem(s):\n{e}", e.diagnostics.len()),
                "diagnostics": e.diagnostics.iter().map(|d| json!({
                    "line": d.pos.line,
                    "column": d.pos.col,
                    "code": d.code,
                    "message": d.message,
                })).collect::<Vec<_>>(),
            });
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
    };
    let existed = match c
        .0
        .store
        .flow_source(&t.tenant, &flow.name, flow.version)
        .await
    {
        Ok(s) => s.is_some(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(e) =
        c.0.store
            .save_flow(&t.tenant, &flow.name, flow.version, source)
            .await
    {
        return store_error(e, StatusCode::CONFLICT);
    }
    if !existed {
        let detail = json!({ "version": flow.version });
        if let Err(r) = audit(&c, &t, "flow.upload", &flow.name, detail).await {
            return r;
        }
    }
    let mut activation = None;
    if q.activate == Some(true) {
        let actor = format!("api:{}", t.name);
        match c
            .0
            .store
            .activate_flow(&t.tenant, &flow.name, flow.version, &actor)
            .await
        {
            Ok(a) => activation = a,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    let info = match c.0.store.flow_info(&t.tenant, &flow.name).await {
        Ok(Some(info)) => info,
        Ok(None) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the flow vanished"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({
        "flow": info,
        "version": flow.version,
        "stored": if existed { "unchanged" } else { "new" },
        "activation": activation,
    });
    (status, Json(body)).into_response()
}

/// A flow's versions and the active one.
#[utoipa::path(get, path = "/api/v1/flows/{name}", params(("name" = String, Path, description = "flow name")),
    security(("token" = [])), responses(
    (status = 200, description = "the flow"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such flow in the tenant")))]
pub async fn get_one(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read flows").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.flow_info(&t.tenant, &name).await {
        Ok(Some(info)) => Json(json!({ "flow": info })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no flow {name:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One stored version's YAML source.
#[utoipa::path(get, path = "/api/v1/flows/{name}/versions/{version}",
    params(("name" = String, Path, description = "flow name"), ("version" = u32, Path, description = "version")),
    security(("token" = [])), responses(
    (status = 200, description = "the source"),
    (status = 400, description = "the version is not a number"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "role agent"),
    (status = 404, description = "no such flow version in the tenant")))]
pub async fn source(
    State(c): State<Console>,
    headers: HeaderMap,
    path: Result<Path<(String, u32)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let t = match allowed(&c, &headers, READERS, "read flows").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Path((name, version)) = match path {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match c.0.store.flow_source(&t.tenant, &name, version).await {
        Ok(Some(source)) => {
            Json(json!({ "flow": name, "version": version, "source": source })).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no flow {name:?} version {version}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Makes a stored version the active one: the tenant's campaigns on the flow that are not over
/// (draft, running, paused) run it from their next call; calls already up finish on theirs.
#[utoipa::path(post, path = "/api/v1/flows/{name}/versions/{version}/activate",
    params(("name" = String, Path, description = "flow name"), ("version" = u32, Path, description = "version")),
    security(("token" = [])), responses(
    (status = 200, description = "activated; the campaigns moved to it"),
    (status = 400, description = "the version is not a number"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 404, description = "no such flow version in the tenant")))]
pub async fn activate(
    State(c): State<Console>,
    headers: HeaderMap,
    path: Result<Path<(String, u32)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let t = match allowed(&c, &headers, ADMINS, "activate flows").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Path((name, version)) = match path {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let actor = format!("api:{}", t.name);
    match c
        .0
        .store
        .activate_flow(&t.tenant, &name, version, &actor)
        .await
    {
        Ok(Some(a)) => Json(json!({ "activation": a })).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no flow {name:?} version {version}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
