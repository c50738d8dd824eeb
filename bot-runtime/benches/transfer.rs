//! Warm-transfer time: from the flow's transfer action (the call handing its `TransferRequest` to
//! the desk) to the agent's audio bridged — the agent's first audio frame arriving on the
//! customer's side of the bridge — with an idle agent whose SIP phone is registered to callbot
//! and answers at once (a phone that auto-answers, or an agent who already clicked).
//!
//! Everything is real but the customer and the robot: callbot's runtime (SIP agent, registrar,
//! media sessions), the desk and its queue engine, and the agent's phone (a second SIP user agent
//! on loopback that registers with digest authentication, answers and plays a tone).
//!
//! `cargo bench -p bot-runtime --bench transfer [-- TRANSFERS]` (default 200).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_runtime::agents::desk::{CustomerInfo, Desk, Endpoint, TransferRequest, TransferUpdate};
use bot_runtime::agents::queue::{AgentProfile, QueueConfig};
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Runtime, RuntimeConfig, media_config};
use callbot_models::ModelsDir;
use dialog_flows::interp::TransferSummary;
use telephony::media::MediaSession;
use telephony::sdp::{self, LocalMedia, Origin, Sdp};
use telephony::sip::transport::UdpAgent;
use telephony::sip::ua::{CallEvent, Credentials};
use tokio::sync::mpsc;

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn summary() -> TransferSummary {
    TransferSummary {
        queue: "collections".into(),
        priority: 0,
        reason: "bench".into(),
        flow: "bench".into(),
        version: 1,
        step: "agent".into(),
        slots: BTreeMap::new(),
        intents: vec!["agent_request".into()],
        sentiment: None,
        path: vec!["agent".into()],
        transcript: Vec::new(),
        script: Vec::new(),
    }
}

/// The agent's phone: registers as `agent1`, answers every call at once and plays a tone.
async fn agent_phone(registrar: SocketAddr) {
    let phone = UdpAgent::bind(SocketAddr::new(LOOPBACK, 0), "agent1")
        .await
        .expect("bind the phone");
    let (handle, mut events) = phone.split();
    handle
        .register(
            registrar,
            &registrar.to_string(),
            600,
            Some(Credentials {
                username: "agent1".into(),
                password: "pw".into(),
            }),
        )
        .await
        .expect("REGISTER sent");
    let tone: Vec<i16> = (0..8000)
        .map(|i| (6000.0 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 8000.0).sin()) as i16)
        .collect();
    let mut sessions: HashMap<_, MediaSession> = HashMap::new();
    while let Some((id, ev)) = events.recv().await {
        match ev {
            CallEvent::Incoming { sdp, .. } => {
                let Ok(offer) = Sdp::parse_bytes(&sdp) else {
                    handle.reject(id, 400, "Bad SDP");
                    continue;
                };
                let socket = tokio::net::UdpSocket::bind(SocketAddr::new(LOOPBACK, 0))
                    .await
                    .expect("media socket");
                let port = socket.local_addr().expect("addr").port();
                let origin = Origin::new("agent1", 1, 1, LOOPBACK);
                let Ok((answer, neg)) =
                    sdp::answer(&offer, &LocalMedia::new(LOOPBACK, port), &origin)
                else {
                    handle.reject(id, 488, "Not Acceptable Here");
                    continue;
                };
                let cfg = media_config(&neg);
                let media = MediaSession::start(
                    socket,
                    SocketAddr::new(neg.remote_addr, neg.remote_port),
                    cfg,
                )
                .expect("media");
                handle.accept(id, answer.to_string().into_bytes());
                let _ = media.handle.try_send_audio(tone.clone());
                sessions.insert(id, media);
            }
            CallEvent::Ended { .. } => {
                if let Some(mut m) = sessions.remove(&id) {
                    m.stop().await;
                }
            }
            _ => {}
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let (runtime, _records) = Runtime::start(engines, RuntimeConfig::loopback(), None)
        .await
        .expect("runtime");
    runtime.set_registrar_accounts(
        "callbot",
        HashMap::from([("agent1".to_string(), "pw".to_string())]),
    );
    let desk = Desk::start(
        vec![QueueConfig {
            name: "collections".into(),
            required_skills: BTreeMap::new(),
            priority: 1,
            offer_timeout: Duration::from_secs(10),
            max_wait: Duration::from_secs(30),
            overflow: None,
            wrap_up: Some(Duration::ZERO),
        }],
        Arc::new(runtime.clone()),
    )
    .expect("desk");
    tokio::spawn(agent_phone(runtime.local_addr()));
    let mut registered = false;
    for _ in 0..100 {
        if runtime.registered("agent1").await.is_some() {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(registered, "the agent's phone registered");
    let mut session = desk
        .login(
            AgentProfile {
                id: "agent1".into(),
                name: "Agent One".into(),
                skills: BTreeMap::new(),
            },
            Endpoint::SipPhone {
                user: "agent1".into(),
            },
        )
        .await
        .expect("login");
    desk.ready("agent1").await.expect("ready");
    tokio::spawn(async move {
        while let Some(n) = session.notices.recv().await {
            tracing::debug!(notice = ?n, "agent notice");
        }
    });

    let mut connected_ms = Vec::with_capacity(n);
    let mut audio_ms = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        desk.transfer(TransferRequest {
            call: format!("call-{i}"),
            summary: summary(),
            customer: CustomerInfo::default(),
            updates: tx,
        });
        let mut audio = loop {
            match rx.recv().await {
                Some(TransferUpdate::Connected { audio, .. }) => break audio,
                Some(TransferUpdate::Queued { .. }) => {}
                Some(TransferUpdate::Failed { reason }) => panic!("transfer {i} failed: {reason}"),
                None => panic!("the desk stopped"),
            }
        };
        connected_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        // The first frame of the agent's tone (not the silence before it) through the bridge.
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), audio.from_agent.recv())
                .await
                .expect("agent audio within 5 s")
                .expect("the agent's leg is up");
            if frame.iter().any(|s| s.unsigned_abs() > 1000) {
                break;
            }
        }
        audio_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        // The customer hangs up: the agent's leg ends, the agent is ready again (no wrap-up).
        drop(audio);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (name, v) in [
        (
            "transfer → agent's phone answered, bridge up",
            &mut connected_ms,
        ),
        (
            "transfer → agent's first audio through the bridge",
            &mut audio_ms,
        ),
    ] {
        v.sort_by(f64::total_cmp);
        println!(
            "{name}: n={} p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.95),
            percentile(v, 0.99),
            v[v.len() - 1]
        );
    }
}
