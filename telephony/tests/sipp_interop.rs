//! Interoperability with SIPp (Debian's `sip-tester`), a third-party SIP implementation, on
//! 127.0.0.1: callbot's user agent places calls to SIPp acting as a trunk that answers, is busy,
//! rejects, does not answer or challenges for credentials, and takes a call from SIPp as a caller.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use telephony::sip::Uri;
use telephony::sip::transport::UdpAgent;
use telephony::sip::ua::{CallEvent, Credentials};

const OFFER: &str = "v=0\r\no=callbot 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A free UDP port on 127.0.0.1 (bound and released; SIPp binds it right after).
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

struct Sipp(Child);

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sipp(args: &[&str]) -> Sipp {
    let child = Command::new("sipp")
        .args(args)
        .args([
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
            "-max_recv_loops",
            "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp is installed (Debian package sip-tester; .ci/setup installs it)");
    // Give SIPp time to bind its socket.
    std::thread::sleep(Duration::from_millis(300));
    Sipp(child)
}

fn sipp_uas(scenario_arg: &[&str]) -> (Sipp, SocketAddr) {
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["-i", "127.0.0.1", "-p", &p, "-m", "1"];
    args.extend_from_slice(scenario_arg);
    let s = sipp(&args);
    (s, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn finished_ok(mut s: Sipp) -> bool {
    for _ in 0..100 {
        if let Ok(Some(status)) = s.0.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

async fn event(agent: &mut UdpAgent) -> CallEvent {
    tokio::time::timeout(Duration::from_secs(20), agent.next_event())
        .await
        .expect("an event in time")
        .expect("agent running")
        .1
}

async fn agent() -> UdpAgent {
    UdpAgent::bind("127.0.0.1:0".parse().expect("addr"), "callbot")
        .await
        .expect("bind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_sipp_is_answered_acked_and_hung_up() {
    let (s, addr) = sipp_uas(&["-sn", "uas"]);
    let mut a = agent().await;
    let target = Uri::parse(&format!("sip:4155550100@{addr}")).expect("uri");
    let call = a
        .invite(addr, target, OFFER.as_bytes().to_vec(), None)
        .await
        .expect("call");
    let e = event(&mut a).await;
    assert!(
        matches!(e, CallEvent::Progress { status: 180, .. }),
        "{e:?}"
    );
    let e = event(&mut a).await;
    let CallEvent::Answered { sdp } = e else {
        panic!("{e:?}")
    };
    assert!(
        String::from_utf8_lossy(&sdp).contains("m=audio"),
        "SDP answer"
    );
    a.hangup(call);
    assert_eq!(event(&mut a).await, CallEvent::Ended { remote: false });
    assert!(
        finished_ok(s),
        "SIPp counted the call as successful (ACK and BYE as expected)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_not_found_unavailable_and_declined_are_reported_and_acked() {
    for (file, code) in [
        ("uas_busy.xml", 486),
        ("uas_notfound.xml", 404),
        ("uas_unavailable.xml", 503),
        ("uas_decline.xml", 603),
    ] {
        let sf = scenario(file);
        let (s, addr) = sipp_uas(&["-sf", sf.to_str().expect("path")]);
        let mut a = agent().await;
        let target = Uri::parse(&format!("sip:4155550100@{addr}")).expect("uri");
        a.invite(addr, target, OFFER.as_bytes().to_vec(), None)
            .await
            .expect("call");
        let e = event(&mut a).await;
        assert!(
            matches!(e, CallEvent::Failed { status, .. } if status == code),
            "{file}: {e:?}"
        );
        assert!(finished_ok(s), "{file}: SIPp received our ACK");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_is_cancelled() {
    let sf = scenario("uas_noanswer.xml");
    let (s, addr) = sipp_uas(&["-sf", sf.to_str().expect("path")]);
    let mut a = agent().await;
    let target = Uri::parse(&format!("sip:4155550100@{addr}")).expect("uri");
    let call = a
        .invite(addr, target, OFFER.as_bytes().to_vec(), None)
        .await
        .expect("call");
    assert!(matches!(
        event(&mut a).await,
        CallEvent::Progress { status: 180, .. }
    ));
    // The dialer's no-answer timeout (shortened here) hangs up a ringing call: CANCEL.
    a.hangup(call);
    let e = event(&mut a).await;
    assert!(matches!(e, CallEvent::Failed { status: 487, .. }), "{e:?}");
    assert!(finished_ok(s), "SIPp got CANCEL and the ACK for 487");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_challenge_is_answered_with_digest_credentials() {
    let sf = scenario("uas_auth.xml");
    let (s, addr) = sipp_uas(&["-sf", sf.to_str().expect("path")]);
    let mut a = agent().await;
    let target = Uri::parse(&format!("sip:4155550100@{addr}")).expect("uri");
    let creds = Credentials {
        username: "callbot".into(),
        password: "s3cret".into(),
    };
    let call = a
        .invite(addr, target, OFFER.as_bytes().to_vec(), Some(creds))
        .await
        .expect("call");
    let e = event(&mut a).await;
    assert!(
        matches!(e, CallEvent::Answered { .. }),
        "SIPp verified the digest: {e:?}"
    );
    a.hangup(call);
    assert_eq!(event(&mut a).await, CallEvent::Ended { remote: false });
    assert!(finished_ok(s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_sipp_is_answered_and_ended_by_the_caller() {
    let mut a = agent().await;
    let ours = a.local_addr().to_string();
    let port = free_port().to_string();
    let s = sipp(&[
        "-sn",
        "uac",
        &ours,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-m",
        "1",
        "-d",
        "200",
    ]);
    let (call, e) = tokio::time::timeout(Duration::from_secs(20), a.next_event())
        .await
        .expect("in time")
        .expect("event");
    let CallEvent::Incoming { sdp, .. } = e else {
        panic!("{e:?}")
    };
    assert!(String::from_utf8_lossy(&sdp).contains("m=audio"));
    a.accept(call, OFFER.as_bytes().to_vec());
    assert_eq!(event(&mut a).await, CallEvent::Confirmed);
    assert_eq!(event(&mut a).await, CallEvent::Ended { remote: true });
    assert!(
        finished_ok(s),
        "SIPp's call succeeded: 200 OK, ACK, BYE answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_transfer_by_refer_reports_the_notified_result() {
    let sf = scenario("uas_refer.xml");
    let (s, addr) = sipp_uas(&["-sf", sf.to_str().expect("path")]);
    let mut a = agent().await;
    let target = Uri::parse(&format!("sip:4155550100@{addr}")).expect("uri");
    let call = a
        .invite(addr, target, OFFER.as_bytes().to_vec(), None)
        .await
        .expect("call");
    assert!(matches!(event(&mut a).await, CallEvent::Answered { .. }));
    a.refer(
        call,
        Uri::parse("sip:+14155550199@pbx.bank.test").expect("uri"),
    );
    assert_eq!(event(&mut a).await, CallEvent::ReferAccepted);
    assert_eq!(
        event(&mut a).await,
        CallEvent::ReferProgress { status: 200 }
    );
    a.hangup(call);
    assert_eq!(event(&mut a).await, CallEvent::Ended { remote: false });
    assert!(
        finished_ok(s),
        "SIPp saw REFER, our 200 for its NOTIFY, and the BYE"
    );
}

/// A-law samples of the `data` chunk of a WAV with format tag 6 (hound cannot read A-law).
fn alaw_wav(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("wav");
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let len =
            u32::from_le_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]]) as usize;
        if id == b"data" {
            let end = (i + 8 + len).min(bytes.len());
            return bytes[i + 8..end]
                .iter()
                .map(|&b| telephony::g711::alaw_to_linear(b))
                .collect();
        }
        i += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// Lay the received frames that are not `concealed` out on the RTP timeline, from the first such
/// frame, up to `len` samples (the DTMF pcap that follows the audio is another stream). Returns
/// the signal and which of its samples were received, with `len` unreceived samples of margin on
/// both sides so that a correlation can slide past either end.
fn timeline(frames: &[telephony::media::PcmFrame], len: usize) -> (Vec<i16>, Vec<bool>) {
    let mut sig = vec![0i16; 3 * len];
    let mut mask = vec![false; 3 * len];
    let mut real = frames.iter().filter(|f| !f.concealed);
    let Some(first) = real.next() else {
        return (sig, mask);
    };
    for f in std::iter::once(first).chain(real) {
        let at = f.timestamp.wrapping_sub(first.timestamp) as usize;
        if at + f.samples.len() > len {
            continue;
        }
        sig[len + at..len + at + f.samples.len()].copy_from_slice(&f.samples);
        mask[len + at..len + at + f.samples.len()].fill(true);
    }
    (sig, mask)
}

/// Best normalised correlation of `want` against `got` over `lags`, counting only the samples of
/// `got` that were received, with the share of `want` they cover at that lag.
fn masked_correlation(
    want: &[i16],
    got: &[i16],
    mask: &[bool],
    lags: std::ops::Range<usize>,
) -> (f64, f64) {
    let mut best = (0.0f64, 0.0f64);
    for lag in lags.start..lags.end.min(got.len().saturating_sub(want.len()) + 1) {
        let (mut dot, mut ew, mut eg, mut covered) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        for (i, &a) in want.iter().enumerate() {
            if !mask[lag + i] {
                continue;
            }
            let (a, b) = (f64::from(a), f64::from(got[lag + i]));
            dot += a * b;
            ew += a * a;
            eg += b * b;
            covered += 1;
        }
        if ew > 0.0 && eg > 0.0 {
            let c = dot / (ew * eg).sqrt();
            if c > best.0 {
                best = (c, covered as f64 / want.len() as f64);
            }
        }
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_plays_g711_audio_and_rfc2833_dtmf_from_pcaps_into_a_call() {
    use telephony::media::{DtmfSource, MediaConfig, MediaEvent, MediaSession};
    use telephony::sdp::{self, LocalMedia, Origin, Sdp};

    let mut a = agent().await;
    let ours = a.local_addr().to_string();
    let port = free_port().to_string();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sipp/scenarios");
    // SIPp resolves the scenario's pcap paths against its working directory.
    let child = Command::new("sipp")
        .current_dir(&dir)
        .args([
            "-sf",
            "uac_pcap.xml",
            &ours,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "1",
        ])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    let s = Sipp(child);
    let (call, e) = tokio::time::timeout(Duration::from_secs(20), a.next_event())
        .await
        .expect("in time")
        .expect("event");
    let CallEvent::Incoming { sdp: offer, .. } = e else {
        panic!("{e:?}")
    };
    let offer = Sdp::parse_bytes(&offer).expect("offer");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("rtp");
    let local = LocalMedia::new(
        "127.0.0.1".parse().expect("ip"),
        socket.local_addr().expect("addr").port(),
    );
    let (answer, neg) = sdp::answer(
        &offer,
        &local,
        &Origin::new("callbot", 2, 1, "127.0.0.1".parse().expect("ip")),
    )
    .expect("answer");
    assert_eq!(neg.codec, sdp::Codec::Pcma, "SIPp offers only PCMA");
    assert!(neg.remote_addr.is_loopback(), "media only to loopback");
    let cfg = MediaConfig {
        codec: telephony::g711::Codec::Pcma,
        dtmf_payload_type: neg.telephone_event,
        ..MediaConfig::default()
    };
    let mut session = MediaSession::start(
        socket,
        SocketAddr::new(neg.remote_addr, neg.remote_port),
        cfg,
    )
    .expect("media");
    a.accept(call, answer.to_string().into_bytes());
    let mut frames = Vec::new();
    let mut digits = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tokio::select! {
            f = session.frames.recv() => if let Some(f) = f { frames.push(f) },
            ev = session.events.recv() => if let Some(MediaEvent::Dtmf { digit, source }) = ev {
                assert_eq!(source, DtmfSource::Rfc4733);
                digits.push(digit);
            },
            e = a.next_event() => if matches!(e, Some((_, CallEvent::Ended { remote: true }))) { break },
            _ = tokio::time::sleep_until(deadline) => panic!("SIPp never hung up"),
        }
    }
    let stats = session.stop().await;
    assert_eq!(
        digits,
        vec!['1'],
        "the RFC 2833 digit of dtmf_2833_1.pcap, exactly once"
    );
    let reference = alaw_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sipp/g711a_decoded.wav"),
    );
    // The received audio, laid out by RTP timestamp: on a busy machine SIPp or the media worker
    // can stall, and the adaptive jitter buffer then conceals, stretches or drops frames to keep
    // the delay steady. Those frames are flagged `concealed` and left out; every other sample must
    // be the pcap's, in place, and together they must cover nearly all of it.
    let (got, mask) = timeline(&frames, reference.len());
    // The middle 80% of the pcap, searched within a second either way of where it belongs.
    let (from, to) = (reference.len() / 10, reference.len() * 9 / 10);
    let at = reference.len() + from;
    let (corr, cover) = masked_correlation(&reference[from..to], &got, &mask, at - 8000..at + 8000);
    println!(
        "pcap audio: correlation {corr:.4} over {:.1}%",
        cover * 100.0
    );
    assert!(
        corr > 0.99 && cover > 0.9,
        "the pcap's audio arrived intact: correlation {corr:.4} over {:.1}% of it; jitter buffer {:?}",
        cover * 100.0,
        stats.jitter
    );
    assert!(finished_ok(s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tcp_both_ways() {
    use telephony::sip::transport::SipTransport;
    // callbot → SIPp over TCP.
    let port = free_port();
    let p = port.to_string();
    let s = sipp(&[
        "-sn",
        "uas",
        "-t",
        "t1",
        "-i",
        "127.0.0.1",
        "-p",
        &p,
        "-m",
        "1",
    ]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut a = agent().await;
    let target = Uri::parse(&format!("sip:4155550100@{addr};transport=tcp")).expect("uri");
    let call = a
        .invite_over(
            addr,
            SipTransport::Tcp,
            target,
            OFFER.as_bytes().to_vec(),
            None,
        )
        .await
        .expect("TCP connection and INVITE");
    assert!(matches!(
        event(&mut a).await,
        CallEvent::Progress { status: 180, .. }
    ));
    assert!(matches!(event(&mut a).await, CallEvent::Answered { .. }));
    a.hangup(call);
    assert_eq!(event(&mut a).await, CallEvent::Ended { remote: false });
    assert!(finished_ok(s), "SIPp completed the call over TCP");

    // SIPp → callbot over TCP.
    let ours = a.local_addr().to_string();
    let p2 = free_port().to_string();
    let s = sipp(&[
        "-sn",
        "uac",
        "-t",
        "t1",
        &ours,
        "-i",
        "127.0.0.1",
        "-p",
        &p2,
        "-m",
        "1",
        "-d",
        "200",
    ]);
    let (call, e) = tokio::time::timeout(Duration::from_secs(20), a.next_event())
        .await
        .expect("in time")
        .expect("event");
    assert!(matches!(e, CallEvent::Incoming { .. }), "{e:?}");
    a.accept(call, OFFER.as_bytes().to_vec());
    assert_eq!(event(&mut a).await, CallEvent::Confirmed);
    assert_eq!(event(&mut a).await, CallEvent::Ended { remote: true });
    assert!(finished_ok(s), "SIPp's call over TCP succeeded");
}
