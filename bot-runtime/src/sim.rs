//! Simulated customer phones for the demo, the end-to-end tests and the latency benchmark: a
//! real SIP user agent on a socket that answers callbot's calls and speaks pre-rendered audio
//! over real RTP, following a script, and measures what it hears.
//!
//! The phone knows the robot only by its audio: the robot is "speaking" while received frames
//! carry energy. A scripted answer is said once the robot has been quiet for `answer_gap_ms`
//! after speaking; an interruption starts `after_ms` into the robot's next speech. For every
//! answer, the phone measures the time from the last voiced sample it sent to the first voiced
//! frame it received back (the turn latency as the customer experiences it, minus the network).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use telephony::media::{MediaSession, MediaStats};
use telephony::sdp::{self, LocalMedia, Origin, Sdp};
use telephony::sip::transport::{SipTlsConfig, UdpAgent};
use telephony::sip::ua::CallEvent;
use telephony::srtp::{SrtpPolicy, SrtpSuite};
use tokio::net::UdpSocket;

/// One thing the customer does.
#[derive(Debug, Clone)]
pub enum Line {
    /// Say this as soon as the call is answered (a person's "Hello?").
    Greet { text: String, audio: Vec<i16> },
    /// Wait for the robot to finish what it is saying, then say this.
    Answer { text: String, audio: Vec<i16> },
    /// Say this `after_ms` into the robot's next speech, talking over it.
    Interrupt {
        text: String,
        audio: Vec<i16>,
        after_ms: u64,
    },
    /// Play this on answer without waiting (an answering machine's greeting and beep), then
    /// stay silent.
    Machine { audio: Vec<i16> },
}

/// A scripted customer.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub lines: Vec<Line>,
    /// Robot silence that counts as "it finished speaking".
    pub answer_gap_ms: u64,
    /// Hang up after the script if the robot has not, after this long.
    pub linger_ms: u64,
}

/// One answer's timing, as the phone saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub text: String,
    /// Last voiced sample sent → first voiced robot frame received.
    pub latency_ms: Option<u64>,
}

/// What a phone saw in one call.
#[derive(Debug, Clone, Default)]
pub struct PhoneReport {
    pub answers: Vec<Measured>,
    /// For each interruption: from the start of the customer's speech to the last voiced robot
    /// frame received (how long the customer and robot talked over each other).
    pub overlap_ms: Vec<u64>,
    /// Everything the phone heard (8 kHz).
    pub heard: Vec<i16>,
    /// Whether the call ended by the far end hanging up.
    pub remote_hangup: bool,
    /// The call's SIP Call-ID, as this phone saw it.
    pub sip_call_id: Option<String>,
    /// What the impairing relay did to the RTP, when the phone has one ([`Phone::impaired`]).
    pub relay: Option<RelayReport>,
    /// The SRTP suite the call's media used (`None`: plain RTP).
    pub srtp: Option<SrtpSuite>,
    /// The phone's media statistics at the end of the call.
    pub media: Option<MediaStats>,
}

/// Network trouble on a phone's RTP, both ways: a UDP relay between the phone and callbot drops
/// each packet with probability `loss` and holds one back behind the next with probability
/// `reorder` (seeded, so a run can be repeated). Signalling is not touched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    pub loss: f64,
    pub reorder: f64,
    pub seed: u64,
}

/// Packets through the relay, one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    pub received: u64,
    pub dropped: u64,
    /// Sent after the packet that followed it.
    pub reordered: u64,
}

/// What the relay did, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// The phone's audio on its way to callbot.
    pub to_callbot: RelayCounts,
    /// callbot's audio on its way to the phone.
    pub to_phone: RelayCounts,
}

