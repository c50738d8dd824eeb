//! schemathesis (from PyPI; `.ci/setup` installs it into `.venv/schemathesis`) generates
//! requests from the admin API's own OpenAPI document — valid and invalid parameters and bodies —
//! against a real server on loopback with a seeded SQLite store, as an admin: no 5xx, every
//! status declared, content types and response schemas as documented. `$SCHEMATHESIS` overrides
//! the path of the tool.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::metrics::Metrics;
use bot_runtime::store::Store;

mod support;
use support::{NoPhones, seed_campaign_call};

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/schemathesis/bin/schemathesis"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} not found: run `bash .ci/setup` (it installs schemathesis from PyPI) or set $SCHEMATHESIS",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_to_its_openapi_document() {
    let tool = schemathesis();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    seed_campaign_call(&store, "bank-a", "c1", "+12125550100").await;
    let (_, token) = store
        .create_api_token("bank-a", "fuzzer", "admin")
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

    let report = dir.path().join("schemathesis");
    let out = tokio::process::Command::new(&tool)
        .arg("run")
        .arg(format!("http://{addr}/api/v1/openapi.json"))
        .args(["--url", &format!("http://{addr}")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "40", "--seed", "7"])
        .arg("--report-dir")
        .arg(&report)
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    // It did test the operations (a run that tests nothing also exits 0).
    assert!(
        stdout.contains("/api/v1/calls") && stdout.contains("/api/v1/dnc"),
        "{stdout}"
    );
}
