//! The tokio shell of the media layer: a [`MediaSession`] owns one UDP socket (RTP, and RTCP
//! multiplexed on it per RFC 5761, or a second socket for RTCP) and runs one task that
//!
//! * every 20 ms (a deadline-based `tokio::time::interval` with [`MissedTickBehavior::Burst`], so
//!   pacing never drifts: a late tick is caught up, not skipped) sends one G.711 RTP packet from
//!   the outbound audio queue; when the queue is empty it sends encoded silence
//!   ([`MediaConfig::send_silence`], the default, keeps NAT bindings and the far end's jitter
//!   buffer steady) or nothing (the clock still advances and the next packet has the marker);
//! * measures each send against its ideal schedule ([`SendJitterStats`], for benchmarks);
//! * receives RTP into the adaptive [`JitterBuffer`], and on each tick pops one frame, decodes it
//!   and delivers it as a [`PcmFrame`] through a bounded channel with `try_send`: a slow consumer
//!   loses frames (counted in [`MediaStats::frames_dropped`]) and never blocks the loop;
//! * turns RFC 4733 telephone-events into [`MediaEvent::Dtmf`] (and, optionally, in-band tones);
//! * sends RFC 4733 digits queued in order with the audio (a digit starts when the audio queued
//!   before it has been sent; audio pauses meanwhile and its clock keeps running);
//! * sends RTCP SR/RR + SDES CNAME about every [`MediaConfig::rtcp_interval`] (randomised
//!   0.5–1.5× as in RFC 3550 §6.3.1) and BYE on stop, and reads the peer's reports (loss,
//!   jitter, round-trip time).
//!
//! Limits: G.711 only (PCMU/PCMA chosen per packet by payload type), 20 ms packets out; packets
//! are accepted from any source address (no latching or SRTP); concealment repeats the last
//! frame at half level once, then plays silence; no comfort-noise (RFC 3389) generation.

use crate::dtmf::{DEFAULT_EVENT_PAYLOAD_TYPE, DtmfReceiver, DtmfSender, InbandDetector};
use crate::g711::Codec;
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Pop};
use crate::rtcp::{
    self, ReceiverStats, ReportBlock, RtcpPacket, SdesChunk, SenderInfo, ntp_from_unix,
    round_trip_ms,
};
use crate::rtp::{RtpPacket, RtpSender, SAMPLES_PER_FRAME, is_rtcp};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// The packet time: 20 ms.
pub const PTIME: Duration = Duration::from_millis(20);
const FRAME: usize = SAMPLES_PER_FRAME as usize;

/// Settings of a [`MediaSession`].
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Codec of outgoing audio.
    pub codec: Codec,
    /// Payload type of telephone-events both ways; `None` disables RFC 4733.
    pub dtmf_payload_type: Option<u8>,
    /// Jitter buffer tuning.
    pub jitter: JitterConfig,
    /// Nominal RTCP report interval (RFC 3550 suggests 5 s).
    pub rtcp_interval: Duration,
    /// Capacity of the decoded-frame channel to the consumer (frames of 20 ms).
    pub inbound_capacity: usize,
    /// Capacity of the outbound audio queue (chunks of any length).
    pub outbound_capacity: usize,
    /// Capacity of the event channel.
    pub event_capacity: usize,
    /// Send encoded silence when there is no audio to send (otherwise send nothing).
    pub send_silence: bool,
    /// How outgoing digits are packetised.
    pub dtmf: DtmfSender,
    /// Also detect in-band DTMF in the decoded audio.
    pub detect_inband_dtmf: bool,
    /// RTCP canonical name.
    pub cname: String,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            codec: Codec::Pcma,
            dtmf_payload_type: Some(DEFAULT_EVENT_PAYLOAD_TYPE),
            jitter: JitterConfig::default(),
            rtcp_interval: Duration::from_secs(5),
            inbound_capacity: 50,
            outbound_capacity: 512,
            event_capacity: 64,
            send_silence: true,
            dtmf: DtmfSender::default(),
            detect_inband_dtmf: false,
            cname: "callbot@localhost".to_string(),
        }
    }
}

/// 20 ms (160 samples) of decoded audio from the far end, whatever the peer's packet time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcmFrame {
    /// Linear PCM at 8 kHz.
    pub samples: Vec<i16>,
    /// RTP timestamp of the first sample.
    pub timestamp: u32,
    /// True if any of it was synthesised to cover missing audio, or it spans a splice where the
    /// jitter buffer dropped or inserted audio (its samples are then not one contiguous run
    /// from `timestamp`).
    pub concealed: bool,
}

