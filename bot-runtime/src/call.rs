//! One robot conversation on an answered call: the per-call pipeline.
//!
//! ```text
//! RTP ─► MediaSession (jitter buffer, G.711 decode) ─► 20 ms frames ─► Silero VAD (8 kHz)
//!     ─► [AMD while undecided] ─► TurnTaker ─► whisper (speculative / final, bounded pool)
//!     ─► FlowNlu ─► dialog_flows::Call ─► phrase cache / Piper streaming ─► Playout
//!     ─► MediaHandle (paced 20 ms RTP) ;  both legs ─► Recorder ;  the record ─► CallRecord
//! ```
//!
//! The session is one tokio task; models run on the blocking pool (whisper behind the engines'
//! gate, Piper behind the voice's lock) and report back through channels, so the task never waits
//! on a model: barge-in, DTMF and the media tick are handled while recognition runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use dialog_flows::ast::SlotType;
use dialog_flows::{Call, CallAction, Event, Flow, Listen, Utterance};
use telephony::media::{MediaEvent, MediaSession, PcmFrame};
use telephony::sip::Uri;
use telephony::sip::transport::AgentHandle;
use telephony::sip::ua::{CallEvent, CallId};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::agents::desk::{AgentInfo, CustomerInfo, Desk, TransferRequest, TransferUpdate};
use crate::agents::hold::HoldMusic;
use crate::amd::{AmdAction, AmdConfig, AmdDetector, AmdVerdict};
use crate::engines::Engines;
use crate::playout::{Playout, PlayoutEvent};
use crate::record::{CallLeg, CallRecord, Speaker, StageLatency, TurnRecord};
use crate::recorder::Recorder;
use crate::turn::{Expect, FinishedTurn, Purpose, Transcript, TurnAction, TurnConfig, TurnTaker};

/// How the robot answers a call.
#[derive(Clone)]
pub struct CallSetup {
    /// Identity of the call, filled in by the caller (direction, phone, campaign, lead).
    pub record: CallRecord,
    pub flow: Arc<Flow>,
    pub lead: serde_json::Map<String, serde_json::Value>,
    /// Run answering-machine detection before the robot speaks.
    pub amd: bool,
    pub amd_config: AmdConfig,
    /// Where to write the recording (`None`: no recording).
    pub recording_dir: Option<PathBuf>,
    /// Seals the recording (the store's keyring); `None`: a plain WAV.
    pub recording_keys: Option<Arc<crate::vault::Vault>>,
    pub turn: TurnConfig,
    /// Live transcript and events, for a console or the demo.
    pub live: Option<mpsc::UnboundedSender<LiveEvent>>,
    /// The call is ended by the robot after this long (a call bridged to an agent is not).
    pub max_duration: Duration,
    /// The call is ended when no RTP has come from the far end for this long (a phone or
    /// trunk that vanished without a BYE); `None`: never.
    pub media_timeout: Option<Duration>,
    /// Where the flow's transfers go (`None`: no agents; a transfer runs the flow's fallback).
    pub desk: Option<Desk>,
    /// The longest a transfer waits for an agent, when shorter than the queue's `max_wait`
    /// (the dialer's human campaigns: the safe harbour). `None`: the queue's.
    pub transfer_max_wait: Option<Duration>,
}

/// The SIP side of the call.
pub struct SipLeg {
    pub agent: AgentHandle,
    pub call: CallId,
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    /// The customer's URI as dialled (`sip:+15551234567@trunk`; `None` for inbound calls). A
    /// cold transfer to a bare number goes to the same host: `sip:+44…@trunk`.
    pub remote: Option<Uri>,
    /// Our side of the SDP (media address, codecs, origin), to answer the phone's re-INVITEs
    /// (hold and resume) with.
    pub local_media: telephony::sdp::LocalMedia,
    pub origin: telephony::sdp::Origin,
}

impl SipLeg {
    /// Answers a re-INVITE from the phone (hold, resume, a refreshed session) with our media as
    /// it is, the direction answering theirs (RFC 3264 §8); our origin's version goes up by one.
    /// A re-INVITE without SDP gets our offer; one we cannot answer gets 488 and the call goes
    /// on as before.
    fn answer_reoffer(&mut self, offer: &[u8]) {
        use telephony::sdp::{self, Sdp};
        self.origin.session_version += 1;
        if offer.iter().all(u8::is_ascii_whitespace) {
            let ours = sdp::make_offer(&self.local_media, &self.origin);
            self.agent.accept(self.call, ours.to_string().into_bytes());
            return;
        }
        let answered = Sdp::parse_bytes(offer)
            .map_err(|e| e.to_string())
            .and_then(|o| {
                sdp::answer(&o, &self.local_media, &self.origin).map_err(|e| e.to_string())
            });
        match answered {
            Ok((answer, _)) => self
                .agent
                .accept(self.call, answer.to_string().into_bytes()),
            Err(why) => {
                tracing::warn!(%why, "a re-INVITE we cannot answer: 488");
                self.agent.reject(self.call, 488, "Not Acceptable Here");
            }
        }
    }
}

/// How long the customer's side has to answer a cold transfer's REFER (202 or a refusal).
pub const REFER_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// After the REFER is accepted, how long to wait for the NOTIFY that says how the call to the
/// target ended; the robot hangs up when it says 2xx, or when it never comes (RFC 5589's basic
/// transfer lets the transferor leave once the REFER is accepted).
pub const REFER_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `sip:` URI a cold transfer's REFER names. An E.164 number goes to the host (and port) the
/// customer was dialled at (the trunk routes it like any other number); a `sip:`/`sips:` URI is
/// used as it is.
pub fn refer_target(to: &str, remote: Option<&Uri>) -> Result<Uri, String> {
    if to.starts_with('+') {
        let remote = remote.ok_or_else(|| {
            format!("no SIP host is known for this call to send `{to}` to; give a sip: URI")
        })?;
        let port = remote.port.map(|p| format!(":{p}")).unwrap_or_default();
        let scheme = if remote.scheme == "sips" {
            "sips"
        } else {
            "sip"
        };
        Uri::parse(&format!("{scheme}:{to}@{}{port}", remote.host)).map_err(|e| e.to_string())
    } else {
        Uri::parse(to).map_err(|e| e.to_string())
    }
}

/// Something that happened in a call, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The robot said (or started saying, when `interrupted`) `text`.
    Bot {
        call: String,
        text: String,
        at_ms: u64,
        interrupted: bool,
    },
    /// The customer said `text`; `latency` of the robot's answer, when it answered.
    Customer {
        call: String,
        text: String,
        at_ms: u64,
        intent: Option<String>,
    },
    /// The robot's answer to the last customer line started playing.
    Latency {
        call: String,
        latency: StageLatency,
    },
    /// The customer spoke over the robot; its audio stopped at `stopped_ms`.
    BargeIn {
        call: String,
        at_ms: u64,
        stopped_ms: u64,
    },
    Amd {
        call: String,
        verdict: String,
    },
    Ended {
        call: String,
        outcome: Option<String>,
    },
    /// The flow put the customer on the do-not-call list (the dialer stores it at once, while
    /// the call goes on).
    DncRequested {
        call: String,
        reason: String,
    },
    /// The flow scheduled a callback (local time of the customer, as the flow understood it).
    CallbackRequested {
        call: String,
        at: Option<chrono::NaiveDateTime>,
        note: Option<String>,
    },
    /// The flow transferred the call; it waits in `queue` (the customer hears hold music).
    Queued {
        call: String,
        queue: String,
        position: usize,
        estimated_wait_ms: Option<u64>,
    },
    /// An agent took the call: the customer and the agent are bridged, the robot is gone.
    AgentConnected {
        call: String,
        agent: String,
        wait_ms: u64,
    },
}

