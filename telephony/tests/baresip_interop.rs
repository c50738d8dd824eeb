//! Audio both ways with baresip (Debian's package), a third-party SIP phone: callbot calls it, it
//! answers, plays a recording into the call and records what it hears. Checks that the audio
//! callbot sends arrives intact and that the audio baresip plays arrives intact (correlation above
//! 0.99 after decoding).
//!
//! baresip needs a non-loopback interface, so the test re-runs itself inside a network namespace
//! it creates (`unshare -n`, needs root) with a veth pair on 10.99.0.0/24; no traffic leaves the
//! namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use telephony::g711;
use telephony::media::{MediaConfig, MediaSession};
use telephony::sdp::{self, LocalMedia, Origin, Sdp};
use telephony::sip::Uri;
use telephony::sip::transport::UdpAgent;
use telephony::sip::ua::CallEvent;

const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

fn prompt(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/speech/asterisk-prompts-8k/wav")
        .join(name)
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(r.spec().sample_rate, 8000, "{}", path.display());
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

/// Best normalised correlation of `got` against `want` over lags, on windows of `window` samples
/// taken from the middle of `want`.
fn best_correlation(want: &[i16], got: &[i16], window: usize) -> f64 {
    let start = (want.len().saturating_sub(window)) / 2;
    let w = &want[start..start + window.min(want.len() - start)];
    let energy_w: f64 = w.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let mut best = 0.0f64;
    if got.len() < w.len() || energy_w == 0.0 {
        return 0.0;
    }
    for lag in 0..=(got.len() - w.len()) {
        let g = &got[lag..lag + w.len()];
        let (mut dot, mut eg) = (0.0f64, 0.0f64);
        for (a, b) in w.iter().zip(g) {
            dot += f64::from(*a) * f64::from(*b);
            eg += f64::from(*b) * f64::from(*b);
        }
        if eg > 0.0 {
            best = best.max(dot / (energy_w.sqrt() * eg.sqrt()));
        }
    }
    best
}

#[test]
fn audio_flows_both_ways_with_baresip() {
    if std::env::var_os("CALLBOT_IN_NETNS").is_none() {
        let exe = std::env::current_exe().expect("test binary");
        let setup = format!(
            "ip link set lo up && ip link add cb0 type veth peer name cb1 && ip addr add {NS_ADDR}/24 dev cb0 && ip link set cb0 up && ip link set cb1 up && exec \"$0\" --exact audio_flows_both_ways_with_baresip --nocapture --test-threads 1"
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
    rt.block_on(run_in_namespace());
}

async fn run_in_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let theirs = prompt("conf-adminmenu-162.wav"); // 21 s: longer than the call
    let ours = prompt("agent-alreadyon.wav"); // 5.5 s
    std::fs::write(
        dir.path().join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\nsip_listen {NS_ADDR}:5080\naudio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\nausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\nmodule g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {}\nmodule_app account.so\nmodule_app contact.so\nmodule_app menu.so\n",
            theirs.display(),
            dir.path().display()
        ),
    )
    .expect("config");
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:b@{NS_ADDR}:5080>;regint=0;answermode=auto;audio_codecs=PCMU\n"),
    )
    .expect("accounts");
    std::fs::write(dir.path().join("contacts"), "").expect("contacts");
    let mut baresip = Command::new("baresip")
        .args(["-4", "-f"])
        .arg(dir.path())
        .args(["-t", "25"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("baresip is installed (.ci/setup installs it)");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut agent = UdpAgent::bind(SocketAddr::new(IpAddr::V4(NS_ADDR), 0), "callbot")
        .await
        .expect("bind sip");
    let media_socket = tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(NS_ADDR), 0))
        .await
        .expect("bind rtp");
    let mut local = LocalMedia::new(
        IpAddr::V4(NS_ADDR),
        media_socket.local_addr().expect("addr").port(),
    );
    local.codecs = vec![sdp::Codec::Pcmu];
    let offer = sdp::make_offer(&local, &Origin::new("callbot", 1, 1, IpAddr::V4(NS_ADDR)));
    let peer = SocketAddr::new(IpAddr::V4(NS_ADDR), 5080);
    let target = Uri::parse(&format!("sip:b@{peer}")).expect("uri");
    let call = agent
        .invite(peer, target, offer.to_string().into_bytes(), None)
        .await
        .expect("call");
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(10), agent.next_event()).await {
            Ok(Some((_, CallEvent::Answered { sdp }))) => break sdp,
            Ok(Some((_, CallEvent::Progress { .. }))) => continue,
            other => panic!("baresip did not answer: {other:?}"),
        }
    };
    let answer = Sdp::parse_bytes(&answer).expect("answer SDP");
    let neg = sdp::negotiated_from_answer(&offer, &answer).expect("negotiated");
    // Media goes only to the namespace this test created.
    assert_eq!(neg.remote_addr, IpAddr::V4(NS_ADDR));
    assert_eq!(neg.codec, sdp::Codec::Pcmu);
    let cfg = MediaConfig {
        codec: g711::Codec::Pcmu,
        ..MediaConfig::default()
    };
    let mut session = MediaSession::start(
        media_socket,
        SocketAddr::new(neg.remote_addr, neg.remote_port),
        cfg,
    )
    .expect("media");
    let sent = read_wav(&ours);
    for chunk in sent.chunks(160) {
        let mut c = chunk.to_vec();
        c.resize(160, 0);
        session.handle.send_audio(c).await.expect("queue audio");
    }
    // Collect what baresip plays for as long as our prompt takes, plus a margin.
    let mut received: Vec<i16> = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_millis(sent.len() as u64 / 8 + 1500);
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, session.frames.recv()).await {
        received.extend_from_slice(&frame.samples);
    }
    agent.hangup(call);
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.next_event()).await;
    session.stop().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = baresip.kill();
    let _ = baresip.wait();

    // What we heard from baresip: its recording, intact.
    let theirs_pcm = read_wav(&theirs);
    let c_in = best_correlation(&received, &theirs_pcm, 16_000);
    // A different recording must not match: the check can fail.
    let other = read_wav(&prompt("demo-abouttotry.wav"));
    let c_other = best_correlation(&received, &other, 16_000);
    println!(
        "baresip → callbot: {c_in:.4} (unrelated prompt: {c_other:.4}), {} samples",
        received.len()
    );
    assert!(c_other < 0.5, "an unrelated prompt correlates {c_other:.4}");
    assert!(
        c_in > 0.99,
        "baresip → callbot correlation {c_in:.4} ({} samples received)",
        received.len()
    );

    // What baresip heard from us: the decoded side of its dump.
    let dump = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip wrote the audio it decoded (sndfile)");
    let heard = read_wav(&dump);
    let c_out = best_correlation(&sent, &heard, 16_000);
    println!(
        "callbot → baresip: {c_out:.4}, {} samples recorded",
        heard.len()
    );
    assert!(c_out > 0.99, "callbot → baresip correlation {c_out:.4}");
}