/// Where a received digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones detected in the audio.
    Inband,
}

/// Something that happened on the session.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// A DTMF digit was received.
    Dtmf {
        /// The digit.
        digit: char,
        /// How it was signalled.
        source: DtmfSource,
    },
    /// The peer reported on our stream.
    RemoteReport {
        /// Its report block about our SSRC.
        report: ReportBlock,
        /// Round-trip time, if the peer had our SR.
        rtt_ms: Option<f64>,
    },
    /// The peer sent RTCP BYE.
    RemoteBye {
        /// Reason text, if any.
        reason: Option<String>,
    },
}

/// Errors of the session handle.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The media task has ended.
    #[error("media session closed")]
    Closed,
    /// The queue is full (try again later or use the awaiting call).
    #[error("media queue full")]
    QueueFull,
    /// Not a DTMF digit.
    #[error("not a DTMF digit: {0:?}")]
    InvalidDigit(char),
    /// Telephone-events are disabled.
    #[error("RFC 4733 DTMF not enabled")]
    DtmfDisabled,
    /// Socket error at start.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Width of one bucket of the send-lateness histogram.
const HIST_BUCKET_US: u64 = 100;
/// Buckets (the last one collects everything above 200 ms).
const HIST_BUCKETS: usize = 2001;

/// How late each 20 ms send was against its ideal schedule (start + n × 20 ms).
#[derive(Debug, Clone)]
pub struct SendJitterStats {
    /// Ticks measured.
    pub ticks: u64,
    /// Largest lateness, µs.
    pub max_us: u64,
    /// Ticks later than 5 ms.
    pub over_5ms: u64,
    sum_us: u128,
    hist: Vec<u64>,
}

impl Default for SendJitterStats {
    fn default() -> SendJitterStats {
        SendJitterStats {
            ticks: 0,
            max_us: 0,
            over_5ms: 0,
            sum_us: 0,
            hist: vec![0; HIST_BUCKETS],
        }
    }
}

impl SendJitterStats {
    /// Record one send's lateness.
    pub fn record(&mut self, late: Duration) {
        let us = late.as_micros().min(u128::from(u64::MAX)) as u64;
        self.ticks += 1;
        self.max_us = self.max_us.max(us);
        self.sum_us += u128::from(us);
        if us > 5_000 {
            self.over_5ms += 1;
        }
        let b = ((us / HIST_BUCKET_US) as usize).min(HIST_BUCKETS - 1);
        self.hist[b] += 1;
    }

    /// Add another session's figures (for totals over many calls).
    pub fn merge(&mut self, other: &SendJitterStats) {
        self.ticks += other.ticks;
        self.max_us = self.max_us.max(other.max_us);
        self.over_5ms += other.over_5ms;
        self.sum_us += other.sum_us;
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            *a += b;
        }
    }

    /// Mean lateness, µs.
    pub fn mean_us(&self) -> f64 {
        if self.ticks == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.ticks as f64
        }
    }

    /// Lateness at quantile `q` (0..=1), µs, to 100 µs resolution (upper bucket edge).
    pub fn percentile_us(&self, q: f64) -> u64 {
        if self.ticks == 0 {
            return 0;
        }
        let rank = ((self.ticks as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if i == HIST_BUCKETS - 1 {
                    return self.max_us; // overflow bucket
                }
                return ((i as u64 + 1) * HIST_BUCKET_US).min(self.max_us);
            }
        }
        self.max_us
    }
}

/// Reception statistics of the far end's stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceptionSummary {
    /// Packets expected from sequence numbers.
    pub expected: u64,
    /// Packets received.
    pub received: u64,
    /// Cumulative lost.
    pub lost: i64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
}