/// Where a transfer stands.
enum Transfer {
    None,
    /// Waiting for an agent in this queue.
    Waiting {
        queue: String,
        since: std::time::Instant,
    },
    /// Bridged to an agent.
    Bridged {
        agent: AgentInfo,
        to_agent: mpsc::Sender<Vec<i16>>,
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// Where a cold transfer (SIP REFER to an outside number) stands.
enum Cold {
    None,
    /// The robot finishes what it is saying; then the REFER goes out.
    Pending {
        to: String,
        target: Uri,
    },
    /// The REFER is out (at `sent_ms`); `accepted_ms` once the customer's side said 202.
    Sent {
        to: String,
        sent_ms: u64,
        accepted_ms: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy)]
enum AsrPurpose {
    Turn(Purpose),
    Amd,
}

/// The NLU of a transcript in the context of what was listened for: the utterance, its time in
/// ms, and whether it already answers the question.
type Parsed = (Utterance, u32, bool);

struct AsrDone {
    job: u64,
    purpose: AsrPurpose,
    text: String,
    asr_ms: u32,
    parsed: Option<Parsed>,
    /// A speculative decode whose result whisper's guards rejected (no text).
    rejected: bool,
}

enum TtsMsg {
    Audio(u64, Vec<i16>),
    Done(u64),
    Failed(u64, String),
}

struct PendingLatency {
    turn: usize,
    speech_end_ms: u64,
    endpoint_ms: u64,
    asr_ms: u32,
    nlu_ms: u32,
    flow_ms: u32,
    flow_done_ms: u64,
    /// Speeches queued in answer (the first to start playing ends the measurement).
    speeches: Vec<u64>,
}

struct BotLine {
    text: String,
    step: String,
    start_ms: Option<u64>,
}

enum AmdState {
    Off,
    Listening(Box<AmdDetector>),
    /// A machine; waiting for the end of its greeting to leave the message.
    AwaitingBeep(Box<AmdDetector>, u64),
}

struct Session {
    engines: Arc<Engines>,
    flow: Arc<Flow>,
    call: Call,
    live: Option<mpsc::UnboundedSender<LiveEvent>>,
    id: String,
    started: Instant,
    vad: asr::Vad,
    vad_buf: Vec<f32>,
    /// New robot audio arrived since the playout was last polled.
    playout_dirty: bool,
    last_prob: f32,
    stream_origin_ms: Option<u64>,
    stream_samples: u64,
    turn: TurnTaker,
    turn_cfg: TurnConfig,
    listen: Option<Listen>,
    playout: Playout,
    robot_speaking: bool,
    recorder: Recorder,
    amd: AmdState,
    amd_verdict: Option<String>,
    held: Vec<CallAction>,
    asr_tx: mpsc::UnboundedSender<AsrDone>,
    /// The turn's current recognition job (0: none). A queued turn decode that is no longer
    /// current when its turn at the recogniser comes is skipped: a customer who pauses often
    /// would otherwise queue speculations that delay the one that matters.
    wanted_job: Arc<std::sync::atomic::AtomicU64>,
    tts_tx: mpsc::UnboundedSender<TtsMsg>,
    media: telephony::media::MediaHandle,
    next_job: u64,
    /// Parsed results of recognition jobs, by job id (the turn's text may reuse them).
    parsed: HashMap<u64, (String, Option<Parsed>)>,
    last_asr: Option<(u64, u32)>,
    bot_lines: HashMap<u64, BotLine>,
    turns: Vec<TurnRecord>,
    pending: Option<PendingLatency>,
    dtmf: String,
    dtmf_at: Option<u64>,
    ending: bool,
    finished: bool,
    ended_by: Option<&'static str>,
    max_ms: u64,
    /// See [`CallSetup::media_timeout`], in ms.
    media_timeout_ms: Option<u64>,
    /// The far end's RTP packet count when last looked at, and when it last grew (ms).
    rtp_seen: (u64, u64),
    /// When the packet count was last looked at (ms).
    media_checked_ms: u64,
    /// Whether the far end's latest offer says it sends media (not on hold with `inactive` or
    /// `recvonly`): its silence is timed out only then.
    far_end_sends: bool,
    desk: Option<Desk>,
    transfer_max_wait: Option<Duration>,
    customer: CustomerInfo,
    transfer: Transfer,
    /// The updates of a transfer just requested (the call loop takes it).
    new_transfer: Option<mpsc::UnboundedReceiver<TransferUpdate>>,
    /// The agent's audio of a call just bridged (the call loop takes it).
    new_agent_audio: Option<mpsc::Receiver<Vec<i16>>>,
    hold: HoldMusic,
    /// When the robot handed the call to an agent.
    robot_ended: Option<chrono::DateTime<chrono::Utc>>,
    /// The customer's SIP leg (for the REFER of a cold transfer).
    sip_agent: AgentHandle,
    sip_call: CallId,
    remote: Option<Uri>,
    cold: Cold,
}

fn now_local() -> NaiveDateTime {
    chrono::Local::now().naive_local()
}

fn ms_u32(d: Duration) -> u32 {
    d.as_millis().min(u128::from(u32::MAX)) as u32
}

/// What the flow is listening for, as the turn-taker sees it.
pub fn expectation(l: &Listen) -> Expect {
    if l.confirming {
        return Expect::YesNo;
    }
    match l.slot {
        Some(SlotType::YesNo) => Expect::YesNo,
        Some(SlotType::Date | SlotType::Time | SlotType::DateTime) => Expect::Value,
        Some(SlotType::Amount | SlotType::Number) => Expect::Value,
        Some(SlotType::Digits) => Expect::Digits,
        Some(SlotType::Choice) => Expect::Intent,
        Some(SlotType::Text) => Expect::Text,
        None => {
            // Only yes/no (the handler intents are always there too).
            let own_intents = l.intents.iter().any(|i| {
                !dialog_flows::ast::Handler::ALL
                    .iter()
                    .any(|(_, h)| h.intent() == Some(i.as_str()))
            });
            if l.yes_no && !own_intents {
                Expect::YesNo
            } else {
                Expect::Intent
            }
        }
    }
}

/// Whether `u` already answers what `l` listens for (so the turn may end early).
pub fn answers(l: &Listen, u: &Utterance, min_confidence: f32) -> bool {
    if u.escalate {
        return true;
    }
    let e = &u.entities;
    if l.confirming {
        return e.yes_no.is_some();
    }
    match l.slot {
        Some(SlotType::YesNo) => e.yes_no.is_some(),
        Some(SlotType::Date) => e.date.is_some(),
        Some(SlotType::Time) => e.time.is_some(),
        Some(SlotType::DateTime) => e.datetime.is_some(),
        Some(SlotType::Amount) => e.amount.is_some(),
        Some(SlotType::Number) => e.number.is_some(),
        Some(SlotType::Digits) => false,
        Some(SlotType::Choice) => e.choice.is_some(),
        Some(SlotType::Text) => false,
        None => {
            (l.yes_no && e.yes_no.is_some())
                || (u.intent.is_some() && u.confidence >= min_confidence + 0.1)
        }
    }
}

/// Words to bias recognition towards: the flow's hints for the step. (Generic vocabularies —
/// "yes, no" for confirmations, weekday names for dates — were tried and made whisper tiny fall
/// back to its slow full window far more often than they helped.)
pub fn asr_prompt(l: &Listen) -> Option<String> {
    (!l.hints.is_empty()).then(|| l.hints.join(", "))
}

fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| (s.clamp(-1.0, 1.0) * 32767.0) as i16)
        .collect()
}

