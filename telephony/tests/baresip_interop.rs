//! Audio both ways with baresip (Debian's package), a third-party SIP phone: callbot calls it, it
//! answers, plays a recording into the call and records what it hears. Checks that the audio
//! callbot sends arrives intact and that the audio baresip plays arrives intact (correlation above
//! 0.99 after decoding), over plain RTP, over SRTP with SDES keys, and over SRTP with the
//! signalling on SIP over TLS.
//!
//! baresip needs a non-loopback interface, so the test re-runs itself inside a network namespace
//! it creates (`unshare -n`, needs root) with a veth pair on 10.99.0.0/24; no traffic leaves the
//! namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use telephony::g711;
use telephony::media::{MediaConfig, MediaSession};
use telephony::sdp::{self, LocalMedia, Origin, Sdp};
use telephony::sip::Uri;
use telephony::sip::transport::{SipTlsConfig, SipTransport, UdpAgent};
use telephony::sip::ua::CallEvent;
use telephony::srtp::{SrtpPolicy, SrtpSuite};

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

/// One namespace run at a time: each plays and records 20 ms audio in real time with a
/// baresip process, and three at once on two busy cores made the jitter buffer splice the audio
/// the correlation checks (seen in CI at 0.77).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Re-run the test `name` of this binary inside a new network namespace (see the module docs);
/// `false` when already inside it.
fn reran_in_namespace(name: &str) -> bool {
    if std::env::var_os("CALLBOT_IN_NETNS").is_some() {
        return false;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().expect("test binary");
    let setup = format!(
        "ip link set lo up && ip link add cb0 type veth peer name cb1 && ip addr add {NS_ADDR}/24 dev cb0 && ip link set cb0 up && ip link set cb1 up && exec \"$0\" --exact {name} --nocapture --test-threads 1"
    );
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", &setup])
        .arg(&exe)
        .env("CALLBOT_IN_NETNS", "1")
        .status()
        .expect("unshare (util-linux) runs; the test needs root for a network namespace");
    assert!(status.success(), "the test inside the namespace failed");
    true
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn audio_flows_both_ways_with_baresip() {
    if !reran_in_namespace("audio_flows_both_ways_with_baresip") {
        block_on(run_in_namespace(false, false));
    }
}

/// The same call with SRTP: baresip's account requires it (`mediaenc=srtp-mand`, its `srtp`
/// module, SDES keys), callbot offers `RTP/SAVP` with its crypto lines. Audio must arrive intact
/// both ways (each side decrypting the other's packets), and what crosses the wire from baresip,
/// captured by a relay in front of callbot's media socket, must not be the audio in the clear.
#[test]
fn srtp_audio_flows_both_ways_with_baresip() {
    if !reran_in_namespace("srtp_audio_flows_both_ways_with_baresip") {
        block_on(run_in_namespace(true, false));
    }
}

/// The same SRTP call with its signalling over TLS, so that the SDES keys in the SDP are not
/// readable on the wire: baresip listens for TLS (its `sip_certificate`, a certificate made here
/// for its address) and callbot places the call to its TLS port, trusting only that certificate.
#[test]
fn tls_signalling_and_srtp_media_with_baresip() {
    if !reran_in_namespace("tls_signalling_and_srtp_media_with_baresip") {
        block_on(run_in_namespace(true, true));
    }
}

/// Forward every datagram arriving at `relay` to `to`, keeping a copy of each.
async fn sniff(relay: tokio::net::UdpSocket, to: SocketAddr, seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, _)) = relay.recv_from(&mut buf).await {
        seen.lock().expect("lock").push(buf[..n].to_vec());
        let _ = relay.send_to(&buf[..n], to).await;
    }
}

