//! The agents' side: login, the console's WebSocket, dispositions and own figures.
//!
//! The WebSocket (`/api/agent/ws`) logs the agent in to the desk when it opens and carries:
//! - out: the desk's [`AgentNotice`]s as JSON (`status`, `offer`, `offer_withdrawn`,
//!   `connected`, `call_ended`), plus `hello` first, `answer` (the softphone's SDP answer) and
//!   `error` (a refused command, with the reason);
//! - in: `{"type":"ready"}`, `{"type":"pause","reason":…}`, `{"type":"logout"}`,
//!   `{"type":"accept","call":…,"sdp":…}` (a console agent accepts with the browser's WebRTC
//!   offer), `{"type":"reject","call":…}`, `{"type":"hangup","call":…}`.
//!
//! Closing the socket takes the agent offline (an offer to them goes to the next agent) unless
//! a newer console took the session over.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bot_runtime::agents::desk::{AgentNotice, Endpoint};
use bot_runtime::agents::queue::AgentProfile;
use bot_runtime::agents::softphone;
use bot_runtime::agents::store::{AGENT_DISPOSITIONS, AgentDisposition};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use telephony::webrtc_leg::WebRtcLeg;
use tracing::{info, warn};

use crate::auth::{self, COOKIE, Session};
use crate::{AgentCall, Console, error};

/// The body of `POST /api/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    #[serde(default)]
    pub tenant: Option<String>,
    pub agent: String,
    pub password: String,
    /// `console` (the browser softphone, the default) or `phone` (the agent's SIP phone).
    #[serde(default)]
    pub take_calls_on: Option<String>,
}

/// The request's session, or the 401 to answer.
pub(crate) fn session(
    c: &Console,
    headers: &HeaderMap,
) -> Result<(String, Session), Box<Response>> {
    c.0.sessions.from_headers(headers).ok_or_else(|| {
        Box::new(error(
            StatusCode::UNAUTHORIZED,
            "not logged in (or the session expired)",
        ))
    })
}

/// The request's session when its agent may use this node's desk (take calls, see the
/// wallboard, listen in): the desk serves one tenant's queues and calls, the console's, so an
/// agent or supervisor of another tenant is refused (403) rather than offered that tenant's
/// customers. They log in to the pages of the node that serves their tenant.
pub(crate) fn desk_session(
    c: &Console,
    headers: &HeaderMap,
) -> Result<(String, Session), Box<Response>> {
    let (token, s) = session(c, headers)?;
    if s.tenant != c.0.cfg.default_tenant {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            format!(
                "this node's desk serves tenant {:?}, not {:?}: take calls on your tenant's node",
                c.0.cfg.default_tenant, s.tenant
            ),
        )));
    }
    Ok((token, s))
}

