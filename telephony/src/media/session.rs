//! One call's media state, driven by a scheduler worker: each 20 ms tick is split into
//! [`Session::tick_send`] (commands, outgoing audio or DTMF, one packet) and
//! [`Session::tick_receive`] (drain the sockets, play out one frame, RTCP, statistics), so that a
//! worker can send every due packet of a slot before doing the slower receive work.

use super::scheduler::RecvIo;
use super::{
    Command, DtmfSource, FRAME, MediaConfig, MediaError, MediaEvent, MediaStats, Outbound, PTIME,
    PcmFrame, ReceptionSummary, Transport,
};
use crate::dtmf::{DtmfPacketPlan, DtmfReceiver, InbandDetector};
use crate::g711::Codec;
use crate::jitter::{JitterBuffer, Pop};
use crate::rtcp::{
    self, ReceiverStats, ReportBlock, RtcpPacket, SdesChunk, SenderInfo, ntp_from_unix,
    round_trip_ms,
};
use crate::rtp::{RTP_HEADER_LEN, RTP_VERSION, RtpPacket, RtpSender, SAMPLES_PER_FRAME, is_rtcp};
use crate::srtp::SrtpSession;
use nix::sys::socket::{setsockopt, sockopt};
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, oneshot};

/// Ticks between two refreshes of the published jitter-buffer target delay (200 ms).
const TARGET_REFRESH: u64 = 10;
/// Largest number of spare payload buffers kept for received packets.
const SPARE_BUFFERS: usize = 16;

/// The channel ends a session owns.
pub(super) struct Channels {
    pub audio_rx: mpsc::Receiver<Outbound>,
    pub cmd_rx: mpsc::Receiver<Command>,
    pub frames_tx: mpsc::Sender<PcmFrame>,
    pub events_tx: mpsc::Sender<MediaEvent>,
    /// Dropped when the session ends (after its sockets are closed).
    pub done: oneshot::Sender<()>,
}

struct ActiveDtmf {
    timestamp: u32,
    started: Instant,
    plan: Vec<DtmfPacketPlan>,
    next: usize,
}

#[derive(Default)]
struct Counters {
    rtp_sent: u64,
    rtp_received: u64,
    rtcp_sent: u64,
    rtcp_received: u64,
    malformed: u64,
    srtp_refused: u64,
    unknown_payload: u64,
    send_errors: u64,
    frames_delivered: u64,
    frames_dropped: u64,
    events_dropped: u64,
    audio_frames_sent: u64,
    dtmf_sent: u64,
    dtmf_received: u64,
    remote_ssrc: Option<u32>,
    remote_report: Option<ReportBlock>,
    rtt_ms: Option<f64>,
}

fn rtcp_delay(nominal: Duration) -> Duration {
    nominal.mul_f64(rand::random_range(0.5..1.5))
}

fn wall_ntp() -> u64 {
    ntp_from_unix(wall_clock())
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Ask the kernel to stamp each datagram with its arrival time (`SO_TIMESTAMPNS`).
fn with_timestamps(socket: &UdpSocket) -> Result<(), MediaError> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true)
        .map_err(|e| MediaError::Io(std::io::Error::from(e)))
}

/// The state of one session.
pub(super) struct Session {
    cfg: MediaConfig,
    rtp: UdpSocket,
    remote_rtp: SocketAddr,
    rtcp: Option<(UdpSocket, SocketAddr)>,
    sender: RtpSender,
    /// SRTP contexts, when the media is secure.
    srtp: Option<SrtpSession>,
    ts_origin: u32,
    audio_rx: mpsc::Receiver<Outbound>,
    cmd_rx: mpsc::Receiver<Command>,
    frames_tx: mpsc::Sender<PcmFrame>,
    events_tx: mpsc::Sender<MediaEvent>,
    stats: Arc<Mutex<MediaStats>>,
    /// Outgoing samples not yet sent.
    pending: VecDeque<i16>,
    dtmf_queue: VecDeque<(char, u32)>,
    dtmf: Option<ActiveDtmf>,
    dtmf_cooldown: u32,
    dtmf_rx: DtmfReceiver,
    inband: Option<InbandDetector>,
    jb: JitterBuffer,
    rx_stats: ReceiverStats,
    /// The last decoded frame (for concealment), valid when `has_last_frame`.
    last_frame: Vec<i16>,
    has_last_frame: bool,
    conceal_run: u32,
    /// Decoded samples waiting to be delivered: value, concealed flag, RTP timestamp.
    playout: VecDeque<(i16, bool, u32)>,
    /// Scratch for one decoded packet.
    decoded: Vec<i16>,
    start: Instant,
    rtcp_at: Instant,
    sent_since_report: bool,
    counters: Counters,
    /// When the previous packet went out (for the send-interval statistics).
    last_send: Option<Instant>,
    /// This tick's send lateness and interval deviation, published by `tick_receive`.
    send_timing: Option<(Duration, Option<Duration>)>,
    /// Ticks published, and the jitter buffer's target delay as last computed (it costs a
    /// sort, so it is refreshed every [`TARGET_REFRESH`] ticks).
    published: u64,
    target_ms: f64,
    /// Reused payload and wire buffers of outgoing packets.
    payload: Vec<u8>,
    wire: Vec<u8>,
    /// Payload buffers of played-out packets, reused for received ones.
    spare: Vec<Vec<u8>>,
    /// Declared last: dropped after the sockets, so `MediaSession::stop` returns once they are
    /// closed.
    _done: oneshot::Sender<()>,
}