/// A snapshot of a session's counters.
#[derive(Debug, Clone, Default)]
pub struct MediaStats {
    /// Our SSRC.
    pub local_ssrc: u32,
    /// The far end's SSRC, once seen.
    pub remote_ssrc: Option<u32>,
    /// RTP packets sent (audio, silence and events).
    pub rtp_sent: u64,
    /// RTP packets received.
    pub rtp_received: u64,
    /// RTCP compounds sent.
    pub rtcp_sent: u64,
    /// RTCP compounds received.
    pub rtcp_received: u64,
    /// Datagrams that failed to parse.
    pub malformed: u64,
    /// RTP packets of a payload type we do not handle.
    pub unknown_payload: u64,
    /// Sends that failed (socket full or error): the packet was dropped.
    pub send_errors: u64,
    /// Frames delivered to the consumer.
    pub frames_delivered: u64,
    /// Frames dropped because the consumer's channel was full.
    pub frames_dropped: u64,
    /// Events dropped because the event channel was full.
    pub events_dropped: u64,
    /// Frames of outgoing audio sent (not silence).
    pub audio_frames_sent: u64,
    /// Digits sent as RFC 4733 events.
    pub dtmf_sent: u64,
    /// Digits received (all sources).
    pub dtmf_received: u64,
    /// Jitter buffer counters.
    pub jitter: JitterStats,
    /// Jitter buffer target delay, ms.
    pub jitter_target_ms: f64,
    /// Our reception of the far end.
    pub reception: ReceptionSummary,
    /// The far end's latest report about our stream.
    pub remote_report: Option<ReportBlock>,
    /// Latest round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// Lateness of our sends against the 20 ms schedule.
    pub send_jitter: SendJitterStats,
    /// How far each interval between two consecutive sends was from 20 ms (send-side jitter in
    /// the RFC 3550 sense: a constant lateness does not count).
    pub send_interval_jitter: SendJitterStats,
}

enum Command {
    ClearAudio,
    Stop,
}

/// An item of the outbound queue: audio, or a digit to send after the audio before it.
enum Outbound {
    Audio(Vec<i16>),
    Dtmf(char, u32),
}

/// A cloneable handle to feed audio and commands to a running session.
#[derive(Clone)]
pub struct MediaHandle {
    audio_tx: mpsc::Sender<Outbound>,
    cmd_tx: mpsc::Sender<Command>,
    stats: Arc<Mutex<MediaStats>>,
    local_addr: SocketAddr,
    dtmf_enabled: bool,
}

fn lock(stats: &Mutex<MediaStats>) -> MutexGuard<'_, MediaStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

impl MediaHandle {
    /// Queue 8 kHz PCM for sending (any length; it is cut into 20 ms frames). Waits while the
    /// queue is full.
    pub async fn send_audio(&self, pcm: Vec<i16>) -> Result<(), MediaError> {
        self.audio_tx
            .send(Outbound::Audio(pcm))
            .await
            .map_err(|_| MediaError::Closed)
    }

