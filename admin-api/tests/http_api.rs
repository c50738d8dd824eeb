//! The console server over real HTTP on loopback, with a real SQLite store: logins (good, bad,
//! locked out, disabled), sessions, roles, bad input answered with 4xx and a reason, and the
//! WebSocket's guards. (The browser itself is driven in `tests/console_browser.rs` at the top
//! of the workspace.)

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use admin_api::auth::hash_password;
use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::agents::queue::QueueConfig;
use bot_runtime::agents::store::AgentAccount;
use bot_runtime::store::Store;
use serde_json::{Value, json};
mod support;
use support::{NoPhones, Reply, request};

async fn login(addr: SocketAddr, body: Value) -> Reply {
    request(
        addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
    .await
}

fn cookie_of(reply: &Reply) -> String {
    let line = reply
        .headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {}", reply.headers));
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    line.split_once(':')
        .map(|(_, v)| v.trim())
        .and_then(|v| v.split(';').next())
        .expect("cookie value")
        .to_string()
}

fn account(id: &str, role: &str, password: &str) -> AgentAccount {
    AgentAccount {
        id: id.into(),
        name: format!("Agent {id}"),
        password_hash: hash_password(password).expect("hash"),
        skills: BTreeMap::from([("collections".to_string(), 3)]),
        role: role.into(),
        sip_user: None,
        sip_password: None,
        disabled: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_sessions_roles_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    store
        .ensure_tenant("default", "Default")
        .await
        .expect("tenant");
    store
        .save_agent("default", &account("ann", "agent", "pw-ann"))
        .await
        .expect("ann");
    store
        .save_agent("default", &account("sue", "supervisor", "pw-sue"))
        .await
        .expect("sue");
    let mut off = account("old", "agent", "pw-old");
    off.disabled = true;
    store.save_agent("default", &off).await.expect("old");
    let queue = QueueConfig {
        name: "collections".into(),
        required_skills: BTreeMap::from([("collections".to_string(), 1)]),
        priority: 1,
        offer_timeout: Duration::from_secs(15),
        max_wait: Duration::from_secs(60),
        overflow: None,
        wrap_up: None,
    };
    let desk = Desk::start(vec![queue], Arc::new(NoPhones)).expect("desk");
    let console = Console::new(store.clone(), desk, ConsoleConfig::default());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(console.serve(listener));

    // Pages are served; the API wants a session.
    let page = request(addr, "GET", "/agent", &[], "").await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers
            .to_ascii_lowercase()
            .contains("content-security-policy")
    );
    let me = request(addr, "GET", "/api/me", &[], "").await;
    assert_eq!(me.status, 401, "{}", me.body);
    assert!(
        me.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not logged in"))
    );

    // Bad input: not JSON, a missing field, an unknown field.
    let bad = request(addr, "POST", "/api/login", &[], "agent=ann").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("login form")),
        "{}",
        bad.body
    );
    let missing = login(addr, json!({ "agent": "ann" })).await;
    assert_eq!(missing.status, 400);
    assert!(
        missing.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("password")),
        "{}",
        missing.body
    );
    let unknown = login(
        addr,
        json!({ "agent": "ann", "password": "x", "admin": true }),
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);

    // Wrong password and unknown agent: the same 401; the disabled account: 403; a phone
    // the account does not have: 422.
    let wrong = login(addr, json!({ "agent": "ann", "password": "nope" })).await;
    assert_eq!(wrong.status, 401);
    let nobody = login(addr, json!({ "agent": "zed", "password": "nope" })).await;
    assert_eq!(nobody.status, 401);
    assert_eq!(wrong.body, nobody.body, "no hint of who exists");
    let disabled = login(addr, json!({ "agent": "old", "password": "pw-old" })).await;
    assert_eq!(disabled.status, 403, "{}", disabled.body);
    let phone = login(
        addr,
        json!({ "agent": "ann", "password": "pw-ann", "take_calls_on": "phone" }),
    )
    .await;
    assert_eq!(phone.status, 422, "{}", phone.body);

    // The agent logs in: the cookie opens the API; the wallboard is not theirs.
    let ok = login(addr, json!({ "agent": "ann", "password": "pw-ann" })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ann = cookie_of(&ok);
    let me = request(addr, "GET", "/api/me", &[("Cookie", &ann)], "").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["agent"], "ann");
    assert_eq!(me.body["endpoint"]["kind"], "console");
    assert!(
        me.body["dispositions"]
            .as_array()
            .is_some_and(|d| d.len() > 3)
    );
    let board = request(
        addr,
        "GET",
        "/api/supervisor/wallboard",
        &[("Cookie", &ann)],
        "",
    )
    .await;
    assert_eq!(board.status, 403);
    let stats = request(addr, "GET", "/api/agent/stats", &[("Cookie", &ann)], "").await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.body["stats"]["calls"], 0);

    // A disposition needs a call the agent took, and well-formed fields.
    let not_mine = request(
        addr,
        "POST",
        "/api/agent/disposition",
        &[("Cookie", &ann)],
        &json!({ "call": "c-1", "disposition": "resolved" }).to_string(),
    )
    .await;
    assert_eq!(not_mine.status, 404, "{}", not_mine.body);
    let garbage = request(
        addr,
        "POST",
        "/api/agent/disposition",
        &[("Cookie", &ann)],
        "{",
    )
    .await;
    assert_eq!(garbage.status, 400);

    // The WebSocket: no session → 401; a foreign page → 403.
    let ws_headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let anon = request(addr, "GET", "/api/agent/ws", &ws_headers, "").await;
    assert_eq!(anon.status, 401);
    let mut foreign = ws_headers.to_vec();
    foreign.push(("Cookie", &ann));
    foreign.push(("Origin", "http://evil.example"));
    let cross = request(addr, "GET", "/api/agent/ws", &foreign, "").await;
    assert_eq!(cross.status, 403, "{}", cross.body);

    // The supervisor sees the wallboard.
    let sue = login(addr, json!({ "agent": "sue", "password": "pw-sue" })).await;
    let sue = cookie_of(&sue);
    let board = request(
        addr,
        "GET",
        "/api/supervisor/wallboard",
        &[("Cookie", &sue)],
        "",
    )
    .await;
    assert_eq!(board.status, 200, "{}", board.body);
    assert_eq!(board.body["desk"]["queues"][0]["name"], "collections");

    // Listen-in: supervisors only; a garbage offer is refused with the reason.
    let listen = json!({ "call": "c-1", "sdp": "v=0\r\nnot an offer" }).to_string();
    let r = request(
        addr,
        "POST",
        "/api/supervisor/listen",
        &[("Cookie", &ann)],
        &listen,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(
        addr,
        "POST",
        "/api/supervisor/listen",
        &[("Cookie", &sue)],
        &listen,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("offer")),
        "{}",
        r.body
    );
    let r = request(
        addr,
        "POST",
        "/api/supervisor/listen",
        &[("Cookie", &sue)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Logging out ends the session.
    let out = request(addr, "POST", "/api/logout", &[("Cookie", &ann)], "").await;
    assert_eq!(out.status, 200);
    let me = request(addr, "GET", "/api/me", &[("Cookie", &ann)], "").await;
    assert_eq!(me.status, 401);

    // Guessing: after 5 failures the account is locked, even for the right password.
    for _ in 0..5 {
        let r = login(addr, json!({ "agent": "sue", "password": "guess" })).await;
        assert_eq!(r.status, 401);
    }
    let locked = login(addr, json!({ "agent": "sue", "password": "pw-sue" })).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(
        locked.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("locked"))
    );
}