impl Session {
    pub(super) fn new(
        transport: Transport,
        cfg: MediaConfig,
        ch: Channels,
    ) -> Result<Session, MediaError> {
        let rtp = transport.rtp.into_std()?;
        rtp.set_nonblocking(true)?;
        with_timestamps(&rtp)?;
        let rtcp = match transport.rtcp {
            Some((sock, remote)) => {
                let sock = sock.into_std()?;
                sock.set_nonblocking(true)?;
                with_timestamps(&sock)?;
                Some((sock, remote))
            }
            None => None,
        };
        let sender = RtpSender::new(cfg.codec.payload_type(), &mut rand::rng());
        let srtp = cfg.srtp.as_ref().map(SrtpSession::new).transpose()?;
        let stats = Arc::new(Mutex::new(MediaStats {
            local_ssrc: sender.ssrc(),
            ..MediaStats::default()
        }));
        let start = Instant::now();
        Ok(Session {
            jb: JitterBuffer::new(cfg.jitter.clone()),
            rx_stats: ReceiverStats::new(8000),
            ts_origin: sender.timestamp(),
            sender,
            srtp,
            inband: cfg.detect_inband_dtmf.then(InbandDetector::default),
            // First report after half an interval (RFC 3550 §6.2's initial report rule,
            // simplified).
            rtcp_at: start + rtcp_delay(cfg.rtcp_interval / 2),
            cfg,
            rtp,
            remote_rtp: transport.remote_rtp,
            rtcp,
            audio_rx: ch.audio_rx,
            cmd_rx: ch.cmd_rx,
            frames_tx: ch.frames_tx,
            events_tx: ch.events_tx,
            stats,
            pending: VecDeque::with_capacity(4 * FRAME),
            dtmf_queue: VecDeque::new(),
            dtmf: None,
            dtmf_cooldown: 0,
            dtmf_rx: DtmfReceiver::new(),
            last_frame: Vec::with_capacity(FRAME),
            has_last_frame: false,
            conceal_run: 0,
            playout: VecDeque::with_capacity(4 * FRAME),
            decoded: Vec::with_capacity(2 * FRAME),
            start,
            sent_since_report: false,
            counters: Counters::default(),
            last_send: None,
            send_timing: None,
            published: 0,
            target_ms: 0.0,
            payload: Vec::with_capacity(FRAME),
            wire: Vec::with_capacity(RTP_HEADER_LEN + FRAME),
            spare: Vec::new(),
            _done: ch.done,
        })
    }

