//! Two media sessions on 127.0.0.1 talk to each other: a 2 s 440 Hz tone and DTMF digits go
//! one way, digits the other; RTCP reports flow both ways. One side never reads its decoded
//! audio, to show that a slow consumer does not stall sending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;
use telephony::g711::Codec;
use telephony::jitter::JitterConfig;
use telephony::media::{DtmfSource, MediaConfig, MediaEvent, MediaSession, PcmFrame, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

fn tone(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            ((2.0 * std::f64::consts::PI * 440.0 * t).sin() * 0.3 * 32767.0) as i16
        })
        .collect()
}

/// Lay received (non-concealed) frames out on the RTP timeline, relative to the first frame.
/// Returns the signal and a mask of which samples were received.
fn timeline(frames: &[PcmFrame]) -> (Vec<i16>, Vec<bool>) {
    let real: Vec<&PcmFrame> = frames.iter().filter(|f| !f.concealed).collect();
    let Some(first) = real.first() else {
        return (Vec::new(), Vec::new());
    };
    let mut placed = BTreeMap::new();
    for f in &real {
        placed.insert(
            f.timestamp.wrapping_sub(first.timestamp) as usize,
            &f.samples,
        );
    }
    let len = placed.iter().next_back().map_or(0, |(k, v)| k + v.len());
    let mut sig = vec![0i16; len];
    let mut mask = vec![false; len];
    for (k, v) in placed {
        sig[k..k + v.len()].copy_from_slice(v);
        mask[k..k + v.len()].fill(true);
    }
    (sig, mask)
}

/// Best normalised correlation of `sent` against `got` over lags, counting only received samples,
/// and the share of the sent signal that was received at that lag.
fn best_correlation(sent: &[i16], got: &[i16], mask: &[bool]) -> (f64, f64, usize) {
    let mut best = (0.0, 0.0, 0);
    if got.len() < sent.len() {
        return best;
    }
    for lag in 0..=(got.len() - sent.len()) {
        let (mut dot, mut ns, mut ng, mut covered) = (0.0, 0.0, 0.0, 0usize);
        for (i, &s) in sent.iter().enumerate() {
            if !mask[lag + i] {
                continue;
            }
            let (a, b) = (f64::from(s), f64::from(got[lag + i]));
            dot += a * b;
            ns += a * a;
            ng += b * b;
            covered += 1;
        }
        if ns == 0.0 || ng == 0.0 {
            continue;
        }
        let c = dot / (ns * ng).sqrt();
        if c > best.0 {
            best = (c, covered as f64 / sent.len() as f64, lag);
        }
    }
    best
}

/// Align `sent` with the received timeline near the tone's onset and correlate.
fn align(sent: &[i16], got: &[i16], mask: &[bool]) -> (f64, f64) {
    // The tone starts at the first received sample louder than a quarter of its peak.
    let onset = got
        .iter()
        .position(|&s| s.unsigned_abs() > 2000)
        .unwrap_or(0);
    let lo = onset.saturating_sub(400);
    let end = (lo + sent.len() + 800).min(got.len());
    let (c, cover, _) = best_correlation(sent, &got[lo..end], &mask[lo..end]);
    (c, cover)
}

/// A jitter buffer deep enough (120–400 ms) that scheduling stalls of a loaded test machine do
/// not turn into late packets.
fn deep_jitter() -> JitterConfig {
    JitterConfig {
        min_delay_ms: 120,
        initial_delay_ms: 120,
        max_delay_ms: 400,
        ..JitterConfig::default()
    }
}

fn config(codec: Codec, inbound_capacity: usize) -> MediaConfig {
    MediaConfig {
        codec,
        rtcp_interval: Duration::from_millis(400),
        inbound_capacity,
        ..MediaConfig::default()
    }
}

async fn collect_events(rx: &mut mpsc::Receiver<MediaEvent>, out: &mut Vec<MediaEvent>) {
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
}