impl Session {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn emit(&self, e: LiveEvent) {
        if let Some(tx) = &self.live {
            let _ = tx.send(e);
        }
    }

    fn on_frame(&mut self, frame: PcmFrame) -> Vec<CallAction> {
        let now = self.now_ms();
        let origin = *self.stream_origin_ms.get_or_insert(now.saturating_sub(20));
        let at_ms = origin + self.stream_samples / 8;
        self.stream_samples += frame.samples.len() as u64;
        self.recorder.customer(at_ms, &frame.samples);
        if matches!(self.cold, Cold::Sent { .. }) {
            // Handed over: the robot no longer listens.
            return Vec::new();
        }
        match &self.transfer {
            Transfer::None => {}
            // On hold: nobody listens (the robot's turn-taking is stopped).
            Transfer::Waiting { .. } => return Vec::new(),
            Transfer::Bridged { to_agent, .. } => {
                if to_agent.try_send(frame.samples).is_err() {
                    tracing::debug!(call = %self.id, "a frame to the agent was dropped");
                }
                return Vec::new();
            }
        }
        self.vad_buf
            .extend(frame.samples.iter().map(|&s| f32::from(s) / 32768.0));
        let mut turn_actions = Vec::new();
        self.turn.set_eager(!self.engines.asr_busy());
        let window = asr::VadRate::Hz8000.window_len();
        let mut consumed = 0;
        while self.vad_buf.len() - consumed >= window {
            let samples = &self.vad_buf[consumed..consumed + window];
            let level =
                (samples.iter().map(|x| x * x).sum::<f32>() / window as f32).sqrt() * 32768.0;
            let prob = match self.vad.process(samples) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(call = %self.id, error = %e, "VAD failed on a window");
                    0.0
                }
            };
            consumed += window;
            self.last_prob = prob;
            let end_ms = at_ms + 20 - ((self.vad_buf.len() - consumed) as u64 / 8);
            if matches!(self.amd, AmdState::Off) {
                turn_actions.extend(self.turn.vad_level(end_ms, prob, level));
            }
        }
        self.vad_buf.drain(..consumed);
        let mut flow_actions = Vec::new();
        let amd_actions = match &mut self.amd {
            AmdState::Off => Vec::new(),
            AmdState::Listening(d) | AmdState::AwaitingBeep(d, _) => {
                d.push_frame(&frame.samples, self.last_prob)
            }
        };
        for a in amd_actions {
            flow_actions.extend(self.on_amd(a));
        }
        for a in turn_actions {
            flow_actions.extend(self.on_turn(a));
        }
        flow_actions
    }

    fn on_amd(&mut self, action: AmdAction) -> Vec<CallAction> {
        match action {
            AmdAction::Transcribe { pcm } => {
                let job = self.next_job;
                self.next_job += 1;
                self.transcribe(job, pcm, AsrPurpose::Amd, None);
                Vec::new()
            }
            AmdAction::Verdict(v) => {
                let label = v.label().to_string();
                tracing::info!(call = %self.id, verdict = %label, at_ms = v.at_ms(), "answering-machine detection");
                self.emit(LiveEvent::Amd {
                    call: self.id.clone(),
                    verdict: label.clone(),
                });
                self.amd_verdict = Some(label);
                match v {
                    AmdVerdict::Machine { .. } => {
                        let state = std::mem::replace(&mut self.amd, AmdState::Off);
                        if let AmdState::Listening(d) = state
                            && self.flow.voicemail.is_some()
                        {
                            self.amd = AmdState::AwaitingBeep(d, self.now_ms());
                            return Vec::new();
                        }
                        self.held.clear();
                        self.call.answering_machine(now_local())
                    }
                    _ => {
                        self.amd = AmdState::Off;
                        self.turn = TurnTaker::new(self.turn_cfg.clone());
                        std::mem::take(&mut self.held)
                    }
                }
            }
            AmdAction::ReadyForMessage { at_ms, after_beep } => {
                if !matches!(self.amd, AmdState::AwaitingBeep(..)) {
                    return Vec::new();
                }
                tracing::info!(call = %self.id, at_ms, after_beep, "leaving the voicemail message");
                self.amd = AmdState::Off;
                self.held.clear();
                self.call.answering_machine(now_local())
            }
        }
    }

    fn transcribe(&mut self, job: u64, pcm: Vec<i16>, purpose: AsrPurpose, listen: Option<Listen>) {
        let engines = self.engines.clone();
        let tx = self.asr_tx.clone();
        let flow = self.flow.clone();
        let id = self.id.clone();
        let prompt = listen.as_ref().and_then(asr_prompt);
        let wanted = self.wanted_job.clone();
        let pending = crate::engines::PendingDecode::new(&engines);
        let submitted = Instant::now();
        tokio::spawn(async move {
            let _pending = pending;
            let Ok(_permit) = engines.asr_gate.clone().acquire_owned().await else {
                return;
            };
            if matches!(purpose, AsrPurpose::Turn(_))
                && wanted.load(std::sync::atomic::Ordering::Acquire) != job
            {
                tracing::debug!(job, "stale recognition job skipped");
                return;
            }
            let engines2 = engines.clone();
            let result = tokio::task::spawn_blocking(move || {
                let _span = tracing::debug_span!("asr", call = %id, job).entered();
                let t = Instant::now();
                let audio: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
                let audio16 = asr::resample(&audio, 8000, 16000)?;
                // A speculation is not worth whisper's slow full-window retry: if its cut pass
                // is rejected, the turn's end asks again.
                let speculative = matches!(purpose, AsrPurpose::Turn(Purpose::Speculative));
                let tr = engines2.whisper.transcribe(
                    &audio16,
                    &asr::TranscribeOptions {
                        prompt,
                        no_fallback: speculative,
                        ..Default::default()
                    },
                )?;
                let rejected = tr.rejected().is_some();
                let text = if rejected { String::new() } else { tr.text };
                let asr_ms = ms_u32(t.elapsed());
                tracing::debug!(
                    job,
                    ?purpose,
                    queued_ms = ms_u32(t.duration_since(submitted)),
                    asr_ms,
                    rejected,
                    "recognition done"
                );
                let parsed = match (&purpose, &listen) {
                    _ if rejected => None,
                    (AsrPurpose::Turn(Purpose::Backchannel) | AsrPurpose::Amd, _) => None,
                    (_, l) if !text.trim().is_empty() => {
                        let t = Instant::now();
                        let nlu = engines2.flow_nlu(&flow).ok();
                        nlu.and_then(|n| n.parse(l.as_ref(), &text, now_local()).ok())
                            .map(|u| {
                                let complete = l
                                    .as_ref()
                                    .is_some_and(|l| answers(l, &u, flow.settings.min_confidence));
                                (u, ms_u32(t.elapsed()), complete)
                            })
                    }
                    _ => None,
                };
                Ok::<_, asr::AsrError>(AsrDone {
                    job,
                    purpose,
                    text,
                    asr_ms,
                    parsed,
                    rejected,
                })
            })
            .await;
            // A failed decode still answers the job (with no words), so that the turn goes on.
            let failed = |why: String| {
                tracing::warn!(error = %why, job, "speech recognition failed");
                AsrDone {
                    job,
                    purpose,
                    text: String::new(),
                    asr_ms: 0,
                    parsed: None,
                    rejected: false,
                }
            };
            let done = match result {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => failed(e.to_string()),
                Err(e) => failed(e.to_string()),
            };
            let _ = tx.send(done);
        });
    }

    fn audio_between(&self, start_ms: u64, end_ms: u64) -> Vec<i16> {
        let a = self.recorder.customer_audio();
        let s = ((start_ms * 8) as usize).min(a.len());
        let e = ((end_ms * 8) as usize).clamp(s, a.len());
        a[s..e].to_vec()
    }

    fn on_turn(&mut self, action: TurnAction) -> Vec<CallAction> {
        let now = self.now_ms();
        tracing::debug!(call = %self.id, now, ?action, "turn");
        match action {
            TurnAction::Transcribe {
                job,
                start_ms,
                end_ms,
                purpose,
            } => {
                // The job is the turn's current one from now on; set before the decode task can
                // look (it may run on another thread before this event's handling ends).
                self.wanted_job
                    .store(job, std::sync::atomic::Ordering::Release);
                let pcm = self.audio_between(start_ms, end_ms);
                let listen = self.listen.clone();
                self.transcribe(job, pcm, AsrPurpose::Turn(purpose), listen);
                Vec::new()
            }
            TurnAction::PauseRobot { at_ms } => {
                let _ = self.media.clear_audio();
                self.playout.pause(now);
                tracing::debug!(call = %self.id, at_ms, stopped_ms = now, "robot paused");
                Vec::new()
            }
            TurnAction::ResumeRobot { .. } => {
                self.playout.resume();
                Vec::new()
            }
            TurnAction::BargeIn { at_ms } => self.barge_in(at_ms, now),
            TurnAction::Partial { text } => {
                tracing::debug!(call = %self.id, %text, "partial");
                Vec::new()
            }
            TurnAction::Utterance(t) => self.utterance(t),
            TurnAction::NoInput { .. } => self.call.handle(Event::NoInput, now_local()),
        }
    }

    fn barge_in(&mut self, at_ms: u64, now: u64) -> Vec<CallAction> {
        let _ = self.media.clear_audio();
        let unheard = self.playout.interrupt(now);
        self.engines.metrics.barge_ins.inc();
        self.emit(LiveEvent::BargeIn {
            call: self.id.clone(),
            at_ms,
            stopped_ms: now,
        });
        let mut ids = Vec::new();
        for u in unheard {
            ids.push(u.id);
            if let Some(line) = self.bot_lines.remove(&u.id)
                && let Some(start) = line.start_ms
            {
                self.push_bot_line(line, start, now, true);
            }
        }
        self.set_robot_speaking(false, now);
        self.call
            .handle(Event::BargeIn { unheard: ids }, now_local())
    }

    fn push_bot_line(&mut self, line: BotLine, start_ms: u64, end_ms: u64, interrupted: bool) {
        self.emit(LiveEvent::Bot {
            call: self.id.clone(),
            text: line.text.clone(),
            at_ms: start_ms,
            interrupted,
        });
        self.turns.push(TurnRecord {
            seq: 0,
            speaker: Speaker::Bot,
            text: line.text,
            start_ms,
            end_ms,
            step: Some(line.step),
            intent: None,
            confidence: None,
            sentiment: None,
            interrupted,
            latency: None,
        });
    }

    fn utterance(&mut self, t: FinishedTurn) -> Vec<CallAction> {
        // Reuse the NLU of the job whose text is the turn's text.
        let (asr_ms, reused) = match self.last_asr {
            Some((job, ms)) => (
                ms,
                self.parsed
                    .remove(&job)
                    .and_then(|(text, p)| (text.trim() == t.text).then_some(p).flatten()),
            ),
            None => (0, None),
        };
        self.parsed.clear();
        let (u, nlu_ms) = match reused {
            Some((u, ms, _)) => (u, ms),
            None => {
                let started = Instant::now();
                let u = self
                    .engines
                    .flow_nlu(&self.flow)
                    .ok()
                    .and_then(|n| n.parse(self.listen.as_ref(), &t.text, now_local()).ok())
                    .unwrap_or_else(|| Utterance::text(&t.text));
                (u, ms_u32(started.elapsed()))
            }
        };
        self.emit(LiveEvent::Customer {
            call: self.id.clone(),
            text: t.text.clone(),
            at_ms: t.start_ms,
            intent: u.intent.clone(),
        });
        let step = self.call.current_step().map(str::to_string);
        self.turns.push(TurnRecord {
            seq: 0,
            speaker: Speaker::Customer,
            text: t.text.clone(),
            start_ms: t.start_ms,
            end_ms: t.speech_end_ms,
            step,
            intent: u.intent.clone(),
            confidence: u.intent.as_ref().map(|_| f64::from(u.confidence)),
            sentiment: Some(f64::from(u.sentiment)),
            interrupted: false,
            latency: None,
        });
        let flow_started = Instant::now();
        let actions = self.call.handle(Event::Utterance(u), now_local());
        let flow_ms = ms_u32(flow_started.elapsed());
        self.pending = Some(PendingLatency {
            turn: self.turns.len() - 1,
            speech_end_ms: t.speech_end_ms,
            endpoint_ms: t.endpoint_ms,
            asr_ms,
            nlu_ms,
            flow_ms,
            flow_done_ms: self.now_ms(),
            speeches: actions
                .iter()
                .filter_map(|a| match a {
                    CallAction::Speak(s) => Some(s.id),
                    _ => None,
                })
                .collect(),
        });
        actions
    }

    fn on_asr(&mut self, done: AsrDone) -> Vec<CallAction> {
        let now = self.now_ms();
        match done.purpose {
            AsrPurpose::Amd => {
                let actions = match &mut self.amd {
                    AmdState::Listening(d) | AmdState::AwaitingBeep(d, _) => {
                        d.transcript(&done.text)
                    }
                    AmdState::Off => Vec::new(),
                };
                actions.into_iter().flat_map(|a| self.on_amd(a)).collect()
            }
            AsrPurpose::Turn(_) if done.rejected => {
                tracing::debug!(call = %self.id, now, job = done.job, "speculative transcript rejected");
                let actions = self.turn.transcript_failed(done.job, now);
                actions.into_iter().flat_map(|a| self.on_turn(a)).collect()
            }
            AsrPurpose::Turn(_) => {
                let complete = done.parsed.as_ref().is_some_and(|p| p.2);
                tracing::debug!(call = %self.id, now, job = done.job, text = %done.text, complete, asr_ms = done.asr_ms, "transcript");
                self.last_asr = Some((done.job, done.asr_ms));
                self.parsed
                    .insert(done.job, (done.text.clone(), done.parsed));
                let actions = self.turn.transcript(
                    done.job,
                    Transcript {
                        text: done.text,
                        complete,
                    },
                    now,
                );
                actions.into_iter().flat_map(|a| self.on_turn(a)).collect()
            }
        }
    }

    fn set_robot_speaking(&mut self, speaking: bool, now: u64) {
        if self.robot_speaking != speaking {
            self.robot_speaking = speaking;
            self.turn.robot_speaking(speaking, now);
        }
    }

    fn execute(&mut self, actions: Vec<CallAction>) {
        let mut queue: std::collections::VecDeque<CallAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            let follow = self.execute_one(action);
            queue.extend(follow);
        }
    }

    fn execute_one(&mut self, action: CallAction) -> Vec<CallAction> {
        match action {
            CallAction::Speak(s) => {
                self.bot_lines.insert(
                    s.id,
                    BotLine {
                        text: s.text.clone(),
                        step: s.step.clone(),
                        start_ms: None,
                    },
                );
                self.playout.push(s.id);
                self.synthesize(s.id, s.text);
                Vec::new()
            }
            CallAction::Listen(l) => {
                self.turn.listen(expectation(&l), l.timeout_ms);
                self.listen = Some(l);
                Vec::new()
            }
            CallAction::End { outcome } => {
                tracing::info!(call = %self.id, %outcome, "flow ended");
                self.ending = true;
                self.turn.stop_listening();
                self.listen = None;
                Vec::new()
            }
            CallAction::Transfer(summary) => {
                let Some(desk) = self.desk.clone() else {
                    tracing::info!(call = %self.id, queue = %summary.queue, reason = %summary.reason, "transfer requested; no agent desk runs here");
                    return self.call.handle(
                        Event::TransferFailed {
                            reason: format!("no agent is logged in to queue `{}`", summary.queue),
                        },
                        now_local(),
                    );
                };
                tracing::info!(call = %self.id, queue = %summary.queue, reason = %summary.reason, "transferring to an agent");
                self.turn.stop_listening();
                self.listen = None;
                self.transfer = Transfer::Waiting {
                    queue: summary.queue.clone(),
                    since: std::time::Instant::now(),
                };
                let (updates, rx) = mpsc::unbounded_channel();
                self.new_transfer = Some(rx);
                let req = TransferRequest {
                    call: self.id.clone(),
                    summary: *summary,
                    customer: self.customer.clone(),
                    updates,
                };
                match self.transfer_max_wait {
                    Some(limit) => desk.transfer_within(req, limit),
                    None => desk.transfer(req),
                }
                Vec::new()
            }
            CallAction::ColdTransfer { to, reason, step } => {
                let target = match refer_target(&to, self.remote.as_ref()) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(call = %self.id, %to, error = %e, "cold transfer impossible");
                        return self
                            .call
                            .handle(Event::ColdTransferFailed { reason: e }, now_local());
                    }
                };
                tracing::info!(call = %self.id, %to, %target, %reason, %step, "cold transfer");
                self.turn.stop_listening();
                self.listen = None;
                self.cold = Cold::Pending { to, target };
                Vec::new()
            }
            CallAction::Webhook(w) => {
                tracing::warn!(call = %self.id, url = %w.url, "webhooks are not enabled in this runtime");
                self.call.handle(
                    Event::WebhookResult {
                        id: w.id,
                        result: Err("webhooks are not enabled in this runtime".into()),
                    },
                    now_local(),
                )
            }
            CallAction::SendDtmf { digits } => {
                let media = self.media.clone();
                tokio::spawn(async move {
                    if let Err(e) = media.send_dtmf(&digits, 120).await {
                        tracing::warn!(error = %e, "sending DTMF failed");
                    }
                });
                Vec::new()
            }
            CallAction::ScheduleCallback { at, note } => {
                tracing::info!(call = %self.id, at = ?at, note = ?note, "callback requested");
                self.emit(LiveEvent::CallbackRequested {
                    call: self.id.clone(),
                    at,
                    note,
                });
                Vec::new()
            }
            CallAction::AddDnc { reason } => {
                tracing::info!(call = %self.id, %reason, "do-not-call requested");
                self.emit(LiveEvent::DncRequested {
                    call: self.id.clone(),
                    reason,
                });
                Vec::new()
            }
            CallAction::Log { step, message } => {
                tracing::debug!(call = %self.id, %step, %message, "flow");
                Vec::new()
            }
        }
    }

    fn synthesize(&mut self, id: u64, text: String) {
        let engines = &self.engines;
        if let Some(audio) = engines
            .cache
            .get(&engines.voice, &text, tts::OutputRate::TELEPHONY)
        {
            self.playout.append(id, &to_i16(&audio.samples));
            self.playout.rendered(id);
            self.playout_dirty = true;
            return;
        }
        let engines = self.engines.clone();
        let tx = self.tts_tx.clone();
        let call = self.id.clone();
        tokio::task::spawn_blocking(move || {
            let _span = tracing::debug_span!("tts", call = %call, id).entered();
            let mut whole: Vec<f32> = Vec::new();
            for chunk in engines
                .voice
                .synthesize_stream(&text, tts::OutputRate::TELEPHONY)
            {
                match chunk {
                    Ok(a) => {
                        whole.extend_from_slice(&a.samples);
                        if tx.send(TtsMsg::Audio(id, to_i16(&a.samples))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(TtsMsg::Failed(id, e.to_string()));
                        return;
                    }
                }
            }
            let _ = tx.send(TtsMsg::Done(id));
            let audio = tts::Audio {
                samples: whole,
                sample_rate: tts::TELEPHONY_RATE,
            };
            if let Err(e) =
                engines
                    .cache
                    .insert(&engines.voice, &text, tts::OutputRate::TELEPHONY, audio)
            {
                tracing::debug!(error = %e, "could not cache a rendered prompt");
            }
        });
    }

    fn on_tts(&mut self, msg: TtsMsg) {
        match msg {
            TtsMsg::Audio(id, samples) => {
                self.playout.append(id, &samples);
                self.playout_dirty = true;
            }
            TtsMsg::Done(id) => {
                self.playout.rendered(id);
                self.playout_dirty = true;
            }
            TtsMsg::Failed(id, e) => {
                tracing::warn!(call = %self.id, id, error = %e, "speech synthesis failed");
                self.playout.rendered(id);
            }
        }
    }

    /// Hands the media session the robot audio due now. Runs on every tick, and at once when
    /// new audio arrives, so that an answer does not wait up to a tick to start.
    fn pump_playout(&mut self, now: u64) {
        self.playout_dirty = false;
        let (frames, events) = self.playout.poll(now);
        let n = frames.len() as u64;
        let first_at = self.playout.fed_until().saturating_sub(n * 20);
        for (i, frame) in frames.into_iter().enumerate() {
            self.recorder.robot(first_at + i as u64 * 20, &frame);
            if let Err(e) = self.media.try_send_audio(frame) {
                tracing::warn!(call = %self.id, error = %e, "robot audio dropped");
            }
        }
        for e in events {
            match e {
                PlayoutEvent::Started { id, at_ms } => {
                    self.set_robot_speaking(true, now);
                    if let Some(line) = self.bot_lines.get_mut(&id) {
                        line.start_ms = Some(at_ms);
                    }
                    self.answer_started(id, at_ms);
                }
                PlayoutEvent::Finished { id, at_ms } => {
                    if let Some(line) = self.bot_lines.remove(&id) {
                        let start = line.start_ms.unwrap_or(at_ms);
                        self.push_bot_line(line, start, at_ms, false);
                    }
                }
            }
        }
        if !self.playout.is_active() {
            self.set_robot_speaking(false, now);
        }
    }

    fn on_tick(&mut self) -> Vec<CallAction> {
        let now = self.now_ms();
        self.pump_playout(now);
        match &self.cold {
            Cold::None => {}
            Cold::Pending { .. } => {
                // The REFER goes out once the robot's last words are played.
                if !self.playout.is_active()
                    && let Cold::Pending { to, target } =
                        std::mem::replace(&mut self.cold, Cold::None)
                {
                    tracing::info!(call = %self.id, %target, "sending REFER");
                    self.sip_agent.refer(self.sip_call, target);
                    self.cold = Cold::Sent {
                        to,
                        sent_ms: now,
                        accepted_ms: None,
                    };
                }
                return Vec::new();
            }
            Cold::Sent {
                sent_ms,
                accepted_ms,
                ..
            } => {
                let (sent_ms, accepted_ms) = (*sent_ms, *accepted_ms);
                match accepted_ms {
                    None if now.saturating_sub(sent_ms)
                        > REFER_ANSWER_TIMEOUT.as_millis() as u64 =>
                    {
                        return self.cold_failed("the REFER was not answered in time".into());
                    }
                    Some(at)
                        if now.saturating_sub(at) > REFER_NOTIFY_TIMEOUT.as_millis() as u64 =>
                    {
                        tracing::warn!(call = %self.id, "no final NOTIFY after the accepted REFER; leaving the call");
                        self.cold_done();
                    }
                    _ => {}
                }
                return Vec::new();
            }
        }
        match self.transfer {
            Transfer::None => {}
            Transfer::Waiting { .. } => {
                // Music once the robot's last words ("please hold") are played.
                if !self.playout.is_active() {
                    let frame = self.hold.next_frame();
                    self.recorder.robot(now, &frame);
                    if let Err(e) = self.media.try_send_audio(frame) {
                        tracing::debug!(call = %self.id, error = %e, "hold music frame dropped");
                    }
                }
                return Vec::new();
            }
            Transfer::Bridged { .. } => return Vec::new(),
        }
        let mut actions = Vec::new();
        if let AmdState::AwaitingBeep(d, since) = &mut self.amd {
            // A machine that never gives a usable end of greeting: leave the message anyway.
            if now.saturating_sub(*since) > 20_000 {
                let at_ms = d.now_ms();
                actions.extend(self.on_amd(AmdAction::ReadyForMessage {
                    at_ms,
                    after_beep: false,
                }));
            }
        }
        for a in self.turn.tick(now) {
            actions.extend(self.on_turn(a));
        }
        if let Some(at) = self.dtmf_at
            && now.saturating_sub(at) > 3000
            && !self.dtmf.is_empty()
        {
            actions.extend(self.flush_dtmf());
        }
        if let Some(limit) = self.media_timeout_ms
            && self.far_end_sends
            && !self.ending
            && now.saturating_sub(self.media_checked_ms) >= 1000
        {
            // Looked at once a second: has the far end sent anything since?
            self.media_checked_ms = now;
            let received = self.media.stats().rtp_received;
            if received != self.rtp_seen.0 {
                self.rtp_seen = (received, now);
            } else if now.saturating_sub(self.rtp_seen.1) > limit {
                tracing::warn!(
                    call = %self.id, silent_secs = limit / 1000,
                    "no RTP from the far end: ending the call (media timeout)"
                );
                self.ended_by = Some("media_timeout");
                self.ending = true;
                self.playout.interrupt(now);
            }
        }
        if now > self.max_ms && !self.ending {
            tracing::warn!(call = %self.id, "call reached its maximum duration");
            self.ending = true;
            self.playout.interrupt(now);
        }
        if self.ending && !self.playout.is_active() {
            self.finished = true;
        }
        actions
    }

    /// A re-INVITE from the phone: a hold that stops its media (`a=inactive`, `recvonly`)
    /// suspends the media timeout; a resume starts it afresh.
    fn on_reoffer(&mut self, sdp: &[u8]) {
        let Ok(offer) = telephony::sdp::Sdp::parse_bytes(sdp) else {
            return;
        };
        let sends = offer.direction_of(0).sends();
        if sends && !self.far_end_sends {
            self.rtp_seen.1 = self.now_ms();
        }
        if sends != self.far_end_sends {
            tracing::info!(call = %self.id, sends, "the phone changed its media direction");
        }
        self.far_end_sends = sends;
    }

    /// What the customer's side says about the REFER of a cold transfer.
    fn on_refer(&mut self, event: CallEvent) -> Vec<CallAction> {
        let now = self.now_ms();
        let Cold::Sent { accepted_ms, .. } = &mut self.cold else {
            tracing::debug!(call = %self.id, ?event, "REFER news with no cold transfer out");
            return Vec::new();
        };
        match event {
            CallEvent::ReferAccepted => {
                tracing::info!(call = %self.id, "REFER accepted");
                accepted_ms.get_or_insert(now);
                Vec::new()
            }
            CallEvent::ReferFailed { status } => {
                self.cold_failed(format!("the REFER was refused with {status}"))
            }
            CallEvent::ReferProgress { status } if status < 200 => {
                tracing::debug!(call = %self.id, status, "transfer in progress");
                accepted_ms.get_or_insert(now);
                Vec::new()
            }
            CallEvent::ReferProgress { status } if status < 300 => {
                tracing::info!(call = %self.id, status, "the transfer target answered");
                self.cold_done();
                Vec::new()
            }
            CallEvent::ReferProgress { status } => self.cold_failed(format!(
                "the call to the transfer target failed with {status}"
            )),
            _ => Vec::new(),
        }
    }

    /// The cold transfer did not happen: the flow takes the call back (its `on_failure`).
    fn cold_failed(&mut self, reason: String) -> Vec<CallAction> {
        tracing::info!(call = %self.id, %reason, "cold transfer failed");
        self.cold = Cold::None;
        self.call
            .handle(Event::ColdTransferFailed { reason }, now_local())
    }

    /// The customer is with the transfer target: the robot's leg ends (BYE, RFC 5589).
    fn cold_done(&mut self) {
        if let Cold::Sent { to, .. } = std::mem::replace(&mut self.cold, Cold::None) {
            tracing::info!(call = %self.id, %to, "cold transfer done; hanging up the robot's leg");
        }
        self.ended_by = Some("bot");
        self.finished = true;
    }

    fn on_transfer_update(&mut self, update: Option<TransferUpdate>) -> Vec<CallAction> {
        let update = update.unwrap_or(TransferUpdate::Failed {
            reason: "the agent desk stopped".into(),
        });
        match update {
            TransferUpdate::Queued {
                queue,
                position,
                estimated_wait,
            } => {
                tracing::info!(call = %self.id, %queue, position, ?estimated_wait, "waiting for an agent");
                if let Transfer::Waiting { queue: q, .. } = &mut self.transfer {
                    *q = queue.clone();
                }
                self.emit(LiveEvent::Queued {
                    call: self.id.clone(),
                    queue,
                    position,
                    estimated_wait_ms: estimated_wait.map(|d| d.as_millis() as u64),
                });
                Vec::new()
            }
            TransferUpdate::Failed { reason } => {
                tracing::info!(call = %self.id, %reason, "no agent took the call");
                if let Transfer::Waiting { queue, since } = &self.transfer {
                    self.engines
                        .metrics
                        .observe_queue_wait(queue, "no_agent", since.elapsed());
                }
                self.transfer = Transfer::None;
                let _ = self.media.clear_audio();
                self.call
                    .handle(Event::TransferFailed { reason }, now_local())
            }
            TransferUpdate::Connected { agent, audio } => {
                tracing::info!(call = %self.id, agent = %agent.id, wait_ms = agent.wait_ms, "bridged to an agent");
                if let Transfer::Waiting { queue, .. } = &self.transfer {
                    self.engines.metrics.observe_queue_wait(
                        queue,
                        "connected",
                        std::time::Duration::from_millis(agent.wait_ms),
                    );
                }
                // The robot's leg ends. Words it is still saying ("let me connect you…") are
                // finished first: the agent's voice reaches the customer once they are over,
                // while the customer's voice reaches the agent at once.
                let at = crate::record::now();
                self.robot_ended = Some(at);
                self.emit(LiveEvent::AgentConnected {
                    call: self.id.clone(),
                    agent: agent.id.clone(),
                    wait_ms: agent.wait_ms,
                });
                self.new_agent_audio = Some(audio.from_agent);
                self.transfer = Transfer::Bridged {
                    agent,
                    to_agent: audio.to_agent,
                    at,
                };
                Vec::new()
            }
        }
    }

    /// A frame of the agent's voice for the customer; `None`: the agent hung up.
    fn on_agent_audio(&mut self, pcm: Option<Vec<i16>>) {
        match pcm {
            Some(pcm) => {
                if self.playout.is_active() {
                    return;
                }
                let now = self.now_ms();
                self.recorder.robot(now, &pcm);
                if let Err(e) = self.media.try_send_audio(pcm) {
                    tracing::debug!(call = %self.id, error = %e, "agent audio dropped");
                }
            }
            None => {
                self.ended_by = Some("agent");
                self.finished = true;
            }
        }
    }

    fn answer_started(&mut self, id: u64, at_ms: u64) {
        let Some(p) = &self.pending else { return };
        if !p.speeches.contains(&id) {
            return;
        }
        let l = StageLatency {
            endpoint_ms: p.endpoint_ms.saturating_sub(p.speech_end_ms) as u32,
            asr_ms: p.asr_ms,
            nlu_ms: p.nlu_ms,
            flow_ms: p.flow_ms,
            tts_ms: at_ms.saturating_sub(p.flow_done_ms) as u32,
            total_ms: at_ms.saturating_sub(p.speech_end_ms) as u32,
        };
        if let Some(t) = self.turns.get_mut(p.turn) {
            t.latency = Some(l);
        }
        self.pending = None;
        self.engines.metrics.observe_turn(&l);
        tracing::info!(call = %self.id, total_ms = l.total_ms, endpoint_ms = l.endpoint_ms, asr_ms = l.asr_ms, nlu_ms = l.nlu_ms, tts_ms = l.tts_ms, "turn latency");
        self.emit(LiveEvent::Latency {
            call: self.id.clone(),
            latency: l,
        });
    }

    fn on_dtmf(&mut self, digit: char) -> Vec<CallAction> {
        let now = self.now_ms();
        let mut actions = Vec::new();
        if self.playout.is_active() && !self.ending {
            actions.extend(self.barge_in(now, now));
        }
        self.dtmf.push(digit);
        self.dtmf_at = Some(now);
        let (max, term) = self
            .listen
            .as_ref()
            .and_then(|l| l.dtmf)
            .unwrap_or((1, None));
        if Some(digit) == term || self.dtmf.chars().count() >= max {
            actions.extend(self.flush_dtmf());
        }
        actions
    }

    fn flush_dtmf(&mut self) -> Vec<CallAction> {
        let keys = std::mem::take(&mut self.dtmf);
        self.dtmf_at = None;
        self.emit(LiveEvent::Customer {
            call: self.id.clone(),
            text: format!("[DTMF {keys}]"),
            at_ms: self.now_ms(),
            intent: None,
        });
        self.call.handle(Event::Dtmf(keys), now_local())
    }
}