    /// The shared statistics the handle reads.
    pub(super) fn stats(&self) -> Arc<Mutex<MediaStats>> {
        self.stats.clone()
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The first half of a tick scheduled at `scheduled`: apply commands, then send this
    /// period's packet (audio, silence or DTMF). Returns false once the session has ended (it
    /// has sent its RTCP BYE and published its final counters) and should be dropped.
    pub(super) fn tick_send(&mut self, scheduled: Instant) -> bool {
        loop {
            match self.cmd_rx.try_recv() {
                Ok(Command::ClearAudio) => {
                    self.pending.clear();
                    self.dtmf_queue.clear();
                    while self.audio_rx.try_recv().is_ok() {}
                }
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => {
                    // Stopped, or every handle is gone.
                    self.send_rtcp(true);
                    self.publish_with(None);
                    return false;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        // Event packets due by this tick (updates, end packets).
        let dtmf_was_active = self.dtmf.is_some();
        if dtmf_was_active {
            self.send_due_dtmf(scheduled);
        }
        self.fill();
        if !dtmf_was_active {
            if self.dtmf_cooldown > 0 {
                self.dtmf_cooldown -= 1;
            } else if self.pending.is_empty() {
                // Audio queued before the digit has gone out: start it.
                if let Some((digit, ms)) = self.dtmf_queue.pop_front() {
                    self.start_dtmf(digit, ms, scheduled);
                }
            }
        }
        if dtmf_was_active || self.dtmf.is_some() {
            // Audio pauses during an event; its clock runs on.
            self.sender.skip(SAMPLES_PER_FRAME);
        } else if !self.pending.is_empty() {
            self.encode_pending();
            self.send_payload();
            self.counters.audio_frames_sent += 1;
        } else if self.cfg.send_silence {
            self.payload.clear();
            self.payload.resize(FRAME, self.cfg.codec.silence_byte());
            self.send_payload();
        } else {
            self.sender.skip(SAMPLES_PER_FRAME);
        }
        let sent_at = Instant::now();
        let lateness = sent_at.saturating_duration_since(scheduled);
        let deviation = self
            .last_send
            .map(|prev| sent_at.saturating_duration_since(prev).abs_diff(PTIME));
        self.last_send = Some(sent_at);
        self.send_timing = Some((lateness, deviation));
        true
    }

    /// The second half of a tick: take in what arrived, play out one frame, send RTCP when due
    /// and publish the counters (one lock).
    pub(super) fn tick_receive(&mut self, io: &mut RecvIo) {
        self.drain(io, false);
        if self.rtcp.is_some() {
            self.drain(io, true);
        }
        self.play_out();
        if Instant::now() >= self.rtcp_at {
            self.send_rtcp(false);
            self.rtcp_at += rtcp_delay(self.cfg.rtcp_interval);
        }
        let timing = self.send_timing.take();
        self.publish_with(timing);
    }

    /// Pull queued audio until a frame is ready, stopping at a digit so order is kept.
    fn fill(&mut self) {
        while self.pending.len() < FRAME && self.dtmf_queue.is_empty() {
            match self.audio_rx.try_recv() {
                Ok(Outbound::Audio(chunk)) => self.pending.extend(chunk),
                Ok(Outbound::Dtmf(d, ms)) => self.dtmf_queue.push_back((d, ms)),
                Err(_) => break,
            }
        }
    }

    /// Encode the next 20 ms of pending audio (padded with silence) into `payload`.
    fn encode_pending(&mut self) {
        let codec = self.cfg.codec;
        let take = self.pending.len().min(FRAME);
        self.payload.clear();
        self.payload
            .extend(self.pending.drain(..take).map(|s| codec.encode_sample(s)));
        self.payload.resize(FRAME, codec.encode_sample(0));
    }

    /// Send `payload` as the next audio packet, without allocating: the payload buffer goes
    /// into the packet and comes back out of it.
    fn send_payload(&mut self) {
        let payload = std::mem::take(&mut self.payload);
        let packet = self.sender.audio_packet(payload, SAMPLES_PER_FRAME);
        self.send_rtp(&packet);
        self.payload = packet.payload;
    }

    fn send_rtp(&mut self, packet: &RtpPacket) {
        self.wire.clear();
        if packet.write_to(&mut self.wire).is_err() {
            self.counters.send_errors += 1;
            return;
        }
        let sent = match &mut self.srtp {
            Some(srtp) => match srtp.protect_rtp(&self.wire) {
                Ok(protected) => self.rtp.send_to(&protected, self.remote_rtp),
                Err(_) => {
                    self.counters.send_errors += 1;
                    return;
                }
            },
            None => self.rtp.send_to(&self.wire, self.remote_rtp),
        };
        match sent {
            Ok(_) => {
                self.counters.rtp_sent += 1;
                self.sent_since_report = true;
            }
            Err(_) => self.counters.send_errors += 1,
        }
    }

    fn start_dtmf(&mut self, digit: char, ms: u32, at: Instant) {
        let Ok(plan) = self.cfg.dtmf.plan(digit, ms) else {
            return;
        };
        self.dtmf = Some(ActiveDtmf {
            timestamp: self.sender.timestamp(),
            started: at,
            plan,
            next: 0,
        });
        self.counters.dtmf_sent += 1;
        self.send_due_dtmf(at);
    }

    /// Send the event packets planned up to `now`.
    fn send_due_dtmf(&mut self, now: Instant) {
        let Some(pt) = self.cfg.dtmf_payload_type else {
            self.dtmf = None;
            return;
        };
        let mut packets = Vec::new();
        if let Some(d) = self.dtmf.as_mut() {
            let elapsed = now.saturating_duration_since(d.started);
            while let Some(p) = d.plan.get(d.next) {
                if Duration::from_millis(u64::from(p.offset_ms)) > elapsed {
                    break;
                }
                packets.push(self.sender.packet_at(
                    pt,
                    d.timestamp,
                    p.marker,
                    p.event.to_bytes().to_vec(),
                ));
                d.next += 1;
            }
            if d.next >= d.plan.len() {
                self.dtmf = None;
                // A short pause before the next digit.
                self.dtmf_cooldown = 2;
            }
        }
        for p in &packets {
            self.send_rtp(p);
        }
    }

    fn deliver(&mut self, frame: PcmFrame) {
        match self.frames_tx.try_send(frame) {
            Ok(()) => self.counters.frames_delivered += 1,
            Err(TrySendError::Full(_)) => self.counters.frames_dropped += 1,
            Err(TrySendError::Closed(_)) => {}
        }
    }

    fn event(&mut self, e: MediaEvent) {
        if self.events_tx.try_send(e).is_err() {
            self.counters.events_dropped += 1;
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buf);
        }
    }

    /// Pop the jitter buffer until 20 ms of audio is ready (one pop per tick for 20 ms
    /// packets; peers using other packet times, e.g. 30 ms, are re-chunked), then deliver it.
    fn play_out(&mut self) {
        let now_ms = self.now_ms();
        while self.playout.len() < FRAME {
            match self.jb.pop(now_ms) {
                Pop::Frame(f) => {
                    let Some(codec) = Codec::from_payload_type(f.payload_type) else {
                        self.recycle(f.payload);
                        continue;
                    };
                    self.decoded.clear();
                    codec.decode_into(&f.payload, &mut self.decoded);
                    self.recycle(f.payload);
                    if let Some(det) = self.inband.as_mut() {
                        for d in det.process(&self.decoded) {
                            self.counters.dtmf_received += 1;
                            let e = MediaEvent::Dtmf {
                                digit: d.digit,
                                source: DtmfSource::Inband,
                            };
                            if self.events_tx.try_send(e).is_err() {
                                self.counters.events_dropped += 1;
                            }
                        }
                    }
                    self.conceal_run = 0;
                    let tail = self.decoded.len().saturating_sub(FRAME);
                    self.last_frame.clear();
                    self.last_frame.extend_from_slice(&self.decoded[tail..]);
                    self.has_last_frame = true;
                    let ts = f.timestamp;
                    self.playout.extend(
                        self.decoded
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| (v, false, ts.wrapping_add(i as u32))),
                    );
                }
                Pop::Gap {
                    timestamp, samples, ..
                } => {
                    // Concealment: the last frame at half level once, then silence.
                    let repeat = self.has_last_frame && self.conceal_run == 0;
                    let last = &self.last_frame;
                    self.playout.extend((0..samples as usize).map(|i| {
                        let v = if repeat {
                            last.get(i).map_or(0, |&v| v / 2)
                        } else {
                            0
                        };
                        (v, true, timestamp.wrapping_add(i as u32))
                    }));
                    self.conceal_run += 1;
                }
                Pop::Idle => break,
            }
        }
        if self.playout.is_empty() {
            return;
        }
        // A partial frame only happens when the stream stops mid-frame: pad it with silence.
        let take = self.playout.len().min(FRAME);
        let timestamp = self.playout.front().map_or(0, |&(_, _, ts)| ts);
        let mut concealed = false;
        let mut expect = timestamp;
        // The one allocation per tick: the frame handed to the consumer.
        let mut samples = Vec::with_capacity(FRAME);
        samples.extend(self.playout.drain(..take).map(|(v, c, ts)| {
            // Synthesised audio, or a splice where the buffer dropped or inserted a frame.
            concealed |= c || ts != expect;
            expect = ts.wrapping_add(1);
            v
        }));
        samples.resize(FRAME, 0);
        self.deliver(PcmFrame {
            samples,
            timestamp,
            concealed,
        });
    }

    /// Take in every datagram waiting on the RTP socket (or the RTCP one), in batches of one
    /// `recvmmsg` each.
    fn drain(&mut self, io: &mut RecvIo, rtcp_socket: bool) {
        let fd = match (&self.rtcp, rtcp_socket) {
            (Some((sock, _)), true) => sock.as_raw_fd(),
            _ => self.rtp.as_raw_fd(),
        };
        loop {
            let n = io.recv(fd);
            if n == 0 {
                return;
            }
            // Arrival times on the session's clock, from the kernel's wall-clock stamps.
            let (wall, since_start) = (wall_clock(), self.start.elapsed());
            for i in 0..n {
                let (buf, stamp) = io.datagram(i);
                let age = stamp.map_or(Duration::ZERO, |t| wall.saturating_sub(t));
                let arrival = since_start.saturating_sub(age);
                let rtcp = rtcp_socket || is_rtcp(buf);
                match (&mut self.srtp, rtcp) {
                    (None, true) => self.on_rtcp(buf),
                    (None, false) => self.on_rtp(buf, arrival),
                    (Some(srtp), true) => match srtp.unprotect_rtcp(buf) {
                        Ok(plain) => self.on_rtcp(&plain),
                        Err(_) => self.counters.srtp_refused += 1,
                    },
                    (Some(srtp), false) => match srtp.unprotect_rtp(buf) {
                        Ok(plain) => self.on_rtp(&plain, arrival),
                        Err(_) => self.counters.srtp_refused += 1,
                    },
                }
            }
            if n < io.capacity() {
                return;
            }
        }
    }

    /// Parse an RTP datagram; the common plain header (no CSRC, extension or padding) reuses a
    /// spare payload buffer instead of allocating.
    fn parse_rtp(&mut self, buf: &[u8]) -> Option<RtpPacket> {
        if buf.len() >= RTP_HEADER_LEN && buf[0] == RTP_VERSION << 6 {
            let mut payload = self.spare.pop().unwrap_or_default();
            payload.clear();
            payload.extend_from_slice(&buf[RTP_HEADER_LEN..]);
            let be32 = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
            return Some(RtpPacket::new(
                buf[1] & 0x7F,
                u16::from_be_bytes([buf[2], buf[3]]),
                be32(4),
                be32(8),
                buf[1] & 0x80 != 0,
                payload,
            ));
        }
        RtpPacket::parse(buf).ok()
    }

    fn on_rtp(&mut self, buf: &[u8], arrival: Duration) {
        let Some(p) = self.parse_rtp(buf) else {
            self.counters.malformed += 1;
            return;
        };
        self.counters.rtp_received += 1;
        self.counters.remote_ssrc = Some(p.ssrc);
        if Some(p.payload_type) == self.cfg.dtmf_payload_type {
            self.rx_stats.on_rtp_no_jitter(p.ssrc, p.sequence);
            match self.dtmf_rx.on_packet(p.ssrc, p.timestamp, &p.payload) {
                Ok(Some(d)) => {
                    self.counters.dtmf_received += 1;
                    self.event(MediaEvent::Dtmf {
                        digit: d.digit,
                        source: DtmfSource::Rfc4733,
                    });
                }
                Ok(None) => {}
                Err(_) => self.counters.malformed += 1,
            }
            self.recycle(p.payload);
        } else if Codec::from_payload_type(p.payload_type).is_some() {
            let units = (arrival.as_micros() * 8 / 1000) as u32;
            self.rx_stats.on_rtp(p.ssrc, p.sequence, p.timestamp, units);
            self.jb.push(p, arrival.as_millis() as u64);
        } else {
            self.counters.unknown_payload += 1;
            self.recycle(p.payload);
        }
    }

    fn on_rtcp(&mut self, buf: &[u8]) {
        let Ok(packets) = rtcp::parse_compound(buf) else {
            self.counters.malformed += 1;
            return;
        };
        self.counters.rtcp_received += 1;
        let now_ms = self.now_ms();
        let now_ntp = wall_ntp();
        let ours = self.sender.ssrc();
        for p in packets {
            let blocks = match p {
                RtcpPacket::SenderReport { info, reports, .. } => {
                    self.rx_stats.on_sender_report(info.ntp_timestamp, now_ms);
                    reports
                }
                RtcpPacket::ReceiverReport { reports, .. } => reports,
                RtcpPacket::Bye { reason, .. } => {
                    let reason = reason.map(|r| String::from_utf8_lossy(&r).into_owned());
                    self.event(MediaEvent::RemoteBye { reason });
                    continue;
                }
                _ => continue,
            };
            for b in blocks.into_iter().filter(|b| b.ssrc == ours) {
                let rtt = round_trip_ms(&b, now_ntp);
                self.counters.remote_report = Some(b);
                if rtt.is_some() {
                    self.counters.rtt_ms = rtt;
                }
                self.event(MediaEvent::RemoteReport {
                    report: b,
                    rtt_ms: rtt,
                });
            }
        }
    }

    fn send_rtcp(&mut self, bye: bool) {
        let now_ms = self.now_ms();
        let ssrc = self.sender.ssrc();
        let reports: Vec<ReportBlock> = self.rx_stats.report_block(now_ms).into_iter().collect();
        let first = if self.sent_since_report {
            let elapsed_units = self.start.elapsed().as_micros() * 8 / 1000;
            RtcpPacket::SenderReport {
                ssrc,
                info: SenderInfo {
                    ntp_timestamp: wall_ntp(),
                    rtp_timestamp: self.ts_origin.wrapping_add(elapsed_units as u32),
                    packet_count: self.sender.packets_sent(),
                    octet_count: self.sender.octets_sent(),
                },
                reports,
            }
        } else {
            RtcpPacket::ReceiverReport { ssrc, reports }
        };
        self.sent_since_report = false;
        let mut packets = vec![
            first,
            RtcpPacket::SourceDescription(vec![SdesChunk::cname(ssrc, &self.cfg.cname)]),
        ];
        if bye {
            packets.push(RtcpPacket::Bye {
                sources: vec![ssrc],
                reason: None,
            });
        }
        let Ok(bytes) = rtcp::serialize_compound(&packets) else {
            self.counters.send_errors += 1;
            return;
        };
        let bytes = match &mut self.srtp {
            Some(srtp) => match srtp.protect_rtcp(&bytes) {
                Ok(protected) => protected.to_vec(),
                Err(_) => {
                    self.counters.send_errors += 1;
                    return;
                }
            },
            None => bytes,
        };
        let sent = match &self.rtcp {
            Some((sock, remote)) => sock.send_to(&bytes, *remote),
            None => self.rtp.send_to(&bytes, self.remote_rtp),
        };
        match sent {
            Ok(_) => self.counters.rtcp_sent += 1,
            Err(_) => self.counters.send_errors += 1,
        }
    }

    /// Copy the counters into the shared stats, with this tick's send timing if any (one lock
    /// per tick).
    fn publish_with(&mut self, send_timing: Option<(Duration, Option<Duration>)>) {
        if self.published.is_multiple_of(TARGET_REFRESH) || send_timing.is_none() {
            self.target_ms = self.jb.target_delay_ms();
        }
        self.published += 1;
        let c = &self.counters;
        let mut s = super::lock(&self.stats);
        if let Some((lateness, deviation)) = send_timing {
            s.send_jitter.record(lateness);
            if let Some(d) = deviation {
                s.send_interval_jitter.record(d);
            }
        }
        s.remote_ssrc = c.remote_ssrc;
        s.rtp_sent = c.rtp_sent;
        s.rtp_received = c.rtp_received;
        s.rtcp_sent = c.rtcp_sent;
        s.rtcp_received = c.rtcp_received;
        s.malformed = c.malformed;
        s.srtp_refused = c.srtp_refused;
        s.unknown_payload = c.unknown_payload;
        s.send_errors = c.send_errors;
        s.frames_delivered = c.frames_delivered;
        s.frames_dropped = c.frames_dropped;
        s.events_dropped = c.events_dropped;
        s.audio_frames_sent = c.audio_frames_sent;
        s.dtmf_sent = c.dtmf_sent;
        s.dtmf_received = c.dtmf_received;
        s.remote_report = c.remote_report;
        s.rtt_ms = c.rtt_ms;
        s.jitter = self.jb.stats();
        s.jitter_target_ms = self.target_ms;
        s.reception = ReceptionSummary {
            expected: self.rx_stats.expected(),
            received: self.rx_stats.received(),
            lost: self.rx_stats.lost(),
            jitter_ms: self.rx_stats.jitter_ms(),
        };
    }
}
