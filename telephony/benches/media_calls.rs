//! Concurrent calls with RTP both ways against SIPp on loopback.
//!
//! `cargo bench -p telephony --bench media_calls [-- CALLS HOLD_SECONDS [rt]]` (defaults 1000
//! calls, 20 s; `rt` asks for realtime priority for the media workers, which needs root or
//! CAP_SYS_NICE). SIPp answers with its built-in `uas` scenario and echoes every RTP packet back to its
//! sender (`-rtp_echo`); callbot sets each call up over SIP at 200 calls/s and runs one
//! `MediaSession` per call: 20 ms paced G.711 packets out, jitter buffer and decoding in. Prints
//! the RTP send-time jitter over all calls (lateness against the ideal 20 ms schedule), packets
//! sent and received, and callbot's CPU and memory.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use telephony::g711::Codec;
use telephony::media::{
    MediaConfig, MediaSession, SchedulerConfig, SendJitterStats, WorkerPriority,
    configure_scheduler,
};
use telephony::sdp::{self, LocalMedia, Origin, Sdp};
use telephony::sip::Uri;
use telephony::sip::transport::UdpAgent;
use telephony::sip::ua::CallEvent;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let args = common::args();
    let calls: usize = args.first().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let hold: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(20);
    let priority = match args.get(2).map(String::as_str) {
        Some("rt") => WorkerPriority::Realtime(50),
        _ => WorkerPriority::Normal,
    };
    match configure_scheduler(SchedulerConfig {
        workers: 0,
        priority,
    }) {
        Ok(info) => println!(
            "media scheduler: {} workers, {} with realtime priority (asked: {priority:?})",
            info.workers, info.realtime_workers
        ),
        Err(e) => println!("media scheduler: {e}"),
    }
    let (sip_port, media_port) = (common::free_port(), common::free_port());
    let mp = media_port.to_string();
    let Some(mut sipp) = common::sipp_uas(sip_port, &["-mp", &mp, "-rtp_echo"]) else {
        return;
    };
    let sipp_pid = sipp.id();
    let rt = common::runtime();
    rt.block_on(async move {
        let peer = SocketAddr::from(([127, 0, 0, 1], sip_port));
        let mut agent = UdpAgent::bind("127.0.0.1:0".parse().expect("addr"), "bench").await.expect("bind");
        let mut sessions: Vec<MediaSession> = Vec::new();
        let mut ids = Vec::new();
        let rss0 = rss_mib();
        let setup_start = Instant::now();
        for i in 0..calls {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("rtp socket");
            let port = socket.local_addr().expect("addr").port();
            let local = LocalMedia::new("127.0.0.1".parse().expect("ip"), port);
            let offer = sdp::make_offer(&local, &Origin::new("bench", i as u64 + 1, 1, "127.0.0.1".parse().expect("ip")));
            let target = Uri::parse(&format!("sip:{}@{peer}", 4_155_550_000u64 + i as u64)).expect("uri");
            let Some(id) = agent.invite(peer, target, offer.to_string().into_bytes(), None).await else { break };
            let answer = loop {
                match tokio::time::timeout(Duration::from_secs(10), agent.next_event()).await {
                    Ok(Some((cid, CallEvent::Answered { sdp }))) if cid == id => break Some(sdp),
                    Ok(Some((_, CallEvent::Failed { .. } | CallEvent::Timeout))) | Err(_) | Ok(None) => break None,
                    Ok(Some(_)) => {}
                }
            };
            let Some(answer) = answer.and_then(|a| Sdp::parse_bytes(&a).ok()) else {
                eprintln!("call {i} failed to set up");
                continue;
            };
            let Ok(neg) = sdp::negotiated_from_answer(&offer, &answer) else { continue };
            // SIPp's answer carries its media port on 127.0.0.1.
            let remote = SocketAddr::new("127.0.0.1".parse().expect("ip"), neg.remote_port);
            let cfg = MediaConfig { codec: if neg.codec == sdp::Codec::Pcmu { Codec::Pcmu } else { Codec::Pcma }, inbound_capacity: 8, ..MediaConfig::default() };
            match MediaSession::start(socket, remote, cfg) {
                Ok(s) => sessions.push(s),
                Err(e) => eprintln!("media {i}: {e}"),
            }
            ids.push(id);
            // 200 calls/s set-up pacing.
            let due = setup_start + Duration::from_millis(5 * (i as u64 + 1));
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        }
        let up = sessions.len();
        println!("{up} calls up with media after {:.1} s", setup_start.elapsed().as_secs_f64());
        let sipp_pid = sipp_pid.to_string();
        let (rcvbuf0, sipp_drops0) = (common::udp_rcvbuf_errors(), common::udp_socket_drops(media_port));
        let (cpu0, sipp_cpu0, load0) = (common::cpu_seconds(), common::cpu_seconds_of(&sipp_pid), common::load_average());
        let t0 = Instant::now();
        // Drain decoded frames as an ASR consumer would, without blocking.
        let mut drained = 0u64;
        while t0.elapsed() < Duration::from_secs(hold) {
            for s in sessions.iter_mut() {
                while let Ok(f) = s.frames.try_recv() {
                    drained += f.samples.len() as u64 / 160;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cpu = common::cpu_seconds() - cpu0;
        let sipp_cpu = common::cpu_seconds_of(&sipp_pid) - sipp_cpu0;
        let secs = t0.elapsed().as_secs_f64();
        let mut jitter = SendJitterStats::default();
        let mut interval = SendJitterStats::default();
        let (mut sent, mut received, mut lost) = (0u64, 0u64, 0i64);
        for s in &sessions {
            let st = s.handle.stats();
            jitter.merge(&st.send_jitter);
            interval.merge(&st.send_interval_jitter);
            sent += st.rtp_sent;
            received += st.rtp_received;
            lost += st.reception.lost;
        }
        println!("hold {secs:.1} s: RTP sent {sent}, received {received} (echoed), lost {lost}, frames consumed {drained}");
        println!(
            "send jitter over {} sends: mean {:.0} µs, p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs, >5 ms {}",
            jitter.ticks,
            jitter.mean_us(),
            jitter.percentile_us(0.5),
            jitter.percentile_us(0.99),
            jitter.percentile_us(0.999),
            jitter.max_us,
            jitter.over_5ms
        );
        println!(
            "send interval deviation from 20 ms: mean {:.0} µs, p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            interval.mean_us(),
            interval.percentile_us(0.5),
            interval.percentile_us(0.99),
            interval.percentile_us(0.999),
            interval.max_us
        );
        println!("callbot CPU {:.0}% of one core during the hold ({:.1} µs per call-second); RSS {:.0} MiB (+{:.0} MiB for the calls)",
            100.0 * cpu / secs, 1e6 * cpu / secs / up.max(1) as f64, rss_mib(), rss_mib() - rss0);
        println!(
            "UDP datagrams dropped on full receive buffers during the hold: {} in all, {} of them by SIPp's echo socket",
            common::udp_rcvbuf_errors() - rcvbuf0,
            common::udp_socket_drops(media_port) - sipp_drops0
        );
        println!("SIPp (RTP echo) CPU {:.0}% of one core; load average (1 min) {load0:.2} before the hold, {:.2} after",
            100.0 * sipp_cpu / secs, common::load_average());
        for id in ids {
            agent.hangup(id);
        }
        for mut s in sessions {
            s.stop().await;
        }
    });
    let _ = sipp.kill();
    let _ = sipp.wait();
}
