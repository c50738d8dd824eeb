//! Who may do what: the tenant's API tokens (its API users, each with a role), agent and
//! supervisor accounts for the console (Argon2id passwords, skills, SIP phone), and queues.
//!
//! Only an admin manages tokens. Supervisors manage agents with the `agent` role and queues;
//! making or changing a supervisor account is an admin's (no one raises their own kind).
//! A queue's change reaches this node's desk at once (calls waiting in it get the new limits,
//! logged-in agents are requalified) when the queue is the desk's tenant's; other nodes' desks
//! take it when they start. Disabling an account, or changing its password or role, ends its
//! console sessions and takes the agent off this node's desk; a change of skills applies at the
//! agent's next login.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_runtime::agents::queue::{Overflow, QueueConfig};
use bot_runtime::agents::store::AgentAccount;
use serde::Deserialize;
use serde_json::json;

use super::{ADMINS, OPERATORS, allowed, audit, store_error};
use crate::{Console, error};

/// The tenant's API tokens (never the tokens themselves: only their SHA-256 is stored).
#[utoipa::path(get, path = "/api/v1/tokens", security(("token" = [])), responses(
    (status = 200, description = "tokens"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin")))]
pub async fn list_tokens(State(c): State<Console>, headers: HeaderMap) -> Response {
    let t = match allowed(&c, &headers, ADMINS, "list API tokens").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.api_tokens(&t.tenant).await {
        Ok(list) => Json(json!({ "tokens": list })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who or what uses it (shown in the audit log as `api:NAME`).
    pub name: String,
    /// `admin`, `supervisor`, `auditor` or `agent`.
    pub role: String,
}

/// Creates an API token in the caller's tenant. The token is in the answer once and never again.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, security(("token" = [])), responses(
    (status = 201, description = "created: the record and the token"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 422, description = "unknown role or empty name")))]
pub async fn create_token(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, ADMINS, "create API tokens").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let new: NewToken = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("token: {e}")),
    };
    match c
        .0
        .store
        .create_api_token(&t.tenant, &new.name, &new.role)
        .await
    {
        Ok((record, secret)) => {
            let detail = json!({ "name": new.name, "role": new.role });
            if let Err(r) = audit(&c, &t, "token.create", &record.id, detail).await {
                return r;
            }
            (
                StatusCode::CREATED,
                Json(json!({ "token": record, "secret": secret })),
            )
                .into_response()
        }
        Err(e) => store_error(e, StatusCode::UNPROCESSABLE_ENTITY),
    }
}

/// Revokes a token (at once: its next request is refused).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", params(("id" = String, Path, description = "token id")),
    security(("token" = [])), responses(
    (status = 200, description = "revoked"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin"),
    (status = 404, description = "no such live token in the tenant")))]
