//! Turn-taking for one call: a sans-IO state machine that decides when the customer's turn is
//! over, when the robot must stop talking, and when to ask the recogniser for a transcript.
//!
//! Inputs are VAD speech probabilities (one per 32 ms window, with the window's end time),
//! transcripts of the audio it asked for, what the robot is doing (speaking or not) and what the
//! flow is listening for; outputs are [`TurnAction`]s. Times are milliseconds on the call's
//! audio clock (0 = answer). The caller keeps the audio and runs the models.
//!
//! - **Speculative recognition.** When the customer has been silent for `speculate_after_ms`,
//!   the audio so far is sent for recognition *before* the turn is declared over. If the words
//!   already answer what the flow asked (the caller judges that with the NLU and says so in
//!   [`TurnTaker::transcript`]), the turn ends as soon as the transcript is in; otherwise it ends
//!   after the expectation's hangover (a yes/no needs less silence than a date or card digits),
//!   reusing the transcript if nobody spoke since. Speech that resumes throws the speculative
//!   result away — unless it covered at least `commit_min_ms` of speech, in which case that part
//!   is kept as a committed prefix and only the audio after it is decoded later, so the final
//!   decode after a long answer stays short (partial results are reported as they come).
//! - **Barge-in.** Confirmed speech while the robot talks pauses the robot at once
//!   ([`TurnAction::PauseRobot`]). If the speech stays short and turns out to be a backchannel
//!   ("uh-huh", "okay") or noise, the robot resumes where it stopped; otherwise the interruption
//!   is real ([`TurnAction::BargeIn`]) and the speech becomes the customer's turn. "Yes" is not a
//!   backchannel: said over a question, it is taken as the answer.
//! - **No input.** When the robot has finished speaking and the flow is listening, silence for
//!   the listen timeout gives [`TurnAction::NoInput`].

/// What the flow is waiting for; it sets how much silence ends a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    YesNo,
    /// An intent or a choice among a few options.
    Intent,
    /// A date, time, amount or number.
    Value,
    /// Card or account digits, read in groups with pauses.
    Digits,
    /// Free text.
    Text,
}

/// Tuning. All durations in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnConfig {
    /// Probability at which a window counts as speech onset.
    pub threshold: f32,
    /// Probability below which a window counts as silence (hysteresis).
    pub neg_threshold: f32,
    /// Speech must last this long to count (clicks and breaths do not).
    pub min_speech_ms: u64,
    /// Silence after which the audio so far is recognised speculatively…
    pub speculate_after_ms: u64,
    /// …or this much while the recogniser is busy (see [`TurnTaker::set_eager`]).
    pub speculate_after_busy_ms: u64,
    /// Silence that ends a turn, by expectation.
    pub hangover_yes_no_ms: u64,
    pub hangover_intent_ms: u64,
    pub hangover_value_ms: u64,
    pub hangover_digits_ms: u64,
    pub hangover_text_ms: u64,
    /// A "complete" transcript ends the turn only after at least this much silence (comma
    /// pauses inside an answer are 200–350 ms)…
    pub min_endpoint_ms: u64,
    /// …or this much when it is a single word.
    pub min_endpoint_one_word_ms: u64,
    /// Audio kept before the speech onset and after its end in what is sent for recognition.
    pub pre_roll_ms: u64,
    pub post_roll_ms: u64,
    /// Speech over the robot longer than this is an interruption, whatever it says.
    pub backchannel_max_ms: u64,
    /// Silence that ends a short speech over the robot (then it is checked for a backchannel).
    pub backchannel_gap_ms: u64,
    /// A speculative transcript of at least this much speech is kept when speech resumes.
    pub commit_min_ms: u64,
    /// Turns longer than this are cut (the customer keeps talking: take what was said).
    pub max_turn_ms: u64,
    /// A window whose level (RMS, 16-bit scale) is under `fade_ratio` × the loudest window of the
    /// speech, or under `fade_floor`, has faded: the VAD may still call it speech (its
    /// probability trails the voice by 100–150 ms, and a final "s" is quiet), but the turn
    /// may be over, so recognition starts as if it were silence.
    pub fade_ratio: f32,
    pub fade_floor: f32,
    /// A fade that lasts longer than this is quiet speech after all.
    pub fade_max_ms: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 64,
            speculate_after_ms: 64,
            speculate_after_busy_ms: 160,
            hangover_yes_no_ms: 450,
            hangover_intent_ms: 650,
            hangover_value_ms: 800,
            hangover_digits_ms: 1200,
            hangover_text_ms: 900,
            min_endpoint_ms: 200,
            min_endpoint_one_word_ms: 420,
            pre_roll_ms: 200,
            post_roll_ms: 120,
            backchannel_max_ms: 700,
            backchannel_gap_ms: 250,
            commit_min_ms: 1500,
            max_turn_ms: 15_000,
            fade_ratio: 0.1,
            fade_floor: 100.0,
            fade_max_ms: 250,
        }
    }
}

impl TurnConfig {
    pub fn hangover_ms(&self, expect: Expect) -> u64 {
        match expect {
            Expect::YesNo => self.hangover_yes_no_ms,
            Expect::Intent => self.hangover_intent_ms,
            Expect::Value => self.hangover_value_ms,
            Expect::Digits => self.hangover_digits_ms,
            Expect::Text => self.hangover_text_ms,
        }
    }
}

