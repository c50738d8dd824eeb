//! The media timeout (`RuntimeConfig::media_timeout`) against a third-party phone: SIPp answers
//! the robot's call and never sends RTP, puts the call on hold with a re-INVITE (`a=inactive`)
//! 1 s after answering, resumes it (`a=sendrecv`) 8 s later and stays silent. With a 3 s media
//! timeout, callbot keeps the call through the hold (three times the timeout with no RTP) and
//! ends it — BYE, `ended_by = media_timeout` — about 3 s after the resume. The flow waits a
//! minute for an answer, so nothing but the media timeout ends the call.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use callbot_models::ModelsDir;
use telephony::sip::Uri;

mod support;
use support::sipp::Sipp;

const FLOW: &str = r#"flow: hold_test
version: 1
start: ask
handlers:
  stop_calling: opt_out
steps:
  ask:
    ask: "Is now a good time?"
    expect:
      yes: done
      no: done
    timeout: 60s
    no_match: { max: 1, then: done }
    no_input: { max: 1, then: done }
  done:
    say: "Thank you. Goodbye."
    end: done
  opt_out:
    dnc: { reason: "Customer asked not to be called" }
    say: "Understood. Goodbye."
    next: { end: opted_out }
"#;

#[test]
fn a_held_call_is_kept_and_a_silent_resumed_call_is_ended() {
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let flow = Arc::new(
        dialog_flows::load_str(FLOW, Path::new("hold_test.yaml")).unwrap_or_else(|e| panic!("{e}")),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sipp = Sipp::uas("uas_hold_resume.xml");
    let peer = sipp.addr;
    let record = rt.block_on(async {
        let mut cfg = RuntimeConfig::loopback();
        cfg.media_timeout = Some(Duration::from_secs(3));
        let (runtime, _records) = Runtime::start(engines, cfg, None).await.expect("runtime");
        tokio::time::timeout(
            Duration::from_secs(60),
            runtime.dial(Dial {
                target: Uri::parse(&format!("sip:customer@{peer}")).expect("uri"),
                next_hop: peer,
                flow,
                lead: serde_json::Map::new(),
                lead_id: None,
                campaign: None,
                phone: "+15550100001".into(),
                caller_id: None,
                amd: false,
                live: None,
            }),
        )
        .await
    });
    let Ok(record) = record else {
        panic!(
            "the call did not end within a minute; SIPp's messages:\n{}",
            sipp.log("messages.log")
        )
    };
    // SIPp's scenario passed: hold and resume answered 200, then callbot's BYE.
    let messages = sipp.finish();
    // callbot answered the hold with `inactive` and the resume with `sendrecv`, its SDP version
    // going up each time (RFC 3264 §8).
    let answers: Vec<&str> = messages
        .split("-----------------------------------------------")
        .filter(|m| m.contains("message received") && m.contains("SIP/2.0 200 OK"))
        .filter(|m| m.contains("m=audio"))
        .collect();
    let hold = answers
        .iter()
        .find(|m| m.contains("a=inactive"))
        .unwrap_or_else(|| panic!("the hold answered inactive:\n{messages}"));
    assert!(hold.contains(" 2 IN IP4"), "SDP version 2: {hold}");
    assert!(
        answers
            .iter()
            .any(|m| m.contains("a=sendrecv") && m.contains(" 3 IN IP4")),
        "the resume answered sendrecv, SDP version 3:\n{messages}"
    );
    println!("{record:#?}");
    assert_eq!(record.disposition, "answered");
    assert_eq!(record.ended_by.as_deref(), Some("media_timeout"));
    let answered = record.answered_at.expect("answered");
    let lasted = (record.ended_at - answered).num_milliseconds();
    // 1 s before the hold + 8 s on hold + 3 s of silence after (checked once a second).
    assert!(
        (11_500..15_000).contains(&lasted),
        "ended {lasted} ms after the answer"
    );
}