async fn node(store: &Arc<Store>, queues: Vec<QueueConfig>) -> (SocketAddr, Console) {
    let desk = Desk::start(queues, Arc::new(NoPhones)).expect("desk");
    let console = Console::new(store.clone(), desk, ConsoleConfig::default());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(console.clone().serve(listener));
    (addr, console)
}

async fn api(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> Reply {
    let auth = format!("Bearer {token}");
    request(
        addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
}

/// Two nodes on one store (as behind a proxy): a change made through one node's API reaches
/// the other's sessions and desk at its next sync; and a node's desk (calls, wallboard,
/// listen-in) is its own tenant's only, even for another tenant's account of the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_follow_one_store_and_keep_to_their_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("n.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    store
        .ensure_tenant("default", "Default")
        .await
        .expect("tenant");
    store.ensure_tenant("other", "Other").await.expect("tenant");
    for (tenant, id, role) in [
        ("default", "ann", "agent"),
        ("default", "bob", "agent"),
        ("default", "sue", "supervisor"),
        ("other", "ann", "agent"),
        ("other", "sue", "supervisor"),
    ] {
        store
            .save_agent(tenant, &account(id, role, &format!("pw-{tenant}-{id}")))
            .await
            .expect("agent");
    }
    let general = QueueConfig {
        name: "general".into(),
        required_skills: BTreeMap::new(),
        priority: 1,
        offer_timeout: Duration::from_secs(15),
        max_wait: Duration::from_secs(60),
        overflow: None,
        wrap_up: None,
    };
    store.save_queue("default", &general).await.expect("queue");
    let (_, admin) = store
        .create_api_token("default", "ops", "admin")
        .await
        .expect("token");
    let (a, _node_a) = node(&store, vec![general.clone()]).await;
    let (b, node_b) = node(&store, vec![general.clone()]).await;
    let cookie = |r: &Reply| cookie_of(r);
    let me = |addr: SocketAddr, c: String| async move {
        request(addr, "GET", "/api/me", &[("Cookie", &c)], "").await
    };

    // Another tenant's agent and supervisor may log in to the pages, not to this desk.
    let other_ann = login(
        b,
        json!({ "tenant": "other", "agent": "ann", "password": "pw-other-ann" }),
    )
    .await;
    assert_eq!(other_ann.status, 200, "{}", other_ann.body);
    let other_ann = cookie(&other_ann);
    assert_eq!(me(b, other_ann.clone()).await.body["tenant"], "other");
    let ws = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Cookie", other_ann.as_str()),
    ];
    let r = request(b, "GET", "/api/agent/ws", &ws, "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("serves tenant \"default\"")),
        "{}",
        r.body
    );
    let other_sue = login(
        b,
        json!({ "tenant": "other", "agent": "sue", "password": "pw-other-sue" }),
    )
    .await;
    let other_sue = cookie(&other_sue);
    let r = request(
        b,
        "GET",
        "/api/supervisor/wallboard",
        &[("Cookie", &other_sue)],
        "",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let listen = json!({ "call": "c-1", "sdp": "v=0" }).to_string();
    let r = request(
        b,
        "POST",
        "/api/supervisor/listen",
        &[("Cookie", &other_sue)],
        &listen,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // The same tenant's supervisor sees the board.
    let sue = login(b, json!({ "agent": "sue", "password": "pw-default-sue" })).await;
    let sue = cookie(&sue);
    let board = |c: String| async move {
        request(b, "GET", "/api/supervisor/wallboard", &[("Cookie", &c)], "").await
    };
    let names = |r: &Reply| -> Vec<String> {
        r.body["desk"]["queues"]
            .as_array()
            .map(|q| {
                q.iter()
                    .filter_map(|x| x["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = board(sue.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(names(&r), ["general"]);

    // ann and bob work on node B; nothing changed yet, so a sync does nothing there.
    let ann = cookie(&login(b, json!({ "agent": "ann", "password": "pw-default-ann" })).await);
    let bob = cookie(&login(b, json!({ "agent": "bob", "password": "pw-default-bob" })).await);
    let first = node_b.sync().await.expect("sync");
    assert_eq!(
        first.queues_changed,
        ["general"],
        "the first pass takes all"
    );
    assert_eq!(first.sessions_closed, 0);
    assert!(node_b.sync().await.expect("sync").is_empty());

    // Through node A: a new queue, ann's skills, bob's password, the other tenant's sue
    // disabled.
    let disputes =
        json!({ "required_skills": { "disputes": 2 }, "offer_timeout_s": 20, "max_wait_s": 300 });
    let r = api(
        a,
        "PUT",
        "/api/v1/queues/disputes",
        &admin,
        &disputes.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ann_change = json!({ "name": "Agent ann", "role": "agent", "skills": { "collections": 3, "disputes": 4 } });
    let r = api(
        a,
        "PUT",
        "/api/v1/agents/ann",
        &admin,
        &ann_change.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["sessions_closed"], 0, "node A has none of ann's");
    let bob_change = json!({ "name": "Agent bob", "role": "agent", "password": "a-new-secret-1" });
    let r = api(
        a,
        "PUT",
        "/api/v1/agents/bob",
        &admin,
        &bob_change.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut off = account("sue", "supervisor", "pw-other-sue");
    off.disabled = true;
    store.save_agent("other", &off).await.expect("disable");

    // Node B has not synced: bob's old session still works there, and the board is as it was.
    assert_eq!(me(b, bob.clone()).await.status, 200);
    assert_eq!(names(&board(sue.clone()).await), ["general"]);
    let r = node_b.sync().await.expect("sync");
    assert_eq!(r.queues_changed, ["disputes"], "{r:?}");
    assert_eq!(r.skills_changed, ["ann"], "{r:?}");
    assert_eq!(r.sessions_closed, 2, "bob's, and other's sue: {r:?}");
    assert_eq!(me(b, bob).await.status, 401);
    assert_eq!(me(b, other_sue).await.status, 401);
    let ann_now = me(b, ann).await;
    assert_eq!(ann_now.status, 200);
    assert_eq!(ann_now.body["skills"]["disputes"], 4);
    assert_eq!(me(b, other_ann).await.status, 200, "untouched");
    assert_eq!(names(&board(sue.clone()).await), ["general", "disputes"]);
    assert!(node_b.sync().await.expect("sync").is_empty());

    // bob logs in with the new password on either node.
    let r = login(b, json!({ "agent": "bob", "password": "a-new-secret-1" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