/// `POST /api/login`: checks the password and opens a session (cookie).
pub async fn login(State(c): State<Console>, body: axum::body::Bytes) -> Response {
    let form: LoginForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("login form: {e}")),
    };
    let tenant = form
        .tenant
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| c.0.cfg.default_tenant.clone());
    let denied = || error(StatusCode::UNAUTHORIZED, "unknown agent or wrong password");
    if c.0.sessions.locked_out(&tenant, &form.agent) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} failed logins in {} minutes: this account is locked for a while",
                auth::MAX_FAILURES,
                auth::LOCKOUT_WINDOW.as_secs() / 60
            ),
        );
    }
    let account = match c.0.store.agent(&tenant, &form.agent).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            // Spend the time a real check takes, so that timing does not tell who exists.
            let password = form.password.clone();
            let _ =
                tokio::task::spawn_blocking(move || auth::verify_password(&password, dummy_hash()))
                    .await;
            c.0.sessions.failed(&tenant, &form.agent);
            return denied();
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let password = form.password.clone();
    let hash = account.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        c.0.sessions.failed(&tenant, &form.agent);
        warn!(tenant, agent = %form.agent, "console login refused");
        return denied();
    }
    if account.disabled {
        return error(StatusCode::FORBIDDEN, "this account is disabled");
    }
    let endpoint = match form.take_calls_on.as_deref() {
        None | Some("console") => Endpoint::Console,
        Some("phone") => match &account.sip_user {
            Some(user) => Endpoint::SipPhone { user: user.clone() },
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "this account has no SIP phone; take calls in the console",
                );
            }
        },
        Some(other) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("take_calls_on is `console` or `phone`, not {other:?}"),
            );
        }
    };
    c.0.sessions.succeeded(&tenant, &form.agent);
    let token = c.0.sessions.open(&tenant, &account, endpoint);
    info!(tenant, agent = %account.id, role = %account.role, "console login");
    let mut cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        c.0.cfg.session_ttl.as_secs()
    );
    if c.0.cfg.secure_cookie {
        cookie.push_str("; Secure");
    }
    let mut resp = Json(json!({
        "agent": account.id,
        "name": account.name,
        "role": account.role,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// An Argon2id hash of a random password, checked against when the agent does not exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        auth::hash_password(&hex::encode(bytes)).unwrap_or_default()
    })
}

