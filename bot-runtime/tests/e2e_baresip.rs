//! Robot conversations end to end with a third-party phone: callbot (the real runtime, real
//! models, SQLite store) dials baresip (Debian's package) over SIP; baresip answers, plays a
//! customer's recorded answers into the call and records what it hears.
//!
//! - A person: says hello, confirms who they are, and interrupts the robot's payment reminder
//!   with "I already paid". The flow must reach `already_paid`; the record must show the
//!   interrupted robot line; and in baresip's own recording the robot's audio must stop soon after
//!   the customer started speaking over it.
//! - An answering machine (real Asterisk voicemail prompts; our copy of vm-intro.wav has no tone,
//!   so the greeting ends in silence): AMD must say `machine`, and the robot must leave the flow's
//!   voicemail message only after the greeting.
//!
//! baresip needs a non-loopback interface, so the test re-runs itself inside a network namespace
//! it creates (`unshare -n`, needs root) with a veth pair on 10.99.0.0/24; nothing leaves it
//! (`tests/support/baresip.rs`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::demo;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::{CallRecord, Speaker};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use bot_runtime::store::Store;
use callbot_models::ModelsDir;

mod support;

use support::baresip::{Baresip, NS_ADDR, frame_rms, place, read_wav};

const BARESIP_PORT: u16 = 5080;

fn prompt(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/speech/asterisk-prompts-8k/wav")
        .join(name);
    read_wav(&path)
}

#[test]
fn robot_conversations_with_baresip() {
    if support::baresip::reexec_in_netns("robot_conversations_with_baresip") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(in_namespace());
}