    /// Queue PCM without waiting.
    pub fn try_send_audio(&self, pcm: Vec<i16>) -> Result<(), MediaError> {
        self.audio_tx
            .try_send(Outbound::Audio(pcm))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => MediaError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => MediaError::Closed,
            })
    }

    fn command(&self, c: Command) -> Result<(), MediaError> {
        self.cmd_tx.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => MediaError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => MediaError::Closed,
        })
    }

    /// Drop all queued outgoing audio and digits not yet started (barge-in).
    pub fn clear_audio(&self) -> Result<(), MediaError> {
        self.command(Command::ClearAudio)
    }

    /// Queue digits as RFC 4733 events, each lasting `duration_ms` (40..=8000), after the audio
    /// queued so far, one after the other. Waits while the queue is full.
    pub async fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError> {
        if !self.dtmf_enabled {
            return Err(MediaError::DtmfDisabled);
        }
        if let Some(bad) = digits
            .chars()
            .find(|&d| crate::dtmf::digit_to_event(d).is_none())
        {
            return Err(MediaError::InvalidDigit(bad));
        }
        for d in digits.chars() {
            self.audio_tx
                .send(Outbound::Dtmf(d, duration_ms))
                .await
                .map_err(|_| MediaError::Closed)?;
        }
        Ok(())
    }

    /// Ask the session to send RTCP BYE and stop.
    pub fn stop(&self) -> Result<(), MediaError> {
        self.command(Command::Stop)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MediaStats {
        lock(&self.stats).clone()
    }

    /// The local RTP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// A running media session (see the module docs). Read decoded audio from
/// [`frames`](Self::frames) and events from [`events`](Self::events).
pub struct MediaSession {
    /// Handle for sending audio and commands.
    pub handle: MediaHandle,
    /// Decoded 20 ms frames from the far end.
    pub frames: mpsc::Receiver<PcmFrame>,
    /// DTMF and RTCP events.
    pub events: mpsc::Receiver<MediaEvent>,
    task: Option<JoinHandle<()>>,
}

/// Where to send, and the optional separate RTCP socket.
#[derive(Debug)]
pub struct Transport {
    /// The RTP socket (also RTCP when `rtcp` is `None`).
    pub rtp: UdpSocket,
    /// The far end's RTP address.
    pub remote_rtp: SocketAddr,
    /// A separate RTCP socket and the far end's RTCP address; `None` multiplexes RTCP on RTP.
    pub rtcp: Option<(UdpSocket, SocketAddr)>,
}

impl MediaSession {
    /// Start a session on `socket`, sending to `remote`, with RTCP multiplexed on the same
    /// port. Must be called within a tokio runtime.
    pub fn start(
        socket: UdpSocket,
        remote: SocketAddr,
        config: MediaConfig,
    ) -> Result<MediaSession, MediaError> {
        MediaSession::start_with(
            Transport {
                rtp: socket,
                remote_rtp: remote,
                rtcp: None,
            },
            config,
        )
    }

    /// Start a session on the given transport.
    pub fn start_with(
        transport: Transport,
        config: MediaConfig,
    ) -> Result<MediaSession, MediaError> {
        let local_addr = transport.rtp.local_addr()?;
        let (audio_tx, audio_rx) = mpsc::channel(config.outbound_capacity.max(1));
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (frames_tx, frames) = mpsc::channel(config.inbound_capacity.max(1));
        let (events_tx, events) = mpsc::channel(config.event_capacity.max(1));
        let payload_type = config.codec.payload_type();
        let sender = RtpSender::new(payload_type, &mut rand::rng());
        let stats = Arc::new(Mutex::new(MediaStats {
            local_ssrc: sender.ssrc(),
            ..MediaStats::default()
        }));
        let handle = MediaHandle {
            audio_tx,
            cmd_tx,
            stats: stats.clone(),
            local_addr,
            dtmf_enabled: config.dtmf_payload_type.is_some(),
        };
        let inband = config.detect_inband_dtmf.then(InbandDetector::default);
        let media_loop = MediaLoop {
            jb: JitterBuffer::new(config.jitter.clone()),
            rx_stats: ReceiverStats::new(8000),
            ts_origin: sender.timestamp(),
            sender,
            cfg: config,
            transport,
            audio_rx,
            cmd_rx,
            frames_tx,
            events_tx,
            stats,
            pending: VecDeque::new(),
            dtmf_queue: VecDeque::new(),
            dtmf: None,
            dtmf_cooldown: 0,
            last_send: None,
            dtmf_rx: DtmfReceiver::new(),
            inband,
            last_frame: None,
            conceal_run: 0,
            playout: VecDeque::new(),
            start: Instant::now(),
            sent_since_report: false,
            counters: Counters::default(),
        };
        let task = tokio::spawn(media_loop.run());
        Ok(MediaSession {
            handle,
            frames,
            events,
            task: Some(task),
        })
    }

    /// Send RTCP BYE, stop the task and return the final counters. Frames and events already
    /// delivered stay readable.
    pub async fn stop(&mut self) -> MediaStats {
        let _ = self.handle.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.handle.stats()
    }
}

struct ActiveDtmf {
    timestamp: u32,
    started: Instant,
    plan: Vec<crate::dtmf::DtmfPacketPlan>,
    next: usize,
}

#[derive(Default)]
struct Counters {
    rtp_sent: u64,
    rtp_received: u64,
    rtcp_sent: u64,
    rtcp_received: u64,
    malformed: u64,
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

struct MediaLoop {
    /// When the previous packet went out (for the send-interval statistics).
    last_send: Option<Instant>,
    cfg: MediaConfig,
    transport: Transport,
    sender: RtpSender,
    ts_origin: u32,
    audio_rx: mpsc::Receiver<Outbound>,
    cmd_rx: mpsc::Receiver<Command>,
    frames_tx: mpsc::Sender<PcmFrame>,
    events_tx: mpsc::Sender<MediaEvent>,
    stats: Arc<Mutex<MediaStats>>,
    pending: VecDeque<i16>,
    dtmf_queue: VecDeque<(char, u32)>,
    dtmf: Option<ActiveDtmf>,
    dtmf_cooldown: u32,
    dtmf_rx: DtmfReceiver,
    inband: Option<InbandDetector>,
    jb: JitterBuffer,
    rx_stats: ReceiverStats,
    last_frame: Option<Vec<i16>>,
    conceal_run: u32,
    /// Decoded samples waiting to be delivered: value, concealed flag, RTP timestamp.
    playout: VecDeque<(i16, bool, u32)>,
    start: Instant,
    sent_since_report: bool,
    counters: Counters,
}

fn rtcp_delay(nominal: Duration) -> Duration {
    nominal.mul_f64(rand::random_range(0.5..1.5))
}

impl MediaLoop {
    async fn run(mut self) {
        let mut ticker = tokio::time::interval_at(self.start, PTIME);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        // First report after half an interval (RFC 3550 §6.2's initial report rule, simplified).
        let mut rtcp_at = self.start + rtcp_delay(self.cfg.rtcp_interval / 2);
        let mut buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        loop {
            let dtmf_at = self.dtmf.as_ref().and_then(|d| {
                d.plan
                    .get(d.next)
                    .map(|p| d.started + Duration::from_millis(u64::from(p.offset_ms)))
            });
            let rtcp_sock = self.transport.rtcp.as_ref().map(|(s, _)| s);
            tokio::select! {
                biased;
                scheduled = ticker.tick() => {
                    self.on_tick(scheduled);
                }
                _ = sleep_opt(dtmf_at) => {
                    self.send_due_dtmf(Instant::now());
                }
                _ = tokio::time::sleep_until(rtcp_at) => {
                    self.send_rtcp(false);
                    rtcp_at += rtcp_delay(self.cfg.rtcp_interval);
                }
                r = self.transport.rtp.recv_from(&mut buf) => {
                    if let Ok((n, _from)) = r {
                        self.on_datagram(&buf[..n]);
                    }
                }
                r = recv_opt(rtcp_sock, &mut rtcp_buf) => {
                    if let Some(n) = r {
                        self.on_rtcp(&rtcp_buf[..n]);
                    }
                }
                cmd = self.cmd_rx.recv() => {
                    match cmd {
                        Some(Command::ClearAudio) => {
                            self.pending.clear();
                            self.dtmf_queue.clear();
                            while self.audio_rx.try_recv().is_ok() {}
                        }
                        Some(Command::Stop) | None => {
                            self.send_rtcp(true);
                            self.publish();
                            return;
                        }
                    }
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn send_rtp(&mut self, packet: &RtpPacket) {
        let Ok(bytes) = packet.to_bytes() else {
            self.counters.send_errors += 1;
            return;
        };
        match self
            .transport
            .rtp
            .try_send_to(&bytes, self.transport.remote_rtp)
        {
            Ok(_) => {
                self.counters.rtp_sent += 1;
                self.sent_since_report = true;
            }
            Err(_) => self.counters.send_errors += 1,
        }
    }

    /// One 20 ms period: send one packet (or an event's share), play out one frame.
    fn on_tick(&mut self, scheduled: Instant) {
        self.fill();
        if self.dtmf.is_none() && self.dtmf_cooldown > 0 {
            self.dtmf_cooldown -= 1;
        } else if self.dtmf.is_none() && self.pending.is_empty() {
            // Audio queued before the digit has gone out: start it.
            if let Some((digit, ms)) = self.dtmf_queue.pop_front() {
                self.start_dtmf(digit, ms, scheduled);
            }
        }
        if self.dtmf.is_some() {
            // Audio pauses during an event; its clock runs on.
            self.sender.skip(SAMPLES_PER_FRAME);
        } else if let Some(frame) = self.next_outbound_frame() {
            let payload = self.cfg.codec.encode(&frame);
            let p = self.sender.audio_packet(payload, SAMPLES_PER_FRAME);
            self.send_rtp(&p);
            self.counters.audio_frames_sent += 1;
        } else if self.cfg.send_silence {
            let payload = vec![self.cfg.codec.silence_byte(); FRAME];
            let p = self.sender.audio_packet(payload, SAMPLES_PER_FRAME);
            self.send_rtp(&p);
        } else {
            self.sender.skip(SAMPLES_PER_FRAME);
        }
        let sent_at = Instant::now();
        let lateness = sent_at.saturating_duration_since(scheduled);
        let deviation = self
            .last_send
            .map(|prev| sent_at.saturating_duration_since(prev).abs_diff(PTIME));
        self.last_send = Some(sent_at);
        self.play_out();
        self.publish_with(Some((lateness, deviation)));
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

    fn next_outbound_frame(&mut self) -> Option<Vec<i16>> {
        if self.pending.is_empty() {
            return None;
        }
        let take = self.pending.len().min(FRAME);
        let mut frame: Vec<i16> = self.pending.drain(..take).collect();
        frame.resize(FRAME, 0);
        Some(frame)
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
            Err(mpsc::error::TrySendError::Full(_)) => self.counters.frames_dropped += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn event(&mut self, e: MediaEvent) {
        if self.events_tx.try_send(e).is_err() {
            self.counters.events_dropped += 1;
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
                        continue;
                    };
                    let samples = codec.decode(&f.payload);
                    if let Some(det) = self.inband.as_mut() {
                        for d in det.process(&samples) {
                            self.counters.dtmf_received += 1;
                            self.event(MediaEvent::Dtmf {
                                digit: d.digit,
                                source: DtmfSource::Inband,
                            });
                        }
                    }
                    self.conceal_run = 0;
                    let tail = samples.len().saturating_sub(FRAME);
                    self.last_frame = Some(samples[tail..].to_vec());
                    let ts = f.timestamp;
                    self.playout.extend(
                        samples
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| (v, false, ts.wrapping_add(i as u32))),
                    );
                }
                Pop::Gap {
                    timestamp, samples, ..
                } => {
                    let n = samples as usize;
                    // Concealment: the last frame at half level once, then silence.
                    let fill: Vec<i16> = match (&self.last_frame, self.conceal_run) {
                        (Some(last), 0) => {
                            (0..n).map(|i| last.get(i).map_or(0, |&v| v / 2)).collect()
                        }
                        _ => vec![0; n],
                    };
                    self.conceal_run += 1;
                    self.playout.extend(
                        fill.into_iter()
                            .enumerate()
                            .map(|(i, v)| (v, true, timestamp.wrapping_add(i as u32))),
                    );
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
        let mut samples: Vec<i16> = self
            .playout
            .drain(..take)
            .map(|(v, c, ts)| {
                // Synthesised audio, or a splice where the buffer dropped or inserted a frame.
                concealed |= c || ts != expect;
                expect = ts.wrapping_add(1);
                v
            })
            .collect();
        samples.resize(FRAME, 0);
        self.deliver(PcmFrame {
            samples,
            timestamp,
            concealed,
        });
    }

    fn on_datagram(&mut self, buf: &[u8]) {
        if is_rtcp(buf) {
            self.on_rtcp(buf);
            return;
        }
        let Ok(p) = RtpPacket::parse(buf) else {
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
        } else if Codec::from_payload_type(p.payload_type).is_some() {
            let elapsed = self.start.elapsed();
            let units = (elapsed.as_micros() * 8 / 1000) as u32;
            self.rx_stats.on_rtp(p.ssrc, p.sequence, p.timestamp, units);
            self.jb.push(p, elapsed.as_millis() as u64);
        } else {
            self.counters.unknown_payload += 1;
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
        let sent = match &self.transport.rtcp {
            Some((sock, remote)) => sock.try_send_to(&bytes, *remote),
            None => self
                .transport
                .rtp
                .try_send_to(&bytes, self.transport.remote_rtp),
        };
        match sent {
            Ok(_) => self.counters.rtcp_sent += 1,
            Err(_) => self.counters.send_errors += 1,
        }
    }

    fn publish(&mut self) {
        self.publish_with(None);
    }

    /// Copy the counters into the shared stats, with this tick's send timing if any (one lock
    /// per tick).
    fn publish_with(&mut self, send_timing: Option<(Duration, Option<Duration>)>) {
        let c = &self.counters;
        let mut s = lock(&self.stats);
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
        s.jitter_target_ms = self.jb.target_delay_ms();
        s.reception = ReceptionSummary {
            expected: self.rx_stats.expected(),
            received: self.rx_stats.received(),
            lost: self.rx_stats.lost(),
            jitter_ms: self.rx_stats.jitter_ms(),
        };
    }
}

fn wall_ntp() -> u64 {
    ntp_from_unix(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(sock: Option<&UdpSocket>, buf: &mut [u8]) -> Option<usize> {
    match sock {
        Some(s) => s.recv_from(buf).await.ok().map(|(n, _)| n),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn send_jitter_percentiles() {
        let mut s = SendJitterStats::default();
        for us in 0..1000u64 {
            s.record(Duration::from_micros(us * 10));
        }
        assert_eq!(s.ticks, 1000);
        assert_eq!(s.max_us, 9990);
        assert!((s.mean_us() - 4995.0).abs() < 1e-6);
        assert_eq!(s.percentile_us(0.5), 5000);
        assert_eq!(s.percentile_us(0.99), 9900);
        assert_eq!(s.percentile_us(1.0), 9990);
        assert_eq!(s.over_5ms, 499);
        s.record(Duration::from_secs(1));
        assert_eq!(s.max_us, 1_000_000);
        assert_eq!(s.percentile_us(1.0), 1_000_000);
    }
}