#[test]
fn baresip_registers_with_digest_at_the_registrar() {
    if std::env::var_os("CALLBOT_IN_NETNS").is_none() {
        let exe = std::env::current_exe().expect("test binary");
        let setup = format!(
            "ip link set lo up && ip link add cb0 type veth peer name cb1 && ip addr add {NS_ADDR}/24 dev cb0 && ip link set cb0 up && ip link set cb1 up && exec \"$0\" --exact baresip_registers_with_digest_at_the_registrar --nocapture --test-threads 1"
        );
        let status = Command::new("unshare")
            .args(["-n", "sh", "-c", &setup])
            .arg(&exe)
            .env("CALLBOT_IN_NETNS", "1")
            .status()
            .expect("unshare runs (needs root)");
        assert!(status.success(), "the test inside the namespace failed");
        return;
    }
    use std::collections::HashMap;
    use std::time::Instant;
    use telephony::sip::transaction::TimerConfig;
    use telephony::sip::ua::{UaConfig, UaOutput, UserAgent};

    // callbot's user agent as registrar, driven by hand over a plain socket.
    let socket =
        std::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(NS_ADDR), 5060)).expect("bind 5060");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut ua = UserAgent::new(UaConfig {
        local: socket.local_addr().expect("addr"),
        user: "registrar".into(),
        user_agent: "callbot-test".into(),
        timers: TimerConfig::default(),
    });
    ua.set_registrar_accounts(
        "callbot",
        HashMap::from([("agent7".to_string(), "s3cret".to_string())]),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config"),
        format!("module_path /usr/lib/baresip/modules\nsip_listen {NS_ADDR}:5090\naudio_player alsa,null\naudio_source alsa,null\naudio_alert alsa,null\nmodule g711.so\nmodule alsa.so\nmodule_app account.so\nmodule_app menu.so\n"),
    )
    .expect("config");
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:agent7@{NS_ADDR}>;auth_pass=s3cret;outbound=\"sip:{NS_ADDR}:5060\";regint=600\n"
        ),
    )
    .expect("accounts");
    let mut baresip = Command::new("baresip")
        .args(["-4", "-f"])
        .arg(dir.path())
        .args(["-t", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("baresip");
    let mut buf = vec![0u8; 65_535];
    let start = Instant::now();
    let mut registered = None;
    while start.elapsed() < Duration::from_secs(8) && registered.is_none() {
        let outs = match socket.recv_from(&mut buf) {
            Ok((n, from)) => ua.on_datagram(&buf[..n], from, Instant::now()),
            Err(_) => ua.on_timer(Instant::now()),
        };
        for o in outs {
            if let UaOutput::Send { to, data } = o {
                socket.send_to(&data, to).expect("send");
            }
        }
        registered = ua.lookup("agent7", Instant::now());
    }
    let _ = baresip.kill();
    let _ = baresip.wait();
    let at = registered.expect("baresip registered agent7 after the digest challenge");
    assert_eq!(
        at.ip(),
        IpAddr::V4(NS_ADDR),
        "bound to the address the REGISTER came from"
    );
    assert!(ua.lookup("nobody", Instant::now()).is_none());
}