/// Why audio is sent for recognition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The customer paused; the turn may be over.
    Speculative,
    /// The turn is over and no usable transcript exists yet.
    Final,
    /// Short speech over the robot: is it a backchannel?
    Backchannel,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnAction {
    /// Recognise the audio `[start_ms, end_ms)` and report with [`TurnTaker::transcript`].
    Transcribe {
        job: u64,
        start_ms: u64,
        end_ms: u64,
        purpose: Purpose,
    },
    /// Stop the robot's audio now (the customer started speaking over it).
    PauseRobot { at_ms: u64 },
    /// It was a backchannel or noise: carry on speaking from where the robot stopped.
    ResumeRobot { at_ms: u64 },
    /// The robot was really interrupted: drop what it had left to say.
    BargeIn { at_ms: u64 },
    /// Words recognised so far in a turn that is still going on (for live transcripts).
    Partial { text: String },
    /// The customer's turn is over.
    Utterance(FinishedTurn),
    /// The listen timeout passed with no speech.
    NoInput { at_ms: u64 },
}

/// A finished customer turn.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTurn {
    pub text: String,
    /// Speech onset and end (VAD), ms from answer.
    pub start_ms: u64,
    pub speech_end_ms: u64,
    /// When the turn was declared over.
    pub endpoint_ms: u64,
    /// Whether the transcript was judged complete (the turn ended before the full hangover).
    pub early: bool,
    /// The decode that produced the last part of the text, if it was a final one (the turn
    /// waited for recognition after the endpoint).
    pub waited_for_asr: bool,
}

/// Transcribed words for a recognition job.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// The caller's judgement: these words already answer what the flow is listening for.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Job {
    id: u64,
    start_ms: u64,
    end_ms: u64,
    purpose: Purpose,
    /// The last speech window end when the job was made (for detecting resumed speech).
    voice_end_ms: u64,
    result: Option<Transcript>,
    /// The recogniser gave up on it (a speculative decode is not retried the slow way): the
    /// endpoint asks for a final decode.
    failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Silence,
    /// Crossed the threshold at `onset_ms`, not yet confirmed.
    Onset {
        onset_ms: u64,
    },
    /// Speech since `onset_ms`; last speech window ended at `voice_end_ms`.
    Speech {
        onset_ms: u64,
        voice_end_ms: u64,
        /// The speech started while the robot was talking and the robot was paused.
        over_robot: bool,
    },
    /// Waiting for a final transcript after the endpoint.
    AwaitFinal {
        onset_ms: u64,
        voice_end_ms: u64,
        endpoint_ms: u64,
    },
    /// Waiting for the backchannel check of a short speech over the robot.
    AwaitBackchannel {
        onset_ms: u64,
        voice_end_ms: u64,
    },
}

/// The VAD's window (512 samples at 16 kHz, 256 at 8 kHz).
const VAD_WINDOW_MS: u64 = asr::VAD_FRAME_MS as u64;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct TurnTaker {
    cfg: TurnConfig,
    phase: Phase,
    robot_speaking: bool,
    robot_paused: bool,
    listening: Option<(Expect, u64)>,
    /// When the no-input clock started (robot silent and listening).
    quiet_since: Option<u64>,
    next_job: u64,
    job: Option<Job>,
    /// Text of the committed prefix of the current turn and the audio time it covers.
    committed: Option<(String, u64)>,
    now_ms: u64,
    /// The loudest window of the current speech (RMS).
    peak_level: f32,
    /// The end of the last window the VAD called speech (later than the voice's end in a fade).
    vad_end_ms: u64,
    /// The end of the last VAD window: how far the customer's audio has been heard. A decode
    /// that comes back while frames are still queued (a loaded machine) must not take the wall
    /// clock for silence the VAD has not seen: speech may have resumed in those frames.
    heard_ms: u64,
    /// Speculate early (at `speculate_after_ms`, and on fades): the recogniser has room.
    eager: bool,
}

const BACKCHANNELS: &[&str] = &[
    "uh huh",
    "uh-huh",
    "mm hmm",
    "mm-hmm",
    "mhm",
    "hmm",
    "mm",
    "ok",
    "okay",
    "yeah",
    "right",
    "sure",
    "i see",
    "alright",
    "all right",
    "uh",
    "um",
    "ah",
    "oh",
];

/// Whether `text` is only a backchannel (or nothing at all).
pub fn is_backchannel(text: &str) -> bool {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let words = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return true;
    }
    // Bracketed non-speech from whisper ("[music]", "(coughs)") was turned into plain words
    // above; treat a handful of known ones as noise.
    if matches!(
        words.as_str(),
        "blank audio" | "music" | "silence" | "noise" | "coughs" | "laughs" | "inaudible"
    ) {
        return true;
    }
    BACKCHANNELS.contains(&words.as_str())
        || words.split(' ').count() <= 3 && words.split(' ').all(|w| BACKCHANNELS.contains(&w))
}

impl TurnTaker {
    pub fn new(cfg: TurnConfig) -> Self {
        TurnTaker {
            cfg,
            phase: Phase::Silence,
            robot_speaking: false,
            robot_paused: false,
            listening: None,
            quiet_since: None,
            next_job: 1,
            job: None,
            committed: None,
            now_ms: 0,
            peak_level: 0.0,
            vad_end_ms: 0,
            heard_ms: 0,
            eager: true,
        }
    }

    pub fn config(&self) -> &TurnConfig {
        &self.cfg
    }

    /// The flow listens for `expect`; silence for `timeout_ms` after the robot stops speaking
    /// gives `NoInput`.
    pub fn listen(&mut self, expect: Expect, timeout_ms: u64) {
        self.listening = Some((expect, timeout_ms));
        self.quiet_since = (!self.robot_speaking).then_some(self.now_ms);
    }

    /// The flow stopped listening (it ended, or is waiting on something else).
    pub fn stop_listening(&mut self) {
        self.listening = None;
        self.quiet_since = None;
    }

