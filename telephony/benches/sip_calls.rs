//! Sustained call setup/teardown rate against SIPp on loopback.
//!
//! `cargo bench -p telephony --bench sip_calls [-- CALLS RATE]` (defaults: 2000 calls at
//! 200 calls/s). SIPp (`sip-tester`) answers as a UAS with its built-in scenario (180, 200 with
//! SDP, waits for ACK and BYE); callbot's user agent places each call, ACKs the answer and hangs
//! up at once. Prints calls completed, failures, the achieved rate, setup latency percentiles and
//! the CPU time callbot's process used per call.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use telephony::sip::Uri;
use telephony::sip::transport::UdpAgent;
use telephony::sip::ua::CallEvent;

const OFFER: &str = "v=0\r\no=callbot 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";

fn main() {
    let args = common::args();
    let calls: usize = args.first().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rate: f64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(200.0);
    let port = common::free_port();
    let Some(mut sipp) = common::sipp_uas(port, &[]) else {
        return;
    };
    let rt = common::runtime();
    rt.block_on(async move {
        let peer: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut agent = UdpAgent::bind("127.0.0.1:0".parse().expect("addr"), "bench")
            .await
            .expect("bind");
        let cpu0 = common::cpu_seconds();
        let start = Instant::now();
        let mut started: HashMap<u64, Instant> = HashMap::new();
        let mut setup = Vec::new();
        let (mut ended, mut failed, mut placed) = (0usize, 0usize, 0usize);
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut next = Instant::now();
        let mut max_concurrent = 0usize;
        while ended + failed < calls {
            if placed < calls && Instant::now() >= next {
                let target =
                    Uri::parse(&format!("sip:{}@{peer}", 4_155_550_000u64 + placed as u64))
                        .expect("uri");
                if let Some(id) = agent
                    .invite(peer, target, OFFER.as_bytes().to_vec(), None)
                    .await
                {
                    started.insert(id, Instant::now());
                }
                placed += 1;
                next += interval;
                max_concurrent = max_concurrent.max(started.len());
                continue;
            }
            let wait = next
                .saturating_duration_since(Instant::now())
                .max(Duration::from_micros(100));
            match tokio::time::timeout(wait, agent.next_event()).await {
                Ok(Some((id, CallEvent::Answered { .. }))) => {
                    if let Some(t) = started.get(&id) {
                        setup.push(t.elapsed());
                    }
                    agent.hangup(id);
                }
                Ok(Some((id, CallEvent::Ended { .. }))) => {
                    started.remove(&id);
                    ended += 1;
                }
                Ok(Some((id, CallEvent::Failed { .. } | CallEvent::Timeout))) => {
                    started.remove(&id);
                    failed += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {}
            }
            if start.elapsed() > Duration::from_secs(120) {
                eprintln!("giving up after 120 s");
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = common::cpu_seconds() - cpu0;
        setup.sort();
        let pct = |p: f64| {
            setup
                .get(((setup.len() as f64 - 1.0) * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!("calls placed {placed}, completed {ended}, failed {failed}");
        println!(
            "offered rate {rate:.0}/s, achieved {:.1} calls/s over {secs:.1} s",
            ended as f64 / secs
        );
        println!("max concurrent calls {max_concurrent}");
        println!(
            "setup (INVITE → 200 OK) p50 {:.2} ms, p99 {:.2} ms",
            pct(0.5),
            pct(0.99)
        );
        println!(
            "callbot CPU {:.3} s total, {:.1} µs per call",
            cpu,
            cpu * 1e6 / ended.max(1) as f64
        );
    });
    let _ = sipp.kill();
    let _ = sipp.wait();
}