/// `POST /api/logout`: ends the session and takes the agent off the desk.
pub async fn logout(State(c): State<Console>, headers: HeaderMap) -> Response {
    let (token, s) = match session(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if s.tenant == c.0.cfg.default_tenant {
        let _ = c.0.desk.logout(&s.agent).await;
    }
    c.0.sessions.close(&token);
    let mut resp = Json(json!({ "logged_out": true })).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /api/me`: who is logged in, and the dispositions the form offers.
pub async fn me(State(c): State<Console>, headers: HeaderMap) -> Response {
    match session(&c, &headers) {
        Ok((_, s)) => Json(json!({
            "tenant": s.tenant,
            "agent": s.agent,
            "name": s.name,
            "role": s.role,
            "skills": s.skills,
            "endpoint": s.endpoint,
            "dispositions": AGENT_DISPOSITIONS,
        }))
        .into_response(),
        Err(r) => *r,
    }
}

/// `GET /api/agent/stats`: the agent's figures since midnight UTC.
pub async fn stats(State(c): State<Console>, headers: HeaderMap) -> Response {
    let (_, s) = match session(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let since = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or_else(Utc::now, |d| d.and_utc());
    match c.0.store.agent_stats(&s.tenant, &s.agent, since).await {
        Ok(stats) => Json(json!({ "since": since, "stats": stats })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body of `POST /api/agent/disposition`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispositionForm {
    pub call: String,
    pub disposition: String,
    #[serde(default)]
    pub notes: String,
    /// RFC 3339 (the `callback` disposition).
    #[serde(default)]
    pub callback_at: Option<String>,
    /// Go ready again after saving (the default), rather than stay in wrap-up.
    #[serde(default)]
    pub ready: Option<bool>,
}

/// `POST /api/agent/disposition`: the agent's disposition of a call they took, with notes and,
/// for `callback`, when to call back (the campaign's lead is rescheduled).
pub async fn disposition(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (_, s) = match session(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let form: DispositionForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("disposition form: {e}")),
    };
    let taken =
        c.0.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(s.tenant.clone(), s.agent.clone()))
            .and_then(|calls| calls.get(&form.call).cloned())
            .filter(|call| call.connected);
    let Some(call) = taken else {
        return error(
            StatusCode::NOT_FOUND,
            format!("you did not take call {:?}", form.call),
        );
    };
    let callback_at = match form.callback_at.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match DateTime::parse_from_rfc3339(t) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("callback_at {t:?} is not an RFC 3339 time: {e}"),
                );
            }
        },
    };
    if let Some(at) = callback_at
        && at <= Utc::now()
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the callback time is in the past",
        );
    }
    let d = AgentDisposition {
        call_id: form.call.clone(),
        agent_id: s.agent.clone(),
        disposition: form.disposition.clone(),
        notes: form.notes.clone(),
        callback_at,
        saved_at: Utc::now(),
    };
    if let Err(e) = c.0.store.save_disposition(&s.tenant, &d).await {
        return match e {
            bot_runtime::store::StoreError::Refused { reason, .. } => {
                error(StatusCode::UNPROCESSABLE_ENTITY, reason)
            }
            other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        };
    }
    // A callback on a campaign's lead reschedules it. The lead may still be leased while the
    // dialer closes the attempt: wait for that a little.
    let mut callback = json!(null);
    if let Some(at) = callback_at {
        callback = match (&call.customer.campaign, &call.customer.lead_id) {
            (Some(campaign), Some(lead)) => {
                let mut result = json!({ "scheduled": false, "reason": "the lead is still in its attempt; the disposition keeps the time" });
                for _ in 0..50 {
                    match c
                        .0
                        .store
                        .schedule_callback(&s.tenant, campaign, lead, at)
                        .await
                    {
                        Ok(true) => {
                            result = json!({ "scheduled": true, "at": at });
                            break;
                        }
                        Ok(false) => tokio::time::sleep(Duration::from_millis(100)).await,
                        Err(e) => {
                            result = json!({ "scheduled": false, "reason": e.to_string() });
                            break;
                        }
                    }
                }
                result
            }
            _ => {
                json!({ "scheduled": false, "reason": "not a campaign call: the disposition keeps the time" })
            }
        };
    }
    if form.ready.unwrap_or(true) {
        // Only from wrap-up; an agent already ready again is fine.
        let _ = c.0.desk.wrap_up_done(&s.agent).await;
    }
    info!(agent = %s.agent, call = %form.call, disposition = %form.disposition, "disposition saved");
    Json(json!({ "saved": d, "callback": callback })).into_response()
}

/// `GET /api/agent/ws`: the console's live channel (see the module docs).
pub async fn ws(
    State(c): State<Console>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (_, s) = match desk_session(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "cross-origin WebSocket refused");
    }
    info!(agent = %s.agent, %peer, "console connected");
    upgrade.on_upgrade(move |socket| run_console(c, s, socket))
}

/// A browser's `Origin` must name the host it connected to (no other site may open the
/// agent's socket with the agent's cookie).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Command {
    Ready,
    Pause { reason: String },
    Logout,
    Accept { call: String, sdp: String },
    Reject { call: String },
    Hangup { call: String },
}

async fn send(socket: &mut WebSocket, value: &impl serde::Serialize) -> bool {
    match serde_json::to_string(value) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn run_console(c: Console, s: Session, mut socket: WebSocket) {
    let profile = AgentProfile {
        id: s.agent.clone(),
        name: s.name.clone(),
        skills: s.skills.clone(),
    };
    let mut desk_session = match c.0.desk.login(profile, s.endpoint.clone()).await {
        Ok(session) => session,
        Err(e) => {
            let _ = send(
                &mut socket,
                &json!({ "type": "error", "message": e.to_string() }),
            )
            .await;
            return;
        }
    };
    let key = (s.tenant.clone(), s.agent.clone());
    let hello = json!({
        "type": "hello",
        "agent": s.agent,
        "name": s.name,
        "role": s.role,
        "endpoint": s.endpoint,
        "dispositions": AGENT_DISPOSITIONS,
    });
    if !send(&mut socket, &hello).await {
        return;
    }
    let mut taken_over = false;
    loop {
        tokio::select! {
            notice = desk_session.notices.recv() => {
                let Some(notice) = notice else {
                    // A newer console took the session over.
                    taken_over = true;
                    break;
                };
                remember(&c, &key, &notice);
                if let AgentNotice::Offer { call, summary, .. } = &notice {
                    // The offer shows the customer's data and transcript: a read of personal
                    // data, audited before it is shown. Without a trace it is not shown (the
                    // offer then times out and goes to the next agent).
                    let detail = json!({ "queue": summary.queue, "reason": summary.reason });
                    let actor = format!("console:{}", s.agent);
                    if let Err(e) = c.0.store.audit(&s.tenant, &actor, "offer.view", call, detail).await {
                        tracing::error!(agent = %s.agent, %call, error = %e, "offer not shown: the audit log cannot be written");
                        continue;
                    }
                }
                if !send(&mut socket, &notice).await {
                    break;
                }
            }
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let reply = match serde_json::from_str::<Command>(text.as_str()) {
                    Ok(cmd) => command(&c, &s, cmd).await,
                    Err(e) => Some(json!({ "type": "error", "message": format!("unknown command: {e}") })),
                };
                if let Some(reply) = reply
                    && !send(&mut socket, &reply).await
                {
                    break;
                }
            }
        }
    }
    if !taken_over {
        let _ = c.0.desk.disconnected(&s.agent).await;
        info!(agent = %s.agent, "console disconnected");
    }
}

/// Keeps what the disposition form needs to know of the agent's calls.
fn remember(c: &Console, key: &(String, String), notice: &AgentNotice) {
    let mut all = c.0.calls.lock().unwrap_or_else(|p| p.into_inner());
    let calls = all.entry(key.clone()).or_default();
    match notice {
        AgentNotice::Offer {
            call,
            summary,
            customer,
            ..
        } => {
            // Bounded memory: forget the oldest once an agent has many.
            if calls.len() >= 500 {
                calls.retain(|_, v| v.connected);
                if calls.len() >= 500 {
                    calls.clear();
                }
            }
            calls.insert(
                call.clone(),
                AgentCall {
                    customer: (**customer).clone(),
                    queue: summary.queue.clone(),
                    connected: false,
                },
            );
        }
        AgentNotice::Connected { call } => {
            if let Some(entry) = calls.get_mut(call) {
                entry.connected = true;
            }
        }
        _ => {}
    }
}

async fn command(c: &Console, s: &Session, cmd: Command) -> Option<serde_json::Value> {
    let desk = &c.0.desk;
    let refused = |e: String| Some(json!({ "type": "error", "message": e }));
    match cmd {
        Command::Ready => desk
            .ready(&s.agent)
            .await
            .err()
            .and_then(|e| refused(e.to_string())),
        Command::Pause { reason } => {
            let reason = reason.trim();
            if reason.is_empty() || reason.len() > 100 {
                return refused("a pause needs a reason of at most 100 characters".into());
            }
            desk.pause(&s.agent, reason)
                .await
                .err()
                .and_then(|e| refused(e.to_string()))
        }
        Command::Logout => desk
            .logout(&s.agent)
            .await
            .err()
            .and_then(|e| refused(e.to_string())),
        Command::Reject { call } => desk
            .reject(&s.agent, &call)
            .await
            .err()
            .and_then(|e| refused(e.to_string())),
        Command::Hangup { call } => {
            desk.hangup(&s.agent, &call);
            None
        }
        Command::Accept { call, sdp } => {
            if s.endpoint != Endpoint::Console {
                return refused("your calls ring your SIP phone: answer it there".into());
            }
            let (leg, answer) = match WebRtcLeg::answer(&sdp, &c.0.cfg.webrtc).await {
                Ok(x) => x,
                Err(e) => return refused(format!("the softphone's offer: {e}")),
            };
            match desk
                .accept(&s.agent, &call, softphone::connected_leg(leg))
                .await
            {
                Ok(()) => Some(json!({ "type": "answer", "call": call, "sdp": answer })),
                Err(e) => refused(format!("could not take call {call}: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_match_the_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h), "no Origin: not a browser");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(argon2::password_hash::PasswordHash::new(dummy_hash()).is_ok());
    }
}