    /// The robot started or stopped speaking (stopped: its last queued audio was sent).
    pub fn robot_speaking(&mut self, speaking: bool, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.robot_speaking = speaking;
        if speaking {
            self.quiet_since = None;
        } else {
            self.robot_paused = false;
            if self.listening.is_some() && self.phase == Phase::Silence {
                self.quiet_since = Some(self.now_ms);
            }
        }
    }

    /// Whether the recogniser has room for eager speculation. When it is busy (other calls'
    /// decodes queue), speculation waits for `speculate_after_busy_ms` of silence and fades do
    /// not trigger it: every speculation that the customer's next words make useless delays
    /// the decodes that matter.
    pub fn set_eager(&mut self, eager: bool) {
        self.eager = eager;
    }

    fn speculate_after(&self) -> u64 {
        if self.eager {
            self.cfg.speculate_after_ms
        } else {
            self.cfg.speculate_after_busy_ms
        }
    }

    /// The recognition job whose transcript the turn is waiting for, if any (transcripts of
    /// other jobs would be ignored).
    pub fn pending_job(&self) -> Option<u64> {
        self.job
            .as_ref()
            .filter(|j| j.result.is_none())
            .map(|j| j.id)
    }

    /// Whether the customer is speaking (confirmed speech, not yet ended).
    pub fn customer_speaking(&self) -> bool {
        matches!(self.phase, Phase::Speech { .. })
    }

    /// One VAD window ending at `end_ms` with speech probability `prob` (level unknown: fades
    /// are not detected).
    pub fn vad(&mut self, end_ms: u64, prob: f32) -> Vec<TurnAction> {
        self.vad_level(end_ms, prob, f32::NAN)
    }

    /// One VAD window ending at `end_ms` with speech probability `prob` and audio level `level`
    /// (RMS on the 16-bit scale).
    pub fn vad_level(&mut self, end_ms: u64, prob: f32, level: f32) -> Vec<TurnAction> {
        let window = VAD_WINDOW_MS;
        self.now_ms = self.now_ms.max(end_ms);
        self.heard_ms = self.heard_ms.max(end_ms);
        let mut out = Vec::new();
        let start_ms = end_ms.saturating_sub(window);
        match self.phase.clone() {
            Phase::Silence => {
                if prob >= self.cfg.threshold {
                    self.phase = Phase::Onset { onset_ms: start_ms };
                    self.confirm_onset(end_ms, &mut out);
                }
            }
            Phase::Onset { onset_ms } => {
                if prob >= self.cfg.neg_threshold {
                    self.confirm_onset(end_ms, &mut out);
                } else {
                    self.phase = Phase::Silence;
                    let _ = onset_ms;
                }
            }
            Phase::Speech {
                onset_ms,
                voice_end_ms,
                over_robot,
            } => {
                if prob >= self.cfg.neg_threshold {
                    self.vad_end_ms = end_ms;
                }
                let faded =
                    level < (self.peak_level * self.cfg.fade_ratio).max(self.cfg.fade_floor);
                if prob >= self.cfg.neg_threshold
                    && faded
                    && self.eager
                    && !over_robot
                    && end_ms.saturating_sub(voice_end_ms) <= self.cfg.fade_max_ms
                {
                    // The VAD still hears speech, the level says it has faded: recognise now,
                    // and let a complete transcript end the turn, but run no hangover yet.
                    self.speculate_or_finish(onset_ms, voice_end_ms, end_ms, &mut out);
                } else if prob >= self.cfg.neg_threshold {
                    if !level.is_nan() {
                        // A fade that outlasted `fade_max_ms` is the customer speaking softly:
                        // it becomes the reference, so it does not keep looking like a fade.
                        let fade_expired =
                            end_ms.saturating_sub(voice_end_ms) > self.cfg.fade_max_ms;
                        self.peak_level = if faded && fade_expired && !over_robot {
                            level
                        } else {
                            self.peak_level.max(level)
                        };
                    }
                    self.phase = Phase::Speech {
                        onset_ms,
                        voice_end_ms: end_ms,
                        over_robot,
                    };
                    self.speech_resumed(voice_end_ms);
                    if over_robot
                        && self.robot_paused
                        && end_ms.saturating_sub(onset_ms) > self.cfg.backchannel_max_ms
                    {
                        // Too long for a backchannel: a real interruption.
                        self.robot_paused = false;
                        self.robot_speaking = false;
                        out.push(TurnAction::BargeIn { at_ms: end_ms });
                        self.phase = Phase::Speech {
                            onset_ms,
                            voice_end_ms: end_ms,
                            over_robot: false,
                        };
                    }
                    if end_ms.saturating_sub(onset_ms) >= self.cfg.max_turn_ms {
                        self.endpoint(onset_ms, end_ms, end_ms, &mut out);
                    }
                } else {
                    self.silence(onset_ms, voice_end_ms, over_robot, end_ms, &mut out);
                }
            }
            Phase::AwaitFinal { .. } | Phase::AwaitBackchannel { .. } => {
                if prob >= self.cfg.threshold {
                    // New speech while a transcript is pending: it joins the same turn.
                    let onset = match self.phase {
                        Phase::AwaitFinal { onset_ms, .. }
                        | Phase::AwaitBackchannel { onset_ms, .. } => onset_ms,
                        _ => start_ms,
                    };
                    let over_robot = matches!(self.phase, Phase::AwaitBackchannel { .. });
                    self.phase = Phase::Speech {
                        onset_ms: onset,
                        voice_end_ms: end_ms,
                        over_robot,
                    };
                    self.job = None;
                }
            }
        }
        self.check_no_input(&mut out);
        out
    }

