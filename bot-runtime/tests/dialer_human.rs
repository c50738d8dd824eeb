//! A human campaign through the real dialer node, call server and agent desk, on loopback
//! against SIPp as the customers' phones, with the test playing one console agent:
//!
//! - while the agent is ready, answered calls go straight to the agent (no robot speech), and
//!   progressive 1:1 pacing never has more than one call up for the one agent;
//! - when the agent pauses while a call rings, the answered call hears the safe-harbour message
//!   within 2 s, the attempt is `abandoned`, and the campaign's 30-day abandon ledger in the
//!   database counts it;
//! - a human campaign on a node without an agent desk is not dialed at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bot_runtime::agents::desk::{AgentNotice, ConnectedLeg, Desk, Endpoint};
use bot_runtime::agents::queue::{AgentProfile, QueueConfig};
use bot_runtime::demo;
use bot_runtime::dialer::db::{
    CampaignKind, CampaignStatus, DEFAULT_TENANT, NewCampaign, NewLead, Order,
};
use bot_runtime::dialer::human::{HUMAN_FLOW, safe_harbour_message};
use bot_runtime::dialer::pacing::{AbandonLedger, SAFE_HARBOUR};
use bot_runtime::dialer::service::{Dialer, DialerConfig, DialerEvent};
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::Speaker;
use bot_runtime::runtime::{Runtime, RuntimeConfig};
use bot_runtime::store::Store;
use callbot_models::ModelsDir;
use chrono::{Timelike, Utc};
use tokio::sync::{mpsc, watch};

/// The models, loaded once for every test of this file.
fn engines() -> Arc<Engines> {
    static ENGINES: OnceLock<Arc<Engines>> = OnceLock::new();
    ENGINES
        .get_or_init(|| {
            Arc::new(
                Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
                    .expect("models (run `callbot models fetch`)"),
            )
        })
        .clone()
}

