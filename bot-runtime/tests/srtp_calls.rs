//! SRTP (SDES) on robot calls, over real SIP/RTP on loopback with the real models: a call server
//! that requires SRTP places a call to a customer's phone (which answers SRTP when offered) and
//! the conversation runs as usual on encrypted media; a caller offering plain RTP is refused with
//! 488; a caller offering SRTP is answered with it, by that server and by a default one (SRTP
//! when offered). Plain calls to a default server are every other robot-call test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::demo;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::Speaker;
use bot_runtime::runtime::{Dial, InboundRoute, Runtime, RuntimeConfig, SrtpPolicy};
use bot_runtime::sim::Phone;
use bot_runtime::store::Store;
use callbot_models::ModelsDir;
use telephony::srtp::SrtpSuite;

async fn phone(user: &str, policy: SrtpPolicy) -> Phone {
    Phone::bind(SocketAddr::from(([127, 0, 0, 1], 0)), user)
        .await
        .expect("phone")
        .srtp(policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_calls_run_on_srtp_and_a_server_that_requires_it_refuses_plain_rtp() {
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let flow = demo::flow().expect("demo flow");
    engines.flow_nlu(&flow).expect("nlu");
    engines.prerender_flow(&flow).expect("prerender");
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("calls.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let mut cfg = RuntimeConfig::loopback();
    cfg.srtp = SrtpPolicy::Require;
    let (secure, _records) = Runtime::start(engines.clone(), cfg, Some(store.clone()))
        .await
        .expect("runtime");
    let (default, _records2) = Runtime::start(
        engines.clone(),
        RuntimeConfig::loopback(),
        Some(store.clone()),
    )
    .await
    .expect("runtime");
    let customers = demo::customers();
    let ana = customers.iter().find(|c| c.name == "Ana").expect("Ana");
    let chloe = customers.iter().find(|c| c.name == "Chloe").expect("Chloe");
    for rt in [&secure, &default] {
        let (flow, lead) = (flow.clone(), chloe.lead.as_object().cloned().expect("lead"));
        rt.set_inbound(
            Arc::new(move |_: &str| {
                Some(InboundRoute {
                    flow: flow.clone(),
                    lead: lead.clone(),
                    lead_id: Some("lead-Chloe".into()),
                    campaign: Some("srtp".into()),
                })
            }),
            None,
        );
    }

    // 1. The server that requires SRTP calls Ana: her phone answers the RTP/SAVP offer.
    let script = demo::render_script(&engines, ana).expect("script");
    let p = phone("ana", SrtpPolicy::Accept).await;
    let addr = p.local_addr();
    let answering = tokio::spawn(p.answer(script, 300));
    let record = secure
        .dial(Dial {
            target: telephony::sip::Uri::parse(&format!("sip:{}@{addr}", ana.phone)).expect("uri"),
            next_hop: addr,
            flow: flow.clone(),
            lead: ana.lead.as_object().cloned().expect("lead"),
            lead_id: Some("lead-Ana".into()),
            campaign: Some("srtp".into()),
            phone: ana.phone.clone(),
            caller_id: None,
            amd: false,
            live: None,
        })
        .await;
    let report = tokio::time::timeout(Duration::from_secs(30), answering)
        .await
        .expect("the phone's call ends")
        .expect("phone task")
        .expect("phone");
    for t in &record.turns {
        println!("  {:?}: {}", t.speaker, t.text);
    }
    assert_eq!(report.srtp, Some(SrtpSuite::AesCm128HmacSha1_80));
    let media = report.media.as_ref().expect("the phone's media stats");
    assert!(media.rtp_received > 200, "{media:?}");
    assert_eq!(media.srtp_refused, 0, "{media:?}");
    assert_eq!(
        record.outcome.as_deref(),
        Some(ana.expect_outcome),
        "{record:#?}"
    );
    let answers = ana
        .lines
        .iter()
        .filter(|l| !matches!(l, demo::ScriptLine::Greet(_)))
        .count();
    let said = record
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Customer)
        .count();
    assert!(
        said >= answers,
        "{said} customer turns for {answers} answers"
    );
    assert!(
        report.answers.iter().all(|m| m.latency_ms.is_some()),
        "the phone heard the robot answer each line: {:?}",
        report.answers
    );
    let saved = store.call(&record.id).await.expect("read").expect("saved");
    assert_eq!(saved.outcome, record.outcome);

    // 2. A caller offering plain RTP to the server that requires SRTP: 488.
    let target = |rt: &Runtime| {
        telephony::sip::Uri::parse(&format!("sip:+18005550100@{}", rt.local_addr())).expect("uri")
    };
    let plain = phone(&chloe.phone, SrtpPolicy::Accept).await;
    let err = plain
        .call(
            secure.local_addr(),
            target(&secure),
            demo::render_script(&engines, chloe).expect("script"),
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("488"), "{err}");

    // 3. A caller offering SRTP, to each server: answered with SRTP, and the flow runs.
    for rt in [&secure, &default] {
        let caller = phone(&chloe.phone, SrtpPolicy::Require).await;
        let report = caller
            .call(
                rt.local_addr(),
                target(rt),
                demo::render_script(&engines, chloe).expect("script"),
            )
            .await
            .expect("answered");
        assert_eq!(report.srtp, Some(SrtpSuite::AesCm128HmacSha1_80));
        // Chloe confirms who she is (the robot answers) and then asks for a person (a transfer,
        // which this test's servers have no queue for).
        assert!(
            report
                .answers
                .first()
                .is_some_and(|m| m.latency_ms.is_some()),
            "the robot answered over SRTP: {:?}",
            report.answers
        );
        assert_eq!(report.media.as_ref().map(|m| m.srtp_refused), Some(0));
    }
}
