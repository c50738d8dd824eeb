//! callbot's HTTP face: the agent console (a web page with a WebRTC softphone), the
//! supervisor's wallboard, and their JSON and WebSocket API.
//!
//! - [`auth`]: Argon2id passwords, cookie sessions, a brake on guessing.
//! - [`agent`]: login, the console's WebSocket (the desk's notices out; state changes, accept
//!   with a WebRTC offer, reject and hang-up in), dispositions with callbacks, own figures.
//! - [`api`]: the admin REST API (`/api/v1`, bearer tokens with roles, OpenAPI document) and
//!   `/metrics`.
//! - [`supervisor`]: the wallboard (queues, agents, calls waiting) and listen-in on a live call,
//!   for supervisors.
//! - [`tls`]: HTTPS: the certificate and key from PEM files, and [`Console::serve_tls`].
//!
//! Errors are JSON `{"error": reason}` with a 4xx status that says whose fault it is.

pub mod agent;
pub mod api;
pub mod auth;
pub mod supervisor;
pub mod sync;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bot_runtime::agents::desk::{CustomerInfo, Desk};
use bot_runtime::agents::queue::CallKey;
use bot_runtime::store::Store;
use telephony::webrtc_leg::WebRtcConfig;

/// How the console server runs.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The tenant whose agents log in when the login form names none.
    pub default_tenant: String,
    /// The softphone legs' network settings (the agent-facing IPs).
    pub webrtc: WebRtcConfig,
    /// A session expires after this long without a request.
    pub session_ttl: Duration,
    /// Mark the cookie `Secure` (behind TLS).
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            default_tenant: "default".into(),
            webrtc: WebRtcConfig::default(),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookie: false,
        }
    }
}

/// A call an agent was offered or took, as the console server remembers it for the agent's
/// disposition (the browser is not trusted to say which customer a call was).
#[derive(Debug, Clone)]
pub struct AgentCall {
    pub customer: CustomerInfo,
    pub queue: String,
    pub connected: bool,
}

pub(crate) struct Inner {
    pub store: Arc<Store>,
    pub desk: Desk,
    pub cfg: ConsoleConfig,
    pub sessions: auth::Sessions,
    /// The call server's metrics, served at `/metrics`.
    pub metrics: Option<Arc<bot_runtime::metrics::Metrics>>,
    /// (tenant, agent) → their calls of this server's lifetime.
    pub calls: Mutex<HashMap<(String, String), HashMap<CallKey, AgentCall>>>,
    /// Queue name → the configuration this node's desk was last given (see `sync`).
    pub applied_queues: Mutex<HashMap<String, bot_runtime::agents::queue::QueueConfig>>,
}

/// The server's shared state.
#[derive(Clone)]
pub struct Console(pub(crate) Arc<Inner>);

impl Console {
    pub fn new(store: Arc<Store>, desk: Desk, cfg: ConsoleConfig) -> Console {
        Console::build(store, desk, cfg, None)
    }

    /// The same server, serving these metrics at `/metrics`.
    pub fn with_metrics(
        store: Arc<Store>,
        desk: Desk,
        cfg: ConsoleConfig,
        metrics: Arc<bot_runtime::metrics::Metrics>,
    ) -> Console {
        Console::build(store, desk, cfg, Some(metrics))
    }

    fn build(
        store: Arc<Store>,
        desk: Desk,
        cfg: ConsoleConfig,
        metrics: Option<Arc<bot_runtime::metrics::Metrics>>,
    ) -> Console {
        let sessions = auth::Sessions::new(cfg.session_ttl);
        Console(Arc::new(Inner {
            store,
            desk,
            cfg,
            sessions,
            metrics,
            calls: Mutex::new(HashMap::new()),
            applied_queues: Mutex::new(HashMap::new()),
        }))
    }

    /// The routes: pages, the agents' and the supervisors' API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(|| async { Redirect::to("/agent") }))
            .route("/agent", get(|| page(AGENT_PAGE)))
            .route("/supervisor", get(|| page(SUPERVISOR_PAGE)))
            .route("/dashboard", get(|| page(DASHBOARD_PAGE)))
            .route("/api/login", post(agent::login))
            .route("/api/logout", post(agent::logout))
            .route("/api/me", get(agent::me))
            .route("/api/agent/ws", get(agent::ws))
            .route("/api/agent/stats", get(agent::stats))
            .route("/api/agent/disposition", post(agent::disposition))
            .route("/api/supervisor/wallboard", get(supervisor::wallboard))
            .route("/api/supervisor/listen", post(supervisor::listen))
            .merge(api::routes())
            .with_state(self.clone())
    }

    /// Serves the console on `listener` until the task is dropped.
    ///
    /// # Errors
    /// The listener failing.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }

    /// Serves the console over HTTPS on `listener` until the task is dropped (see [`tls`]:
    /// [`tls::server_config`] reads the certificate and key). A client failing its TLS
    /// handshake only loses its own connection; every cookie served is marked `Secure`.
    ///
    /// # Errors
    /// None so far: failed accepts are logged and retried, as `serve` does.
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<()> {
        tls::serve(self.router(), listener, config).await
    }
}

const AGENT_PAGE: &str = include_str!("../web/agent.html");
const SUPERVISOR_PAGE: &str = include_str!("../web/supervisor.html");
const DASHBOARD_PAGE: &str = include_str!("../web/dashboard.html");

async fn page(html: &'static str) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; media-src 'self' blob:",
            ),
        ],
        Html(html),
    )
        .into_response()
}

/// A JSON error with a reason.
pub(crate) fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": reason.into() })),
    )
        .into_response()
}
