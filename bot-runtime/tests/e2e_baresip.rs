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
//! it creates (`unshare -n`, needs root) with a veth pair on 10.99.0.0/24; nothing leaves it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::demo;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::{CallRecord, Speaker};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use bot_runtime::store::Store;
use callbot_models::ModelsDir;

const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const BARESIP_PORT: u16 = 5080;

fn prompt(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/speech/asterisk-prompts-8k/wav")
        .join(name);
    read_wav(&path)
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(r.spec().sample_rate, 8000, "{}", path.display());
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for &s in samples {
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("wav");
}

/// Places `audio` at `at_s` seconds in `track`.
fn place(track: &mut Vec<i16>, at_s: f64, audio: &[i16]) {
    let at = (at_s * 8000.0) as usize;
    if track.len() < at + audio.len() {
        track.resize(at + audio.len(), 0);
    }
    track[at..at + audio.len()].copy_from_slice(audio);
}

/// RMS of each 20 ms frame.
fn frame_rms(audio: &[i16]) -> Vec<f64> {
    audio
        .chunks(160)
        .map(|f| {
            (f.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / f.len() as f64).sqrt()
        })
        .collect()
}

struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip answering automatically and playing `mic` (padded so that it outlasts the
    /// call: baresip hangs up when its audio file ends).
    fn start(mic: &[i16]) -> Baresip {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut padded = mic.to_vec();
        padded.resize(padded.len() + 8000 * 60, 0);
        let mic_path = dir.path().join("mic.wav");
        write_wav(&mic_path, &padded);
        std::fs::write(
            dir.path().join("config"),
            format!(
                "module_path /usr/lib/baresip/modules\nsip_listen {NS_ADDR}:{BARESIP_PORT}\naudio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\nausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\nmodule g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {}\nmodule_app account.so\nmodule_app contact.so\nmodule_app menu.so\n",
                mic_path.display(),
                dir.path().display()
            ),
        )
        .expect("config");
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:b@{NS_ADDR}:{BARESIP_PORT}>;regint=0;answermode=auto;audio_codecs=PCMU\n"
            ),
        )
        .expect("accounts");
        std::fs::write(dir.path().join("contacts"), "").expect("contacts");
        // baresip 1.0's only sound-card-free player (ALSA's null PCM) never blocks, so its
        // player threads spin on both cores. On a real line the phone is not on callbot's CPU:
        // `nice` keeps the spinning from starving callbot's recogniser (baresip's sending thread
        // sleeps between packets, so its timing is unaffected).
        let child = Command::new("nice")
            .args(["-n", "19", "baresip", "-4", "-f"])
            .arg(dir.path())
            .args(["-t", "120"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip is installed (.ci/setup installs it)");
        Baresip { child, dir }
    }

    /// Stops baresip and returns (what it sent, what it heard).
    fn finish(mut self) -> (Vec<i16>, Vec<i16>) {
        std::thread::sleep(Duration::from_millis(1000));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let find = |suffix: &str| -> PathBuf {
            std::fs::read_dir(self.dir.path())
                .expect("dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.to_string_lossy().ends_with(suffix))
                .unwrap_or_else(|| panic!("baresip wrote no *{suffix} (sndfile)"))
        };
        (read_wav(&find("-enc.wav")), read_wav(&find("-dec.wav")))
    }
}

#[test]
fn robot_conversations_with_baresip() {
    if std::env::var_os("CALLBOT_IN_NETNS").is_none() {
        let exe = std::env::current_exe().expect("test binary");
        let setup = format!(
            "ip link set lo up && ip link add cb0 type veth peer name cb1 && ip addr add {NS_ADDR}/24 dev cb0 && ip link set cb0 up && ip link set cb1 up && exec \"$0\" --exact robot_conversations_with_baresip --nocapture --test-threads 1"
        );
        let status = Command::new("unshare")
            .args(["-n", "sh", "-c", &setup])
            .arg(&exe)
            .env("CALLBOT_IN_NETNS", "1")
            .status()
            .expect("unshare (util-linux) runs; the test needs root for a network namespace");
        assert!(status.success(), "the test inside the namespace failed");
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
    let baresip = Baresip::start(&mic);
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
    assert!(
        overlap_ms <= 600,
        "robot kept talking {overlap_ms} ms over the customer"
    );
    let recording = record.recording.as_ref().expect("recording");
    assert!(Path::new(&recording.path).is_file());
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
    let baresip = Baresip::start(&mic);
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