/// The relay's loop: packets from `phone` go to `far`, all others to `phone`.
async fn relay(
    socket: UdpSocket,
    phone: SocketAddr,
    far: SocketAddr,
    imp: Impairment,
    report: std::sync::Arc<std::sync::Mutex<RelayReport>>,
) {
    let mut rng = Rng(imp.seed);
    let mut held: [Option<Vec<u8>>; 2] = [None, None];
    let mut buf = vec![0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let (dir, to) = if from == phone { (0, far) } else { (1, phone) };
        let packet = buf[..n].to_vec();
        let (drop, hold) = (rng.chance(imp.loss), rng.chance(imp.reorder));
        {
            let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
            let c = if dir == 0 {
                &mut r.to_callbot
            } else {
                &mut r.to_phone
            };
            c.received += 1;
            if drop {
                c.dropped += 1;
            } else if hold && held[dir].is_none() {
                c.reordered += 1;
            }
        }
        if drop {
            continue;
        }
        if hold && held[dir].is_none() {
            held[dir] = Some(packet);
            continue;
        }
        let _ = socket.send_to(&packet, to).await;
        if let Some(late) = held[dir].take() {
            let _ = socket.send_to(&late, to).await;
        }
    }
}

/// SplitMix64, for the relay's coin flips.
struct Rng(u64);

impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// RMS above which a 20 ms frame is voiced.
const VOICED_RMS: f64 = 250.0;

fn rms(frame: &[i16]) -> f64 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len() as f64).sqrt()
}

/// The time in the audio (ms) just after its last voiced 20 ms frame.
pub fn voiced_end_ms(audio: &[i16]) -> u64 {
    let last = audio
        .chunks(160)
        .enumerate()
        .rev()
        .find(|(_, f)| rms(f) > VOICED_RMS)
        .map(|(i, _)| i);
    last.map_or(0, |i| (i as u64 + 1) * 20)
}

/// Trims silence at both ends of rendered speech, keeping `keep_ms` of it.
pub fn trim(audio: &[i16], keep_ms: usize) -> Vec<i16> {
    let frames: Vec<&[i16]> = audio.chunks(160).collect();
    let first = frames.iter().position(|f| rms(f) > VOICED_RMS / 2.0);
    let last = frames.iter().rposition(|f| rms(f) > VOICED_RMS / 2.0);
    match (first, last) {
        (Some(a), Some(b)) => {
            let keep = keep_ms / 20;
            let a = a.saturating_sub(keep);
            let b = (b + 1 + keep).min(frames.len());
            frames[a..b].concat()
        }
        _ => Vec::new(),
    }
}

/// A phone waiting for one call on `addr`.
pub struct Phone {
    agent: UdpAgent,
    impairment: Option<Impairment>,
    srtp: SrtpPolicy,
}

impl Phone {
    pub async fn bind(addr: SocketAddr, user: &str) -> std::io::Result<Phone> {
        Ok(Phone {
            agent: UdpAgent::bind(addr, user).await?,
            impairment: None,
            srtp: SrtpPolicy::Accept,
        })
    }

    /// A phone that also takes calls over SIP over TLS (see [`UdpAgent::bind_with_tls`]).
    pub async fn bind_tls(
        addr: SocketAddr,
        user: &str,
        tls: SipTlsConfig,
    ) -> std::io::Result<Phone> {
        Ok(Phone {
            agent: UdpAgent::bind_with_tls(addr, user, Some(tls)).await?,
            impairment: None,
            srtp: SrtpPolicy::Accept,
        })
    }

