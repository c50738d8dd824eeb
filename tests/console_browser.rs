//! Warm transfer to an agent in the browser console, end to end, with the real models, a
//! third-party customer phone (Debian's baresip) and a real browser (Debian's headless Chromium,
//! driven through chromedriver):
//!
//! - the agent logs in on the console page (`admin-api`, served by callbot) through its form,
//!   against an Argon2id hash in the store, and goes ready;
//! - callbot dials the customer, the robot talks with them, and the customer asks for a real
//!   person: the flow transfers the call to queue `collections`;
//! - the page shows the offer with the transcript so far, the reason and the customer panel; the
//!   agent clicks Accept: the page's softphone (WebRTC, DTLS-SRTP, G.711) connects;
//! - audio flows both ways: the browser's fake microphone plays 1300 Hz, which the customer's
//!   phone must record; the customer plays 700 Hz, which the page's analyser must hear;
//! - the agent clicks Hang up, fills in the disposition form and saves it; the store holds the
//!   disposition and the call record the robot's and the agent's legs; the page's "My day"
//!   counts the call;
//! - meanwhile a supervisor, in another window, sees the agent on the call on the wallboard and
//!   listens in: the page hears both the customer's 700 Hz and the agent's 1300 Hz.
//!
//! Runs in a network namespace it creates (see `bot-runtime/tests/support/baresip.rs`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_api::{Console, ConsoleConfig};
use bot_runtime::agents::desk::Desk;
use bot_runtime::agents::queue::QueueConfig;
use bot_runtime::agents::store::AgentAccount;
use bot_runtime::demo;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use bot_runtime::store::Store;
use callbot_models::ModelsDir;
use fantoccini::{Client, Locator};
use serde_json::Value;

#[path = "../bot-runtime/tests/support/baresip.rs"]
mod baresip;
#[path = "../telephony/tests/support/chromium.rs"]
mod chromium;

use baresip::{Baresip, NS_ADDR, place, seconds_of_tone, tone};
use chromium::{WAIT, start_browser};

#[test]
fn console_agent_takes_a_warm_transfer_in_the_browser() {
    if baresip::reexec_in_netns("console_agent_takes_a_warm_transfer_in_the_browser") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(in_namespace());
}

