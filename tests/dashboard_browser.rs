//! The dashboard page rendered in headless Chromium (Debian's `chromium`, driven through
//! chromedriver): a supervisor logs in, the page draws its charts from the admin API's reports
//! over a campaign whose outcomes are known, and the figures on the page are checked against
//! them. The page's screenshot is written to `$CARGO_TARGET_TMPDIR/dashboard.png`, and to
//! `docs/dashboard.png` when `CALLBOT_UPDATE_DOCS=1`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::agents::store::AgentAccount;
use bot_runtime::store::Store;
use fantoccini::{Client, Locator};
use serde_json::Value;

#[path = "../telephony/tests/support/chromium.rs"]
mod chromium;
#[path = "../admin-api/tests/support/mod.rs"]
mod support;

use chromium::{WAIT, start_browser};
use support::{NoPhones, seed_call_with};

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_a_known_campaign() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("dash.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    // Eight connected calls: 3 promises to pay, 2 wrong parties, 2 opt-outs, 1 paid.
    let outcomes = [
        "promise_to_pay",
        "promise_to_pay",
        "promise_to_pay",
        "wrong_party",
        "wrong_party",
        "opted_out",
        "opted_out",
        "paid",
    ];
    for (i, outcome) in outcomes.iter().enumerate() {
        let path: &[&str] = if *outcome == "wrong_party" {
            &["greeting", "identity"]
        } else {
            &["greeting", "identity", "reminder"]
        };
        seed_call_with(
            &store,
            "default",
            "reminders",
            &format!("+1212555{:04}", 100 + i),
            Some(outcome),
            path,
        )
        .await;
    }
    store
        .save_agent(
            "default",
            &AgentAccount {
                id: "sue".into(),
                name: "Sue Supervisor".into(),
                password_hash: admin_api::auth::hash_password("battery staple").expect("hash"),
                skills: BTreeMap::new(),
                role: "supervisor".into(),
                sip_user: None,
                sip_password: None,
                disabled: false,
            },
        )
        .await
        .expect("supervisor");

    let desk = Desk::start(Vec::new(), Arc::new(NoPhones)).expect("desk");
    let console = Console::new(store.clone(), desk, ConsoleConfig::default());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(console.serve(listener));

    let browser_dir = tempfile::tempdir().expect("tempdir");
    let (_driver, client) = start_browser(browser_dir.path(), 440.0).await;
    client
        .set_window_size(1400, 900)
        .await
        .expect("window size");
    client
        .goto(&format!("http://{addr}/dashboard"))
        .await
        .expect("load the dashboard");
    for (id, text) in [("login-agent", "sue"), ("login-password", "battery staple")] {
        client
            .find(Locator::Id(id))
            .await
            .expect("login field")
            .send_keys(text)
            .await
            .expect("type");
    }
    client
        .find(Locator::Css("#login-form button"))
        .await
        .expect("login button")
        .click()
        .await
        .expect("log in");
    let started = Instant::now();
    while js(&client, "return window.dashboard.loaded;").await != Value::Bool(true) {
        assert!(
            started.elapsed() < WAIT,
            "the dashboard did not load: {}",
            js(
                &client,
                "return document.getElementById('error').textContent;"
            )
            .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The figures on the page are the campaign's.
    let kpis = js(
        &client,
        "return document.getElementById('kpis').textContent;",
    )
    .await;
    let kpis = kpis.as_str().unwrap_or_default();
    println!("KPIs: {kpis}");
    assert!(kpis.contains("8Attempts"), "{kpis}");
    assert!(kpis.contains("100.0%Connect rate"), "{kpis}");
    assert!(
        kpis.contains("50.0%Conversion"),
        "4 of 8 converted (3 promises, 1 paid): {kpis}"
    );
    let outcome_bars = js(
        &client,
        "return [...document.querySelectorAll('#chart-outcomes svg text')].map(t => t.textContent);",
    )
    .await;
    let labels: Vec<&str> = outcome_bars
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        labels,
        [
            "promise_to_pay",
            "3",
            "opted_out",
            "2",
            "wrong_party",
            "2",
            "paid",
            "1"
        ],
        "outcomes, largest first"
    );
    let funnel = js(
        &client,
        "return [...document.querySelectorAll('#chart-funnel svg text')].map(t => t.textContent);",
    )
    .await;
    let funnel: Vec<&str> = funnel
        .as_array()
        .expect("funnel")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        funnel,
        ["greeting", "8", "identity", "8", "reminder", "6"],
        "8 calls reached the identity step, 6 went on to the reminder"
    );
    let progress = js(
        &client,
        "return document.querySelectorAll('#chart-progress svg rect').length;",
    )
    .await;
    assert_eq!(progress, Value::from(3), "done / in progress / to call");
    let days = js(
        &client,
        "return document.querySelectorAll('#chart-days svg rect').length;",
    )
    .await;
    assert_eq!(
        days,
        Value::from(3),
        "one day: attempts, connects, conversions"
    );

    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).expect("write the screenshot");
    if std::env::var_os("CALLBOT_UPDATE_DOCS").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png");
        std::fs::write(&docs, &png).expect("write docs/dashboard.png");
    }
    println!("screenshot: {} ({} bytes)", out.display(), png.len());
    let _ = client.close().await;
}