/// A zone where it is between 10:00 and 18:59 now, so the default calling window is open.
fn daytime_zone() -> &'static str {
    const ZONES: [&str; 12] = [
        "Pacific/Honolulu",
        "America/Los_Angeles",
        "America/Chicago",
        "America/New_York",
        "America/Sao_Paulo",
        "Europe/London",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Kolkata",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Sydney",
    ];
    let now = Utc::now();
    ZONES
        .into_iter()
        .find(|z| {
            let tz: chrono_tz::Tz = z.parse().expect("a zone");
            (10..19).contains(&now.with_timezone(&tz).hour())
        })
        .expect("some zone is in daytime")
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A free UDP port on 127.0.0.1 (bound and released; SIPp binds it right after).
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// SIPp as the customers' phones on 127.0.0.1, answering `calls` calls.
struct Sipp {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Sipp {
    fn uas(scenario_file: &str, calls: u32) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let media = free_port();
        let sf = scenario(scenario_file);
        let child = Command::new("sipp")
            .current_dir(dir.path())
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .args(["-sf", sf.to_str().expect("path"), "-m", &calls.to_string()])
            .args(["-trace_msg", "-message_file"])
            .arg(dir.path().join("messages.log"))
            .args(["-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp is installed (Debian package sip-tester; .ci/setup installs it)");
        std::thread::sleep(Duration::from_millis(300));
        Sipp {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits (up to 10 s) for SIPp to finish its calls; every step of the scenario must have
    /// happened as written (each call answered and ended by callbot's BYE).
    fn finish(mut self) {
        let mut status = None;
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match status {
            Some(s) if s.success() => {}
            other => panic!(
                "SIPp's scenario failed ({other:?})\n--- errors ---\n{}\n--- messages ---\n{}",
                self.log("errors.log"),
                self.log("messages.log")
            ),
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A human campaign `id` with `n` leads, the stored flow only naming the bank.
async fn human_campaign(store: &Store, id: &str, trunk: SocketAddr, n: usize) {
    store
        .save_flow(DEFAULT_TENANT, "card_payment_reminder", 1, demo::FLOW_YAML)
        .await
        .expect("flow");
    store
        .create_campaign(
            DEFAULT_TENANT,
            &NewCampaign {
                id: id.into(),
                kind: CampaignKind::Human,
                flow: "card_payment_reminder".into(),
                flow_version: 1,
                caller_id: Some("+18005550100".into()),
                // Room for more: only the pacer holds the dialing to the one agent.
                max_concurrent: 3,
                settings: serde_json::json!({
                    "trunk": {"address": trunk.to_string(), "cps": 50},
                    "queue": "collections",
                    "amd": false,
                }),
            },
        )
        .await
        .expect("campaign");
    let leads: Vec<NewLead> = (0..n)
        .map(|i| NewLead {
            external_id: None,
            phone: format!("+1212555{:04}", 100 + i),
            name: Some(format!("Customer {i}")),
            timezones: vec![daytime_zone().into()],
            tz_source: "column".into(),
            debt_id: None,
            fields: serde_json::Map::new(),
            source_row: Some(i as u64 + 2),
        })
        .collect();
    let inserted = store
        .insert_leads(DEFAULT_TENANT, "test", &leads)
        .await
        .expect("leads");
    let ids: Vec<String> = inserted.ids.values().cloned().collect();
    assert_eq!(ids.len(), n);
    store
        .assign_leads(DEFAULT_TENANT, id, &ids, Order::Sequential, Utc::now())
        .await
        .expect("assign");
    store
        .set_campaign_status(DEFAULT_TENANT, id, CampaignStatus::Running, "test")
        .await
        .expect("start");
}

fn collections() -> QueueConfig {
    QueueConfig {
        name: "collections".into(),
        required_skills: BTreeMap::new(),
        priority: 0,
        offer_timeout: Duration::from_secs(10),
        max_wait: Duration::from_secs(60),
        overflow: None,
        wrap_up: Some(Duration::ZERO),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_campaign_connects_answers_to_the_agent_and_abandons_within_the_safe_harbour() {
    let engines = engines();
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("dialer.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let sipp = Sipp::uas("uas_answer_wait_bye.xml", 3);
    human_campaign(&store, "agents", sipp.addr, 3).await;

    let (runtime, _records) = Runtime::start(
        engines.clone(),
        RuntimeConfig::loopback(),
        Some(store.clone()),
    )
    .await
    .expect("runtime");
    let desk = Desk::start(vec![collections()], Arc::new(runtime.clone())).expect("desk");
    let (etx, mut erx) = mpsc::unbounded_channel();
    let dialer = Dialer::new(
        store.clone(),
        runtime.clone(),
        DialerConfig::new("node-1"),
        Some(etx),
    );
    dialer.set_desk(desk.clone());

    // The agent: a console agent who takes two calls, talks 1.5 s, and hangs up.
    let profile = AgentProfile {
        id: "ana".into(),
        name: "Ana".into(),
        skills: BTreeMap::new(),
    };
    let mut session = desk.login(profile, Endpoint::Console).await.expect("login");
    desk.ready("ana").await.expect("ready");
    let agent_desk = desk.clone();
    // What the agent saw: the calls offered, and how many were connected.
    let seen = Arc::new(std::sync::Mutex::new((Vec::<String>::new(), 0u32)));
    let agent_seen = seen.clone();
    let agent = tokio::spawn(async move {
        while let Some(notice) = session.notices.recv().await {
            match notice {
                AgentNotice::Offer { call, .. } => {
                    agent_seen.lock().expect("lock").0.push(call.clone());
                    let (to_agent, mut heard) = mpsc::channel::<Vec<i16>>(100);
                    let (speak, from_agent) = mpsc::channel::<Vec<i16>>(100);
                    agent_desk
                        .accept(
                            "ana",
                            &call,
                            ConnectedLeg {
                                from_agent,
                                to_agent,
                            },
                        )
                        .await
                        .expect("the agent takes the call");
                    let desk = agent_desk.clone();
                    tokio::spawn(async move {
                        let talk = tokio::time::sleep(Duration::from_millis(1500));
                        tokio::pin!(talk);
                        let mut tick = tokio::time::interval(Duration::from_millis(20));
                        loop {
                            tokio::select! {
                                _ = &mut talk => break,
                                _ = tick.tick() => { let _ = speak.try_send(vec![0i16; 160]); }
                                f = heard.recv() => if f.is_none() { break },
                            }
                        }
                        desk.hangup("ana", &call);
                    });
                }
                AgentNotice::Connected { .. } => agent_seen.lock().expect("lock").1 += 1,
                AgentNotice::Status { .. }
                | AgentNotice::OfferWithdrawn { .. }
                | AgentNotice::CallEnded { .. } => {}
            }
        }
    });

    // The node runs; the test watches its events, and the agent goes on a break while the
    // third call rings.
    let (stop_tx, stop) = watch::channel(false);
    let node = {
        let dialer = dialer.clone();
        tokio::spawn(async move { dialer.run(stop, false).await })
    };
    let (mut dialed, mut finished) = (0u32, 0u32);
    let mut dispositions = Vec::new();
    let watched = tokio::time::timeout(Duration::from_secs(50), async {
        while let Some(ev) = erx.recv().await {
            match ev {
                DialerEvent::Dialed { .. } => {
                    dialed += 1;
                    if dialed == 3 {
                        desk.pause("ana", "break").await.expect("pause");
                    }
                }
                DialerEvent::Finished { disposition, .. } => {
                    finished += 1;
                    dispositions.push(disposition);
                    if finished == 3 {
                        break;
                    }
                }
                DialerEvent::Skipped { reason, .. } => panic!("a lead was skipped: {reason}"),
                DialerEvent::Held { reason, .. } => panic!("the campaign was held: {reason}"),
                DialerEvent::CampaignFinished { .. } => {}
            }
        }
    })
    .await;
    stop_tx.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(15), node)
        .await
        .expect("the node stops")
        .expect("node task")
        .expect("dialer");
    watched.expect("three calls in 50 s");
    assert_eq!(dialed, 3, "no lead is dialed twice in this test");
    assert_eq!(dispositions, ["transferred", "transferred", "abandoned"]);

    // The calls, in order.
    let attempts = store
        .campaign_attempts(DEFAULT_TENANT, "agents")
        .await
        .expect("attempts");
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let mut calls = Vec::new();
    for a in &attempts {
        let id = a.call_id.as_deref().expect("the attempt names its call");
        calls.push(
            store
                .call(id)
                .await
                .expect("read")
                .expect("the call record"),
        );
    }
    calls.sort_by_key(|c| c.started_at);
    // Progressive 1:1 with one agent: a call is dialed only when the agent is free, so no two
    // calls are ever ringing or waiting for the agent at once (from the dial to the agent's
    // answer, or to the end), and each call is dialed after the agent took the one before.
    let pending_until = |c: &bot_runtime::record::CallRecord| {
        c.legs
            .iter()
            .find(|l| l.kind == "agent")
            .map_or(c.ended_at, |l| l.started_at)
    };
    for pair in calls.windows(2) {
        assert!(
            pair[1].started_at >= pending_until(&pair[0]),
            "{} was dialed while {} still rang or waited for the agent",
            pair[1].id,
            pair[0].id
        );
    }
    for c in &calls[..2] {
        assert_eq!(c.flow, HUMAN_FLOW);
        assert_eq!(c.disposition, "answered");
        let leg = c
            .legs
            .iter()
            .find(|l| l.kind == "agent")
            .unwrap_or_else(|| panic!("connected to the agent: {c:#?}"));
        assert_eq!(leg.agent_id.as_deref(), Some("ana"));
        assert_eq!(leg.queue.as_deref(), Some("collections"));
        // An agent was free for every live answer: had the dialer dialed while the agent
        // talked (1.5 s) the answer would have waited for it, or been abandoned.
        assert!(
            leg.wait_ms.is_some_and(|w| w < 1000),
            "the ready agent took it at once: {leg:?}"
        );
        assert!(
            c.turns.iter().all(|t| t.speaker != Speaker::Bot),
            "no robot speech on a human campaign's connected call: {:?}",
            c.turns
        );
    }
    // The third: the agent was on a break; the safe-harbour message within 2 s of the answer.
    let abandoned = &calls[2];
    assert_eq!(
        abandoned.outcome.as_deref(),
        Some("abandoned"),
        "{abandoned:#?}"
    );
    assert!(abandoned.legs.iter().all(|l| l.kind != "agent"));
    let first_bot = abandoned
        .turns
        .iter()
        .find(|t| t.speaker == Speaker::Bot)
        .unwrap_or_else(|| panic!("the message was played: {abandoned:#?}"));
    for c in &calls {
        println!(
            "{}: answered {:?}, ended {}, outcome {:?}, legs {:?}, first robot words at {:?} ms",
            c.id,
            c.answered_at,
            c.ended_at,
            c.outcome,
            c.legs
                .iter()
                .map(|l| (l.kind.as_str(), l.wait_ms))
                .collect::<Vec<_>>(),
            c.turns
                .iter()
                .find(|t| t.speaker == Speaker::Bot)
                .map(|t| t.start_ms)
        );
    }
    let bank = "Northwind Bank";
    assert!(demo::FLOW_YAML.contains(bank), "the demo flow's bank");
    assert_eq!(first_bot.text, safe_harbour_message(bank));
    assert!(
        first_bot.start_ms <= SAFE_HARBOUR.as_millis() as u64,
        "the safe-harbour message started {} ms after the answer",
        first_bot.start_ms
    );
    assert_eq!(
        attempts
            .iter()
            .find(|a| a.call_id.as_deref() == Some(abandoned.id.as_str()))
            .and_then(|a| a.disposition.as_deref()),
        Some("abandoned")
    );

    // The agent was offered exactly the two calls it took.
    agent.abort();
    let (offers, connected) = seen.lock().expect("lock").clone();
    assert_eq!((offers.len(), connected), (2, 2), "{offers:?}");

    // The ledger: three live answers, one abandoned, in the database and in the stats.
    let expected = AbandonLedger {
        live_answered: 3,
        abandoned: 1,
    };
    assert_eq!(
        store
            .abandon_window(DEFAULT_TENANT, "agents", Utc::now())
            .await
            .expect("ledger"),
        expected
    );
    let stats = store
        .campaign_stats(DEFAULT_TENANT, "agents", Utc::now())
        .await
        .expect("stats");
    assert_eq!(stats.abandons_30d, expected);
    assert!((stats.abandon_rate_30d - 1.0 / 3.0).abs() < 1e-9);
    // The lead abandoned is retried later (1 h) under the dial rules.
    assert_eq!((stats.done, stats.ready), (2, 1));
    sipp.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_campaign_without_an_agent_desk_is_not_dialed() {
    let engines = engines();
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("dialer.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    // Nobody listens on this trunk: a dial would fail, and is not even tried.
    let trunk = SocketAddr::from(([127, 0, 0, 1], free_port()));
    human_campaign(&store, "nodesk", trunk, 2).await;
    let (runtime, _records) = Runtime::start(
        engines.clone(),
        RuntimeConfig::loopback(),
        Some(store.clone()),
    )
    .await
    .expect("runtime");
    let (etx, mut erx) = mpsc::unbounded_channel();
    let dialer = Dialer::new(
        store.clone(),
        runtime.clone(),
        DialerConfig::new("node-1"),
        Some(etx),
    );
    let (_stop_tx, stop) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(20), dialer.run(stop, true))
        .await
        .expect("the node has nothing to do")
        .expect("dialer");
    drop(dialer);
    let mut held = Vec::new();
    while let Ok(ev) = erx.try_recv() {
        match ev {
            DialerEvent::Held { campaign, reason } => held.push((campaign, reason)),
            other => panic!("nothing but the hold: {other:?}"),
        }
    }
    assert_eq!(held.len(), 1, "said once: {held:?}");
    assert_eq!(held[0].0, "nodesk");
    assert!(held[0].1.contains("no agent desk"), "{}", held[0].1);
    let attempts = store
        .campaign_attempts(DEFAULT_TENANT, "nodesk")
        .await
        .expect("attempts");
    assert!(attempts.is_empty(), "{attempts:?}");
    let stats = store
        .campaign_stats(DEFAULT_TENANT, "nodesk", Utc::now())
        .await
        .expect("stats");
    assert_eq!((stats.ready, stats.leased), (2, 0));
}
