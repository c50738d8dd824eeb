//! The admin REST API over real HTTP with a real SQLite store. The access checks are generated
//! from the OpenAPI document the server serves, so no endpoint is missed: every secured
//! operation refuses a missing token (401) and the `agent` role (403), answers the roles it
//! allows, never answers a status its document does not declare, and hides another tenant's
//! objects (404). Then each endpoint's behaviour, bad input and the audit trail.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::metrics::Metrics;
use bot_runtime::store::Store;
use serde_json::json;

mod support;
use support::{NoPhones, request, seed_campaign_call, seed_recording};

const ROLES: &[&str] = &["admin", "supervisor", "auditor", "agent", "platform"];

/// The operations the `platform` role alone may use.
const PLATFORM_ONLY: &[&str] = &["POST /api/v1/tenants", "PUT /api/v1/retention"];

/// Every operation the `platform` role may use: its own, and those that concern no tenant's
/// data (the DNC endpoints work the global list for it; the audit log is its own trail).
const PLATFORM_MAY: &[&str] = &[
    "POST /api/v1/tenants",
    "GET /api/v1/tenants",
    "GET /api/v1/tenants/{id}",
    "PUT /api/v1/retention",
    "GET /api/v1/retention",
    "GET /api/v1/dnc",
    "POST /api/v1/dnc",
    "POST /api/v1/dnc/bulk",
    "DELETE /api/v1/dnc/{phone}",
    "GET /api/v1/audit",
    "GET /api/v1/whoami",
];

const FLOW: &str = include_str!("../../dialog-flows/flows/card_payment_reminder.yaml");

fn body_for(method: &str, path: &str) -> String {
    match (method, path) {
        ("post", "/api/v1/campaigns") => json!({ "id": "made-by-api", "flow": FLOW }).to_string(),
        ("post", "/api/v1/flows") => FLOW.to_string(),
        ("post", "/api/v1/dnc/bulk") => "phone,reason\n+12125550166,asked\n".to_string(),
        ("post", "/api/v1/tokens") => json!({ "name": "made", "role": "auditor" }).to_string(),
        ("post", "/api/v1/tenants") => json!({ "id": "made-tenant", "name": "Made" }).to_string(),
        ("put", "/api/v1/retention") => {
            json!({ "recordings_days": 90, "transcripts_days": 365 }).to_string()
        }
        ("patch", "/api/v1/campaigns/{id}") => json!({ "max_concurrent": 3 }).to_string(),
        ("put", p) if p.starts_with("/api/v1/agents/") => {
            json!({ "name": "Made", "password": "pw-made-1234" }).to_string()
        }
        ("put", p) if p.starts_with("/api/v1/queues/") => json!({ "max_wait_s": 60 }).to_string(),
        ("post", p) if p.ends_with("/leads") => {
            "phone,first_name,amount_due,due_date,card_number\n+12125550123,Ann,120.50,2026-12-01,4242\n".to_string()
        }
        ("post", p) if p.ends_with("/status") => json!({ "status": "running" }).to_string(),
        ("post", "/api/v1/dnc") => {
            json!({ "phone": "+12125550199", "reason": "asked" }).to_string()
        }
        _ => String::new(),
    }
}

/// Bank A's objects that the generated checks address.
struct Objects {
    call: String,
    lead: String,
    spare_token: String,
}