    /// The phone's TLS listener, when it has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.agent.tls_addr()
    }

    /// The phone's SRTP policy (by default it answers SRTP when offered and offers plain RTP).
    pub fn srtp(mut self, policy: SrtpPolicy) -> Phone {
        self.srtp = policy;
        self
    }

    /// Puts `imp` on the RTP of the calls this phone answers (see [`Impairment`]).
    pub fn impaired(mut self, imp: Impairment) -> Phone {
        self.impairment = Some(imp);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.agent.local_addr()
    }

    /// Answers the next call after `ring_ms` and plays `script`; returns when the call ends.
    pub async fn answer(mut self, script: Script, ring_ms: u64) -> std::io::Result<PhoneReport> {
        let (call, offer) = loop {
            match self.agent.next_event().await {
                Some((id, CallEvent::Incoming { sdp, call_id, .. })) => break (id, (sdp, call_id)),
                Some(_) => continue,
                None => return Err(std::io::Error::other("phone agent stopped")),
            }
        };
        let (offer, sip_call_id) = offer;
        tokio::time::sleep(Duration::from_millis(ring_ms)).await;
        let offer = Sdp::parse_bytes(&offer).map_err(|e| std::io::Error::other(e.to_string()))?;
        let ip = self.agent.local_addr().ip();
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let phone_media = socket.local_addr()?;
        // With an impairment, the SDP names the relay's port and the phone sends to the relay.
        let relay_socket = match self.impairment {
            Some(_) => Some(UdpSocket::bind(SocketAddr::new(ip, 0)).await?),
            None => None,
        };
        let advertised = match &relay_socket {
            Some(r) => r.local_addr()?.port(),
            None => phone_media.port(),
        };
        let mut local = LocalMedia::new(ip, advertised);
        local.srtp = self.srtp;
        let (answer, neg) = match sdp::answer(&offer, &local, &Origin::new("phone", 1, 1, ip)) {
            Ok(a) => a,
            Err(e) => {
                // An offer the phone cannot take (say, plain RTP where it requires SRTP) is
                // refused as a real phone would, 488.
                self.agent.reject(call, e.sip_status(), &e.to_string());
                return Err(std::io::Error::other(format!("offer refused: {e}")));
            }
        };
        let far = SocketAddr::new(neg.remote_addr, neg.remote_port);
        let report = std::sync::Arc::new(std::sync::Mutex::new(RelayReport::default()));
        let (send_to, relay_task) = match (relay_socket, self.impairment) {
            (Some(r), Some(imp)) => {
                let at = r.local_addr()?;
                let task = tokio::spawn(relay(r, phone_media, far, imp, report.clone()));
                (at, Some(AbortOnDrop(task)))
            }
            _ => (far, None),
        };
        let media = MediaSession::start(
            socket,
            send_to,
            // A phone's usual jitter buffer (the default): its delay (20–40 ms on loopback) is part
            // of what the customer experiences, so it stays in the measured latency.
            crate::runtime::media_config(&neg),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.agent.accept(call, answer.to_string().into_bytes());
        let mut out = converse(&mut self.agent, call, media, script).await?;
        out.sip_call_id = Some(sip_call_id);
        out.srtp = neg.srtp.as_ref().map(|k| k.suite);
        if relay_task.is_some() {
            out.relay = Some(*report.lock().unwrap_or_else(|e| e.into_inner()));
        }
        drop(relay_task);
        Ok(out)
    }

    /// Calls `target` at `next_hop` (the caller's number is the user this phone was bound
    /// with) and plays `script` once answered; returns when the call ends. A call that is not
    /// answered is an error.
    pub async fn call(
        mut self,
        next_hop: SocketAddr,
        target: telephony::sip::Uri,
        script: Script,
    ) -> std::io::Result<PhoneReport> {
        let ip = self.agent.local_addr().ip();
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let mut local = LocalMedia::new(ip, socket.local_addr()?.port());
        local.srtp = self.srtp;
        let offer = sdp::make_offer(&local, &Origin::new("phone", 1, 1, ip));
        let call = self
            .agent
            .invite(next_hop, target, offer.to_string().into_bytes(), None)
            .await
            .ok_or_else(|| std::io::Error::other("the INVITE could not be sent"))?;
        let sip_call_id = self.agent.sip_call_id(call).await;
        let answer = loop {
            match self.agent.next_event().await {
                Some((id, CallEvent::Answered { sdp })) if id == call => break sdp,
                Some((id, CallEvent::Failed { status, reason, .. })) if id == call => {
                    return Err(std::io::Error::other(format!(
                        "call rejected: {status} {reason}"
                    )));
                }
                Some((id, CallEvent::Timeout)) if id == call => {
                    return Err(std::io::Error::other("call timed out"));
                }
                Some(_) => continue,
                None => return Err(std::io::Error::other("phone agent stopped")),
            }
        };
        let neg = Sdp::parse_bytes(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::negotiated_from_answer(&offer, &a).map_err(|e| e.to_string()))
            .map_err(std::io::Error::other)?;
        let media = MediaSession::start(
            socket,
            SocketAddr::new(neg.remote_addr, neg.remote_port),
            // A phone's usual jitter buffer (the default): its delay (20–40 ms on loopback) is part
            // of what the customer experiences, so it stays in the measured latency.
            crate::runtime::media_config(&neg),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut report = converse(&mut self.agent, call, media, script).await?;
        report.sip_call_id = sip_call_id;
        report.srtp = neg.srtp.as_ref().map(|k| k.suite);
        Ok(report)
    }
}

/// Aborts the relay task when the call is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Plays `script` on an established call and measures what comes back.
async fn converse(
    agent: &mut UdpAgent,
    call: telephony::sip::ua::CallId,
    mut media: MediaSession,
    script: Script,
) -> std::io::Result<PhoneReport> {
    let started = Instant::now();
    let now_ms = || started.elapsed().as_millis() as u64;
    let mut report = PhoneReport::default();
    let mut lines = script.lines.into_iter().peekable();
    // Robot audio tracking.
    let mut robot_voiced_at: Option<u64> = None; // last voiced frame
    let mut robot_started_at: Option<u64> = None; // start of the current robot speech
    let mut robot_spoke_since_line = false;
    // Our own speech in progress: (text, voiced end time, measuring latency?, is interruption, start).
    let mut speaking_until: u64 = 0;
    let mut awaiting: Option<(String, u64)> = None;
    let mut overlap_from: Option<u64> = None;
    let mut script_done_at: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            frame = media.frames.recv() => {
                let Some(frame) = frame else { break };
                let t = now_ms();
                report.heard.extend_from_slice(&frame.samples);
                if rms(&frame.samples) > VOICED_RMS {
                    if robot_voiced_at.is_none_or(|v| t.saturating_sub(v) > 300) {
                        robot_started_at = Some(t);
                    }
                    robot_voiced_at = Some(t);
                    if t > speaking_until {
                        robot_spoke_since_line = true;
                    }
                    if let Some((text, end)) = &awaiting && t >= *end {
                        report.answers.push(Measured { text: text.clone(), latency_ms: Some(t - end) });
                        awaiting = None;
                    }
                }
            }
            ev = agent.next_event() => match ev {
                Some((_, CallEvent::Ended { .. })) | None => { report.remote_hangup = true; break }
                _ => {}
            },
            _ = tick.tick() => {
                let t = now_ms();
                if let Some(from) = overlap_from && t > from + 3000 {
                    let last = robot_voiced_at.unwrap_or(from);
                    report.overlap_ms.push(last.saturating_sub(from));
                    overlap_from = None;
                }
                if t < speaking_until {
                    continue;
                }
                let robot_quiet = robot_voiced_at.is_none_or(|v| t.saturating_sub(v) >= script.answer_gap_ms);
                let ready = match lines.peek() {
                    None => {
                        let done = *script_done_at.get_or_insert(t);
                        if t > done + script.linger_ms { break }
                        false
                    }
                    Some(Line::Greet { .. }) | Some(Line::Machine { .. }) => t >= 300,
                    Some(Line::Answer { .. }) => robot_spoke_since_line && robot_quiet,
                    Some(Line::Interrupt { after_ms, .. }) => robot_spoke_since_line
                        && robot_voiced_at.is_some_and(|v| t.saturating_sub(v) < 100)
                        && robot_started_at.is_some_and(|s| t.saturating_sub(s) >= *after_ms),
                };
                if !ready { continue }
                let Some(line) = lines.next() else { continue };
                if let Some((text, _)) = awaiting.take() {
                    report.answers.push(Measured { text, latency_ms: None });
                }
                let (text, audio, interrupt, measure) = match line {
                    Line::Greet { text, audio } => (text, audio, false, false),
                    Line::Answer { text, audio } => (text, audio, false, true),
                    Line::Interrupt { text, audio, .. } => (text, audio, true, true),
                    Line::Machine { audio } => ("(machine greeting)".to_string(), audio, false, false),
                };
                let len_ms = audio.len() as u64 / 8;
                let voiced_end = t + voiced_end_ms(&audio);
                speaking_until = t + len_ms;
                robot_spoke_since_line = false;
                if interrupt {
                    overlap_from = Some(t);
                }
                if measure {
                    awaiting = Some((text, voiced_end));
                }
                if media.handle.send_audio(audio).await.is_err() { break }
            }
        }
    }
    if let Some((text, _)) = awaiting.take() {
        report.answers.push(Measured {
            text,
            latency_ms: None,
        });
    }
    if !report.remote_hangup {
        agent.hangup(call);
    }
    report.media = Some(media.stop().await);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_coin_lands_at_its_rate() {
        for p in [0.0, 0.05, 0.3] {
            let mut rng = Rng(7);
            let hits = (0..100_000).filter(|_| rng.chance(p)).count() as f64;
            assert!((hits / 100_000.0 - p).abs() < 0.005, "{p}: {hits}");
        }
    }

    #[tokio::test]
    async fn the_relay_drops_and_reorders_both_ways() {
        let ip = std::net::Ipv4Addr::LOCALHOST;
        let phone = UdpSocket::bind((ip, 0)).await.expect("phone");
        let far = UdpSocket::bind((ip, 0)).await.expect("far");
        let relay_socket = UdpSocket::bind((ip, 0)).await.expect("relay");
        let at = relay_socket.local_addr().expect("addr");
        let report = std::sync::Arc::new(std::sync::Mutex::new(RelayReport::default()));
        let imp = Impairment {
            loss: 0.1,
            reorder: 0.2,
            seed: 3,
        };
        let task = AbortOnDrop(tokio::spawn(relay(
            relay_socket,
            phone.local_addr().expect("addr"),
            far.local_addr().expect("addr"),
            imp,
            report.clone(),
        )));
        let mut got = Vec::new();
        for i in 0u16..500 {
            phone.send_to(&i.to_be_bytes(), at).await.expect("send");
            let mut buf = [0u8; 2];
            while let Ok(Ok((2, _))) =
                tokio::time::timeout(Duration::from_millis(5), far.recv_from(&mut buf)).await
            {
                got.push(u16::from_be_bytes(buf));
            }
        }
        // And one packet the other way reaches the phone.
        far.send_to(b"x", at).await.expect("send");
        let mut buf = [0u8; 1];
        let back = tokio::time::timeout(Duration::from_secs(1), phone.recv_from(&mut buf)).await;
        drop(task);
        let r = *report.lock().expect("report");
        assert_eq!(r.to_callbot.received, 500);
        assert_eq!(r.to_phone.received, 1);
        let c = r.to_callbot;
        // What arrived is what was neither dropped nor still held back at the end.
        assert!(got.len() as u64 + c.dropped <= 500 && got.len() as u64 + c.dropped >= 499);
        assert!((30..80).contains(&c.dropped), "{c:?}");
        let swapped = got.windows(2).filter(|w| w[1] < w[0]).count() as u64;
        assert!(swapped > 0 && swapped <= c.reordered, "{swapped} {c:?}");
        assert!(back.is_ok() || r.to_phone.dropped + r.to_phone.reordered == 1);
    }

    #[test]
    fn voiced_end_and_trim() {
        let mut a = vec![0i16; 800];
        a.extend(
            std::iter::repeat_n(3000i16, 1600)
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { v } else { -v }),
        );
        a.extend(vec![0i16; 1600]);
        assert_eq!(voiced_end_ms(&a), 300);
        let t = trim(&a, 20);
        assert_eq!(t.len(), 160 * 12);
        assert!(trim(&[0; 1000], 20).is_empty());
    }
}
