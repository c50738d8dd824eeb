//! Inbound calls over real SIP/RTP on loopback: a customer calling back the campaign's number is
//! matched to their lead by the caller's number and runs the campaign's flow with that lead's
//! data; an unknown number runs the generic inbound flow; a router that declines gets 404. The
//! same pipeline and the same call records (saved to SQLite) as outbound calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use bot_runtime::demo::{self, ScriptLine};
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::{Direction, Speaker};
use bot_runtime::runtime::{InboundRoute, Runtime, RuntimeConfig};
use bot_runtime::sim::{Phone, Script};
use bot_runtime::store::Store;
use callbot_models::ModelsDir;

const GENERAL: &str = include_str!("../../dialog-flows/flows/inbound_general.yaml");

async fn phone(number: &str) -> Phone {
    Phone::bind(SocketAddr::from(([127, 0, 0, 1], 0)), number)
        .await
        .expect("phone")
}

fn target(rt: &Runtime) -> telephony::sip::Uri {
    telephony::sip::Uri::parse(&format!("sip:+18005550100@{}", rt.local_addr())).expect("uri")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_matched_to_their_lead_or_get_the_generic_flow() {
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let reminder = demo::flow().expect("demo flow");
    let general = Arc::new(
        dialog_flows::load_str(GENERAL, std::path::Path::new("inbound_general.yaml"))
            .expect("generic inbound flow"),
    );
    engines.flow_nlu(&reminder).expect("nlu");
    engines.prerender_flow(&reminder).expect("prerender");
    engines.prerender_flow(&general).expect("prerender");
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("calls.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));
    let (runtime, mut records) = Runtime::start(
        engines.clone(),
        RuntimeConfig::loopback(),
        Some(store.clone()),
    )
    .await
    .expect("runtime");

    // Ana, a lead of the reminder campaign, calls back; +1555999xxxx numbers are refused; any
    // other number gets the generic flow.
    let ana = demo::customers()
        .into_iter()
        .find(|c| c.name == "Ana")
        .expect("Ana");
    let ana_number = ana.phone.clone();
    let ana_lead = ana.lead.as_object().cloned().expect("lead");
    let (reminder2, general2) = (reminder.clone(), general.clone());
    runtime.set_inbound(
        Arc::new(move |number: &str| {
            if number == ana_number {
                Some(InboundRoute {
                    flow: reminder2.clone(),
                    lead: ana_lead.clone(),
                    lead_id: Some("lead-ana".into()),
                    campaign: Some("reminders".into()),
                })
            } else if number.starts_with("+1555999") {
                None
            } else {
                Some(InboundRoute {
                    flow: general2.clone(),
                    lead: serde_json::Map::new(),
                    lead_id: None,
                    campaign: None,
                })
            }
        }),
        None,
    );

    // 1. Ana: the robot speaks first on an inbound call, so her script starts with her answers.
    let mut script_customer = ana.clone();
    script_customer
        .lines
        .retain(|l| !matches!(l, ScriptLine::Greet(_)));
    let script = demo::render_script(&engines, &script_customer).expect("script");
    let report = phone(&ana.phone)
        .await
        .call(runtime.local_addr(), target(&runtime), script)
        .await
        .expect("Ana's call is answered");
    let record = records.recv().await.expect("a record");
    println!("{record:#?}");
    assert_eq!(record.direction, Direction::Inbound);
    assert_eq!(record.phone, ana.phone);
    assert_eq!(record.lead_id.as_deref(), Some("lead-ana"));
    assert_eq!(record.campaign.as_deref(), Some("reminders"));
    assert_eq!(record.flow, "card_payment_reminder");
    assert_eq!(
        record.outcome.as_deref(),
        Some(ana.expect_outcome),
        "{record:#?}"
    );
    let bot: Vec<&str> = record
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Bot)
        .map(|t| t.text.as_str())
        .collect();
    assert!(
        bot.iter().any(|t| t.contains("Ana")),
        "the lead's data is used: {bot:?}"
    );
    assert!(
        record
            .turns
            .iter()
            .any(|t| t.speaker == Speaker::Customer && t.latency.is_some()),
        "customer turns are timed"
    );
    assert!(report.remote_hangup, "the robot ends the call");
    assert!(report.sip_call_id.is_some());
    assert_eq!(
        record.sip_call_id, report.sip_call_id,
        "the record names the SIP call"
    );
    assert!(report.answers.iter().all(|m| m.latency_ms.is_some()));
    let saved = store.call(&record.id).await.expect("store").expect("saved");
    assert_eq!(saved.direction, Direction::Inbound);
    assert_eq!(saved.lead_id.as_deref(), Some("lead-ana"));

    // 2. An unknown caller: the generic flow, no lead.
    let script = Script {
        name: "stranger".into(),
        lines: Vec::new(),
        answer_gap_ms: 900,
        linger_ms: 30_000,
    };
    let report = phone("+15550123456")
        .await
        .call(runtime.local_addr(), target(&runtime), script)
        .await
        .expect("the stranger's call is answered");
    let record = records.recv().await.expect("a record");
    assert_eq!(record.direction, Direction::Inbound);
    assert_eq!(record.phone, "+15550123456");
    assert_eq!(record.lead_id, None);
    assert_eq!(record.flow, "inbound_general");
    assert_eq!(record.outcome.as_deref(), Some("unknown_caller"));
    assert!(report.remote_hangup);
    let voiced = report
        .heard
        .chunks(160)
        .filter(|f| {
            let e: f64 = f.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            (e / f.len() as f64).sqrt() > 250.0
        })
        .count();
    assert!(
        voiced > 100,
        "the caller heard the robot ({voiced} voiced frames)"
    );

    // 3. A number the router declines: 404, no call runs.
    let script = Script {
        name: "declined".into(),
        lines: Vec::new(),
        answer_gap_ms: 900,
        linger_ms: 1000,
    };
    let err = phone("+15559990000")
        .await
        .call(runtime.local_addr(), target(&runtime), script)
        .await
        .expect_err("declined");
    assert!(err.to_string().contains("404"), "{err}");
    assert!(records.try_recv().is_err(), "no record for a refused call");
}