/// Runs the robot on an answered call until it ends; returns the call record (not yet stored).
pub async fn run_call(
    engines: Arc<Engines>,
    setup: CallSetup,
    mut media: MediaSession,
    mut sip: SipLeg,
) -> CallRecord {
    let mut record = setup.record.clone();
    record.answered_at = Some(crate::record::now());
    record.flow = setup.flow.name.clone();
    record.flow_version = setup.flow.version;
    record.disposition = "answered".into();
    engines.metrics.calls_active.inc();
    let id = record.id.clone();
    let fail = |record: &mut CallRecord, outcome: &str, why: String| {
        tracing::error!(call = %record.id, %why, "the robot could not run the call");
        record.outcome = Some(outcome.to_string());
        record.ended_by = Some("system".into());
    };
    let vad = match engines.vad() {
        Ok(v) => v,
        Err(e) => {
            fail(&mut record, "runtime_error", e.to_string());
            return finish_failed(&engines, record, media, sip).await;
        }
    };
    let (call, initial) = match Call::start(setup.flow.clone(), &setup.lead, now_local()) {
        Ok(x) => x,
        Err(e) => {
            fail(&mut record, "lead_error", e.to_string());
            return finish_failed(&engines, record, media, sip).await;
        }
    };
    let (asr_tx, mut asr_rx) = mpsc::unbounded_channel();
    let (tts_tx, mut tts_rx) = mpsc::unbounded_channel();
    let mut s = Session {
        engines: engines.clone(),
        flow: setup.flow.clone(),
        call,
        live: setup.live.clone(),
        id: id.clone(),
        started: Instant::now(),
        vad,
        vad_buf: Vec::new(),
        playout_dirty: false,
        last_prob: 0.0,
        stream_origin_ms: None,
        stream_samples: 0,
        turn: TurnTaker::new(setup.turn.clone()),
        turn_cfg: setup.turn.clone(),
        listen: None,
        playout: Playout::new(60),
        robot_speaking: false,
        recorder: Recorder::new(),
        amd: if setup.amd {
            AmdState::Listening(Box::new(AmdDetector::new(setup.amd_config.clone())))
        } else {
            AmdState::Off
        },
        amd_verdict: None,
        held: Vec::new(),
        asr_tx,
        wanted_job: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        tts_tx,
        media: media.handle.clone(),
        next_job: 1_000_000,
        parsed: HashMap::new(),
        last_asr: None,
        bot_lines: HashMap::new(),
        turns: Vec::new(),
        pending: None,
        dtmf: String::new(),
        dtmf_at: None,
        ending: false,
        finished: false,
        ended_by: None,
        max_ms: setup.max_duration.as_millis() as u64,
        media_timeout_ms: setup.media_timeout.map(|d| d.as_millis() as u64),
        rtp_seen: (0, 0),
        media_checked_ms: 0,
        far_end_sends: true,
        desk: setup.desk.clone(),
        transfer_max_wait: setup.transfer_max_wait,
        customer: CustomerInfo {
            phone: setup.record.phone.clone(),
            lead_id: setup.record.lead_id.clone(),
            campaign: setup.record.campaign.clone(),
            lead: setup.lead.clone(),
        },
        transfer: Transfer::None,
        new_transfer: None,
        new_agent_audio: None,
        hold: HoldMusic::new(),
        robot_ended: None,
        sip_agent: sip.agent.clone(),
        sip_call: sip.call,
        remote: sip.remote.clone(),
        cold: Cold::None,
    };
    if setup.amd {
        s.held = initial;
    } else {
        s.execute(initial);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut remote_hangup = false;
    let mut cold_abandoned = false;
    let mut transfer_rx: Option<mpsc::UnboundedReceiver<TransferUpdate>> = None;
    let mut agent_rx: Option<mpsc::Receiver<Vec<i16>>> = None;
    loop {
        let actions = tokio::select! {
            u = recv_some(&mut transfer_rx) => {
                let actions = s.on_transfer_update(u);
                if !matches!(s.transfer, Transfer::Waiting { .. }) {
                    transfer_rx = None;
                }
                actions
            },
            pcm = recv_bounded(&mut agent_rx) => {
                if pcm.is_none() {
                    agent_rx = None;
                }
                s.on_agent_audio(pcm);
                Vec::new()
            },
            frame = media.frames.recv() => match frame {
                Some(f) => s.on_frame(f),
                None => { remote_hangup = true; Vec::new() }
            },
            ev = media.events.recv() => match ev {
                Some(MediaEvent::Dtmf { digit, .. }) => s.on_dtmf(digit),
                Some(MediaEvent::RemoteBye { .. }) => Vec::new(),
                Some(_) => Vec::new(),
                None => Vec::new(),
            },
            Some(done) = asr_rx.recv() => s.on_asr(done),
            Some(msg) = tts_rx.recv() => { s.on_tts(msg); Vec::new() },
            ev = sip.events.recv() => match ev {
                Some(CallEvent::Ended { .. }) | None => { remote_hangup = true; Vec::new() }
                Some(CallEvent::Reoffer { sdp }) => {
                    // Hold/resume from the phone: keep the same media, answer with our SDP.
                    s.on_reoffer(&sdp);
                    sip.answer_reoffer(&sdp);
                    Vec::new()
                }
                Some(
                    e @ (CallEvent::ReferAccepted
                    | CallEvent::ReferFailed { .. }
                    | CallEvent::ReferProgress { .. }),
                ) => s.on_refer(e),
                Some(_) => Vec::new(),
            },
            _ = tick.tick() => s.on_tick(),
        };
        s.execute(actions);
        if let Some(rx) = s.new_transfer.take() {
            transfer_rx = Some(rx);
        }
        if let Some(rx) = s.new_agent_audio.take() {
            agent_rx = Some(rx);
        }
        s.wanted_job.store(
            s.turn.pending_job().unwrap_or(0),
            std::sync::atomic::Ordering::Release,
        );
        if s.playout_dirty {
            let now = s.now_ms();
            s.pump_playout(now);
        }
        if remote_hangup {
            s.ended_by = Some("customer");
            // Gone before the customer's side took the transfer: not transferred.
            cold_abandoned = matches!(
                s.cold,
                Cold::Pending { .. }
                    | Cold::Sent {
                        accepted_ms: None,
                        ..
                    }
            );
            if let (Transfer::Waiting { queue, since }, Some(desk)) = (&s.transfer, &s.desk) {
                desk.abandon(&s.id);
                s.engines
                    .metrics
                    .observe_queue_wait(queue, "abandoned", since.elapsed());
            }
            let actions = s.call.handle(Event::HangUp, now_local());
            s.execute(actions);
            break;
        }
        if s.finished {
            s.ended_by.get_or_insert("bot");
            break;
        }
    }
    // The customer's leg is over: an agent's leg ends with it (dropping `to_agent`), a
    // waiting transfer is abandoned.
    let ended = crate::record::now();
    let answered = record.answered_at.unwrap_or(record.started_at);
    match std::mem::replace(&mut s.transfer, Transfer::None) {
        Transfer::Bridged { agent, at, .. } => {
            record.legs.push(CallLeg {
                kind: "robot".into(),
                agent_id: None,
                queue: None,
                wait_ms: None,
                started_at: answered,
                ended_at: s.robot_ended.unwrap_or(at),
            });
            record.legs.push(CallLeg {
                kind: "agent".into(),
                agent_id: Some(agent.id),
                queue: Some(agent.queue),
                wait_ms: Some(agent.wait_ms),
                started_at: at,
                ended_at: ended,
            });
        }
        Transfer::Waiting { .. } | Transfer::None => record.legs.push(CallLeg {
            kind: "robot".into(),
            agent_id: None,
            queue: None,
            wait_ms: None,
            started_at: answered,
            ended_at: ended,
        }),
    }
    drop(agent_rx);
    let now = s.now_ms();
    // Lines still playing when the call ended.
    let open: Vec<u64> = s.bot_lines.keys().copied().collect();
    for id in open {
        if let Some(line) = s.bot_lines.remove(&id)
            && let Some(start) = line.start_ms
        {
            s.push_bot_line(line, start, now, remote_hangup);
        }
    }
    if !remote_hangup {
        sip.agent.hangup(sip.call);
    }
    let _ = media.stop().await;
    record.outcome = s.call.outcome().map(str::to_string);
    if cold_abandoned {
        record.outcome = Some("hung_up".into());
    }
    if record.outcome.is_none() && record.legs.iter().any(|l| l.kind == "agent") {
        record.outcome = Some("transferred".into());
    }
    record.amd = s.amd_verdict.clone();
    if s.amd_verdict.as_deref() == Some("machine") {
        record.disposition = "machine".into();
    }
    record.ended_by = s.ended_by.map(str::to_string);
    record.path = s.call.path().to_vec();
    record.slots = serde_json::Value::Object(
        s.call
            .slots()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    );
    let mut turns = std::mem::take(&mut s.turns);
    turns.sort_by_key(|t| (t.start_ms, t.end_ms));
    for (i, t) in turns.iter_mut().enumerate() {
        t.seq = i as u32;
    }
    record.turns = turns;
    if let Some(dir) = &setup.recording_dir {
        let keys = setup.recording_keys.as_deref();
        let name = match keys {
            Some(_) => format!("{}.wav.sealed", record.id),
            None => format!("{}.wav", record.id),
        };
        let path = dir.join(name);
        // A full disk holds the recording in memory until there is space (and the dialer
        // dials nothing new meanwhile); any other failure is logged and the call's record
        // says it has no recording.
        let what = format!("recording of call {}", record.id);
        let stored = async {
            let rec = s.recorder.encode(keys)?;
            crate::durable::store_recording(&what, &engines.metrics, || async { rec.store(&path) })
                .await
        }
        .await;
        match stored {
            Ok(r) => record.recording = Some(r),
            Err(e) => {
                engines.metrics.error("recording");
                tracing::error!(call = %record.id, path = %path.display(), error = %e, "could not write the recording")
            }
        }
    }
    record.ended_at = crate::record::now();
    engines.metrics.calls_active.dec();
    engines
        .metrics
        .calls_finished
        .get_or_create(&crate::metrics::OutcomeLabel {
            disposition: record.disposition.clone(),
            outcome: record.outcome.clone().unwrap_or_default(),
        })
        .inc();
    s.emit(LiveEvent::Ended {
        call: record.id.clone(),
        outcome: record.outcome.clone(),
    });
    record
}

/// The next message of an optional channel; never resolves without one.
async fn recv_some<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_bounded<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn finish_failed(
    engines: &Engines,
    mut record: CallRecord,
    mut media: MediaSession,
    sip: SipLeg,
) -> CallRecord {
    sip.agent.hangup(sip.call);
    let _ = media.stop().await;
    record.ended_at = crate::record::now();
    engines.metrics.calls_active.dec();
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_goes_to_the_host_the_customer_was_dialled_at() {
        let remote = Uri::parse("sip:+15551234567@trunk.bank.test:5070").expect("uri");
        let t = refer_target("+442071234567", Some(&remote)).expect("target");
        assert_eq!(t.to_string(), "sip:+442071234567@trunk.bank.test:5070");
        let remote = Uri::parse("sips:alice@10.0.0.7").expect("uri");
        let t = refer_target("+442071234567", Some(&remote)).expect("target");
        assert_eq!(t.to_string(), "sips:+442071234567@10.0.0.7");
    }

    #[test]
    fn a_sip_uri_is_used_as_it_is_and_a_number_needs_a_host() {
        let t = refer_target("sip:mortgages@partner.example", None).expect("target");
        assert_eq!(t.to_string(), "sip:mortgages@partner.example");
        let e = refer_target("+442071234567", None).expect_err("no host");
        assert!(e.contains("give a sip: URI"), "{e}");
    }
}
