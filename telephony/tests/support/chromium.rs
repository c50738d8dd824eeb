//! Debian's headless Chromium driven through chromedriver (WebDriver), for the tests of the
//! softphone and the agent console. Chromium and chromedriver are required (CI installs them in
//! `.ci/setup`); without them a test fails and says so. `$CHROMIUM` and `$CHROMEDRIVER` override
//! the Debian paths.
#![allow(dead_code)] // each test file uses part of it

use std::net::{Ipv4Addr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Every wait on the browser is bounded by this, so a hang is a failure and not a stuck CI.
pub const WAIT: Duration = Duration::from_secs(60);

/// Kills the child and its process group (chromedriver's Chromium) when dropped, panics
/// included: a test that fails before closing its WebDriver session leaves no browser behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn required_binary(var: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: this test needs Debian's `{package}` package (apt-get install {package}; \
         .ci/setup installs it) or ${var} pointing at the binary",
        path.display()
    );
    path
}

pub fn free_tcp_port() -> u16 {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback TCP port")
        .port()
}

/// A mono 16-bit WAV of a steady tone; Chromium loops it as the fake microphone.
pub fn write_tone_wav(path: &Path, freq: f32, rate: u32, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create the tone WAV");
    for n in 0..rate * seconds {
        let phase = 2.0 * std::f32::consts::PI * freq * n as f32 / rate as f32;
        writer
            .write_sample((phase.sin() * 12_000.0) as i16)
            .expect("write the tone WAV");
    }
    writer.finalize().expect("finish the tone WAV");
}

/// Starts chromedriver and a headless Chromium session whose fake microphone loops a
/// `mic_hz` tone (WebRTC on loopback allowed, no mDNS host names).
pub async fn start_browser(workdir: &Path, mic_hz: f32) -> (KillOnDrop, Client) {
    let chromium = required_binary("CHROMIUM", "/usr/bin/chromium", "chromium");
    let chromedriver = required_binary("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver");

    let port = free_tcp_port();
    let driver = KillOnDrop(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                workdir.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display())),
    );
    let started = Instant::now();
    while StdTcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen on port {port} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let tone = workdir.join(format!("mic-{mic_hz}hz.wav"));
    write_tone_wav(&tone, mic_hz, 48_000, 5);
    let profile = workdir.join("profile");
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--use-fake-ui-for-media-stream".to_owned(),
        "--use-fake-device-for-media-stream".to_owned(),
        format!("--use-file-for-fake-audio-capture={}", tone.display()),
        "--autoplay-policy=no-user-gesture-required".to_owned(),
        "--allow-loopback-in-peer-connection".to_owned(),
        "--disable-features=WebRtcHideLocalIpsWithMdns".to_owned(),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": chromium, "args": args }),
    );
    let client = tokio::time::timeout(
        WAIT,
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .expect("chromedriver session within 60 s")
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(workdir.join("chromedriver.log")).unwrap_or_default();
        let tail: String = log.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("start a Chromium session through chromedriver: {e}\n--- chromedriver.log (tail)\n{tail}")
    });
    (driver, client)
}

/// Run an async page function through WebDriver: `{ok: value}` or `{err: message}`.
pub async fn call_page(client: &Client, call: &str, args: Vec<Value>) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];\
         ({call}).then(v => done({{ ok: v === undefined ? null : v }}), e => done({{ err: String(e) }}));"
    );
    let reply = tokio::time::timeout(WAIT, client.execute_async(&script, args))
        .await
        .unwrap_or_else(|_| panic!("page call `{call}` within 60 s"))
        .unwrap_or_else(|e| panic!("page call `{call}`: {e}"));
    if let Some(err) = reply.get("err") {
        panic!("page call `{call}` failed: {err}");
    }
    reply.get("ok").cloned().unwrap_or(Value::Null)
}
