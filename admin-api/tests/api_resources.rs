//! The admin API's flows, leads, recordings, DNC bulk, tokens, agent accounts and queues, over
//! real HTTP with a real SQLite store, as an operations team uses them: bad input refused with
//! its reason (line and column, row number), nothing good lost, every read of personal data in
//! the audit log. (Access by role and tenant for each of these is checked in `api_v1.rs`,
//! generated from the OpenAPI document.)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::metrics::Metrics;
use bot_runtime::store::Store;
use serde_json::{Value, json};

mod support;
use support::{NoPhones, Reply, request, seed_campaign_call, seed_recording};

const FLOW: &str = include_str!("../../dialog-flows/flows/card_payment_reminder.yaml");

struct Api {
    addr: SocketAddr,
}

impl Api {
    async fn call(&self, method: &str, path: &str, token: &str, body: &str) -> Reply {
        let auth = format!("Bearer {token}");
        request(
            self.addr,
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
}

fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x[key].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_leads_recordings_dnc_tokens_agents_queues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let call_id = seed_campaign_call(&store, "bank-a", "c1", "+12125550100").await;
    let other_call = seed_campaign_call(&store, "bank-a", "c1", "+12125550101").await;
    let wav = seed_recording(&store, &call_id, dir.path()).await;
    let mut tok = std::collections::BTreeMap::new();
    for role in ["admin", "supervisor", "auditor"] {
        let (_, t) = store
            .create_api_token("bank-a", &format!("{role}-a"), role)
            .await
            .expect("token");
        tok.insert(role, t);
    }
    store
        .ensure_tenant("bank-b", "Bank B")
        .await
        .expect("tenant");
    let (_, admin_b) = store
        .create_api_token("bank-b", "admin-b", "admin")
        .await
        .expect("token");
    // The desk serves the `default` tenant: bank A's queues stay off it.
    let (api, _desk) = serve(store.clone(), "default").await;
    let (admin, sup, auditor) = (
        tok["admin"].as_str(),
        tok["supervisor"].as_str(),
        tok["auditor"].as_str(),
    );

    // ----- flows -----------------------------------------------------------------------
    // A broken flow: every problem with its line and column, nothing stored.
    let broken = FLOW.replace("  agent:\n", "  agent:\n    bogus_key: 1\n");
    let bad_line = broken
        .lines()
        .position(|l| l.contains("bogus_key"))
        .expect("the inserted line")
        + 1;
    let r = api.call("POST", "/api/v1/flows", admin, &broken).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let diags = r.body["diagnostics"].as_array().expect("diagnostics");
    assert!(
        diags.iter().any(|d| d["line"] == bad_line
            && d["column"] == 5
            && d["message"]
                .as_str()
                .is_some_and(|m| m.contains("bogus_key"))),
        "line {bad_line}, column 5: {}",
        r.body
    );
    let r = api.call("GET", "/api/v1/flows", admin, "").await;
    assert_eq!(
        strings(&r.body["flows"], "name"),
        ["reminder"],
        "only the seeded flow, nothing of the broken one: {}",
        r.body
    );

    let r = api.call("POST", "/api/v1/flows", admin, FLOW).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["stored"], "new");
    assert_eq!(r.body["flow"]["active"], 1, "the first version is active");
    let r = api.call("POST", "/api/v1/flows", admin, FLOW).await;
    assert_eq!(r.status, 200, "the same text again: {}", r.body);
    assert_eq!(r.body["stored"], "unchanged");
    let edited = format!("{FLOW}\n# edited without a new version\n");
    let r = api.call("POST", "/api/v1/flows", admin, &edited).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("raise `version`")),
        "{}",
        r.body
    );
    let r = api.call("POST", "/api/v1/flows", sup, FLOW).await;
    assert_eq!(r.status, 403);

    // A campaign on v1; v2 uploaded does not move it; activating v2 does.
    let r = api
        .call(
            "POST",
            "/api/v1/campaigns",
            admin,
            &json!({ "id": "made", "flow": FLOW }).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v2 = FLOW.replace("version: 1", "version: 2");
    let r = api.call("POST", "/api/v1/flows", admin, &v2).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["flow"]["active"], 1);
    let r = api
        .call("GET", "/api/v1/flows/card_payment_reminder", auditor, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let versions: Vec<u64> = r.body["flow"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert_eq!(versions, [1, 2]);
    let r = api
        .call(
            "GET",
            "/api/v1/flows/card_payment_reminder/versions/2",
            auditor,
            "",
        )
        .await;
    assert_eq!(r.body["source"].as_str(), Some(v2.as_str()));
    let r = api
        .call(
            "GET",
            "/api/v1/flows/card_payment_reminder/versions/two",
            auditor,
            "",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api
        .call(
            "GET",
            "/api/v1/flows/card_payment_reminder/versions/9",
            auditor,
            "",
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .call(
            "POST",
            "/api/v1/flows/card_payment_reminder/versions/2/activate",
            admin,
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["activation"]["previous"], 1);
    assert_eq!(r.body["activation"]["campaigns"], json!(["made"]));
    let r = api.call("GET", "/api/v1/campaigns/made", admin, "").await;
    assert_eq!(r.body["campaign"]["flow_version"], 2, "{}", r.body);
    let v3 = FLOW.replace("version: 1", "version: 3");
    let r = api
        .call("POST", "/api/v1/flows?activate=true", admin, &v3)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["activation"]["version"], 3, "{}", r.body);
    assert_eq!(r.body["flow"]["active"], 3);
    // A campaign on a stored flow: its active version, or the one named.
    for (body, status, version) in [
        (
            json!({"id": "on-active", "flow_name": "card_payment_reminder"}),
            201,
            Some(3),
        ),
        (
            json!({"id": "on-v2", "flow_name": "card_payment_reminder", "flow_version": 2}),
            201,
            Some(2),
        ),
        (
            json!({"id": "z", "flow_name": "card_payment_reminder", "flow_version": 7}),
            422,
            None,
        ),
        (json!({"id": "z", "flow_name": "no_such_flow"}), 422, None),
        (json!({"id": "z"}), 422, None),
        (
            json!({"id": "z", "flow": FLOW, "flow_name": "card_payment_reminder"}),
            422,
            None,
        ),
    ] {
        let r = api
            .call("POST", "/api/v1/campaigns", admin, &body.to_string())
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        if let Some(v) = version {
            assert_eq!(r.body["campaign"]["flow_version"], v, "{body}: {}", r.body);
        }
    }
    let r = api
        .call("GET", "/api/v1/flows/card_payment_reminder", &admin_b, "")
        .await;
    assert_eq!(r.status, 404, "another tenant's flow");

    // ----- leads -----------------------------------------------------------------------
    let csv = "phone,name,amount_due,due_date,card_number\n\
               212 555 0124,Bo Smith,10,2026-12-01,1111\n\
               not-a-number,Cy,10,2026-12-01,2222\n\
               +12125550125,Di Jones,10,2026-12-01,3333\n";
    let r = api
        .call("POST", "/api/v1/campaigns/made/leads", sup, csv)
        .await;
    assert_eq!(r.body["report"]["inserted"], 2, "{}", r.body);
    let r = api
        .call("GET", "/api/v1/leads?phone=212%20555%200124", auditor, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(strings(&r.body["leads"], "phone"), ["+12125550124"]);
    assert_eq!(strings(&r.body["leads"], "name"), ["Bo Smith"]);
    let r = api
        .call("GET", "/api/v1/leads?campaign=made", auditor, "")
        .await;
    assert_eq!(
        strings(&r.body["leads"], "phone"),
        ["+12125550124", "+12125550125"]
    );
    let r = api
        .call("GET", "/api/v1/leads?campaign=made&state=done", auditor, "")
        .await;
    assert_eq!(r.body["leads"], json!([]));
    let r = api
        .call(
            "GET",
            "/api/v1/leads?campaign=made&limit=1&offset=1",
            auditor,
            "",
        )
        .await;
    assert_eq!(strings(&r.body["leads"], "phone"), ["+12125550125"]);
    for bad in [
        "state=ready",
        "campaign=made&state=gone",
        "phone=abc",
        "limit=many",
    ] {
        let r = api
            .call("GET", &format!("/api/v1/leads?{bad}"), auditor, "")
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = api
        .call("GET", "/api/v1/leads?phone=%2B12125550100", &admin_b, "")
        .await;
    assert_eq!(
        r.body["leads"],
        json!([]),
        "bank B does not find bank A's customer"
    );

    // One lead's history: its campaign, the attempt, the dial decision, the call.
    let lead = store
        .lead_by_phone("bank-a", "+12125550100")
        .await
        .expect("lead")
        .expect("the lead")
        .id;
    let r = api
        .call("GET", &format!("/api/v1/leads/{lead}"), auditor, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["lead"]["phone"], "+12125550100");
    assert_eq!(strings(&r.body["campaigns"], "campaign"), ["c1"]);
    assert_eq!(r.body["campaigns"][0]["state"], "done");
    assert_eq!(strings(&r.body["attempts"], "call_id"), [call_id.as_str()]);
    assert_eq!(strings(&r.body["calls"], "id"), [call_id.as_str()]);
    assert_eq!(strings(&r.body["decisions"], "verdict"), ["dialed"]);
    assert_eq!(r.body["dnc"], Value::Null);
    let r = api
        .call("GET", &format!("/api/v1/leads/{lead}"), &admin_b, "")
        .await;
    assert_eq!(r.status, 404);

    // ----- recordings ------------------------------------------------------------------
    let path = format!("/api/v1/calls/{call_id}/recording");
    let r = api.call("GET", &path, auditor, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("content-type: audio/wav"),
        "{}",
        r.headers
    );
    assert_eq!(r.bytes, wav, "the plain WAV, opened with the store's keys");
    assert!(r.bytes.starts_with(b"RIFF"));
    let r = api
        .call(
            "GET",
            &format!("/api/v1/calls/{other_call}/recording"),
            auditor,
            "",
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no recording")),
        "{}",
        r.body
    );
    // A file changed on disk since the call is not served.
    let stored = store.call(&call_id).await.expect("call").expect("call");
    let file = stored.recording.expect("recording").path;
    let mut bytes = std::fs::read(&file).expect("file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).expect("tamper");
    let r = api.call("GET", &path, auditor, "").await;
    assert_eq!(r.status, 500);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("SHA-256")),
        "{}",
        r.body
    );

    // ----- DNC in bulk ------------------------------------------------------------------
    let csv = "phone,reason,expires_at\n\
               +12125550100,asked on the phone,\n\
               12ab,x,\n\
               +12125550177,x,2001-01-01T00:00:00Z\n\
               (212) 555-0178,,2099-01-01T00:00:00Z\n";
    let r = api.call("POST", "/api/v1/dnc/bulk", sup, csv).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rows"], 4);
    assert_eq!(r.body["added"], 2);
    let refused: Vec<(u64, &str)> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or(0),
                e["column"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(refused, [(3, "phone"), (4, "expires_at")]);
    let r = api.call("GET", "/api/v1/dnc", admin, "").await;
    let mut phones = strings(&r.body["entries"], "phone");
    phones.sort_unstable();
    assert_eq!(phones, ["+12125550100", "+12125550178"]);
    let r = api
        .call("GET", &format!("/api/v1/leads/{lead}"), auditor, "")
        .await;
    assert_eq!(r.body["dnc"]["reason"], "asked on the phone", "{}", r.body);
    assert_eq!(r.body["dnc"]["source"], "api:bulk");
    for (bad, why) in [
        ("", "empty"),
        ("number,reason\n+12125550100,x\n", "no `phone` column"),
    ] {
        let r = api.call("POST", "/api/v1/dnc/bulk", sup, bad).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(
            r.body["error"].as_str().is_some_and(|e| e.contains(why)),
            "{}",
            r.body
        );
    }

    // ----- tokens ----------------------------------------------------------------------
    let r = api
        .call(
            "POST",
            "/api/v1/tokens",
            admin,
            &json!({"name": "ci", "role": "supervisor"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().expect("secret").to_string();
    let ci_id = r.body["token"]["id"].as_str().expect("id").to_string();
    let r = api.call("GET", "/api/v1/whoami", &secret, "").await;
    assert_eq!(r.body["role"], "supervisor", "{}", r.body);
    let r = api.call("GET", "/api/v1/tokens", admin, "").await;
    assert!(strings(&r.body["tokens"], "name").contains(&"ci"));
    assert!(
        !r.body.to_string().contains(&secret),
        "a token is never shown again"
    );
    let r = api
        .call(
            "POST",
            "/api/v1/tokens",
            admin,
            &json!({"name": "x", "role": "root"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = api
        .call("DELETE", &format!("/api/v1/tokens/{ci_id}"), admin, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call("GET", "/api/v1/whoami", &secret, "").await;
    assert_eq!(r.status, 401, "revoked at once");
    let r = api
        .call("DELETE", &format!("/api/v1/tokens/{ci_id}"), admin, "")
        .await;
    assert_eq!(r.status, 404, "already revoked");

    // ----- agent accounts ----------------------------------------------------------------
    let r = api
        .call(
            "PUT",
            "/api/v1/agents/ann",
            sup,
            &json!({"name": "Ann", "password": "pw-ann-123", "skills": {"disputes": 5}})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["agent"].get("password_hash").is_none());
    let r = api
        .call(
            "PUT",
            "/api/v1/agents/ann",
            sup,
            &json!({"name": "Ann B.", "skills": {"disputes": 6}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "the password is kept: {}", r.body);
    let login = request(
        api.addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &json!({"tenant": "bank-a", "agent": "ann", "password": "pw-ann-123"}).to_string(),
    )
    .await;
    assert_eq!(
        login.status, 200,
        "Ann logs in with her password: {}",
        login.body
    );
    let boss = json!({"name": "Boss", "password": "pw-boss-123", "role": "supervisor"}).to_string();
    let r = api.call("PUT", "/api/v1/agents/boss", sup, &boss).await;
    assert_eq!(
        r.status, 403,
        "a supervisor does not make supervisors: {}",
        r.body
    );
    let r = api.call("PUT", "/api/v1/agents/boss", admin, &boss).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .call(
            "PUT",
            "/api/v1/agents/boss",
            sup,
            &json!({"name": "Boss"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 403, "nor changes one: {}", r.body);
    let r = api
        .call(
            "PUT",
            "/api/v1/agents/boss",
            admin,
            &json!({"name": "The Boss"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["agent"]["role"], "supervisor",
        "the role is kept: {}",
        r.body
    );
    for (bad, status) in [
        (json!({"name": "New"}), 422),
        (
            json!({"name": "New", "password": "pw-x-1234", "skills": {"x": 11}}),
            422,
        ),
        (
            json!({"name": "New", "password": "pw-x-1234", "role": "root"}),
            422,
        ),
        (json!({"nom": "New"}), 400),
    ] {
        let r = api
            .call("PUT", "/api/v1/agents/new", admin, &bad.to_string())
            .await;
        assert_eq!(r.status, status, "{bad}: {}", r.body);
    }
    let r = api.call("GET", "/api/v1/agents", sup, "").await;
    let mut ids = strings(&r.body["agents"], "id");
    ids.sort_unstable();
    assert_eq!(ids, ["ann", "boss"]);
    assert!(
        !r.body.to_string().contains("argon2"),
        "no hashes: {}",
        r.body
    );

    // ----- queues ----------------------------------------------------------------------
    let r = api
        .call(
            "PUT",
            "/api/v1/queues/disputes",
            sup,
            &json!({"required_skills": {"disputes": 3}, "overflow_to": "general", "overflow_after_s": 10}).to_string(),
        )
        .await;
    assert_eq!(
        r.status, 422,
        "the overflow queue does not exist yet: {}",
        r.body
    );
    let r = api.call("PUT", "/api/v1/queues/general", sup, "{}").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let disputes = json!({"required_skills": {"disputes": 3}, "priority": 5, "max_wait_s": 60,
        "overflow_to": "general", "overflow_after_s": 10, "wrap_up_s": 15});
    let r = api
        .call("PUT", "/api/v1/queues/disputes", sup, &disputes.to_string())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .call("PUT", "/api/v1/queues/disputes", sup, &disputes.to_string())
        .await;
    assert_eq!(r.status, 200, "replaced: {}", r.body);
    for bad in [
        json!({"offer_timeout_s": -1}),
        json!({"max_wait_s": 1e12}),
        json!({"overflow_to": "general"}),
        json!({"required_skills": {"disputes": 0}}),
    ] {
        let r = api
            .call("PUT", "/api/v1/queues/x", sup, &bad.to_string())
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let r = api.call("GET", "/api/v1/queues", sup, "").await;
    assert_eq!(strings(&r.body["queues"], "name"), ["disputes", "general"]);

    // ----- the audit trail ---------------------------------------------------------------
    let r = api
        .call("GET", "/api/v1/audit?limit=500", auditor, "")
        .await;
    let events = r.body["events"].as_array().expect("events");
    for (action, actor) in [
        ("flow.upload", "api:admin-a"),
        ("flow.activate", "api:admin-a"),
        ("read_leads", "api:auditor-a"),
        ("read_lead", "api:auditor-a"),
        ("recording.download", "api:auditor-a"),
        ("dnc.import", "api:supervisor-a"),
        ("token.create", "api:admin-a"),
        ("token.revoke", "api:admin-a"),
        ("agent.save", "api:supervisor-a"),
        ("queue.save", "api:supervisor-a"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["actor"] == actor),
            "{action} by {actor} in {events:#?}"
        );
    }
    let downloads = events
        .iter()
        .filter(|e| e["action"] == "recording.download")
        .count();
    assert_eq!(downloads, 1, "a refused download is not a read");
}

/// A console on `store` whose desk serves `tenant`, on a free loopback port.
async fn serve(store: Arc<Store>, tenant: &str) -> (Api, Desk) {
    let desk = Desk::start(Vec::new(), Arc::new(NoPhones)).expect("desk");
    let console = Console::with_metrics(
        store,
        desk.clone(),
        ConsoleConfig {
            default_tenant: tenant.into(),
            ..ConsoleConfig::default()
        },
        Arc::new(Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listen");
    let api = Api {
        addr: listener.local_addr().expect("addr"),
    };
    tokio::spawn(console.serve(listener));
    (api, desk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_changes_tenants_global_dnc_and_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    // `dialed` is running and has an attempt (its seeded call).
    seed_campaign_call(&store, "bank-a", "dialed", "+12125550100").await;
    let (_, admin) = store
        .create_api_token("bank-a", "admin-a", "admin")
        .await
        .expect("token");
    let (_, sup) = store
        .create_api_token("bank-a", "sup-a", "supervisor")
        .await
        .expect("token");
    let (_, platform) = store
        .create_api_token("*", "ops", "platform")
        .await
        .expect("platform token");
    store
        .ensure_tenant("bank-b", "Bank B")
        .await
        .expect("tenant");
    let (_, admin_b) = store
        .create_api_token("bank-b", "admin-b", "admin")
        .await
        .expect("token");
    let (api, desk) = serve(store.clone(), "bank-a").await;
    let (admin, sup, platform) = (admin.as_str(), sup.as_str(), platform.as_str());

    // ----- queues and agents reach the running desk -----------------------------------------
    let r = api
        .call(
            "PUT",
            "/api/v1/queues/cards",
            sup,
            &json!({ "required_skills": { "cards": 3 }, "max_wait_s": 90 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["live"], true, "{}", r.body);
    let names = |snap: &bot_runtime::agents::queue::Snapshot| -> Vec<String> {
        snap.queues.iter().map(|q| q.name.clone()).collect()
    };
    let snap = desk.snapshot().await.expect("snapshot");
    assert_eq!(names(&snap), ["cards"], "the desk has the queue now");
    // Bank B's queue of the same name is saved for bank B, and this desk (bank A's) is untouched.
    let r = api
        .call(
            "PUT",
            "/api/v1/queues/loans",
            &admin_b,
            &json!({ "max_wait_s": 30 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["live"], false, "{}", r.body);
    let snap = desk.snapshot().await.expect("snapshot");
    assert_eq!(names(&snap), ["cards"]);
    // An agent logged in to the console is logged out when their account is disabled.
    let r = api
        .call(
            "PUT",
            "/api/v1/agents/ann",
            sup,
            &json!({ "name": "Ann", "password": "pw-ann-12345", "skills": { "cards": 5 } })
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let login = request(
        api.addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &json!({ "tenant": "bank-a", "agent": "ann", "password": "pw-ann-12345" }).to_string(),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = login
        .headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l.split_once(':').map(|(_, v)| v.trim().to_string()))
                .flatten()
        })
        .and_then(|v| v.split(';').next().map(str::to_string))
        .expect("the session cookie");
    let me = request(api.addr, "GET", "/api/me", &[("Cookie", &cookie)], "").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let r = api
        .call(
            "PUT",
            "/api/v1/agents/ann",
            sup,
            &json!({ "name": "Ann", "skills": { "cards": 5 }, "disabled": true }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["sessions_closed"], 1, "{}", r.body);
    let me = request(api.addr, "GET", "/api/me", &[("Cookie", &cookie)], "").await;
    assert_eq!(me.status, 401, "the session ended: {}", me.body);

    // ----- campaign changes ---------------------------------------------------------------
    let r = api
        .call(
            "POST",
            "/api/v1/campaigns",
            admin,
            &json!({ "id": "spring", "flow": FLOW, "caller_id": "+12125550000",
                     "settings": { "rules": { "max_attempts": 3 } } })
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let before = r.body["campaign"]["settings"].clone();
    // A merge patch: one rule and the region change, the rest of the settings stays.
    let r = api
        .call(
            "PATCH",
            "/api/v1/campaigns/spring",
            admin,
            &json!({ "max_concurrent": 4, "caller_id": null,
                     "settings": { "rules": { "max_attempts": 5 }, "default_region": "GB" } })
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = &r.body["campaign"];
    assert_eq!(after["max_concurrent"], 4);
    assert!(after["caller_id"].is_null(), "{after}");
    assert_eq!(after["settings"]["rules"]["max_attempts"], 5);
    assert_eq!(after["settings"]["default_region"], "GB");
    assert_eq!(after["settings"]["trunk"], before["trunk"], "untouched");
    assert_eq!(
        after["settings"]["rules"]["min_gap_secs"], before["rules"]["min_gap_secs"],
        "a sibling of the patched rule"
    );
    // Bad changes: nothing is stored.
    for (body, status, needle) in [
        (
            json!({ "settings": { "default_region": "Atlantis" } }),
            422,
            "region",
        ),
        (
            json!({ "settings": { "rules": { "max_attempts": "many" } } }),
            422,
            "max_attempts",
        ),
        (json!({ "kind": "human" }), 400, "kind"),
        (json!({ "status": "running" }), 400, "status"),
        (json!({ "max_concurrent": 0 }), 422, "max_concurrent"),
        (
            json!({ "caller_id": "+1212\r\nX-Evil: 1" }),
            422,
            "caller id",
        ),
        (json!({ "flow_version": 9 }), 422, "not stored"),
        (json!({ "flow_name": "nope" }), 422, "no active version"),
    ] {
        let r = api
            .call(
                "PATCH",
                "/api/v1/campaigns/spring",
                admin,
                &body.to_string(),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(
            r.body["error"].as_str().is_some_and(|e| e.contains(needle)),
            "{body}: {}",
            r.body
        );
    }
    let r = api.call("GET", "/api/v1/campaigns/spring", admin, "").await;
    assert_eq!(r.body["campaign"]["settings"]["default_region"], "GB");
    assert_eq!(r.body["campaign"]["max_concurrent"], 4);
    // Supervisors run campaigns; changing them is an admin's.
    let r = api
        .call(
            "PATCH",
            "/api/v1/campaigns/spring",
            sup,
            &json!({ "max_concurrent": 9 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A running campaign takes a change; a stopped one does not.
    let r = api
        .call(
            "POST",
            "/api/v1/campaigns/dialed/status",
            admin,
            &json!({ "status": "running" }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .call(
            "PATCH",
            "/api/v1/campaigns/dialed",
            admin,
            &json!({ "max_concurrent": 6 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["campaign"]["status"], "running");

    // ----- deletion -------------------------------------------------------------------------
    let r = api
        .call(
            "POST",
            "/api/v1/campaigns/spring/leads",
            admin,
            "phone,first_name\n+447911123456,Ann\n+447911123457,Bob\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["report"]["assigned"], 2, "{}", r.body);
    let r = api
        .call("DELETE", "/api/v1/campaigns/dialed", admin, "")
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("running")),
        "{}",
        r.body
    );
    let r = api
        .call(
            "POST",
            "/api/v1/campaigns/dialed/status",
            admin,
            &json!({ "status": "stopped" }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .call(
            "PATCH",
            "/api/v1/campaigns/dialed",
            admin,
            &json!({ "max_concurrent": 2 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 409, "a stopped campaign: {}", r.body);
    let r = api
        .call("DELETE", "/api/v1/campaigns/dialed", admin, "")
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("attempt")),
        "{}",
        r.body
    );
    let r = api
        .call("DELETE", "/api/v1/campaigns/spring", sup, "")
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = api
        .call("DELETE", "/api/v1/campaigns/spring", admin, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["deleted"]["leads_unassigned"], 2);
    let r = api.call("GET", "/api/v1/campaigns/spring", admin, "").await;
    assert_eq!(r.status, 404);
    let r = api
        .call("GET", "/api/v1/leads?phone=%2B447911123456", admin, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        strings(&r.body["leads"], "phone"),
        ["+447911123456"],
        "the lead stays"
    );

    // ----- tenants ----------------------------------------------------------------------------
    // The platform creates a tenant with its first admin token; that token works at once, in
    // its own tenant only.
    let r = api
        .call(
            "POST",
            "/api/v1/tenants",
            platform,
            &json!({ "id": "card-unit", "name": "Card unit" }).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["token"]["role"], "admin");
    let unit_admin = r.body["secret"].as_str().expect("the token").to_string();
    let r = api.call("GET", "/api/v1/whoami", &unit_admin, "").await;
    assert_eq!(r.body["tenant"], "card-unit", "{}", r.body);
    let r = api.call("GET", "/api/v1/campaigns", &unit_admin, "").await;
    assert_eq!(r.body["campaigns"], json!([]), "bank-a's are not theirs");
    for (body, status) in [
        (json!({ "id": "card-unit", "name": "Again" }), 409),
        (json!({ "id": "Card Unit", "name": "Spaces" }), 422),
        (json!({ "id": "x", "name": " " }), 422),
        (json!({ "id": "x" }), 400),
    ] {
        let r = api
            .call("POST", "/api/v1/tenants", platform, &body.to_string())
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    let r = api.call("GET", "/api/v1/tenants", platform, "").await;
    let ids = strings(&r.body["tenants"], "id");
    assert!(
        ids.contains(&"bank-a") && ids.contains(&"card-unit"),
        "{ids:?}"
    );
    let r = api.call("GET", "/api/v1/tenants", &unit_admin, "").await;
    assert_eq!(strings(&r.body["tenants"], "id"), ["card-unit"]);
    let r = api
        .call("GET", "/api/v1/tenants/bank-a", &unit_admin, "")
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api
        .call(
            "POST",
            "/api/v1/tenants",
            admin,
            &json!({ "id": "mine", "name": "Mine" }).to_string(),
        )
        .await;
    assert_eq!(r.status, 403, "a tenant's admin makes no tenants");
    // The platform reads no tenant's data.
    for path in ["/api/v1/campaigns", "/api/v1/calls", "/api/v1/leads"] {
        let r = api.call("GET", path, platform, "").await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }

    // ----- the global DNC list ----------------------------------------------------------------
    // The platform's DNC endpoints are the global list's: a number on it is blocked for every
    // tenant, and no tenant's list shows it.
    let r = api
        .call(
            "POST",
            "/api/v1/dnc",
            platform,
            &json!({ "phone": "+12125550142", "reason": "regulator list" }).to_string(),
        )
        .await;
    assert!(r.status / 100 == 2, "{}", r.body);
    for tenant in ["bank-a", "card-unit"] {
        let hit = store
            .dnc_check(tenant, "+12125550142", chrono::Utc::now())
            .await
            .expect("check");
        assert!(hit.is_some(), "blocked for {tenant}");
    }
    let r = api.call("GET", "/api/v1/dnc", admin, "").await;
    assert!(
        !strings(&r.body["entries"], "phone").contains(&"+12125550142"),
        "{}",
        r.body
    );
    let r = api.call("GET", "/api/v1/dnc", platform, "").await;
    assert_eq!(strings(&r.body["entries"], "phone"), ["+12125550142"]);
    let r = api
        .call("DELETE", "/api/v1/dnc/%2B12125550142", admin, "")
        .await;
    assert_eq!(r.status, 404, "not on bank-a's list: {}", r.body);

    // ----- retention ----------------------------------------------------------------------------
    let r = api
        .call(
            "PUT",
            "/api/v1/retention",
            platform,
            &json!({ "recordings_days": 90, "transcripts_days": 365 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .call(
            "PUT",
            "/api/v1/retention",
            platform,
            &json!({ "recordings_days": 0 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = api
        .call(
            "PUT",
            "/api/v1/retention",
            admin,
            &json!({ "recordings_days": 1 }).to_string(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = api.call("GET", "/api/v1/retention", admin, "").await;
    assert_eq!(
        r.body["retention"],
        json!({ "recordings_days": 90, "transcripts_days": 365 })
    );

    // ----- the audit trails ---------------------------------------------------------------------
    let r = api.call("GET", "/api/v1/audit", admin, "").await;
    let events = r.body["events"].as_array().expect("events");
    for action in ["campaign.update", "campaign.delete"] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["actor"] == "api:admin-a"),
            "{action}: {events:#?}"
        );
    }
    let r = api.call("GET", "/api/v1/audit", platform, "").await;
    let events = r.body["events"].as_array().expect("events");
    for action in ["tenant.create", "dnc_add"] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["actor"] == "api:ops"),
            "{action}: {events:#?}"
        );
    }
    let r = api.call("GET", "/api/v1/audit", &unit_admin, "").await;
    assert!(
        r.body["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["action"] == "tenant.create")),
        "the new tenant's trail starts with its creation: {}",
        r.body
    );
}
