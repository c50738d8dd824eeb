//! Cold transfer (SIP REFER, RFC 3515) end to end, on 127.0.0.1 with a third-party SIP peer:
//! callbot (the real runtime with the real models) dials SIPp (Debian's `sip-tester`), which
//! plays the customer's phone. The flow's first step says one sentence and then transfers the
//! call to `+442071234567`:
//!
//! - the customer's side accepts (202), and its NOTIFY says the target answered (sipfrag 200):
//!   the robot hangs up its leg (BYE, RFC 5589) and the record says `cold_transferred:<to>`;
//! - the customer's side refuses the REFER (603): the flow's `on_failure` step speaks and ends
//!   the call;
//! - the customer's side accepts, but the target is busy (NOTIFY with sipfrag 486): the same.
//!
//! The REFER's Refer-To must carry the number at the host the customer was dialled at; SIPp
//! checks it with a regular expression (a mismatch fails its scenario) and the test reads it from
//! SIPp's message log.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::{CallRecord, Speaker};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use callbot_models::ModelsDir;
use dialog_flows::Flow;
use telephony::sip::Uri;

mod support;
use support::sipp::Sipp;

const TARGET: &str = "+442071234567";

const FLOW: &str = r#"flow: cold_transfer_test
version: 1
lead:
  first_name: text
start: handover
steps:
  handover:
    say: "Hello {{lead.first_name}}, I am connecting you to our mortgage team."
    transfer:
      to: "+44 20 7123 4567"
      reason: "Mortgage question from {{lead.first_name}}"
      on_failure: sorry
  sorry:
    say: "Sorry, I could not connect you. Goodbye."
    end: not_connected
"#;

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

/// One call at a time: the robot's timing should not depend on the other tests' synthesis.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn flow() -> Arc<Flow> {
    Arc::new(
        dialog_flows::load_str(FLOW, Path::new("cold_transfer_test.yaml"))
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// Dials SIPp running `scenario_file` and runs the call to its end; returns the record and
/// SIPp's message log (after checking that SIPp's scenario passed).
fn call(scenario_file: &str) -> (CallRecord, String, SocketAddr) {
    let _one_at_a_time = serial();
    let engines = engines();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sipp = Sipp::uas(scenario_file);
    let peer = sipp.addr;
    let record = rt.block_on(async {
        let (runtime, _records) = Runtime::start(engines, RuntimeConfig::loopback(), None)
            .await
            .expect("runtime");
        let serde_json::Value::Object(lead) = serde_json::json!({"first_name": "Ana"}) else {
            panic!("leads are objects")
        };
        tokio::time::timeout(
            Duration::from_secs(60),
            runtime.dial(Dial {
                target: Uri::parse(&format!("sip:customer@{peer}")).expect("uri"),
                next_hop: peer,
                flow: flow(),
                lead,
                lead_id: Some("ana".into()),
                campaign: Some("cold".into()),
                phone: "+15550100001".into(),
                caller_id: None,
                amd: false,
                live: None,
            }),
        )
        .await
        .expect("the call ended within a minute")
    });
    println!("{record:#?}");
    let messages = sipp.finish();
    (record, messages, peer)
}

/// The REFER SIPp received, from its message log.
fn refer(messages: &str) -> &str {
    let start = messages
        .find("REFER sip:")
        .unwrap_or_else(|| panic!("SIPp received no REFER:\n{messages}"));
    let rest = &messages[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

fn bot_lines(record: &CallRecord) -> Vec<&str> {
    record
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Bot)
        .map(|t| t.text.as_str())
        .collect()
}

#[test]
fn an_accepted_refer_hands_the_call_over_and_the_robot_hangs_up() {
    let (record, messages, peer) = call("uas_refer_accept.xml");
    let refer = refer(&messages);
    let want = format!("Refer-To: <sip:{TARGET}@{peer}>");
    assert!(
        refer.lines().any(|l| l.trim() == want),
        "expected `{want}` in the REFER:\n{refer}"
    );
    assert!(refer.contains("Referred-By:"), "{refer}");
    assert_eq!(
        record.outcome.as_deref(),
        Some("cold_transferred:+442071234567"),
        "{record:#?}"
    );
    assert_eq!(record.ended_by.as_deref(), Some("bot"));
    assert_eq!(record.path, ["handover"]);
    let kinds: Vec<&str> = record.legs.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["robot"]);
    // The robot said its sentence to the end before handing over.
    let said = record
        .turns
        .iter()
        .find(|t| t.speaker == Speaker::Bot)
        .expect("the robot spoke");
    assert_eq!(
        said.text,
        "Hello Ana, I am connecting you to our mortgage team."
    );
    assert!(!said.interrupted, "{said:#?}");
    assert!(
        said.end_ms - said.start_ms > 1500,
        "the sentence played for {} ms",
        said.end_ms - said.start_ms
    );
    assert_eq!(bot_lines(&record).len(), 1, "{record:#?}");
    // The BYE came from the robot, after the NOTIFY: SIPp's scenario waits for it (checked by
    // `finish`), and the log shows it.
    let notify = messages.find("NOTIFY sip:").expect("a NOTIFY was sent");
    let bye = messages.find("BYE sip:").expect("SIPp received a BYE");
    assert!(bye > notify, "the BYE came before the NOTIFY");
    // The dialer files it as a transfer.
    assert_eq!(
        bot_runtime::dialer::service::disposition_of(&record, false, false),
        "transferred"
    );
}

#[test]
fn a_refused_refer_runs_the_flows_on_failure_step() {
    let (record, messages, peer) = call("uas_refer_refuse.xml");
    let refer = refer(&messages);
    assert!(
        refer.contains(&format!("Refer-To: <sip:{TARGET}@{peer}>")),
        "{refer}"
    );
    assert!(messages.contains("SIP/2.0 603 Decline"));
    assert_eq!(
        record.outcome.as_deref(),
        Some("not_connected"),
        "{record:#?}"
    );
    assert_eq!(record.path, ["handover", "sorry"]);
    assert_eq!(record.ended_by.as_deref(), Some("bot"));
    assert_eq!(
        bot_lines(&record),
        [
            "Hello Ana, I am connecting you to our mortgage team.",
            "Sorry, I could not connect you. Goodbye."
        ],
        "{record:#?}"
    );
    assert_eq!(
        bot_runtime::dialer::service::disposition_of(&record, false, false),
        "completed"
    );
}

#[test]
fn a_transfer_whose_target_is_busy_runs_the_flows_on_failure_step() {
    let (record, messages, _) = call("uas_refer_target_busy.xml");
    assert!(messages.contains("SIP/2.0 202 Accepted"));
    assert!(messages.contains("SIP/2.0 486 Busy Here"));
    assert_eq!(
        record.outcome.as_deref(),
        Some("not_connected"),
        "{record:#?}"
    );
    assert_eq!(record.path, ["handover", "sorry"]);
    assert_eq!(
        bot_lines(&record).last(),
        Some(&"Sorry, I could not connect you. Goodbye."),
        "{record:#?}"
    );
}