/// The operation's path with its parameters filled in with bank-a's objects.
fn concrete(path: &str, o: &Objects) -> String {
    let id = if path.starts_with("/api/v1/calls/") {
        o.call.as_str()
    } else if path.starts_with("/api/v1/leads/") {
        o.lead.as_str()
    } else if path.starts_with("/api/v1/tokens/") {
        o.spare_token.as_str()
    } else if path.starts_with("/api/v1/agents/") {
        "made-agent"
    } else if path.starts_with("/api/v1/tenants/") {
        "bank-a"
    } else {
        "a-only"
    };
    let name = if path.starts_with("/api/v1/queues/") {
        "a-queue"
    } else {
        "a-flow"
    };
    path.replace("{id}", id)
        .replace("{name}", name)
        .replace("{version}", "2")
        .replace("{phone}", "%2B12125550100")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_role_and_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let call_id = seed_campaign_call(&store, "bank-a", "c1", "+12125550100").await;
    // Bank B has a campaign of the same name, and a call of its own in it.
    let theirs = seed_campaign_call(&store, "bank-b", "c1", "+12125550177").await;
    // A campaign only bank A has, for the generated cross-tenant checks.
    seed_campaign_call(&store, "bank-a", "a-only", "+12125550188").await;
    // A flow with two versions, a recording and a spare token, all bank A's only.
    for v in [1, 2] {
        let src = FLOW
            .replace("flow: card_payment_reminder", "flow: a-flow")
            .replace("version: 1", &format!("version: {v}"));
        store
            .save_flow("bank-a", "a-flow", v, &src)
            .await
            .expect("flow");
    }
    seed_recording(&store, &call_id, dir.path()).await;
    let (spare, _) = store
        .create_api_token("bank-a", "spare", "auditor")
        .await
        .expect("token");
    let objects = Objects {
        call: call_id.clone(),
        lead: store
            .lead_by_phone("bank-a", "+12125550188")
            .await
            .expect("lead")
            .expect("the lead")
            .id,
        spare_token: spare.id,
    };
    let mut tokens = BTreeMap::new();
    for role in ROLES {
        let tenant = if *role == "platform" { "*" } else { "bank-a" };
        let (_, token) = store
            .create_api_token(tenant, &format!("{role}-a"), role)
            .await
            .expect("token");
        tokens.insert(*role, token);
    }
    let (_, other_admin) = store
        .create_api_token("bank-b", "admin-b", "admin")
        .await
        .expect("token");

    let desk = Desk::start(Vec::new(), Arc::new(NoPhones)).expect("desk");
    let console = Console::with_metrics(
        store.clone(),
        desk,
        ConsoleConfig::default(),
        Arc::new(Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(console.serve(listener));

    let doc = request(addr, "GET", "/api/v1/openapi.json", &[], "").await;
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().expect("paths").clone();
    assert!(paths.len() >= 12, "{paths:?}");
    let o = &objects;
    let mut checked = 0;
    for (path, ops) in &paths {
        for (method, op) in ops.as_object().expect("operations") {
            let declared: Vec<u16> = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            let target = concrete(path, o);
            let body = body_for(method, path);
            let m = method.to_uppercase();
            let json_header = ("Content-Type", "application/json");
            let secured = op.get("security").is_some();
            let reply = request(addr, &m, &target, &[json_header], &body).await;
            let what = format!("{m} {path}");
            assert!(
                declared.contains(&reply.status),
                "{what}: {} not declared in {declared:?}",
                reply.status
            );
            if !secured {
                assert_eq!(reply.status / 100, 2, "{what} is public: {}", reply.body);
                continue;
            }
            assert_eq!(reply.status, 401, "{what} without a token: {}", reply.body);
            let bad = request(
                addr,
                &m,
                &target,
                &[json_header, ("Authorization", "Bearer cb_nope")],
                &body,
            )
            .await;
            assert_eq!(bad.status, 401, "{what} with an unknown token");
            let mut allowed_roles = Vec::new();
            for role in ROLES {
                let auth = format!("Bearer {}", tokens[role]);
                let r = request(
                    addr,
                    &m,
                    &target,
                    &[json_header, ("Authorization", &auth)],
                    &body,
                )
                .await;
                assert!(
                    declared.contains(&r.status),
                    "{what} as {role}: {} not declared",
                    r.status
                );
                assert!(
                    r.body.get("error").is_some() || r.status / 100 == 2,
                    "{what} as {role}: {}",
                    r.body
                );
                if r.status == 403 {
                    assert!(
                        r.body["error"].as_str().is_some_and(|e| e.contains(role)),
                        "{what}: {}",
                        r.body
                    );
                } else {
                    allowed_roles.push(*role);
                }
            }
            if path != "/api/v1/whoami" {
                assert!(
                    !allowed_roles.contains(&"agent"),
                    "{what} must refuse agents"
                );
            }
            if PLATFORM_ONLY.contains(&what.as_str()) {
                assert_eq!(
                    allowed_roles,
                    ["platform"],
                    "{what} is the platform's alone"
                );
            } else {
                assert!(allowed_roles.contains(&"admin"), "{what} must allow admins");
            }
            assert_eq!(
                allowed_roles.contains(&"platform"),
                PLATFORM_MAY.contains(&what.as_str()),
                "{what}: the platform reads no tenant's data"
            );
            // Another tenant's admin does not see bank-a's objects; a PUT makes its own.
            if path.contains('{') && method == "put" {
                let auth = format!("Bearer {other_admin}");
                let r = request(
                    addr,
                    &m,
                    &target,
                    &[json_header, ("Authorization", &auth)],
                    &body,
                )
                .await;
                assert_eq!(r.status, 201, "{what} from another tenant: {}", r.body);
            } else if path.contains('{') {
                let auth = format!("Bearer {other_admin}");
                let r = request(
                    addr,
                    &m,
                    &target,
                    &[json_header, ("Authorization", &auth)],
                    &body,
                )
                .await;
                assert_eq!(r.status, 404, "{what} from another tenant: {}", r.body);
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "secured operations checked: {checked}");

    // Behaviour, as the operations team uses it.
    let admin = format!("Bearer {}", tokens["admin"]);
    let auditor = format!("Bearer {}", tokens["auditor"]);
    fn h(auth: &str) -> Vec<(&'static str, &str)> {
        vec![
            ("Content-Type", "application/json"),
            ("Authorization", auth),
        ]
    }
    let admin_h = h(&admin);
    let c1 = request(addr, "GET", "/api/v1/campaigns/a-only", &admin_h, "").await;
    assert_eq!(c1.body["campaign"]["status"], "running", "{}", c1.body);
    let pause = request(
        addr,
        "POST",
        "/api/v1/campaigns/a-only/status",
        &admin_h,
        &json!({"status": "paused"}).to_string(),
    )
    .await;
    assert_eq!(pause.status, 200, "{}", pause.body);
    assert_eq!(pause.body["status"], "paused");
    let bogus = request(
        addr,
        "POST",
        "/api/v1/campaigns/a-only/status",
        &admin_h,
        &json!({"status": "flying"}).to_string(),
    )
    .await;
    assert_eq!(bogus.status, 400);
    let stop = request(
        addr,
        "POST",
        "/api/v1/campaigns/a-only/status",
        &admin_h,
        &json!({"status": "stopped"}).to_string(),
    )
    .await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    let restart = request(
        addr,
        "POST",
        "/api/v1/campaigns/a-only/status",
        &admin_h,
        &json!({"status": "running"}).to_string(),
    )
    .await;
    assert_eq!(
        restart.status, 409,
        "a stopped campaign stays stopped: {}",
        restart.body
    );

    // A campaign made through the API: a broken flow is refused with its position, a taken
    // name is a conflict; leads upload with a row-numbered report, the good rows kept.
    let broken = FLOW.replace("  agent:\n", "  agent:\n    bogus_key: 1\n");
    let r = request(
        addr,
        "POST",
        "/api/v1/campaigns",
        &admin_h,
        &json!({ "id": "x", "flow": broken }).to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("flow:") && e.contains("bogus_key")),
        "{}",
        r.body
    );
    let r = request(
        addr,
        "POST",
        "/api/v1/campaigns",
        &admin_h,
        &json!({ "id": "made-by-api", "flow": FLOW }).to_string(),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = request(
        addr,
        "POST",
        "/api/v1/campaigns",
        &admin_h,
        &json!({ "id": "y", "flow": FLOW, "settings": { "pacing": "fast" } }).to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let csv = "phone,first_name,amount_due,due_date,card_number\n+12125550124,Bo,10,2026-12-01,1111\nnot-a-number,Cy,10,2026-12-01,2222\n+12125550125,Di,10,2026-12-01,3333\n";
    let r = request(
        addr,
        "POST",
        "/api/v1/campaigns/made-by-api/leads",
        &admin_h,
        csv,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["report"]["inserted"], 2, "{}", r.body);
    assert_eq!(r.body["report"]["file"]["error_count"], 1, "{}", r.body);
    assert_eq!(
        r.body["report"]["file"]["errors"][0]["row"], 3,
        "the bad row by its number: {}",
        r.body
    );
    let made = request(addr, "GET", "/api/v1/campaigns/made-by-api", &admin_h, "").await;
    assert_eq!(made.body["stats"]["leads"], 2, "{}", made.body);

    let dnc = request(addr, "GET", "/api/v1/dnc", &admin_h, "").await;
    let listed: Vec<&str> = dnc.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["phone"].as_str())
        .collect();
    assert!(listed.contains(&"+12125550199"), "{}", dnc.body);
    let bad_phone = request(
        addr,
        "POST",
        "/api/v1/dnc",
        &admin_h,
        &json!({"phone": "12ab", "reason": "x"}).to_string(),
    )
    .await;
    assert_eq!(bad_phone.status, 422, "{}", bad_phone.body);
    let past = request(
        addr,
        "POST",
        "/api/v1/dnc",
        &admin_h,
        &json!({"phone": "+12125550111", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"})
            .to_string(),
    )
    .await;
    assert_eq!(past.status, 422, "{}", past.body);
    let national = request(
        addr,
        "POST",
        "/api/v1/dnc",
        &admin_h,
        &json!({"phone": "020 7946 0000", "region": "GB", "reason": "asked"}).to_string(),
    )
    .await;
    assert_eq!(national.status, 201, "{}", national.body);
    assert_eq!(national.body["entry"]["phone"], "+442079460000");
    let gone = request(addr, "DELETE", "/api/v1/dnc/%2B442079460000", &admin_h, "").await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    let again = request(addr, "DELETE", "/api/v1/dnc/%2B442079460000", &admin_h, "").await;
    assert_eq!(again.status, 404);

    let calls = request(addr, "GET", "/api/v1/calls?campaign=c1", &h(&auditor), "").await;
    assert_eq!(
        calls.body["calls"][0]["id"],
        call_id.as_str(),
        "{}",
        calls.body
    );
    assert_eq!(
        calls.body["calls"].as_array().map(Vec::len),
        Some(1),
        "only bank A's call: {}",
        calls.body
    );
    let r = request(
        addr,
        "GET",
        &format!("/api/v1/calls/{theirs}"),
        &admin_h,
        "",
    )
    .await;
    assert_eq!(
        r.status, 404,
        "bank B's call, same campaign name: {}",
        r.body
    );
    let other = format!("Bearer {other_admin}");
    let hidden = request(addr, "GET", "/api/v1/calls", &h(&other), "").await;
    let ids: Vec<&str> = hidden.body["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, [theirs.as_str()], "bank B sees only its own call");
    let bad_query = request(addr, "GET", "/api/v1/calls?limit=lots", &admin_h, "").await;
    assert_eq!(bad_query.status, 400);

    // Reports: JSON by campaign (bank A's two calls, none of bank B's), CSV and XLSX exports.
    let r = request(addr, "GET", "/api/v1/reports?by=campaign", &h(&auditor), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["report"]["total"]["attempts"], 2, "{}", r.body);
    assert_eq!(r.body["report"]["total"]["connects"], 2, "{}", r.body);
    let groups: Vec<&str> = r.body["report"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    assert_eq!(groups, ["a-only", "c1"]);
    let csv = request(
        addr,
        "GET",
        "/api/v1/reports?by=campaign&format=csv",
        &admin_h,
        "",
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers
            .to_ascii_lowercase()
            .contains("content-type: text/csv"),
        "{}",
        csv.headers
    );
    assert!(
        csv.body.as_str().is_some_and(|t| t.lines().count() == 4),
        "header, 2 rows, total: {}",
        csv.body
    );
    let xlsx = request(addr, "GET", "/api/v1/reports?format=xlsx", &admin_h, "").await;
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.headers.contains("spreadsheetml"), "{}", xlsx.headers);
    assert!(
        xlsx.body.as_str().is_some_and(|b| b.starts_with("PK")),
        "a zip (XLSX) file"
    );
    for bad in ["by=week", "tz=Mars/Olympus", "format=pdf", "from=yesterday"] {
        let r = request(addr, "GET", &format!("/api/v1/reports?{bad}"), &admin_h, "").await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    // A supervisor's console session reads (the dashboard) but never changes anything.
    store
        .save_agent(
            "bank-a",
            &bot_runtime::agents::store::AgentAccount {
                id: "sue".into(),
                name: "Sue".into(),
                password_hash: admin_api::auth::hash_password("pw-sue").expect("hash"),
                skills: Default::default(),
                role: "supervisor".into(),
                sip_user: None,
                sip_password: None,
                disabled: false,
            },
        )
        .await
        .expect("supervisor");
    let login = request(
        addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &json!({ "tenant": "bank-a", "agent": "sue", "password": "pw-sue" }).to_string(),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = login
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let r = request(addr, "GET", "/api/v1/reports", &[("Cookie", &cookie)], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(
        addr,
        "POST",
        "/api/v1/campaigns/c1/status",
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        &json!({ "status": "paused" }).to_string(),
    )
    .await;
    assert_eq!(r.status, 403, "no change on a cookie: {}", r.body);

    // Every read of personal data left a trace, with who read it.
    let log = request(addr, "GET", "/api/v1/audit?limit=200", &h(&auditor), "").await;
    let events = log.body["events"].as_array().expect("events");
    let has = |action: &str, actor: &str| {
        events
            .iter()
            .any(|e| e["action"] == action && e["actor"] == format!("api:{actor}").as_str())
    };
    assert!(has("read_call", "admin-a"), "{events:#?}");
    assert!(has("read_calls", "auditor-a"));
    assert!(has("read_dnc", "admin-a"));
    assert!(has("dnc_add", "admin-a"));
    assert!(has("dnc_remove", "admin-a"));
    let other_log = request(addr, "GET", "/api/v1/audit", &h(&other), "").await;
    assert!(
        other_log.body["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["actor"] != "api:admin-a"),
        "the audit log is per tenant"
    );

    // Health, readiness and metrics need no token.
    let metrics = request(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .as_str()
            .is_some_and(|t| t.contains("callbot_calls_in_progress")),
        "{}",
        metrics.body
    );
    let revoked = store.api_tokens("bank-a").await.expect("tokens");
    let admin_id = revoked
        .iter()
        .find(|t| t.role == "admin")
        .expect("admin token")
        .id
        .clone();
    assert!(
        store
            .revoke_api_token("bank-a", &admin_id)
            .await
            .expect("revoke")
    );
    let after = request(addr, "GET", "/api/v1/whoami", &admin_h, "").await;
    assert_eq!(after.status, 401, "a revoked token is refused");
}