    fn confirm_onset(&mut self, end_ms: u64, out: &mut Vec<TurnAction>) {
        let Phase::Onset { onset_ms } = self.phase else {
            return;
        };
        if end_ms.saturating_sub(onset_ms) < self.cfg.min_speech_ms {
            return;
        }
        self.quiet_since = None;
        let over_robot = self.robot_speaking;
        if over_robot {
            self.robot_paused = true;
            out.push(TurnAction::PauseRobot { at_ms: end_ms });
        }
        self.committed = None;
        self.job = None;
        self.peak_level = 0.0;
        self.phase = Phase::Speech {
            onset_ms,
            voice_end_ms: end_ms,
            over_robot,
        };
    }

    /// Speech came back after a pause: a pending speculative result no longer covers the turn.
    fn speech_resumed(&mut self, previous_voice_end: u64) {
        let Some(job) = &self.job else { return };
        if job.voice_end_ms != previous_voice_end {
            return;
        }
        if job.purpose == Purpose::Speculative
            && let Some(t) = &job.result
            && job.end_ms.saturating_sub(job.start_ms) >= self.cfg.commit_min_ms
        {
            let text = match &self.committed {
                Some((prev, _)) => format!("{prev} {}", t.text).trim().to_string(),
                None => t.text.clone(),
            };
            self.committed = Some((text, job.end_ms));
        }
        self.job = None;
    }

    /// Whether a complete transcript may end the turn at `now`. After a lone word — often the
    /// start of more ("No, not today", "Yes, that's right") — the silence counts from the VAD's
    /// end of speech, like the hangover; otherwise from the end of the voice. A word said (or
    /// decoded) twice is still a lone word: Whisper tiny often doubles a short word in noisy or
    /// lossy audio ("yes yes" for "Yes,"), and "No, no" is as likely to go on as "No".
    fn early_ready(&self, text: &str, voice_end_ms: u64, now: u64) -> bool {
        let mut distinct = asr::transcript_words(text);
        distinct.sort_unstable();
        distinct.dedup();
        let words = distinct.len();
        let committed = self.committed.as_ref().is_some_and(|(t, _)| !t.is_empty());
        if words <= 1 && !committed {
            now.saturating_sub(self.vad_end_ms.max(voice_end_ms))
                >= self.cfg.min_endpoint_one_word_ms
        } else {
            now.saturating_sub(voice_end_ms) >= self.cfg.min_endpoint_ms
        }
    }

    /// A quiet or faded window while listening (see [`TurnConfig::fade_ratio`]): start a
    /// speculative decode, and end the turn on a complete transcript.
    fn speculate_or_finish(
        &mut self,
        onset_ms: u64,
        voice_end_ms: u64,
        now: u64,
        out: &mut Vec<TurnAction>,
    ) {
        if self.listening.is_none() {
            return;
        }
        let quiet = now.saturating_sub(voice_end_ms);
        if quiet >= self.speculate_after() && self.job.is_none() {
            self.request(onset_ms, voice_end_ms, Purpose::Speculative, out);
        }
        if let Some(job) = &self.job
            && job.voice_end_ms == voice_end_ms
            && job
                .result
                .as_ref()
                .is_some_and(|t| t.complete && self.early_ready(&t.text, voice_end_ms, now))
        {
            self.finish(onset_ms, voice_end_ms, now, true, false, out);
        }
    }

    fn silence(
        &mut self,
        onset_ms: u64,
        voice_end_ms: u64,
        over_robot: bool,
        now: u64,
        out: &mut Vec<TurnAction>,
    ) {
        let quiet = now.saturating_sub(voice_end_ms);
        if over_robot && self.robot_paused {
            if quiet >= self.cfg.backchannel_gap_ms {
                self.phase = Phase::AwaitBackchannel {
                    onset_ms,
                    voice_end_ms,
                };
                self.request(onset_ms, voice_end_ms, Purpose::Backchannel, out);
            }
            return;
        }
        let Some((expect, _)) = self.listening else {
            // Nobody is listening (the robot is mid-speech with nothing asked, or the flow ended):
            // the speech still ends a turn, so the flow can hear an interruption.
            if now.saturating_sub(self.vad_end_ms.max(voice_end_ms)) >= self.cfg.hangover_intent_ms
            {
                self.endpoint(onset_ms, voice_end_ms, now, out);
            }
            return;
        };
        // The hangover counts from the VAD's end of speech (a fade shortens nothing).
        if now.saturating_sub(self.vad_end_ms.max(voice_end_ms)) >= self.cfg.hangover_ms(expect) {
            self.endpoint(onset_ms, voice_end_ms, now, out);
            return;
        }
        self.speculate_or_finish(onset_ms, voice_end_ms, now, out);
    }

    fn request(
        &mut self,
        onset_ms: u64,
        voice_end_ms: u64,
        purpose: Purpose,
        out: &mut Vec<TurnAction>,
    ) {
        let from = match (&self.committed, purpose) {
            (Some((_, covered)), Purpose::Speculative | Purpose::Final) => {
                covered.saturating_sub(self.cfg.pre_roll_ms / 2)
            }
            _ => onset_ms.saturating_sub(self.cfg.pre_roll_ms),
        };
        let job = Job {
            id: self.next_job,
            start_ms: from,
            end_ms: voice_end_ms + self.cfg.post_roll_ms,
            purpose,
            voice_end_ms,
            result: None,
            failed: false,
        };
        self.next_job += 1;
        out.push(TurnAction::Transcribe {
            job: job.id,
            start_ms: job.start_ms,
            end_ms: job.end_ms,
            purpose,
        });
        self.job = Some(job);
    }

