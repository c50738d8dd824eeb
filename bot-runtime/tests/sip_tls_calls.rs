//! Robot calls with their signalling on SIP over TLS and their media on SRTP, on loopback with
//! the real models: the call server places a call to a customer's phone that listens for TLS
//! (a certificate made here, which the server trusts as its only CA), the SDES keys travel inside
//! TLS and the conversation runs to its outcome; a server with no CA configured cannot place a
//! call over TLS at all (recorded as a network error) and sends nothing in the clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::demo;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig, SipTlsConfig, SrtpPolicy};
use bot_runtime::sim::Phone;
use bot_runtime::store::Store;
use callbot_models::ModelsDir;
use telephony::srtp::SrtpSuite;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn identity(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("certificate");
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

fn tls(id: &(PathBuf, PathBuf), ca: Option<&Path>) -> SipTlsConfig {
    SipTlsConfig {
        bind: loopback(),
        server: Arc::new(telephony::tls::server_config(&id.0, &id.1).expect("server config")),
        client: ca.map(|ca| {
            Arc::new(telephony::tls::client_config(ca, Some((&id.0, &id.1))).expect("client"))
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_call_runs_over_sip_tls_with_srtp_and_without_a_ca_nothing_is_sent() {
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let flow = demo::flow().expect("demo flow");
    engines.flow_nlu(&flow).expect("nlu");
    engines.prerender_flow(&flow).expect("prerender");
    let work = tempfile::tempdir().expect("tempdir");
    let server_id = identity(work.path(), "server");
    let phone_id = identity(work.path(), "phone");
    let url = format!("sqlite://{}", work.path().join("calls.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let mut cfg = RuntimeConfig::loopback();
    cfg.srtp = SrtpPolicy::Require;
    cfg.sip_tls = Some(tls(&server_id, Some(&phone_id.0)));
    let (runtime, _records) = Runtime::start(engines.clone(), cfg, Some(store.clone()))
        .await
        .expect("runtime");
    let customers = demo::customers();
    let ana = customers.iter().find(|c| c.name == "Ana").expect("Ana");
    let dial = |addr: SocketAddr| Dial {
        target: telephony::sip::Uri::parse(&format!("sip:{}@{addr};transport=tls", ana.phone))
            .expect("uri"),
        next_hop: addr,
        flow: flow.clone(),
        lead: ana.lead.as_object().cloned().expect("lead"),
        lead_id: Some("lead-Ana".into()),
        campaign: Some("tls".into()),
        phone: ana.phone.clone(),
        caller_id: None,
        amd: false,
        live: None,
    };

    // 1. Over TLS to the phone's TLS listener: the call and the conversation run.
    let phone = Phone::bind_tls(loopback(), "ana", tls(&phone_id, None))
        .await
        .expect("phone");
    let addr = phone.tls_addr().expect("the phone listens for TLS");
    let script = demo::render_script(&engines, ana).expect("script");
    let answering = tokio::spawn(phone.answer(script, 300));
    let record = runtime.dial(dial(addr)).await;
    let report = tokio::time::timeout(Duration::from_secs(30), answering)
        .await
        .expect("the phone's call ends")
        .expect("phone task")
        .expect("phone");
    for t in &record.turns {
        println!("  {:?}: {}", t.speaker, t.text);
    }
    assert_eq!(
        record.outcome.as_deref(),
        Some(ana.expect_outcome),
        "{record:#?}"
    );
    assert_eq!(report.srtp, Some(SrtpSuite::AesCm128HmacSha1_80));
    assert_eq!(report.media.as_ref().map(|m| m.srtp_refused), Some(0));
    assert!(
        report.answers.iter().all(|m| m.latency_ms.is_some()),
        "the phone heard the robot answer each line: {:?}",
        report.answers
    );

    // 2. A server with a TLS listener but no CA: the call is not placed, and the phone (on TLS
    // and on UDP) hears nothing.
    let mut cfg = RuntimeConfig::loopback();
    cfg.sip_tls = Some(tls(&server_id, None));
    let (no_ca, _records) = Runtime::start(engines.clone(), cfg, Some(store.clone()))
        .await
        .expect("runtime");
    let phone = Phone::bind_tls(loopback(), "ana", tls(&phone_id, None))
        .await
        .expect("phone");
    let addr = phone.tls_addr().expect("TLS");
    let script = demo::render_script(&engines, ana).expect("script");
    let answering = tokio::spawn(phone.answer(script, 0));
    let record = no_ca.dial(dial(addr)).await;
    assert_eq!(record.disposition, "network_error", "{record:#?}");
    assert!(record.turns.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!answering.is_finished(), "the phone was called");
    answering.abort();
}