fn digits(events: &[MediaEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf {
                digit,
                source: DtmfSource::Rfc4733,
            } => Some(*digit),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_tone_dtmf_rtcp_and_slow_consumer() {
    let sock_a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sock_b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (addr_a, addr_b) = (sock_a.local_addr().unwrap(), sock_b.local_addr().unwrap());
    assert!(addr_a.ip().is_loopback() && addr_b.ip().is_loopback());

    // A: its consumer never reads and its frame channel holds 4 frames (a stalled consumer).
    let mut a = MediaSession::start(sock_a, addr_b, config(Codec::Pcmu, 4)).unwrap();
    // B: a consumer that keeps up, and a deep jitter buffer so that scheduling stalls of a
    // loaded test machine do not turn into late packets.
    let deep = MediaConfig {
        jitter: deep_jitter(),
        ..config(Codec::Pcmu, 256)
    };
    let mut b = MediaSession::start(sock_b, addr_a, deep).unwrap();
    let mut b_frames = std::mem::replace(&mut b.frames, mpsc::channel(1).1);
    let collector = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(f) = b_frames.recv().await {
            frames.push(f);
        }
        frames
    });

    // B talks to A the whole time, so A's playout has work while nobody reads it.
    let b_handle = b.handle.clone();
    let b_talk = tokio::spawn(async move {
        let pcm = tone(20_000);
        for chunk in pcm.chunks(800) {
            if b_handle.send_audio(chunk.to_vec()).await.is_err() {
                break;
            }
        }
    });

    tokio::time::sleep(Duration::from_millis(200)).await;
    // 2 s of tone from A, in TTS-like chunks of 60 ms, then two digits.
    let sent = tone(16_000);
    for chunk in sent.chunks(480) {
        a.handle.send_audio(chunk.to_vec()).await.unwrap();
    }
    a.handle.send_dtmf("1#", 100).await.unwrap();
    b.handle.send_dtmf("7", 80).await.unwrap();
    assert!(a.handle.send_dtmf("12x", 80).await.is_err());

    // Tone (2 s) + digits + a few RTCP intervals.
    tokio::time::sleep(Duration::from_millis(3200)).await;

    let mut a_events = Vec::new();
    let mut b_events = Vec::new();
    collect_events(&mut a.events, &mut a_events).await;
    collect_events(&mut b.events, &mut b_events).await;
    let sa = a.handle.stats();
    let sb = b.handle.stats();
    b_talk.abort();
    let final_a = a.stop().await;
    let final_b = b.stop().await;
    let frames = collector.await.unwrap();

    // --- audio: what B decoded matches what A sent ---
    let (got, mask) = timeline(&frames);
    let (corr, cover) = align(&sent, &got, &mask);
    assert!(corr > 0.99, "correlation {corr}");
    assert!(
        cover > 0.9,
        "only {:.1}% of the tone received",
        cover * 100.0
    );
    let concealed = frames.iter().filter(|f| f.concealed).count();
    assert!(
        frames.len() >= 100,
        "B got {} frames ({concealed} concealed)",
        frames.len()
    );

    // --- DTMF both ways, each digit exactly once ---
    assert_eq!(digits(&b_events), "1#", "B events {b_events:?}");
    assert_eq!(digits(&a_events), "7", "A events {a_events:?}");
    assert_eq!(sa.dtmf_sent, 2);
    assert_eq!(sb.dtmf_received, 2);

    // --- RTCP: reports went both ways and show no loss ---
    assert!(
        sa.rtcp_sent >= 4 && sb.rtcp_sent >= 4,
        "{} {}",
        sa.rtcp_sent,
        sb.rtcp_sent
    );
    assert!(sa.rtcp_received >= 4 && sb.rtcp_received >= 4);
    let about_a = sa.remote_report.expect("B reported on A's stream");
    let about_b = sb.remote_report.expect("A reported on B's stream");
    for r in [about_a, about_b] {
        assert_eq!(r.cumulative_lost, 0, "{r:?}");
        assert_eq!(r.fraction_lost, 0, "{r:?}");
    }
    assert_eq!(about_a.ssrc, sa.local_ssrc);
    assert_eq!(sb.remote_ssrc, Some(sa.local_ssrc));
    for s in [&sa, &sb] {
        assert_eq!(s.reception.lost, 0, "{:?}", s.reception);
        assert!(s.reception.received > 150, "{:?}", s.reception);
        let rtt = s.rtt_ms.expect("round-trip time from SR/RR");
        assert!((0.0..1000.0).contains(&rtt), "rtt {rtt}");
    }
    assert!(
        b_events
            .iter()
            .any(|e| matches!(e, MediaEvent::RemoteReport { .. }))
    );
    // Stopping sends a final compound (with BYE).
    assert!(final_a.rtcp_sent > sa.rtcp_sent && final_b.rtcp_sent > sb.rtcp_sent);

    // --- slow consumer: A dropped frames but kept sending on time. A loop that blocked on the
    // full channel would stop sending altogether: lateness would grow without bound. The
    // bounds leave room for a loaded test machine. ---
    assert!(sa.frames_dropped > 50, "A dropped {}", sa.frames_dropped);
    assert_eq!(sa.frames_delivered, 4);
    let sj = &sa.send_jitter;
    assert!(sj.ticks > 150, "{}", sj.ticks);
    assert!(
        sj.percentile_us(0.99) < 20_000 && sj.max_us < 250_000,
        "A send lateness p50 {} p99 {} max {} µs",
        sj.percentile_us(0.5),
        sj.percentile_us(0.99),
        sj.max_us
    );
    // Sending was continuous: B received about one packet per 20 ms from A (silence included).
    let elapsed_ticks = sj.ticks;
    assert!(
        sb.reception.received + 5 >= elapsed_ticks - 2 * 10,
        "B received {} for {} ticks",
        sb.reception.received,
        elapsed_ticks
    );
    eprintln!(
        "A send lateness: mean {:.0} µs, p50 {} µs, p99 {} µs, max {} µs over {} ticks; \
         B correlation {corr:.5}, coverage {:.3}, jitter target {:.0} ms",
        sj.mean_us(),
        sj.percentile_us(0.5),
        sj.percentile_us(0.99),
        sj.max_us,
        sj.ticks,
        cover,
        sb.jitter_target_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_rtcp_sockets_and_bye() {
    let (rtp_a, rtcp_a) = (
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let (rtp_b, rtcp_b) = (
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let addrs = |s: &UdpSocket| s.local_addr().unwrap();
    let (ra, ca, rb, cb) = (addrs(&rtp_a), addrs(&rtcp_a), addrs(&rtp_b), addrs(&rtcp_b));
    let cfg = |codec| MediaConfig {
        rtcp_interval: Duration::from_millis(200),
        send_silence: false,
        jitter: deep_jitter(),
        ..config(codec, 64)
    };
    let mut a = MediaSession::start_with(
        Transport {
            rtp: rtp_a,
            remote_rtp: rb,
            rtcp: Some((rtcp_a, cb)),
        },
        cfg(Codec::Pcma),
    )
    .unwrap();
    let mut b = MediaSession::start_with(
        Transport {
            rtp: rtp_b,
            remote_rtp: ra,
            rtcp: Some((rtcp_b, ca)),
        },
        cfg(Codec::Pcma),
    )
    .unwrap();
    // A-law tone for 0.5 s; with send_silence off, nothing is sent before or after it.
    a.handle.send_audio(tone(4000)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let sa = a.handle.stats();
    assert_eq!(sa.audio_frames_sent, 25);
    assert_eq!(sa.rtp_sent, 25, "no silence packets");
    let _ = a.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut events = Vec::new();
    collect_events(&mut b.events, &mut events).await;
    let sb = b.handle.stats();
    assert_eq!(sb.reception.received, 25);
    assert_eq!(sb.reception.lost, 0);
    assert!(sb.rtcp_received >= 3, "RTCP over the separate port");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, MediaEvent::RemoteBye { .. })),
        "{events:?}"
    );
    let mut real = 0;
    while let Ok(f) = b.frames.try_recv() {
        real += usize::from(!f.concealed);
    }
    assert_eq!(real, 25, "{:?}", sb.jitter);
    let _ = b.stop().await;
}

/// RTP payloads (with headers) of sipp's g711a.pcap: Ethernet/IPv4/UDP, 30 ms A-law packets.
fn g711a_capture() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/sipp/scenarios/pcap/g711a.pcap"
    );
    let mut reader = pcap_file::pcap::PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let data = pkt.unwrap().data.into_owned();
        let ip = &data[14..];
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        out.push(ip[ihl + 8..].to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_a_30ms_capture_as_20ms_frames() {
    use telephony::rtp::RtpPacket;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let cfg = MediaConfig {
        jitter: deep_jitter(),
        ..config(Codec::Pcma, 256)
    };
    let mut s = MediaSession::start(sock, peer.local_addr().unwrap(), cfg).unwrap();
    // 60 packets of speech (1.8 s), sent at their real 30 ms pace.
    let packets: Vec<RtpPacket> = g711a_capture()[50..110]
        .iter()
        .map(|b| RtpPacket::parse(b).unwrap())
        .collect();
    assert!(packets.iter().all(|p| p.payload.len() == 240));
    let mut ticker = tokio::time::interval(Duration::from_millis(30));
    for p in &packets {
        ticker.tick().await;
        peer.send_to(&p.to_bytes().unwrap(), local).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = s.handle.stats();
    let _ = s.stop().await;
    let mut frames = Vec::new();
    while let Ok(f) = s.frames.try_recv() {
        frames.push(f);
    }
    assert_eq!(stats.reception.received, 60);
    assert_eq!(stats.reception.lost, 0);
    assert!(frames.iter().all(|f| f.samples.len() == 160));
    // Reference: the capture's A-law decoded, laid out by RTP timestamp.
    let ts0 = packets[0].timestamp;
    let mut reference = vec![0i16; 60 * 240];
    for p in &packets {
        let at = p.timestamp.wrapping_sub(ts0) as usize;
        reference[at..at + 240].copy_from_slice(&Codec::Pcma.decode(&p.payload));
    }
    // Every real (not concealed) 20 ms frame is exactly the reference at its timestamp.
    let mut real = 0;
    for f in frames.iter().filter(|f| !f.concealed) {
        let at = f.timestamp.wrapping_sub(ts0) as usize;
        if at + 160 <= reference.len() {
            assert_eq!(f.samples, reference[at..at + 160], "frame at {at}");
            real += 1;
        }
    }
    // 1.8 s of audio is 90 frames of 20 ms.
    assert!(real >= 85, "only {real} real frames of 90");
}

/// Barge-in: `clear_audio` stops the queued audio within one 20 ms tick, and the session keeps
/// sending silence on its schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_audio_stops_outgoing_audio_within_a_tick() {
    use telephony::rtp::RtpPacket;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut s =
        MediaSession::start(sock, peer.local_addr().unwrap(), config(Codec::Pcmu, 8)).unwrap();
    // 10 s of tone queued, as a TTS prompt would be.
    s.handle.send_audio(tone(80_000)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snapshot = std::time::Instant::now();
    let before = s.handle.stats().audio_frames_sent;
    s.handle.clear_audio().unwrap();
    let ticks_meanwhile = snapshot.elapsed().as_millis() as u64 / 20;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = s.handle.stats();
    let _ = s.stop().await;
    assert!(before >= 5, "only {before} audio frames before the clear");
    // The snapshot may lag the wire by one tick, and the clear takes effect at the next tick.
    assert!(
        after.audio_frames_sent <= before + 2 + ticks_meanwhile,
        "{} audio frames sent after the clear (snapshot {before})",
        after.audio_frames_sent
    );
    assert!(
        after.rtp_sent >= after.audio_frames_sent + 5,
        "silence went on"
    );
    // On the wire: once silence starts, no audio follows.
    let mut buf = [0u8; 2048];
    let mut kinds = Vec::new();
    while let Ok((n, _)) = peer.try_recv_from(&mut buf) {
        if telephony::rtp::is_rtcp(&buf[..n]) {
            continue;
        }
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        if p.payload_type == Codec::Pcmu.payload_type() {
            kinds.push(p.payload.iter().all(|&b| b == Codec::Pcmu.silence_byte()));
        }
    }
    // Silence until the audio is queued, one run of audio, then silence only.
    let first_audio = kinds.iter().position(|&silent| !silent).unwrap();
    let audio_run = kinds[first_audio..]
        .iter()
        .take_while(|&&silent| !silent)
        .count();
    assert!(audio_run >= 5, "{kinds:?}");
    assert!(
        kinds[first_audio + audio_run..]
            .iter()
            .all(|&silent| silent),
        "audio after the clear: {kinds:?}"
    );
    assert_eq!(audio_run as u64, after.audio_frames_sent);
}

/// SRTP between two sessions: a tone, digits and RTCP reports cross encrypted and arrive intact;
/// a third session sending to B with a key B was not given is refused packet by packet (counted,
/// nothing played) while A's audio keeps flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_tone_digits_and_reports_cross_and_a_wrong_key_is_refused() {
    use telephony::srtp::{MasterKey, SrtpKeys, SrtpSuite};
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let (ka, kb, kc) = (
        MasterKey::random(),
        MasterKey::random(),
        MasterKey::random(),
    );
    let keys = |ours: &MasterKey, theirs: &MasterKey| Some(SrtpKeys::between(suite, ours, theirs));
    let sock_a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sock_b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sock_c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (addr_a, addr_b) = (sock_a.local_addr().unwrap(), sock_b.local_addr().unwrap());
    let mut a = MediaSession::start(
        sock_a,
        addr_b,
        MediaConfig {
            srtp: keys(&ka, &kb),
            ..config(Codec::Pcmu, 256)
        },
    )
    .unwrap();
    let deep = MediaConfig {
        jitter: deep_jitter(),
        srtp: keys(&kb, &ka),
        ..config(Codec::Pcmu, 256)
    };
    let mut b = MediaSession::start(sock_b, addr_a, deep).unwrap();
    let mut b_frames = std::mem::replace(&mut b.frames, mpsc::channel(1).1);
    let collector = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(f) = b_frames.recv().await {
            frames.push(f);
        }
        frames
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = tone(16_000);
    for chunk in sent.chunks(480) {
        a.handle.send_audio(chunk.to_vec()).await.unwrap();
    }
    a.handle.send_dtmf("5", 100).await.unwrap();
    // C starts after A's tone is queued: it sends B silence and noise under its own key.
    let mut c = MediaSession::start(
        sock_c,
        addr_b,
        MediaConfig {
            srtp: keys(&kc, &kb),
            ..config(Codec::Pcmu, 16)
        },
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let mut b_events = Vec::new();
    collect_events(&mut b.events, &mut b_events).await;
    let final_c = c.stop().await;
    let final_a = a.stop().await;
    let final_b = b.stop().await;
    let frames = collector.await.unwrap();

    let (got, mask) = timeline(&frames);
    let (corr, cover) = align(&sent, &got, &mask);
    assert!(corr > 0.99, "correlation {corr}");
    assert!(cover > 0.9, "only {:.1}% of the tone", cover * 100.0);
    assert_eq!(digits(&b_events), "5");
    assert!(
        final_b.rtcp_received > 0 && final_a.rtcp_received > 0,
        "SRTCP both ways: {} {}",
        final_a.rtcp_received,
        final_b.rtcp_received
    );
    // What C sent was refused (all but what may still sit in B's socket when it stops), and only
    // C's packets were.
    assert!(final_c.rtp_sent > 50, "{final_c:?}");
    assert!(
        final_b.srtp_refused * 10 >= final_c.rtp_sent * 9,
        "B refused {} of C's {} packets",
        final_b.srtp_refused,
        final_c.rtp_sent
    );
    assert_eq!(final_a.srtp_refused, 0);
    assert_eq!(
        final_b.remote_ssrc,
        Some(final_a.local_ssrc),
        "B only ever accepted A's stream"
    );
}
