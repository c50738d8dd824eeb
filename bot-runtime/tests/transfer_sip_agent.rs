//! Warm transfer to an agent's SIP phone, end to end with third-party phones (Debian's baresip)
//! and the real models:
//!
//! - the agent's phone (baresip) registers to callbot with digest authentication; the agent logs
//!   in to the desk and goes ready;
//! - callbot dials the customer (a second baresip), the robot talks with them, and the customer
//!   asks for a real person: the flow transfers the call to queue `collections`;
//! - the desk offers the call to the agent: the agent's notices carry the summary (reason,
//!   transcript) and the customer panel; the phone rings and answers; the customer and the agent
//!   are bridged and the robot leaves;
//! - audio flows both ways: the agent's phone plays 1300 Hz, which the customer must hear; the
//!   customer then plays 700 Hz, which the agent must hear (checked by frequency in each phone's
//!   own recording);
//! - the agent hangs up: the call ends, the agent goes to wrap-up, saves a disposition; the call
//!   record holds the robot's and the agent's legs.
//!
//! Runs in a network namespace it creates (see `tests/support/baresip.rs`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::agents::desk::{AgentNotice, Desk, Endpoint};
use bot_runtime::agents::queue::{AgentProfile, AgentStatus, QueueConfig};
use bot_runtime::agents::store::AgentDisposition;
use bot_runtime::demo;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use bot_runtime::store::Store;
use callbot_models::ModelsDir;

mod support;

use support::baresip::{Baresip, NS_ADDR, Phone, place, seconds_of_tone, tone};

const AGENT_PORT: u16 = 5090;

#[test]
fn warm_transfer_to_a_registered_sip_phone() {
    if support::baresip::reexec_in_netns("warm_transfer_to_a_registered_sip_phone") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(in_namespace());
}