async fn dial(runtime: &Runtime, name: &str) -> CallRecord {
    let peer = SocketAddr::new(IpAddr::V4(NS_ADDR), BARESIP_PORT);
    let c = demo::customers()
        .into_iter()
        .find(|c| c.name == name)
        .expect("demo customer");
    let lead = match c.lead {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("leads are objects"),
    };
    runtime
        .dial(Dial {
            target: telephony::sip::Uri::parse(&format!("sip:b@{peer}")).expect("uri"),
            next_hop: peer,
            flow: demo::flow().expect("flow"),
            lead,
            lead_id: Some(name.to_lowercase()),
            campaign: Some("e2e".into()),
            phone: c.phone,
            caller_id: None,
            amd: true,
            live: None,
        })
        .await
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
    cfg.recording_dir = Some(work.path().join("recordings"));
    std::fs::create_dir_all(work.path().join("recordings")).expect("dir");
    let (runtime, _records) = Runtime::start(engines.clone(), cfg, Some(store.clone()))
        .await
        .expect("runtime");

    // 1. A person who interrupts the reminder.
    let voice = |t: &str| demo::customer_voice(&engines, t).expect("tts");
    let mut mic = Vec::new();
    place(&mut mic, 0.8, &voice("Hello?"));
    place(&mut mic, 14.0, &voice("Yes, speaking."));
    let interrupt_at = 21.0;
    place(
        &mut mic,
        interrupt_at,
        &voice("Sorry, I already paid that last week."),
    );
    let baresip = Baresip::customer(&mic);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let record = dial(&runtime, "Ben").await;
    let (sent, heard) = baresip.finish();
    println!("call 1: {record:#?}");
    assert_eq!(record.disposition, "answered");
    assert!(
        record
            .sip_call_id
            .as_deref()
            .is_some_and(|c| c.contains('@')),
        "the record names the SIP call: {:?}",
        record.sip_call_id
    );
    assert_eq!(
        record.outcome.as_deref(),
        Some("already_paid"),
        "{record:#?}"
    );
    let interrupted: Vec<_> = record
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Bot && t.interrupted)
        .collect();
    assert!(
        interrupted
            .iter()
            .any(|t| t.text.contains("Can you pay it today")),
        "the reminder was cut off: {interrupted:#?}"
    );
    let said: Vec<&str> = record
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::Customer)
        .map(|t| t.text.as_str())
        .collect();
    assert!(
        said.iter()
            .any(|t| t.to_lowercase().contains("already paid")),
        "{said:?}"
    );
    // In baresip's recordings: when the customer starts talking over the robot, the robot's audio
    // stops. Find the onset in what baresip sent, then the last robot frame with speech energy.
    let sent_rms = frame_rms(&sent);
    let heard_rms = frame_rms(&heard);
    let onset = sent_rms
        .iter()
        .enumerate()
        .skip((interrupt_at * 50.0) as usize - 50)
        .find(|(_, r)| **r > 300.0)
        .map(|(i, _)| i)
        .expect("the interruption is in baresip's sent audio");
    assert!(
        heard_rms[onset.saturating_sub(25)..onset]
            .iter()
            .any(|r| *r > 300.0),
        "the robot was speaking when the customer started"
    );
    // The robot's audio must stop: a run of 1 s of silence must begin within 0.6 s of the onset.
    let stop = (onset..heard_rms.len().saturating_sub(50))
        .find(|&i| heard_rms[i..i + 50].iter().all(|r| *r < 200.0))
        .expect("the robot went quiet");
    let overlap_ms = (stop - onset) * 20;
    println!(
        "barge-in: customer onset at {:.2} s, robot quiet {overlap_ms} ms later",
        onset as f64 / 50.0
    );
    // It stopped because it was interrupted, not because its sentence ran out: the sentence
    // would have gone on for well over a second after the robot went quiet.
    let cut = interrupted
        .iter()
        .find(|t| t.text.contains("Can you pay it today"))
        .expect("the cut-off reminder");
    let whole = engines.voice.synthesize(&cut.text).expect("tts");
    let whole_ms = whole.samples.len() as u64 * 1000 / u64::from(whole.sample_rate);
    let customer = record
        .turns
        .iter()
        .find(|t| t.speaker == Speaker::Customer && t.start_ms >= cut.start_ms)
        .expect("the customer's interruption");
    let quiet_at_ms = customer.start_ms + overlap_ms as u64;
    println!(
        "the reminder started at {} ms and would have ended at {} ms; quiet at {quiet_at_ms} ms",
        cut.start_ms,
        cut.start_ms + whole_ms
    );
    assert!(
        quiet_at_ms + 1500 < cut.start_ms + whole_ms,
        "the robot finished its sentence instead of stopping: {cut:#?}"
    );
    // Promptly: typically 100–200 ms here (printed above), but how promptly is a figure for a
    // benchmark, not for a pass/fail test: a loaded CI machine once delayed it to 1.08 s. A robot
    // that ignores the customer takes seconds.
    assert!(
        overlap_ms <= 2000,
        "robot kept talking {overlap_ms} ms over the customer"
    );
    // The recording is sealed on disk (no WAV header, no audio readable), and opens through the
    // store as the two-channel call audio.
    let recording = record.recording.as_ref().expect("recording");
    let stored = std::fs::read(&recording.path).expect("the recording file");
    assert!(
        stored.starts_with(bot_runtime::vault::SEALED_FILE_MAGIC),
        "{}",
        recording.path
    );
    assert!(!stored.windows(4).any(|w| w == b"RIFF" || w == b"WAVE"));
    let wav = store
        .read_recording(recording)
        .expect("opening the recording");
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).expect("a WAV");
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.spec().sample_rate, 8000);
    assert_eq!(u64::from(reader.duration()) / 8, recording.duration_ms);
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let customer: Vec<i16> = samples.iter().step_by(2).copied().collect();
    assert!(
        frame_rms(&customer).iter().any(|r| *r > 300.0),
        "the customer's speech is in the opened recording"
    );
    assert_eq!(
        store.call(&record.id).await.expect("store").as_ref(),
        Some(&record)
    );

    // 2. An answering machine: real voicemail prompts (no tone in vm-intro.wav).
    let mut mic = Vec::new();
    place(&mut mic, 0.5, &prompt("vm-nobodyavail.wav"));
    let intro = prompt("vm-intro.wav");
    let intro_at = 0.5 + 2.79 + 0.3;
    place(&mut mic, intro_at, &intro);
    let greeting_end_s = intro_at + intro.len() as f64 / 8000.0;
    let baresip = Baresip::customer(&mic);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let record = dial(&runtime, "Dan").await;
    let (_, heard) = baresip.finish();
    println!("call 2: {record:#?}");
    assert_eq!(record.amd.as_deref(), Some("machine"), "{record:#?}");
    assert_eq!(record.disposition, "machine");
    assert_eq!(record.outcome.as_deref(), Some("voicemail_left"));
    let message = record
        .turns
        .iter()
        .find(|t| t.speaker == Speaker::Bot && t.text.contains("This message is for Dan"))
        .expect("the voicemail message was spoken");
    assert!(!message.interrupted);
    // baresip heard the robot only after the greeting.
    let heard_rms = frame_rms(&heard);
    let first_robot = heard_rms
        .iter()
        .position(|r| *r > 300.0)
        .expect("the robot spoke") as f64
        / 50.0;
    println!(
        "machine greeting ends at {greeting_end_s:.2} s; robot first heard at {first_robot:.2} s"
    );
    assert!(
        first_robot >= greeting_end_s - 0.2,
        "the robot spoke over the greeting ({first_robot:.2} s < {greeting_end_s:.2} s)"
    );
    let summaries = store.list_calls(&Default::default()).await.expect("list");
    assert_eq!(summaries.len(), 2);
}