/// Polls `script` (returning a value) until `done` holds, within `WAIT`.
async fn wait_for(
    client: &Client,
    what: &str,
    script: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < WAIT {
        last = client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let error = client
        .execute(
            "return document.getElementById('error').textContent;",
            vec![],
        )
        .await
        .ok();
    panic!("{what}: not within {WAIT:?}; last {last}; page error: {error:?}")
}

async fn status(client: &Client, want: &str) {
    wait_for(
        client,
        &format!("the console shows status {want}"),
        "return window.consoleState.status;",
        |v| v.as_str() == Some(want),
    )
    .await;
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}

async fn type_into(client: &Client, id: &str, text: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
}

/// An element's text as the page set it (not as CSS renders it).
async fn text_of(client: &Client, id: &str) -> String {
    client
        .execute(
            "return document.getElementById(arguments[0]).textContent;",
            vec![Value::from(id)],
        )
        .await
        .unwrap_or_else(|e| panic!("text of #{id}: {e}"))
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn in_namespace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,admin_api=info".into()),
        )
        .with_test_writer()
        .try_init();
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("calls.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    store
        .ensure_tenant("default", "default")
        .await
        .expect("tenant");
    store
        .save_agent(
            "default",
            &AgentAccount {
                id: "ann".into(),
                name: "Ann Agent".into(),
                password_hash: admin_api::auth::hash_password("correct horse").expect("hash"),
                skills: BTreeMap::from([("collections".to_string(), 3)]),
                role: "agent".into(),
                sip_user: None,
                sip_password: None,
                disabled: false,
            },
        )
        .await
        .expect("agent");
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
    store
        .save_queue(
            "default",
            &QueueConfig {
                name: "collections".into(),
                required_skills: BTreeMap::from([("collections".to_string(), 2)]),
                priority: 1,
                offer_timeout: Duration::from_secs(20),
                max_wait: Duration::from_secs(60),
                overflow: None,
                wrap_up: None,
            },
        )
        .await
        .expect("queue");

    let mut cfg = RuntimeConfig::loopback();
    cfg.sip_bind = SocketAddr::new(IpAddr::V4(NS_ADDR), 0);
    cfg.media_ip = IpAddr::V4(NS_ADDR);
    let (runtime, _records) = Runtime::start(engines.clone(), cfg, Some(store.clone()))
        .await
        .expect("runtime");
    let desk = Desk::start(
        store.queues("default").await.expect("queues"),
        Arc::new(runtime.clone()),
    )
    .expect("desk");
    runtime.set_desk(desk.clone());
    let console = Console::new(store.clone(), desk.clone(), ConsoleConfig::default());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("console listener");
    let console_addr = listener.local_addr().expect("console address");
    tokio::spawn(console.serve(listener));

    // The agent's browser: its microphone plays 1300 Hz.
    let browser_dir = tempfile::tempdir().expect("tempdir");
    let (_driver, client) = start_browser(browser_dir.path(), 1300.0).await;
    tokio::time::timeout(WAIT, client.goto(&format!("http://{console_addr}/agent")))
        .await
        .expect("page load within 60 s")
        .expect("load the console");

    // A wrong password is refused on the page and logs nobody in.
    type_into(&client, "login-agent", "ann").await;
    type_into(&client, "login-password", "wrong horse").await;
    click(&client, "btn-login").await;
    wait_for(
        &client,
        "the page says the login failed",
        "return document.getElementById('error').textContent;",
        |v| v.as_str().is_some_and(|t| t.contains("wrong password")),
    )
    .await;
    client
        .find(Locator::Id("login-password"))
        .await
        .expect("password field")
        .clear()
        .await
        .expect("clear");
    type_into(&client, "login-password", "correct horse").await;
    click(&client, "btn-login").await;
    status(&client, "paused").await;
    click(&client, "btn-ready").await;
    status(&client, "ready").await;

    // The customer: greets, confirms, asks for a person, then plays 700 Hz for the agent.
    let voice = |t: &str| demo::customer_voice(&engines, t).expect("tts");
    let mut mic = Vec::new();
    place(&mut mic, 0.8, &voice("Hello?"));
    place(&mut mic, 14.0, &voice("Yes."));
    place(
        &mut mic,
        21.0,
        &voice("I want to speak to a real person, please."),
    );
    place(&mut mic, 34.0, &tone(700.0, 40.0, 6000.0));
    let customer = Baresip::customer(&mic);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let peer = SocketAddr::new(IpAddr::V4(NS_ADDR), 5080);
    let c = demo::customers()
        .into_iter()
        .find(|c| c.name == "Chloe")
        .expect("demo customer");
    let serde_json::Value::Object(lead) = c.lead else {
        panic!("leads are objects")
    };
    let dial = {
        let runtime = runtime.clone();
        let phone = c.phone.clone();
        tokio::spawn(async move {
            runtime
                .dial(Dial {
                    target: telephony::sip::Uri::parse(&format!("sip:b@{peer}")).expect("uri"),
                    next_hop: peer,
                    flow: demo::flow().expect("flow"),
                    lead,
                    lead_id: Some("chloe".into()),
                    campaign: Some("e2e".into()),
                    phone,
                    caller_id: None,
                    amd: false,
                    live: None,
                })
                .await
        })
    };

    // The offer reaches the page with the conversation so far and the customer.
    let offer_wait = Instant::now();
    while offer_wait.elapsed() < Duration::from_secs(90) {
        let offered = client
            .execute("return window.consoleState.offer !== null;", vec![])
            .await
            .expect("page state");
        if offered.as_bool() == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    status(&client, "offered").await;
    let transcript = text_of(&client, "transcript").await;
    println!("transcript on the page:\n{transcript}");
    assert!(
        transcript.to_lowercase().contains("person"),
        "the page shows the customer's words: {transcript}"
    );
    let reason = text_of(&client, "offer-reason").await;
    assert!(
        reason.contains("needs help"),
        "reason on the page: {reason}"
    );
    let customer_panel = text_of(&client, "customer").await;
    assert!(
        customer_panel.contains(&c.phone) && customer_panel.contains("chloe"),
        "customer panel: {customer_panel}"
    );
    assert_eq!(text_of(&client, "offer-queue").await, "collections");
    // The flow's script for the agent, filled in with the lead's data.
    let script = text_of(&client, "script").await;
    assert!(
        script.contains("Greet Chloe by name") && script.contains("hardship team"),
        "script on the page: {script}"
    );

    click(&client, "btn-accept").await;
    status(&client, "on_call").await;

    // The page hears the customer's 700 Hz.
    let heard = wait_for(
        &client,
        "the page hears the customer's 700 Hz",
        "return probe();",
        |p| {
            let freq = p["freq"].as_f64().unwrap_or(0.0);
            let bin = p["binHz"].as_f64().unwrap_or(0.0);
            p["db"].as_f64().unwrap_or(-999.0) > -70.0
                && bin > 0.0
                && (freq - 700.0).abs() <= 2.0 * bin
        },
    )
    .await;
    println!("the page hears {heard}");

    // The supervisor, in another window (another origin, so another cookie jar), sees the
    // agent on the call on the wallboard and listens in: both sides, mixed.
    let agent_window = client.window().await.expect("agent window");
    let supervisor_window = client.new_window(false).await.expect("new window");
    client
        .switch_to_window(supervisor_window.handle)
        .await
        .expect("switch to the supervisor");
    let port = console_addr.port();
    client
        .goto(&format!("http://localhost:{port}/supervisor"))
        .await
        .expect("load the wallboard");
    type_into(&client, "login-agent", "sue").await;
    type_into(&client, "login-password", "battery staple").await;
    client
        .find(Locator::Css("#login-form button"))
        .await
        .expect("login button")
        .click()
        .await
        .expect("log in");
    wait_for(
        &client,
        "the wallboard shows Ann on the call",
        "const b = document.querySelector('button.listen'); return b ? b.dataset.call : null;",
        |v| v.as_str().is_some_and(|call| !call.is_empty()),
    )
    .await;
    client
        .find(Locator::Css("button.listen"))
        .await
        .expect("listen button")
        .click()
        .await
        .expect("listen");
    let levels = wait_for(
        &client,
        "the supervisor hears the customer (700 Hz) and the agent (1300 Hz)",
        "return levels([700, 1300]);",
        |v| {
            v.as_array().is_some_and(|l| {
                l.len() == 2 && l.iter().all(|d| d.as_f64().unwrap_or(-999.0) > -70.0)
            })
        },
    )
    .await;
    println!("the supervisor hears 700 Hz and 1300 Hz at {levels} dB");
    client
        .switch_to_window(agent_window)
        .await
        .expect("back to the agent");

    // Let the customer hear the agent for a while, then hang up from the page.
    tokio::time::sleep(Duration::from_secs(3)).await;
    click(&client, "btn-hangup").await;
    let record = tokio::time::timeout(Duration::from_secs(30), dial)
        .await
        .expect("the call ends after the agent hangs up")
        .expect("dial task");
    let (_, customer_heard) = customer.finish();
    println!("{record:#?}");

    // Wrap-up: the form, then ready again.
    status(&client, "wrap_up").await;
    client
        .find(Locator::Id("disposition"))
        .await
        .expect("disposition select")
        .select_by_value("promise_to_pay")
        .await
        .expect("choose a disposition");
    type_into(&client, "notes", "Will pay on Friday.").await;
    click(&client, "btn-save").await;
    status(&client, "ready").await;
    let saved = store
        .dispositions("default", &record.id)
        .await
        .expect("read dispositions");
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].agent_id, "ann");
    assert_eq!(saved[0].disposition, "promise_to_pay");
    assert_eq!(saved[0].notes, "Will pay on Friday.");
    wait_for(
        &client,
        "My day counts the call",
        "return document.getElementById('stats').textContent;",
        |v| v.as_str().is_some_and(|t| t.contains("Calls1")),
    )
    .await;

    // The record: the robot, then the agent, who ended the call.
    assert_eq!(
        record.outcome.as_deref(),
        Some("transferred:collections"),
        "{record:#?}"
    );
    assert_eq!(record.ended_by.as_deref(), Some("agent"));
    let kinds: Vec<&str> = record.legs.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["robot", "agent"], "{:#?}", record.legs);
    assert_eq!(record.legs[1].agent_id.as_deref(), Some("ann"));
    assert_eq!(record.legs[1].queue.as_deref(), Some("collections"));
    let stored = store.call(&record.id).await.expect("read").expect("stored");
    assert_eq!(stored.legs, record.legs);

    // The customer heard the agent's microphone.
    let agent_at_customer = seconds_of_tone(&customer_heard, 1300.0);
    println!("the customer heard the agent's 1300 Hz for {agent_at_customer:.1} s");
    assert!(agent_at_customer > 2.0, "agent → customer audio");

    // Someone else's disposition of the call is refused.
    let resp = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             fetch('/api/agent/disposition', {method: 'POST', headers: {'Content-Type': 'application/json'},\
               body: JSON.stringify({call: 'not-my-call', disposition: 'resolved'})})\
             .then(r => r.json().then(j => done({status: r.status, body: j})));",
            vec![],
        )
        .await
        .expect("fetch");
    assert_eq!(resp["status"], 404, "{resp}");

    // Seeing the offer (the customer's data and transcript) and listening in are reads of
    // personal data: both are in the audit log, with who did them.
    let events = store
        .audit_events("default", None, 500)
        .await
        .expect("audit log");
    let by = |action: &str| -> Vec<(String, String)> {
        events
            .iter()
            .filter(|e| e.action == action)
            .map(|e| (e.actor.clone(), e.subject.clone()))
            .collect()
    };
    assert_eq!(
        by("offer.view"),
        [("console:ann".to_string(), record.id.clone())],
        "{events:#?}"
    );
    let listens = by("call.listen");
    assert_eq!(listens.len(), 1, "{events:#?}");
    assert_eq!(listens[0], ("console:sue".to_string(), record.id.clone()));

    let _ = client.close().await;
}