async fn in_namespace() {
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("calls.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let mut cfg = RuntimeConfig::loopback();
    cfg.sip_bind = SocketAddr::new(IpAddr::V4(NS_ADDR), 0);
    cfg.media_ip = IpAddr::V4(NS_ADDR);
    let (runtime, _records) = Runtime::start(engines.clone(), cfg, Some(store.clone()))
        .await
        .expect("runtime");
    let sip_port = runtime.local_addr().port();
    runtime.set_registrar_accounts(
        "callbot",
        HashMap::from([("agent7".to_string(), "s3cret".to_string())]),
    );
    let desk = Desk::start(
        vec![QueueConfig {
            name: "collections".into(),
            required_skills: BTreeMap::from([("collections".to_string(), 2)]),
            priority: 1,
            offer_timeout: Duration::from_secs(15),
            max_wait: Duration::from_secs(60),
            overflow: None,
            wrap_up: None,
        }],
        Arc::new(runtime.clone()),
    )
    .expect("desk");
    runtime.set_desk(desk.clone());

    // The agent's phone: registers, answers automatically, plays 1300 Hz for 25 s, then hangs
    // up (baresip ends a call when its audio file ends).
    let agent_mic = tone(1300.0, 25.0, 6000.0);
    let agent_phone = Baresip::start(&Phone {
        port: AGENT_PORT,
        account: format!(
            "<sip:agent7@{NS_ADDR}>;auth_pass=s3cret;outbound=\"sip:{NS_ADDR}:{sip_port}\";regint=600;answermode=auto;audio_codecs=PCMU"
        ),
        mic: &agent_mic,
    });
    let mut registered = None;
    for _ in 0..100 {
        registered = runtime.registered("agent7").await;
        if registered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        registered.is_some(),
        "the agent's phone registered to callbot"
    );
    let mut session = desk
        .login(
            AgentProfile {
                id: "agent7".into(),
                name: "Alex Agent".into(),
                skills: BTreeMap::from([("collections".to_string(), 3)]),
            },
            Endpoint::SipPhone {
                user: "agent7".into(),
            },
        )
        .await
        .expect("login");
    desk.ready("agent7").await.expect("ready");

    // The customer: greets, confirms, asks for a person (over the robot's reminder), then,
    // once with the agent, plays 700 Hz.
    let voice = |t: &str| demo::customer_voice(&engines, t).expect("tts");
    let mut mic = Vec::new();
    place(&mut mic, 0.8, &voice("Hello?"));
    place(&mut mic, 14.0, &voice("Yes."));
    place(
        &mut mic,
        21.0,
        &voice("I want to speak to a real person, please."),
    );
    place(&mut mic, 36.0, &tone(700.0, 12.0, 6000.0));
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
    let record = runtime
        .dial(Dial {
            target: telephony::sip::Uri::parse(&format!("sip:b@{peer}")).expect("uri"),
            next_hop: peer,
            flow: demo::flow().expect("flow"),
            lead,
            lead_id: Some("chloe".into()),
            campaign: Some("e2e".into()),
            phone: c.phone.clone(),
            caller_id: None,
            amd: false,
            live: None,
        })
        .await;
    let (agent_sent, agent_heard) = agent_phone.finish();
    let (_, customer_heard) = customer.finish();
    println!("{record:#?}");

    // The record: the robot, then the agent.
    assert_eq!(
        record.outcome.as_deref(),
        Some("transferred:collections"),
        "{record:#?}"
    );
    assert_eq!(record.ended_by.as_deref(), Some("agent"));
    let kinds: Vec<&str> = record.legs.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["robot", "agent"], "{:#?}", record.legs);
    let agent_leg = &record.legs[1];
    assert_eq!(agent_leg.agent_id.as_deref(), Some("agent7"));
    assert_eq!(agent_leg.queue.as_deref(), Some("collections"));
    assert_eq!(record.legs[0].ended_at, agent_leg.started_at);
    let wait_ms = agent_leg.wait_ms.expect("wait");
    println!("transfer to audio bridged: {wait_ms} ms");
    assert!(wait_ms < 5_000, "the idle agent's phone took {wait_ms} ms");
    let handover = record
        .turns
        .iter()
        .find(|t| t.text.contains("connect you"))
        .expect("the robot announced the transfer");
    assert!(
        !handover.interrupted,
        "the robot finishes its words before the agent is heard"
    );
    let stored = store.call(&record.id).await.expect("read").expect("stored");
    assert_eq!(stored.legs, record.legs);

    // What the agent was told, in order: the offer with the summary, connected, call ended.
    let mut notices = Vec::new();
    while let Ok(n) = session.notices.try_recv() {
        notices.push(n);
    }
    let offer = notices
        .iter()
        .find_map(|n| match n {
            AgentNotice::Offer {
                call,
                summary,
                customer,
                ..
            } => Some((call, summary, customer)),
            _ => None,
        })
        .expect("the agent got an offer");
    assert_eq!(offer.0, &record.id);
    assert_eq!(offer.1.queue, "collections");
    assert!(
        offer.1.reason.contains("needs help"),
        "{:?}",
        offer.1.reason
    );
    assert!(
        offer
            .1
            .transcript
            .iter()
            .any(|l| l.text.to_lowercase().contains("person")),
        "the transcript so far is in the offer: {:#?}",
        offer.1.transcript
    );
    assert_eq!(offer.2.phone, c.phone);
    assert_eq!(offer.2.lead_id.as_deref(), Some("chloe"));
    assert!(
        offer.2.lead.contains_key("amount_due"),
        "{:?}",
        offer.2.lead
    );
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, AgentNotice::Connected { call } if *call == record.id))
    );
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, AgentNotice::CallEnded { call } if *call == record.id))
    );
    let last_status = notices.iter().rev().find_map(|n| match n {
        AgentNotice::Status { status } => Some(status.clone()),
        _ => None,
    });
    assert_eq!(
        last_status,
        Some(AgentStatus::WrapUp {
            call: record.id.clone()
        })
    );

    // Audio both ways, by frequency, in each phone's own recording.
    let agent_tone_at_customer = seconds_of_tone(&customer_heard, 1300.0);
    let customer_tone_at_agent = seconds_of_tone(&agent_heard, 700.0);
    println!(
        "customer heard the agent's 1300 Hz for {agent_tone_at_customer:.1} s; the agent heard the customer's 700 Hz for {customer_tone_at_agent:.1} s"
    );
    assert!(
        seconds_of_tone(&agent_sent, 1300.0) > 10.0,
        "the agent's phone sent its tone"
    );
    assert!(agent_tone_at_customer > 5.0, "agent → customer audio");
    assert!(customer_tone_at_agent > 5.0, "customer → agent audio");
    assert!(
        seconds_of_tone(&agent_heard, 1300.0) < 1.0,
        "the agent does not hear their own tone back"
    );

    // The agent's disposition, then ready again.
    store
        .save_disposition(
            "default",
            &AgentDisposition {
                call_id: record.id.clone(),
                agent_id: "agent7".into(),
                disposition: "payment_plan".into(),
                notes: "Agreed three instalments.".into(),
                callback_at: None,
                saved_at: bot_runtime::record::now(),
            },
        )
        .await
        .expect("disposition");
    let saved = store
        .dispositions("default", &record.id)
        .await
        .expect("read dispositions");
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].disposition, "payment_plan");
    let refused = store
        .save_disposition(
            "default",
            &AgentDisposition {
                disposition: "callback".into(),
                ..saved[0].clone()
            },
        )
        .await;
    assert!(refused.is_err(), "a callback without a time is refused");
    desk.wrap_up_done("agent7").await.expect("wrap-up done");
    let snapshot = desk.snapshot().await.expect("snapshot");
    let json = serde_json::to_value(&snapshot).expect("json");
    println!("{json:#}");
}
