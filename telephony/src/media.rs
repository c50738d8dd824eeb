//! The media layer's runtime: a [`MediaSession`] owns one UDP socket (RTP, and RTCP
//! multiplexed on it per RFC 5761, or a second socket for RTCP) and, every 20 ms,
//!
//! * sends one G.711 RTP packet from the outbound audio queue; when the queue is empty it sends
//!   encoded silence ([`MediaConfig::send_silence`], the default, keeps NAT bindings and the far
//!   end's jitter buffer steady) or nothing (the clock still advances and the next packet has the
//!   marker); pacing never drifts: a late tick is caught up, not skipped;
//! * measures each send against its ideal schedule ([`SendJitterStats`], for benchmarks);
//! * receives the RTP that arrived since the last tick into the adaptive [`JitterBuffer`] (with
//!   the kernel's arrival timestamps, so the jitter estimate sees real arrival times), pops one
//!   frame, decodes it and delivers it as a [`PcmFrame`] through a bounded channel with
//!   `try_send`: a slow consumer loses frames (counted in [`MediaStats::frames_dropped`]) and
//!   never blocks the media loop;
//! * turns RFC 4733 telephone-events into [`MediaEvent::Dtmf`] (and, optionally, in-band tones);
//! * sends RFC 4733 digits queued in order with the audio (a digit starts when the audio queued
//!   before it has been sent; audio pauses meanwhile and its clock keeps running); event packets
//!   go out on the session's 20 ms ticks (an update planned at 50 ms goes at 60 ms);
//! * sends RTCP SR/RR + SDES CNAME about every [`MediaConfig::rtcp_interval`] (randomised
//!   0.5–1.5× as in RFC 3550 §6.3.1) and BYE on stop, and reads the peer's reports (loss,
//!   jitter, round-trip time).
//!
//! Sessions do not get a task or a timer each: a process-wide media scheduler runs about one
//! worker thread per core, each owning many sessions placed in 20 slots 1 ms apart (a new session
//! takes its worker's least-loaded slot, so sends spread over the 20 ms period). A worker sleeps
//! until its next occupied slot, then sends every packet of that slot in one pass and afterwards,
//! in a second pass, drains each of those sessions' sockets with one non-blocking `recvmmsg`,
//! plays out and publishes statistics. Commands ([`MediaHandle::clear_audio`], `stop`) take effect
//! at the session's next tick, so barge-in silences outgoing audio within 20 ms. The hot path
//! allocates only the [`PcmFrame`] handed to the consumer.
//!
//! With [`MediaConfig::srtp`] set (SDES keys from the SDP, [`crate::srtp`]), every RTP and RTCP
//! packet is encrypted and authenticated on the way out, and checked (authentication tag and
//! replay window) and decrypted on the way in; a packet that fails is dropped and counted in
//! [`MediaStats::srtp_refused`]. Each protected packet costs one buffer allocation each way.
//!
//! Limits: G.711 only (PCMU/PCMA chosen per packet by payload type), 20 ms packets out; packets
//! are accepted from any source address (no latching); concealment repeats the last
//! frame at half level once, then plays silence; no comfort-noise (RFC 3389) generation. A
//! datagram longer than 2048 bytes is truncated.

mod scheduler;
mod session;

use crate::dtmf::{DEFAULT_EVENT_PAYLOAD_TYPE, DtmfSender};
use crate::g711::Codec;
use crate::jitter::{JitterConfig, JitterStats};
use crate::rtcp::ReportBlock;
use crate::srtp::SrtpKeys;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

#[cfg(doc)]
use crate::jitter::JitterBuffer;

/// The packet time: 20 ms.
pub const PTIME: Duration = Duration::from_millis(20);
const FRAME: usize = crate::rtp::SAMPLES_PER_FRAME as usize;

/// How the media scheduler's worker threads are scheduled by the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerPriority {
    /// The default time-sharing policy: fine on an otherwise idle machine; CPU-heavy work on the
    /// same cores (builds, ASR inference) can delay a tick by a scheduler slice (milliseconds).
    #[default]
    Normal,
    /// `SCHED_FIFO` at this priority (1..=99), as media servers run their RTP threads: ticks
    /// preempt time-shared work. Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO`; where refused the
    /// worker keeps the normal policy (see [`SchedulerInfo::realtime_workers`]).
    Realtime(u8),
}

/// Settings of the process-wide media scheduler (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerConfig {
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// OS scheduling of the workers.
    pub priority: WorkerPriority,
}

/// What the media scheduler is running with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerInfo {
    /// Worker threads.
    pub workers: usize,
    /// Workers the OS granted realtime priority.
    pub realtime_workers: usize,
}

/// The media scheduler had already started (with the defaults, at the first session, or by an
/// earlier [`configure_scheduler`]).
#[derive(Debug, Clone, Copy, Error)]
#[error("media scheduler already started")]
pub struct SchedulerStarted;

/// Start the media scheduler with `config`. Call it before the first session starts (which
/// otherwise starts the scheduler with [`SchedulerConfig::default`]).
pub fn configure_scheduler(config: SchedulerConfig) -> Result<SchedulerInfo, SchedulerStarted> {
    scheduler::configure(&config).ok_or(SchedulerStarted)
}

/// The running media scheduler's workers, or `None` before it has started.
pub fn scheduler_info() -> Option<SchedulerInfo> {
    scheduler::info()
}

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
    /// SRTP keys (SDES) when the negotiation agreed on secure RTP; `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
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
            srtp: None,
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
    /// The SRTP keys could not be used.
    #[error(transparent)]
    Srtp(#[from] crate::srtp::SrtpError),
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
    /// SRTP/SRTCP packets refused (authentication failed, a replay, or not SRTP at all): dropped.
    pub srtp_refused: u64,
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
    /// Jitter buffer target delay, ms (refreshed every 200 ms).
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
    /// Closed by the scheduler when the session has ended.
    done: Option<oneshot::Receiver<()>>,
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
    /// port. The socket is taken over by the media scheduler's threads (it leaves the tokio
    /// reactor), so this works inside or outside a tokio runtime.
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
        let (done_tx, done) = oneshot::channel();
        let dtmf_enabled = config.dtmf_payload_type.is_some();
        let session = session::Session::new(
            transport,
            config,
            session::Channels {
                audio_rx,
                cmd_rx,
                frames_tx,
                events_tx,
                done: done_tx,
            },
        )?;
        let handle = MediaHandle {
            audio_tx,
            cmd_tx,
            stats: session.stats(),
            local_addr,
            dtmf_enabled,
        };
        scheduler::submit(session)?;
        Ok(MediaSession {
            handle,
            frames,
            events,
            done: Some(done),
        })
    }

    /// Send RTCP BYE, stop the session and return the final counters. Frames and events
    /// already delivered stay readable.
    pub async fn stop(&mut self) -> MediaStats {
        let _ = self.handle.stop();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        self.handle.stats()
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