async fn run_in_namespace(srtp: bool, tls: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    // With TLS, baresip serves a certificate for its address (key and certificate in one PEM
    // file, as it reads them); TLS listens on its SIP port + 1.
    let tls_line = if tls {
        let ck = rcgen::generate_simple_self_signed(vec![NS_ADDR.to_string()]).expect("cert");
        std::fs::write(dir.path().join("baresip.crt"), ck.cert.pem()).expect("cert");
        std::fs::write(
            dir.path().join("baresip.pem"),
            format!("{}{}", ck.signing_key.serialize_pem(), ck.cert.pem()),
        )
        .expect("pem");
        let ours = rcgen::generate_simple_self_signed(vec![NS_ADDR.to_string()]).expect("cert");
        std::fs::write(dir.path().join("callbot.crt"), ours.cert.pem()).expect("cert");
        std::fs::write(
            dir.path().join("callbot.key"),
            ours.signing_key.serialize_pem(),
        )
        .expect("key");
        format!(
            "sip_certificate {}\n",
            dir.path().join("baresip.pem").display()
        )
    } else {
        String::new()
    };
    let theirs = prompt("conf-adminmenu-162.wav"); // 21 s: longer than the call
    let ours = prompt("agent-alreadyon.wav"); // 5.5 s
    let (srtp_module, mediaenc) = if srtp {
        ("module srtp.so\n", ";mediaenc=srtp-mand")
    } else {
        ("", "")
    };
    std::fs::write(
        dir.path().join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\nsip_listen {NS_ADDR}:5080\naudio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\nausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\nmodule g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\n{srtp_module}{tls_line}snd_path {}\nmodule_app account.so\nmodule_app contact.so\nmodule_app menu.so\n",
            theirs.display(),
            dir.path().display()
        ),
    )
    .expect("config");
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:b@{NS_ADDR}:5080>;regint=0;answermode=auto;audio_codecs=PCMU{mediaenc}\n"),
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

    let tls_cfg = tls.then(|| {
        let d = dir.path();
        SipTlsConfig {
            bind: SocketAddr::new(IpAddr::V4(NS_ADDR), 0),
            server: Arc::new(
                telephony::tls::server_config(&d.join("callbot.crt"), &d.join("callbot.key"))
                    .expect("server config"),
            ),
            client: Some(Arc::new(
                telephony::tls::client_config(&d.join("baresip.crt"), None).expect("client"),
            )),
        }
    });
    let mut agent =
        UdpAgent::bind_with_tls(SocketAddr::new(IpAddr::V4(NS_ADDR), 0), "callbot", tls_cfg)
            .await
            .expect("bind sip");
    let media_socket = tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(NS_ADDR), 0))
        .await
        .expect("bind rtp");
    // With SRTP, the SDP names a relay that copies what baresip sends before passing it on.
    let sniffed = Arc::new(Mutex::new(Vec::new()));
    let advertised = if srtp {
        let relay = tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(NS_ADDR), 0))
            .await
            .expect("bind relay");
        let port = relay.local_addr().expect("addr").port();
        let to = media_socket.local_addr().expect("addr");
        tokio::spawn(sniff(relay, to, sniffed.clone()));
        port
    } else {
        media_socket.local_addr().expect("addr").port()
    };
    let mut local = LocalMedia::new(IpAddr::V4(NS_ADDR), advertised);
    local.codecs = vec![sdp::Codec::Pcmu];
    if srtp {
        local.srtp = SrtpPolicy::Require;
    }
    let offer = sdp::make_offer(&local, &Origin::new("callbot", 1, 1, IpAddr::V4(NS_ADDR)));
    let (peer, target, transport) = if tls {
        let peer = SocketAddr::new(IpAddr::V4(NS_ADDR), 5081);
        let target = format!("sip:b@{peer};transport=tls");
        (peer, target, SipTransport::Tls)
    } else {
        let peer = SocketAddr::new(IpAddr::V4(NS_ADDR), 5080);
        (peer, format!("sip:b@{peer}"), SipTransport::Udp)
    };
    let target = Uri::parse(&target).expect("uri");
    if tls {
        // UDP retransmits an INVITE sent before baresip is up; a TLS connection cannot be made
        // before it listens (its first start, with cold caches, can take a few seconds).
        let ready = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(peer).await.is_err() {
            assert!(
                tokio::time::Instant::now() < ready,
                "baresip listens for TLS on {peer}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let call = agent
        .invite_over(
            peer,
            transport,
            target,
            offer.to_string().into_bytes(),
            None,
        )
        .await
        .expect("the INVITE left (over TLS: baresip's certificate trusted)");
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
    assert_eq!(
        neg.srtp.is_some(),
        srtp,
        "SRTP agreed exactly when offered: {:?}",
        neg.srtp
    );
    if let Some(keys) = &neg.srtp {
        println!("baresip chose {}", keys.suite);
        assert_eq!(answer.media[0].proto, "RTP/SAVP");
    }
    let cfg = MediaConfig {
        codec: g711::Codec::Pcmu,
        srtp: neg.srtp.clone(),
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
    let stats = session.stop().await;
    println!(
        "received {} RTP packets, {} refused by SRTP",
        stats.rtp_received, stats.srtp_refused
    );
    assert_eq!(stats.srtp_refused, 0, "every packet authenticated");
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

    if srtp {
        // On the wire, baresip's packets are SRTP: the RTP header in the clear (version 2,
        // PCMU), the payload not. Read as plain PCMU, the payloads are noise.
        let sniffed = sniffed.lock().expect("lock").clone();
        let rtp: Vec<&Vec<u8>> = sniffed
            .iter()
            .filter(|p| p.len() > 12 && p[0] >> 6 == 2 && p[1] & 0x7f == 0)
            .collect();
        assert!(
            rtp.len() > 200,
            "the relay saw baresip's RTP ({} packets)",
            rtp.len()
        );
        let tag = match neg.srtp.as_ref().map(|k| k.suite) {
            Some(SrtpSuite::AesCm128HmacSha1_32 | SrtpSuite::AesCm256HmacSha1_32) => 4,
            _ => 10,
        };
        assert!(
            rtp.iter().all(|p| p.len() == 12 + 160 + tag),
            "each packet carries 20 ms and an authentication tag of {tag} bytes"
        );
        let as_plain: Vec<i16> = rtp
            .iter()
            .flat_map(|p| p[12..12 + 160].iter().map(|&b| g711::ulaw_to_linear(b)))
            .collect();
        let c_wire = best_correlation(&as_plain, &theirs_pcm, 16_000);
        println!("baresip's payloads on the wire read as plain PCMU: {c_wire:.4}");
        assert!(
            c_wire < 0.3,
            "the audio crossed the wire in the clear ({c_wire:.4})"
        );
    }
}

#[test]
fn baresip_registers_with_digest_at_the_registrar() {
    if reran_in_namespace("baresip_registers_with_digest_at_the_registrar") {
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