    /// The hangover passed: the turn is over.
    fn endpoint(&mut self, onset_ms: u64, voice_end_ms: u64, now: u64, out: &mut Vec<TurnAction>) {
        match &self.job {
            Some(job)
                if job.voice_end_ms == voice_end_ms && job.result.is_some() && !job.failed =>
            {
                self.finish(onset_ms, voice_end_ms, now, false, false, out);
            }
            Some(job) if job.voice_end_ms == voice_end_ms && !job.failed => {
                // The speculative decode is still running: wait for it.
                self.phase = Phase::AwaitFinal {
                    onset_ms,
                    voice_end_ms,
                    endpoint_ms: now,
                };
            }
            _ => {
                self.phase = Phase::AwaitFinal {
                    onset_ms,
                    voice_end_ms,
                    endpoint_ms: now,
                };
                self.request(onset_ms, voice_end_ms, Purpose::Final, out);
            }
        }
    }

    fn finish(
        &mut self,
        onset_ms: u64,
        voice_end_ms: u64,
        endpoint_ms: u64,
        early: bool,
        waited_for_asr: bool,
        out: &mut Vec<TurnAction>,
    ) {
        let tail = self
            .job
            .take()
            .and_then(|j| j.result)
            .map(|t| t.text)
            .unwrap_or_default();
        let text = match self.committed.take() {
            Some((prefix, _)) => format!("{prefix} {tail}").trim().to_string(),
            None => tail.trim().to_string(),
        };
        self.phase = Phase::Silence;
        if self.listening.is_some() && !self.robot_speaking {
            self.quiet_since = Some(endpoint_ms);
        }
        if text.is_empty() {
            // Noise that looked like speech: keep listening, the no-input clock restarts.
            return;
        }
        out.push(TurnAction::Utterance(FinishedTurn {
            text,
            start_ms: onset_ms,
            speech_end_ms: voice_end_ms,
            endpoint_ms,
            early,
            waited_for_asr,
        }));
    }

