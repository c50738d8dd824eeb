//! The admin REST API, `/api/v1`: bearer tokens with a role per tenant (`callbot tokens
//! create`), an OpenAPI document at `/api/v1/openapi.json` generated from the handlers
//! (`utoipa`), and JSON errors `{"error": reason}`.
//!
//! Roles: `admin` everything in its tenant (tokens, flows, campaign creation, change and
//! deletion, DNC removal, supervisor accounts); `supervisor` operations (campaign control, lead
//! uploads, DNC additions, agent accounts and queues); `auditor` read-only, the audit log
//! included; `agent` nothing here; `platform` (tenant `*`) tenants, the global DNC list and the
//! retention policy, and no tenant's data. Another tenant's objects answer 404, as if they did not exist. Every read of
//! personal data (calls, recordings, leads, DNC numbers) is written to the audit log with the
//! token's name.

pub mod access;
pub mod calls;
pub mod campaigns;
pub mod dnc;
pub mod flows;
pub mod leads;
pub mod platform;
pub mod reports;
pub mod system;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use bot_runtime::api_access::ApiToken;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{Console, error};

/// The OpenAPI document of `/api/v1`.
#[derive(OpenApi)]
#[openapi(
    info(title = "callbot admin API", description = "Operations, audit and reports of callbot."),
    paths(
        system::health,
        system::ready,
        system::whoami,
        system::audit_log,
        campaigns::list,
        campaigns::create,
        campaigns::get_one,
        campaigns::update,
        campaigns::delete,
        campaigns::upload_leads,
        campaigns::set_status,
        dnc::list,
        dnc::add,
        dnc::bulk,
        dnc::remove,
        flows::list,
        flows::upload,
        flows::get_one,
        flows::source,
        flows::activate,
        leads::search,
        leads::get_one,
        calls::list,
        calls::get_one,
        calls::recording,
        reports::report,
        system::agents,
        access::put_agent,
        system::queues,
        access::put_queue,
        access::list_tokens,
        access::create_token,
        access::revoke_token,
        platform::list,
        platform::create,
        platform::get_one,
        platform::retention,
        platform::set_retention,
    ),
    modifiers(&Bearer),
    tags((name = "callbot"))
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes (merged into the console server's router).
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/api/v1/openapi.json", get(system::openapi))
        .route("/api/v1/health", get(system::health))
        .route("/api/v1/ready", get(system::ready))
        .route("/api/v1/whoami", get(system::whoami))
        .route("/api/v1/audit", get(system::audit_log))
        .route("/api/v1/agents", get(system::agents))
        .route("/api/v1/agents/{id}", put(access::put_agent))
        .route("/api/v1/queues", get(system::queues))
        .route("/api/v1/queues/{name}", put(access::put_queue))
        .route(
            "/api/v1/tokens",
            get(access::list_tokens).post(access::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(access::revoke_token))
        .route("/api/v1/flows", get(flows::list).post(flows::upload))
        .route("/api/v1/flows/{name}", get(flows::get_one))
        .route(
            "/api/v1/flows/{name}/versions/{version}",
            get(flows::source),
        )
        .route(
            "/api/v1/flows/{name}/versions/{version}/activate",
            post(flows::activate),
        )
        .route("/api/v1/leads", get(leads::search))
        .route("/api/v1/leads/{id}", get(leads::get_one))
        .route(
            "/api/v1/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route(
            "/api/v1/campaigns/{id}/leads",
            post(campaigns::upload_leads),
        )
        .route(
            "/api/v1/campaigns/{id}",
            get(campaigns::get_one)
                .patch(campaigns::update)
                .delete(campaigns::delete),
        )
        .route("/api/v1/campaigns/{id}/status", post(campaigns::set_status))
        .route("/api/v1/dnc", get(dnc::list).post(dnc::add))
        .route("/api/v1/dnc/bulk", post(dnc::bulk))
        .route("/api/v1/dnc/{phone}", delete(dnc::remove))
        .route("/api/v1/calls", get(calls::list))
        .route("/api/v1/calls/{id}", get(calls::get_one))
        .route("/api/v1/calls/{id}/recording", get(calls::recording))
        .route("/api/v1/reports", get(reports::report))
        .route(
            "/api/v1/tenants",
            get(platform::list).post(platform::create),
        )
        .route("/api/v1/tenants/{id}", get(platform::get_one))
        .route(
            "/api/v1/retention",
            get(platform::retention).put(platform::set_retention),
        )
        .route("/metrics", get(system::metrics))
}

/// The caller, from `Authorization: Bearer TOKEN`, or else a supervisor's console session
/// (the dashboard page), which acts read-only, with the `auditor` role: no change is ever made
/// on the strength of a cookie.
pub(crate) async fn caller(c: &Console, headers: &HeaderMap) -> Result<ApiToken, Response> {
    if headers.get(header::AUTHORIZATION).is_none()
        && let Some((_, s)) = c.0.sessions.from_headers(headers)
        && s.role == "supervisor"
    {
        return Ok(ApiToken {
            tenant: s.tenant,
            id: format!("session:{}", s.agent),
            name: format!("console:{}", s.agent),
            role: "auditor".into(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
        });
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "an API token is required (Authorization: Bearer TOKEN)",
        ));
    };
    match c.0.store.api_token(token).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(error(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked API token",
        )),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// The caller, if their role is one of `roles`; else 401/403.
pub(crate) async fn allowed(
    c: &Console,
    headers: &HeaderMap,
    roles: &[&str],
    what: &str,
) -> Result<ApiToken, Response> {
    let t = caller(c, headers).await?;
    if roles.contains(&t.role.as_str()) {
        Ok(t)
    } else {
        Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not {what} (needs: {})",
                t.role,
                roles.join(" or ")
            ),
        ))
    }
}

/// Writes an audit event for a read of personal data (or a change); a failure to write it
/// refuses the request (nothing is read without a trace).
pub(crate) async fn audit(
    c: &Console,
    t: &ApiToken,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), Response> {
    c.0.store
        .audit(
            &t.tenant,
            &format!("api:{}", t.name),
            action,
            subject,
            detail,
        )
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("audit log: {e}")))
}

/// A store error as a response: refusals are the caller's (409 or 422), the rest ours.
pub(crate) fn store_error(e: bot_runtime::store::StoreError, refused: StatusCode) -> Response {
    match e {
        bot_runtime::store::StoreError::Refused { reason, .. } => error(refused, reason),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

pub(crate) const READERS: &[&str] = &["admin", "supervisor", "auditor"];
pub(crate) const OPERATORS: &[&str] = &["admin", "supervisor"];
pub(crate) const ADMINS: &[&str] = &["admin"];