pub async fn revoke_token(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = match allowed(&c, &headers, ADMINS, "revoke API tokens").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match c.0.store.revoke_api_token(&t.tenant, &id).await {
        Ok(true) => {
            if let Err(r) = audit(&c, &t, "token.revoke", &id, json!({})).await {
                return r;
            }
            Json(json!({ "revoked": id })).into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no live token {id:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `PUT /api/v1/agents/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentForm {
    pub name: String,
    /// `agent` or `supervisor` (absent: unchanged; `agent` for a new account).
    pub role: Option<String>,
    /// The console password (hashed with Argon2id; needed for a new account, kept if absent).
    pub password: Option<String>,
    /// skill → level (1 to 10).
    pub skills: Option<BTreeMap<String, u8>>,
    /// The SIP user the agent's phone registers as, and its digest password.
    pub sip_user: Option<String>,
    pub sip_password: Option<String>,
    /// A disabled account cannot log in.
    pub disabled: Option<bool>,
}

/// Creates or replaces an agent or supervisor account.
#[utoipa::path(put, path = "/api/v1/agents/{id}", params(("id" = String, Path, description = "agent id")),
    request_body = AgentForm, security(("token" = [])), responses(
    (status = 200, description = "replaced"),
    (status = 201, description = "created"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor; a supervisor account needs an admin"),
    (status = 422, description = "refused (no password for a new account, unknown role, skill level, SIP user taken…)")))]
pub async fn put_agent(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, OPERATORS, "manage agents").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let form: AgentForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("agent: {e}")),
    };
    let existing = match c.0.store.agent(&t.tenant, &id).await {
        Ok(a) => a,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // Absent, the role stays what it was (`agent` for a new account).
    let role = form.role.clone().unwrap_or_else(|| {
        existing
            .as_ref()
            .map_or_else(|| "agent".to_string(), |a| a.role.clone())
    });
    let touches_supervisor =
        role != "agent" || existing.as_ref().is_some_and(|a| a.role != "agent");
    if touches_supervisor && t.role != "admin" {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not make or change a supervisor account (needs: admin)",
                t.role
            ),
        );
    }
    let password_hash = match (&form.password, &existing) {
        (Some(p), _) => match crate::auth::hash_password(p) {
            Ok(h) => h,
            Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("password: {e}")),
        },
        (None, Some(a)) => a.password_hash.clone(),
        (None, None) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "a new account needs a password",
            );
        }
    };
    let account = AgentAccount {
        id: id.clone(),
        name: form.name.clone(),
        password_hash,
        skills: form.skills.clone().unwrap_or_default(),
        role: role.clone(),
        sip_user: form.sip_user.clone(),
        sip_password: form.sip_password.clone(),
        disabled: form.disabled.unwrap_or(false),
    };
    if let Err(e) = c.0.store.save_agent(&t.tenant, &account).await {
        return store_error(e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let detail = json!({
        "role": role,
        "skills": account.skills,
        "password_changed": form.password.is_some(),
        "disabled": account.disabled,
    });
    if let Err(r) = audit(&c, &t, "agent.save", &id, detail).await {
        return r;
    }
    // A disabled account, a new password or another role: the sessions opened before end now,
    // here (other nodes at their next sync); new skills reach a logged-in agent at once.
    let sessions_closed = match c.sync_account(&t.tenant, &id).await {
        Ok(r) => r.closed,
        Err(e) => {
            tracing::warn!(agent = %id, error = %e, "account saved; its sessions sync at the next pass");
            0
        }
    };
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({ "agent": {
        "id": account.id, "name": account.name, "role": account.role,
        "skills": account.skills, "sip_user": account.sip_user, "disabled": account.disabled,
    }, "sessions_closed": sessions_closed });
    (status, Json(body)).into_response()
}

/// The body of `PUT /api/v1/queues/{name}` (times in seconds).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueForm {
    /// skill → minimum level (1 to 10) an agent needs; absent or empty: anyone.
    pub required_skills: Option<BTreeMap<String, u8>>,
    /// Higher first when an agent qualifies for several queues (default 0).
    pub priority: Option<u8>,
    /// How long an agent has to accept an offer (default 20).
    pub offer_timeout_s: Option<f64>,
    /// After this long waiting the call leaves the queue for the flow's fallback (default 120).
    pub max_wait_s: Option<f64>,
    /// After `overflow_after_s`, the agents of queue `overflow_to` also get the call.
    pub overflow_to: Option<String>,
    pub overflow_after_s: Option<f64>,
    /// Wrap-up time after a call (absent: the agent ends wrap-up themself).
    pub wrap_up_s: Option<f64>,
}

fn seconds(what: &str, v: Option<f64>, default: Option<f64>) -> Result<Option<Duration>, String> {
    match v.or(default) {
        None => Ok(None),
        Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => Err(format!("{what}: {s} is not 0 to 86400 seconds")),
    }
}

/// Creates or replaces a queue (the tenant's queues are checked together: an overflow names
/// an existing queue, timeouts are not zero…).
#[utoipa::path(put, path = "/api/v1/queues/{name}", params(("name" = String, Path, description = "queue name")),
    request_body = QueueForm, security(("token" = [])), responses(
    (status = 200, description = "replaced"),
    (status = 201, description = "created"),
    (status = 400, description = "malformed body"),
    (status = 401, description = "no or bad token"),
    (status = 403, description = "not admin or supervisor"),
    (status = 422, description = "refused (bad times, unknown overflow queue, skill level…)")))]
pub async fn put_queue(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let t = match allowed(&c, &headers, OPERATORS, "manage queues").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let form: QueueForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("queue: {e}")),
    };
    let times = (|| {
        let offer = seconds("offer_timeout_s", form.offer_timeout_s, Some(20.0))?;
        let max_wait = seconds("max_wait_s", form.max_wait_s, Some(120.0))?;
        let wrap_up = seconds("wrap_up_s", form.wrap_up_s, None)?;
        let overflow = match (&form.overflow_to, form.overflow_after_s) {
            (None, None) => None,
            (Some(to), Some(after)) => Some(Overflow {
                after: seconds("overflow_after_s", Some(after), None)?.unwrap_or_default(),
                to: to.clone(),
            }),
            _ => return Err("overflow_to and overflow_after_s go together".to_string()),
        };
        Ok::<_, String>((offer, max_wait, wrap_up, overflow))
    })();
    let (offer, max_wait, wrap_up, overflow) = match times {
        Ok(x) => x,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    if let Some((skill, level)) = form
        .required_skills
        .iter()
        .flatten()
        .find(|(_, l)| !(1..=10).contains(*l))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("skill {skill:?} has level {level}; levels are 1 to 10"),
        );
    }
    let q = QueueConfig {
        name: name.clone(),
        required_skills: form.required_skills.clone().unwrap_or_default(),
        priority: form.priority.unwrap_or(0),
        offer_timeout: offer.unwrap_or_default(),
        max_wait: max_wait.unwrap_or_default(),
        overflow,
        wrap_up,
    };
    let existed = match c.0.store.queues(&t.tenant).await {
        Ok(list) => list.iter().any(|x| x.name == name),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(e) = c.0.store.save_queue(&t.tenant, &q).await {
        return store_error(e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if let Err(r) = audit(&c, &t, "queue.save", &name, json!({ "queue": q })).await {
        return r;
    }
    // This node's desk serves the console's tenant: its queues change now.
    let live = if t.tenant == c.0.cfg.default_tenant {
        c.note_queue(q.clone());
        match c.0.desk.set_queue(q.clone()).await {
            Ok(()) => json!(true),
            Err(e) => {
                tracing::warn!(queue = %name, error = %e, "queue saved; this node's desk refused it");
                json!(format!("saved; this node's desk refused it: {e}"))
            }
        }
    } else {
        json!(false)
    };
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(json!({ "queue": q, "live": live }))).into_response()
}