    /// The recogniser could not give a usable transcript for a speculative job (see
    /// `asr::TranscribeOptions::no_fallback`): the turn's end will ask for a final decode.
    pub fn transcript_failed(&mut self, job: u64, now_ms: u64) -> Vec<TurnAction> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut out = Vec::new();
        let Some(current) = self.job.as_mut().filter(|j| j.id == job) else {
            return out;
        };
        current.failed = true;
        current.result = Some(Transcript {
            text: String::new(),
            complete: false,
        });
        if let Phase::AwaitFinal {
            onset_ms,
            voice_end_ms,
            ..
        } = self.phase
        {
            self.request(onset_ms, voice_end_ms, Purpose::Final, &mut out);
        }
        out
    }

    /// The transcript of a job. Stale jobs (speech resumed, turn ended) are ignored.
    pub fn transcript(&mut self, job: u64, t: Transcript, now_ms: u64) -> Vec<TurnAction> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut out = Vec::new();
        let Some(current) = self.job.as_mut().filter(|j| j.id == job) else {
            return out;
        };
        current.result = Some(t.clone());
        let purpose = current.purpose;
        match self.phase.clone() {
            Phase::AwaitFinal {
                onset_ms,
                voice_end_ms,
                endpoint_ms,
            } => {
                let _ = endpoint_ms;
                self.finish(onset_ms, voice_end_ms, self.now_ms, false, true, &mut out);
            }
            Phase::AwaitBackchannel {
                onset_ms,
                voice_end_ms,
            } => {
                self.job = None;
                if is_backchannel(&t.text) {
                    self.phase = Phase::Silence;
                    self.robot_paused = false;
                    out.push(TurnAction::ResumeRobot { at_ms: self.now_ms });
                } else {
                    self.robot_paused = false;
                    self.robot_speaking = false;
                    out.push(TurnAction::BargeIn { at_ms: self.now_ms });
                    self.committed = None;
                    self.phase = Phase::Silence;
                    out.push(TurnAction::Utterance(FinishedTurn {
                        text: t.text.trim().to_string(),
                        start_ms: onset_ms,
                        speech_end_ms: voice_end_ms,
                        endpoint_ms: self.now_ms,
                        early: false,
                        waited_for_asr: true,
                    }));
                }
            }
            Phase::Speech {
                onset_ms,
                voice_end_ms,
                ..
            } if purpose == Purpose::Speculative => {
                let partial = match &self.committed {
                    Some((p, _)) => format!("{p} {}", t.text).trim().to_string(),
                    None => t.text.trim().to_string(),
                };
                if !partial.is_empty() {
                    out.push(TurnAction::Partial { text: partial });
                }
                let still_same = self
                    .job
                    .as_ref()
                    .is_some_and(|j| j.voice_end_ms == voice_end_ms);
                // Silence counts as far as it was heard, plus less than one VAD window (audio
                // the VAD could not have judged yet anyway).
                let silent_until = self.now_ms.min(self.heard_ms + VAD_WINDOW_MS - 1);
                if t.complete && still_same && self.early_ready(&t.text, voice_end_ms, silent_until)
                {
                    self.finish(onset_ms, voice_end_ms, self.now_ms, true, false, &mut out);
                }
            }
            _ => {}
        }
        out
    }

    /// Time passes without audio (e.g. the far end sends nothing): checks the no-input timer.
    pub fn tick(&mut self, now_ms: u64) -> Vec<TurnAction> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut out = Vec::new();
        self.check_no_input(&mut out);
        out
    }

    fn check_no_input(&mut self, out: &mut Vec<TurnAction>) {
        if self.robot_speaking || self.phase != Phase::Silence {
            return;
        }
        if let (Some((_, timeout)), Some(since)) = (self.listening, self.quiet_since)
            && self.now_ms.saturating_sub(since) >= timeout
        {
            self.quiet_since = Some(self.now_ms);
            out.push(TurnAction::NoInput { at_ms: self.now_ms });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds windows of 32 ms: `pattern` has one char per window, '#' speech, '.' silence.
    fn feed(t: &mut TurnTaker, from_ms: u64, pattern: &str) -> Vec<(u64, TurnAction)> {
        let mut out = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            let end = from_ms + 32 * (i as u64 + 1);
            let p = if c == '#' { 0.9 } else { 0.05 };
            out.extend(t.vad(end, p).into_iter().map(|a| (end, a)));
        }
        out
    }

    /// A transcript that answers what the turn listens for.
    fn complete(text: &str) -> Transcript {
        Transcript {
            text: text.into(),
            complete: true,
        }
    }

    fn jobs(actions: &[(u64, TurnAction)]) -> Vec<(u64, Purpose)> {
        actions
            .iter()
            .filter_map(|(_, a)| match a {
                TurnAction::Transcribe { job, purpose, .. } => Some((*job, *purpose)),
                _ => None,
            })
            .collect()
    }

    fn utterances(actions: &[(u64, TurnAction)]) -> Vec<(u64, FinishedTurn)> {
        actions
            .iter()
            .filter_map(|(t, a)| match a {
                TurnAction::Utterance(u) => Some((*t, u.clone())),
                _ => None,
            })
            .collect()
    }

    /// Like [`feed`] with levels: '#' loud speech, 'f' speech by the VAD but faded (a trailing
    /// sound, or the VAD's lag), '.' silence.
    fn feed_levels(t: &mut TurnTaker, from_ms: u64, pattern: &str) -> Vec<(u64, TurnAction)> {
        let mut out = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            let end = from_ms + 32 * (i as u64 + 1);
            let (p, level) = match c {
                '#' => (0.95, 3000.0),
                'f' => (0.9, 150.0),
                _ => (0.05, 20.0),
            };
            out.extend(t.vad_level(end, p, level).into_iter().map(|a| (end, a)));
        }
        out
    }

    #[test]
    fn recognition_starts_when_the_voice_fades_before_the_vad_lets_go() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        // Loud speech ends at 320 ms; the VAD keeps calling it speech for more windows.
        let a = feed_levels(&mut t, 0, "..########ff");
        let j = jobs(&a);
        assert_eq!(j.len(), 1, "speculation 64 ms into the fade");
        assert_eq!(a[0].0, 384);
        match &a[0].1 {
            TurnAction::Transcribe { end_ms, .. } => assert_eq!(*end_ms, 320 + 120),
            other => panic!("{other:?}"),
        }
        let out = t.transcript(j[0].0, complete("Yes, please."), 400);
        assert!(utterances(&out.into_iter().map(|a| (400, a)).collect::<Vec<_>>()).is_empty());
        // Still faded 200 ms after the voice (at 544): a complete answer ends the turn there,
        // while the VAD still says speech.
        let a = feed_levels(&mut t, 384, "fffff");
        let u = utterances(&a);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].0, 544);
        assert_eq!(u[0].1.text, "Yes, please.");
        assert_eq!(u[0].1.speech_end_ms, 320);
        assert!(u[0].1.early);
    }

    #[test]
    fn a_fade_followed_by_loud_speech_drops_the_speculation() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed_levels(&mut t, 0, "..######ff######");
        assert_eq!(jobs(&a).len(), 1);
        let first = jobs(&a)[0].0;
        // Its transcript comes back after the speech resumed: ignored.
        let out = t.transcript(first, complete("Yes"), 520);
        assert!(out.is_empty(), "{out:?}");
        // The real end: a new speculation covering all of it.
        let a = feed_levels(&mut t, 512, "f....");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        assert_ne!(j[0].0, first);
        match &a[0].1 {
            TurnAction::Transcribe { end_ms, .. } => assert_eq!(*end_ms, 512 + 120),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_fade_is_quiet_speech() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        // 320 ms of faded windows (over fade_max_ms, 250): from the ninth on it counts as speech,
        // which throws the speculation away; the turn ends only after real silence.
        let a = feed_levels(&mut t, 0, "..####ffffffffff");
        assert_eq!(jobs(&a).len(), 1);
        assert!(utterances(&a).is_empty());
        assert!(t.customer_speaking());
        let a = feed_levels(&mut t, 512, "..");
        let j = jobs(&a);
        assert_eq!(j.len(), 1, "a new speculation after the quiet speech");
        match &a[0].1 {
            TurnAction::Transcribe { end_ms, .. } => assert_eq!(*end_ms, 512 + 120),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_answer_ends_the_turn_at_the_speculative_result() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########......");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].1, Purpose::Speculative);
        assert!(utterances(&a).is_empty());
        // The decode comes back 200 ms after the speech ended (at 320 + 200 ms).
        let out = t.transcript(j[0].0, complete("Yes, I can."), 520);
        let u = out
            .iter()
            .find_map(|a| match a {
                TurnAction::Utterance(u) => Some(u.clone()),
                _ => None,
            })
            .expect("an utterance");
        assert_eq!(u.text, "Yes, I can.");
        assert!(u.early);
        assert_eq!(u.speech_end_ms, 320);
        assert_eq!(u.endpoint_ms, 520);
    }

    #[test]
    fn a_failed_speculation_is_decoded_again_at_the_end() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########...");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        assert!(t.transcript_failed(j[0].0, 420).is_empty());
        // No new speculation for the same speech; at the hangover, a final decode.
        let a = feed(&mut t, 416, "............");
        let j2 = jobs(&a);
        assert_eq!(j2.len(), 1, "{a:?}");
        assert_eq!(j2[0].1, Purpose::Final);
        let out = t.transcript(j2[0].0, complete("Yes."), 800);
        let a: Vec<(u64, TurnAction)> = out.into_iter().map(|a| (800, a)).collect();
        assert_eq!(utterances(&a)[0].1.text, "Yes.");
        // Failing while the turn already waits for it: the final decode is asked at once.
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########...............");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        let out = t.transcript_failed(j[0].0, 810);
        assert!(matches!(
            out.as_slice(),
            [TurnAction::Transcribe {
                purpose: Purpose::Final,
                ..
            }]
        ));
    }

    #[test]
    fn a_lone_word_waits_longer_in_case_more_follows() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########..");
        let j = jobs(&a);
        let out = t.transcript(j[0].0, complete("No."), 520);
        assert!(
            !out.iter().any(|a| matches!(a, TurnAction::Utterance(_))),
            "200 ms after a lone word is too soon: {out:?}"
        );
        // "No, not today": speech resumes after a 300 ms pause; the turn goes on (its decode
        // comes back when 224 ms of silence have been heard).
        let a = feed(&mut t, 384, "...######.......");
        assert!(utterances(&a).is_empty());
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        let out = t.transcript(j[0].0, complete("No, not today."), 900);
        let a: Vec<(u64, TurnAction)> = out.into_iter().map(|a| (900, a)).collect();
        let u = utterances(&a);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].1.text, "No, not today.");
        // A lone "Yes." with nothing after it ends the turn 420 ms after the voice.
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########..");
        let out = t.transcript(jobs(&a)[0].0, complete("Yes."), 500);
        assert!(!out.iter().any(|a| matches!(a, TurnAction::Utterance(_))));
        let a = feed(&mut t, 384, "..............");
        let u = utterances(&a);
        assert_eq!(u.len(), 1);
        assert_eq!(
            u[0].0, 768,
            "first window 420 ms after the voice ended at 320"
        );
    }

    #[test]
    fn a_doubled_word_is_still_a_lone_word() {
        // "Yes, speaking." over a lossy line: the decode of "Yes," comes back as "yes yes"
        // 224 ms into the comma pause; the turn waits, and ends only when the lone word's
        // 420 ms have passed.
        let decoded = |text: &str| {
            let mut t = TurnTaker::new(TurnConfig::default());
            t.listen(Expect::YesNo, 5000);
            let a = feed(&mut t, 0, "..########.......");
            let out = t.transcript(jobs(&a)[0].0, complete(text), 560);
            let ended = out.iter().any(|a| matches!(a, TurnAction::Utterance(_)));
            (t, ended)
        };
        for text in ["yes yes", "Yes, yes.", "No. No!"] {
            let (mut t, ended) = decoded(text);
            assert!(!ended, "{text:?}: 240 ms after a doubled word is too soon");
            let a = feed(&mut t, 544, "........");
            let u = utterances(&a);
            assert_eq!(u.len(), 1, "{text:?}: {a:?}");
            assert_eq!(u[0].0, 768, "{text:?}: 420 ms after the voice ended at 320");
        }
        // Two different words are not a lone word: 200 ms of silence will do.
        let (_, ended) = decoded("Yes, sure.");
        assert!(ended, "\"Yes, sure.\" waits like a lone word");
    }

    #[test]
    fn a_late_decode_does_not_take_unheard_audio_for_silence() {
        // "Yes, speaking." on a loaded machine: the decode of "Yes" comes back 580 ms after the
        // voice ended by the wall clock, but only 64 ms of silence have been through the VAD;
        // the frames still queued hold "speaking".
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########..");
        let out = t.transcript(jobs(&a)[0].0, complete("Yes."), 900);
        assert!(
            !out.iter().any(|a| matches!(a, TurnAction::Utterance(_))),
            "ended on silence nobody heard: {out:?}"
        );
        let a = feed(&mut t, 384, "...######.......");
        assert!(utterances(&a).is_empty(), "{a:?}");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        let out = t.transcript(j[0].0, complete("Yes, speaking."), 1400);
        let a: Vec<(u64, TurnAction)> = out.into_iter().map(|a| (1400, a)).collect();
        let u = utterances(&a);
        assert_eq!(u.len(), 1, "{a:?}");
        assert_eq!(u[0].1.text, "Yes, speaking.");
        // A decode that is late while nothing else comes: the turn ends at the first window
        // that shows the silence, not before and not at the next decode.
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..########..");
        let out = t.transcript(jobs(&a)[0].0, complete("Yes."), 900);
        assert!(!out.iter().any(|a| matches!(a, TurnAction::Utterance(_))));
        let a = feed(&mut t, 384, "..............");
        let u = utterances(&a);
        assert_eq!(u.len(), 1, "{a:?}");
        assert_eq!(
            u[0].0, 768,
            "first window 420 ms after the voice ended at 320"
        );
    }

    #[test]
    fn an_incomplete_answer_waits_for_the_hangover_and_reuses_the_transcript() {
        let mut t = TurnTaker::new(TurnConfig {
            hangover_value_ms: 800,
            ..TurnConfig::default()
        });
        t.listen(Expect::Value, 5000);
        let a = feed(&mut t, 0, "..##########.......");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        let out = t.transcript(
            j[0].0,
            Transcript {
                text: "on the".into(),
                complete: false,
            },
            600,
        );
        assert!(out.iter().all(|a| !matches!(a, TurnAction::Utterance(_))));
        let a = feed(&mut t, 32 * 19, "....................");
        assert!(jobs(&a).is_empty(), "no second decode of the same audio");
        let u = utterances(&a);
        assert_eq!(u.len(), 1);
        let (at, turn) = &u[0];
        assert!(*at >= 384 + 800, "ended after the hangover, at {at}");
        assert!(!turn.early);
        assert_eq!(turn.text, "on the");
    }

    #[test]
    fn resumed_speech_discards_the_speculation_and_a_long_prefix_is_committed() {
        let cfg = TurnConfig {
            commit_min_ms: 300,
            ..TurnConfig::default()
        };
        let mut t = TurnTaker::new(cfg);
        t.listen(Expect::Text, 5000);
        let a = feed(&mut t, 0, "############........");
        let first = jobs(&a)[0].0;
        t.transcript(
            first,
            Transcript {
                text: "I lost my card".into(),
                complete: false,
            },
            640,
        );
        let a = feed(&mut t, 640, "##########........");
        let j = jobs(&a);
        assert_eq!(j.len(), 1);
        let TurnAction::Transcribe { start_ms, .. } = a
            .iter()
            .map(|(_, a)| a)
            .find(|a| matches!(a, TurnAction::Transcribe { .. }))
            .cloned()
            .expect("job")
        else {
            unreachable!()
        };
        assert!(
            start_ms > 300,
            "only audio after the committed prefix: from {start_ms}"
        );
        t.transcript(
            j[0].0,
            Transcript {
                text: "in the city".into(),
                complete: false,
            },
            1300,
        );
        let a = feed(&mut t, 32 * 38, "..............................");
        let u = utterances(&a);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].1.text, "I lost my card in the city");
        assert_eq!(u[0].1.start_ms, 0);
    }

    #[test]
    fn a_backchannel_pauses_and_resumes_the_robot() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.robot_speaking(true, 0);
        let a = feed(&mut t, 0, "...#####..........");
        let pause = a
            .iter()
            .find(|(_, a)| matches!(a, TurnAction::PauseRobot { .. }));
        // Confirmed after two speech windows (64 ms): onset window ends at 128, confirmed at 160.
        assert_eq!(pause.map(|(t, _)| *t), Some(160));
        let j = jobs(&a);
        assert_eq!(j, vec![(1, Purpose::Backchannel)]);
        let out = t.transcript(
            1,
            Transcript {
                text: "Uh-huh.".into(),
                complete: false,
            },
            700,
        );
        assert_eq!(out, vec![TurnAction::ResumeRobot { at_ms: 700 }]);
    }

    #[test]
    fn short_real_words_over_the_robot_are_a_barge_in_and_a_turn() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.robot_speaking(true, 0);
        t.listen(Expect::YesNo, 5000);
        let a = feed(&mut t, 0, "..######..........");
        assert_eq!(jobs(&a), vec![(1, Purpose::Backchannel)]);
        let out = t.transcript(
            1,
            Transcript {
                text: "Stop, I already paid.".into(),
                complete: false,
            },
            700,
        );
        assert!(matches!(out[0], TurnAction::BargeIn { .. }));
        assert!(matches!(&out[1], TurnAction::Utterance(u) if u.text == "Stop, I already paid."));
    }

    #[test]
    fn long_speech_over_the_robot_is_a_barge_in_without_waiting_for_words() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.robot_speaking(true, 0);
        let a = feed(&mut t, 0, "##############################");
        let barge = a
            .iter()
            .find(|(_, a)| matches!(a, TurnAction::BargeIn { .. }))
            .map(|(t, _)| *t);
        assert!(barge.is_some_and(|t| t > 700 && t <= 768), "{barge:?}");
        assert!(jobs(&a).is_empty());
    }

    #[test]
    fn clicks_do_not_pause_the_robot() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.robot_speaking(true, 0);
        let a = feed(&mut t, 0, "..#....#...#....");
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn no_input_after_the_robot_stops_and_again_after_each_timeout() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.robot_speaking(true, 0);
        t.listen(Expect::Intent, 3000);
        assert!(t.tick(5000).is_empty(), "the robot is still speaking");
        t.robot_speaking(false, 5000);
        assert!(t.tick(7999).is_empty());
        assert_eq!(t.tick(8000), vec![TurnAction::NoInput { at_ms: 8000 }]);
        assert!(t.tick(9000).is_empty());
        assert_eq!(t.tick(11_000), vec![TurnAction::NoInput { at_ms: 11_000 }]);
        t.stop_listening();
        assert!(t.tick(20_000).is_empty());
    }

    #[test]
    fn an_empty_transcript_is_noise_not_a_turn() {
        let mut t = TurnTaker::new(TurnConfig::default());
        t.listen(Expect::Intent, 5000);
        let a = feed(&mut t, 0, "####.....");
        let j = jobs(&a)[0].0;
        t.transcript(
            j,
            Transcript {
                text: String::new(),
                complete: false,
            },
            300,
        );
        let a = feed(&mut t, 288, "......................");
        assert!(utterances(&a).is_empty());
    }

    #[test]
    fn backchannel_words() {
        for s in [
            "uh-huh",
            "Okay.",
            "mm hmm",
            "Yeah, yeah.",
            "",
            "[BLANK_AUDIO]",
            "ok sure",
        ] {
            assert!(is_backchannel(s), "{s:?}");
        }
        for s in [
            "No.",
            "Wait",
            "I already paid",
            "stop calling me",
            "yes I can pay today",
        ] {
            assert!(!is_backchannel(s), "{s:?}");
        }
    }
}
