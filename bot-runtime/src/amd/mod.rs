//! Answering-machine detection (AMD) on the first seconds after an outbound call is answered.
//!
//! [`AmdDetector`] is sans-IO: the caller feeds it the callee's audio one 20 ms frame at a time
//! (8 kHz linear PCM, from the moment of answer) with the VAD's latest speech probability, and
//! acts on what comes back ([`AmdAction`]): transcribe a piece of audio and hand the text back,
//! the verdict (once), and after a machine verdict the moment to start the voicemail message.
//! Time is the audio itself (samples pushed), so the detector never reads a clock.
//!
//! The cues, in the order they are checked on each frame:
//! 1. **Beep** — a steady pure tone (one Goertzel filter of a 390–2100 Hz bank holding most of
//!    the frame's energy, same frequency and level frame after frame) lasting
//!    [`BeepConfig::min_ms`]: machine. Tone frames never count as speech.
//! 2. **Words** — when the greeting pauses, or every [`AmdConfig::transcribe_every_ms`] while it
//!    goes on, the greeting so far is handed out for transcription; a machine phrase
//!    ([`MACHINE_CUES`]: "leave a message", "after the tone", "not available", "you've
//!    reached", …) in the transcript is a machine.
//! 3. **Greeting length** — people answer with a word or two ("Hello?", ~0.5–1.5 s) and wait;
//!    greetings run on. A greeting (speech with no pause of [`AmdConfig::human_silence_ms`])
//!    reaching [`AmdConfig::machine_greeting_ms`] is a machine.
//! 4. **Silence after a short greeting** — [`AmdConfig::human_silence_ms`] of silence after a
//!    greeting up to [`AmdConfig::max_human_greeting_ms`] (or [`AmdConfig::long_greeting_silence_ms`]
//!    after a longer one) is a human, once the transcript of that greeting is in (or
//!    [`AmdConfig::transcript_wait_ms`] has passed without it; a greeting shorter than
//!    [`AmdConfig::min_cue_greeting_ms`] is not waited for).
//! 5. **Initial silence** of [`AmdConfig::initial_silence_ms`]: unknown. At the **decision
//!    deadline** [`AmdConfig::max_decision_ms`]: a human if the greeting has been followed by
//!    `human_silence_ms` of silence (however long it was), otherwise unknown.
//!
//! After a machine verdict the detector keeps listening for the end of the greeting:
//! [`AmdAction::ReadyForMessage`] comes when a beep ends (`after_beep: true`, `at_ms` the end of
//! the tone), or after [`AmdConfig::no_beep_wait_ms`] of silence with no beep, or at the latest
//! [`AmdConfig::max_message_wait_ms`] after the verdict.

mod cues;
mod tone;

pub use cues::{MACHINE_CUES, machine_cue, normalize as normalize_transcript};
pub use tone::{BeepConfig, ToneBank, ToneFrame};

/// The detector's audio rate.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 160;

/// Thresholds of the detector, durations in milliseconds of audio from the answer.
/// `Default` holds the values tuned on the dev split of `cargo bench -p bot-runtime --bench amd`.
#[derive(Debug, Clone, PartialEq)]
pub struct AmdConfig {
    /// VAD probability at which a frame becomes speech.
    pub speech_threshold: f32,
    /// VAD probability below which speech stops (hysteresis).
    pub speech_release: f32,
    /// Shortest run of speech frames that counts (clicks and breaths are shorter).
    pub min_speech_ms: u64,
    /// No speech at all by this time: [`AmdVerdict::Unknown`].
    pub initial_silence_ms: u64,
    /// Silence that ends a short greeting: then a human.
    pub human_silence_ms: u64,
    /// Longest greeting (first speech to last) still typical of a person.
    pub max_human_greeting_ms: u64,
    /// Silence needed after a greeting longer than `max_human_greeting_ms` (but shorter than
    /// `machine_greeting_ms`) before calling it a human: gives a beep or a transcript time.
    pub long_greeting_silence_ms: u64,
    /// A greeting this long without a `human_silence_ms` pause: a machine.
    pub machine_greeting_ms: u64,
    /// No verdict by this time: decided on what is known (see the module docs).
    pub max_decision_ms: u64,
    /// A pause this long in the greeting hands the greeting so far out for transcription.
    pub transcribe_gap_ms: u64,
    /// While the greeting goes on without pause, transcribe again after this much more audio.
    pub transcribe_every_ms: u64,
    /// How long a human verdict waits for an outstanding transcript.
    pub transcript_wait_ms: u64,
    /// Shortest greeting whose transcript a human verdict waits for: a shorter one is too short
    /// to hold a machine phrase.
    pub min_cue_greeting_ms: u64,
    /// Audio before the first speech included in what is handed out for transcription.
    pub transcript_pad_ms: u64,
    /// The beep detector.
    pub beep: BeepConfig,
    /// After a machine verdict: silence (no speech, no tone) after which the message may start
    /// without a beep.
    pub no_beep_wait_ms: u64,
    /// After a machine verdict: the longest wait for the greeting to end.
    pub max_message_wait_ms: u64,
}

impl Default for AmdConfig {
    fn default() -> Self {
        Self {
            speech_threshold: 0.5,
            speech_release: 0.35,
            min_speech_ms: 60,
            initial_silence_ms: 3500,
            human_silence_ms: 800,
            max_human_greeting_ms: 1800,
            long_greeting_silence_ms: 1400,
            machine_greeting_ms: 2500,
            max_decision_ms: 5000,
            transcribe_gap_ms: 300,
            transcribe_every_ms: 1500,
            transcript_wait_ms: 1000,
            min_cue_greeting_ms: 1000,
            transcript_pad_ms: 200,
            beep: BeepConfig::default(),
            no_beep_wait_ms: 2000,
            max_message_wait_ms: 30_000,
        }
    }
}

/// Who answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmdVerdict {
    /// A person; `reason` says which cue decided, for logs and call records.
    Human { at_ms: u64, reason: String },
    /// An answering machine (voicemail greeting, network announcement).
    Machine { at_ms: u64, reason: String },
    /// Nothing conclusive by the deadline (silence, or a greeting that started late).
    Unknown { at_ms: u64 },
}

impl AmdVerdict {
    /// When the verdict was reached, in ms of audio from the answer.
    pub fn at_ms(&self) -> u64 {
        match self {
            AmdVerdict::Human { at_ms, .. }
            | AmdVerdict::Machine { at_ms, .. }
            | AmdVerdict::Unknown { at_ms } => *at_ms,
        }
    }

    /// `"human"`, `"machine"` or `"unknown"`.
    pub fn label(&self) -> &'static str {
        match self {
            AmdVerdict::Human { .. } => "human",
            AmdVerdict::Machine { .. } => "machine",
            AmdVerdict::Unknown { .. } => "unknown",
        }
    }
}

/// What the caller of [`AmdDetector`] has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmdAction {
    /// Ask the caller to transcribe this audio (8 kHz PCM) and call
    /// [`AmdDetector::transcript`]. At most one is outstanding at a time; frames keep coming
    /// meanwhile.
    Transcribe { pcm: Vec<i16> },
    /// The decision (emitted once).
    Verdict(AmdVerdict),
    /// After a Machine verdict: the moment to start the voicemail message (the beep ended,
    /// or the greeting ended and no beep came within a timeout). Emitted once, on the frame
    /// that confirms it: for a beep `at_ms` is the end of the tone and the action comes
    /// [`BeepConfig::end_confirm_ms`] later.
    ReadyForMessage { at_ms: u64, after_beep: bool },
}

/// A run of tone frames at one frequency.
#[derive(Debug, Clone, Copy)]
struct ToneRun {
    start_ms: u64,
    end_ms: u64,
    hz: f32,
    frames: u32,
    /// Quietest and loudest frame after the first.
    min_rms: f32,
    max_rms: f32,
}

impl ToneRun {
    fn duration(&self) -> u64 {
        self.end_ms - self.start_ms
    }
}

/// The detector for one call. See the module docs for the cues.
#[derive(Debug, Clone)]
pub struct AmdDetector {
    config: AmdConfig,
    bank: ToneBank,
    /// Samples pushed since the answer.
    samples: u64,
    /// The callee's audio since the answer, kept until the verdict (for transcription).
    audio: Vec<i16>,
    vad_on: bool,
    voiced_run_ms: u64,
    run_start_ms: u64,
    greeting_start: Option<u64>,
    last_voiced_end: u64,
    tone: Option<ToneRun>,
    /// The confirmed beep: frequency and start.
    beep: Option<(f32, u64)>,
    last_tone_end: u64,
    /// When the outstanding transcription was asked for.
    pending_since: Option<u64>,
    /// End (ms) of the audio handed out last.
    transcribed_to: u64,
    last_transcript: String,
    verdict: Option<AmdVerdict>,
    ready: bool,
}

impl AmdDetector {
    /// A detector for one call, before the first frame after answer.
    pub fn new(config: AmdConfig) -> Self {
        Self {
            bank: ToneBank::new(&config.beep, SAMPLE_RATE),
            config,
            samples: 0,
            audio: Vec::new(),
            vad_on: false,
            voiced_run_ms: 0,
            run_start_ms: 0,
            greeting_start: None,
            last_voiced_end: 0,
            tone: None,
            beep: None,
            last_tone_end: 0,
            pending_since: None,
            transcribed_to: 0,
            last_transcript: String::new(),
            verdict: None,
            ready: false,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &AmdConfig {
        &self.config
    }

    /// Milliseconds of audio pushed since the answer.
    pub fn now_ms(&self) -> u64 {
        self.samples * 1000 / u64::from(SAMPLE_RATE)
    }

    /// The verdict, once reached.
    pub fn verdict(&self) -> Option<&AmdVerdict> {
        self.verdict.as_ref()
    }

    /// True when the detector has nothing more to say: a human or unknown verdict, or a machine
    /// verdict followed by [`AmdAction::ReadyForMessage`]. Frames pushed after that are ignored.
    pub fn is_done(&self) -> bool {
        match self.verdict {
            None => false,
            Some(AmdVerdict::Machine { .. }) => self.ready,
            Some(_) => true,
        }
    }

    /// One 20 ms frame ([`FRAME_SAMPLES`] samples, 8 kHz linear PCM) of the callee's audio, from
    /// the moment of answer, with the latest VAD speech probability (Silero, 0..1) for that
    /// frame. Other frame lengths work too; time advances by the samples given.
    pub fn push_frame(&mut self, pcm: &[i16], speech_prob: f32) -> Vec<AmdAction> {
        let mut out = Vec::new();
        if self.is_done() || pcm.is_empty() {
            return out;
        }
        let start_ms = self.now_ms();
        self.samples += pcm.len() as u64;
        let end_ms = self.now_ms();
        if self.verdict.is_none() {
            let cap = (self.config.max_decision_ms + 1000) as usize * SAMPLE_RATE as usize / 1000;
            if self.audio.len() < cap {
                self.audio.extend_from_slice(pcm);
            }
        }

        let tone = self.bank.tone(pcm, &self.config.beep);
        let beep_ended = self.track_tone(tone, start_ms, end_ms);
        self.track_speech(speech_prob, tone.is_none(), start_ms, end_ms);

        if self.verdict.is_none() {
            self.decide(end_ms, &mut out);
        }
        if self.verdict.is_none() {
            self.maybe_transcribe(end_ms, &mut out);
        }
        if matches!(self.verdict, Some(AmdVerdict::Machine { .. })) && !self.ready {
            self.ready_for_message(end_ms, beep_ended, &mut out);
        }
        out
    }

    /// The transcript of the audio handed out by the last [`AmdAction::Transcribe`].
    pub fn transcript(&mut self, text: &str) -> Vec<AmdAction> {
        let mut out = Vec::new();
        self.pending_since = None;
        self.last_transcript = text.trim().to_string();
        if self.verdict.is_none()
            && let Some(cue) = machine_cue(text)
        {
            self.set_verdict(
                AmdVerdict::Machine {
                    at_ms: self.now_ms(),
                    reason: format!("greeting says \"{cue}\": \"{}\"", self.last_transcript),
                },
                &mut out,
            );
        }
        out
    }

    /// Follows runs of tone frames; returns the end of a beep that is over as of this frame.
    fn track_tone(&mut self, tone: Option<ToneFrame>, start_ms: u64, end_ms: u64) -> Option<u64> {
        let b = &self.config.beep;
        let mut ended = None;
        let is_beep = |r: &ToneRun| (b.min_ms..=b.max_ms).contains(&r.duration());
        let steady = |r: &ToneRun, t: &ToneFrame| {
            let (lo, hi) = if r.frames == 1 {
                (t.rms, t.rms)
            } else {
                (r.min_rms.min(t.rms), r.max_rms.max(t.rms))
            };
            (t.hz - r.hz).abs() <= b.max_drift_hz && hi <= lo * b.max_level_ratio
        };
        match (tone, self.tone) {
            (Some(t), Some(mut r)) if start_ms <= r.end_ms + 20 && steady(&r, &t) => {
                r.hz = (r.hz * r.frames as f32 + t.hz) / (r.frames + 1) as f32;
                if r.frames == 1 {
                    (r.min_rms, r.max_rms) = (t.rms, t.rms);
                } else {
                    r.min_rms = r.min_rms.min(t.rms);
                    r.max_rms = r.max_rms.max(t.rms);
                }
                r.frames += 1;
                r.end_ms = end_ms;
                self.tone = Some(r);
            }
            (Some(t), previous) => {
                if let Some(r) = previous {
                    self.last_tone_end = r.end_ms;
                    if is_beep(&r) {
                        ended = Some(r.end_ms);
                    }
                }
                self.tone = Some(ToneRun {
                    start_ms,
                    end_ms,
                    hz: t.hz,
                    frames: 1,
                    min_rms: t.rms,
                    max_rms: t.rms,
                });
            }
            (None, Some(r)) => {
                if end_ms >= r.end_ms + b.end_confirm_ms {
                    self.last_tone_end = r.end_ms;
                    if is_beep(&r) {
                        ended = Some(r.end_ms);
                    }
                    self.tone = None;
                }
            }
            (None, None) => {}
        }
        if let Some(r) = self.tone
            && self.beep.is_none()
            && r.duration() >= b.min_ms
        {
            self.beep = Some((r.hz, r.start_ms));
        }
        ended
    }

    fn track_speech(&mut self, prob: f32, not_tone: bool, start_ms: u64, end_ms: u64) {
        if self.vad_on {
            self.vad_on = prob >= self.config.speech_release;
        } else {
            self.vad_on = prob >= self.config.speech_threshold;
        }
        if self.vad_on && not_tone {
            if self.voiced_run_ms == 0 {
                self.run_start_ms = start_ms;
            }
            self.voiced_run_ms += end_ms - start_ms;
            if self.voiced_run_ms >= self.config.min_speech_ms {
                self.greeting_start.get_or_insert(self.run_start_ms);
                self.last_voiced_end = end_ms;
            }
        } else {
            self.voiced_run_ms = 0;
        }
    }

    fn speaking(&self) -> bool {
        self.voiced_run_ms >= self.config.min_speech_ms
    }

    fn set_verdict(&mut self, verdict: AmdVerdict, out: &mut Vec<AmdAction>) {
        self.audio = Vec::new();
        self.pending_since = None;
        out.push(AmdAction::Verdict(verdict.clone()));
        self.verdict = Some(verdict);
    }

    fn heard(&self) -> String {
        if self.last_transcript.is_empty() {
            String::new()
        } else {
            format!(", heard \"{}\"", self.last_transcript)
        }
    }

    fn decide(&mut self, now: u64, out: &mut Vec<AmdAction>) {
        let c = &self.config;
        if let Some((hz, start)) = self.beep {
            let reason = format!("beep of {hz:.0} Hz from {start} ms");
            self.set_verdict(AmdVerdict::Machine { at_ms: now, reason }, out);
            return;
        }
        if let Some(start) = self.greeting_start {
            let span = self.last_voiced_end - start;
            let silence = now - self.last_voiced_end;
            if span >= c.machine_greeting_ms {
                let reason = format!(
                    "greeting of {span} ms without a {} ms pause{}",
                    c.human_silence_ms,
                    self.heard()
                );
                self.set_verdict(AmdVerdict::Machine { at_ms: now, reason }, out);
                return;
            }
            let needed = if span <= c.max_human_greeting_ms {
                c.human_silence_ms
            } else {
                c.long_greeting_silence_ms
            };
            let waiting = span >= c.min_cue_greeting_ms
                && self
                    .pending_since
                    .is_some_and(|t| now < t + c.transcript_wait_ms);
            if silence >= needed && !waiting {
                let reason = format!(
                    "greeting of {span} ms from {start} ms, then {silence} ms of silence{}",
                    self.heard()
                );
                self.set_verdict(AmdVerdict::Human { at_ms: now, reason }, out);
                return;
            }
        } else if now >= c.initial_silence_ms {
            self.set_verdict(AmdVerdict::Unknown { at_ms: now }, out);
            return;
        }
        if now >= c.max_decision_ms {
            // Decide on what is known: a greeting that has ended (a short pause) is a person's.
            let verdict = match self.greeting_start {
                Some(start) if now - self.last_voiced_end >= c.human_silence_ms => {
                    AmdVerdict::Human {
                        at_ms: now,
                        reason: format!(
                            "deadline: greeting of {} ms from {start} ms, then {} ms of silence{}",
                            self.last_voiced_end - start,
                            now - self.last_voiced_end,
                            self.heard()
                        ),
                    }
                }
                _ => AmdVerdict::Unknown { at_ms: now },
            };
            self.set_verdict(verdict, out);
        }
    }

    fn maybe_transcribe(&mut self, now: u64, out: &mut Vec<AmdAction>) {
        let c = &self.config;
        let Some(start) = self.greeting_start else {
            return;
        };
        if self.pending_since.is_some() {
            return;
        }
        let covered = self.transcribed_to.max(start);
        let silence = now - self.last_voiced_end;
        let paused = silence >= c.transcribe_gap_ms
            && self.last_voiced_end > covered
            && self.last_voiced_end - covered >= c.min_speech_ms;
        let long = self.speaking() && now - covered >= c.transcribe_every_ms;
        if !(paused || long) {
            return;
        }
        let per_ms = SAMPLE_RATE as usize / 1000;
        let from =
            (start.saturating_sub(c.transcript_pad_ms) as usize * per_ms).min(self.audio.len());
        let to = (now as usize * per_ms).min(self.audio.len());
        if to <= from {
            return;
        }
        self.pending_since = Some(now);
        self.transcribed_to = now;
        out.push(AmdAction::Transcribe {
            pcm: self.audio[from..to].to_vec(),
        });
    }

    fn ready_for_message(&mut self, now: u64, beep_ended: Option<u64>, out: &mut Vec<AmdAction>) {
        let at = match (beep_ended, self.tone) {
            (Some(end), _) => Some((end, true)),
            // A tone is playing: wait for its end.
            (None, Some(_)) => None,
            (None, None) => {
                let last = self.last_voiced_end.max(self.last_tone_end);
                let verdict_at = self.verdict.as_ref().map_or(0, AmdVerdict::at_ms);
                let quiet = !self.speaking() && now - last >= self.config.no_beep_wait_ms;
                let too_long = now - verdict_at >= self.config.max_message_wait_ms;
                (quiet || too_long).then_some((now, false))
            }
        };
        if let Some((at_ms, after_beep)) = at {
            self.ready = true;
            out.push(AmdAction::ReadyForMessage { at_ms, after_beep });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise-like "speech" frames (no tone in them).
    fn babble(seed: u32) -> Vec<i16> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..FRAME_SAMPLES)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) as i16) / 8
            })
            .collect()
    }

    fn tone(hz: f32, frame: usize) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (frame * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
                (9000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    /// What a script of (kind, ms) segments makes the detector do; `transcripts` answers
    /// each `Transcribe` in order (missing ones are left outstanding).
    struct Run {
        actions: Vec<(u64, AmdAction)>,
        detector: AmdDetector,
    }

    #[derive(Clone, Copy)]
    enum Seg {
        Silence(u64),
        Speech(u64),
        /// A tone the VAD also (wrongly) calls speech.
        Tone(f32, u64),
    }

    fn run(config: AmdConfig, script: &[Seg], transcripts: &[&str]) -> Run {
        let mut detector = AmdDetector::new(config);
        let mut actions = Vec::new();
        let mut answers = transcripts.iter();
        let mut frame = 0usize;
        for seg in script {
            let ms = match *seg {
                Seg::Silence(ms) | Seg::Speech(ms) | Seg::Tone(_, ms) => ms,
            };
            for _ in 0..ms / 20 {
                let (pcm, prob) = match *seg {
                    Seg::Silence(_) => (vec![0; FRAME_SAMPLES], 0.02),
                    Seg::Speech(_) => (babble(frame as u32), 0.95),
                    Seg::Tone(hz, _) => (tone(hz, frame), 0.9),
                };
                frame += 1;
                for a in detector.push_frame(&pcm, prob) {
                    let now = detector.now_ms();
                    if matches!(a, AmdAction::Transcribe { .. })
                        && let Some(text) = answers.next()
                    {
                        actions.push((now, a));
                        for b in detector.transcript(text) {
                            actions.push((now, b));
                        }
                    } else {
                        actions.push((now, a));
                    }
                }
            }
        }
        Run { actions, detector }
    }

    fn verdicts(r: &Run) -> Vec<AmdVerdict> {
        r.actions
            .iter()
            .filter_map(|(_, a)| match a {
                AmdAction::Verdict(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    fn readies(r: &Run) -> Vec<(u64, bool)> {
        r.actions
            .iter()
            .filter_map(|(_, a)| match a {
                AmdAction::ReadyForMessage { at_ms, after_beep } => Some((*at_ms, *after_beep)),
                _ => None,
            })
            .collect()
    }

    fn transcribes(r: &Run) -> Vec<(u64, usize)> {
        r.actions
            .iter()
            .filter_map(|(t, a)| match a {
                AmdAction::Transcribe { pcm } => Some((*t, pcm.len())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn short_hello_then_silence_is_a_human() {
        use Seg::*;
        let r = run(
            AmdConfig::default(),
            &[Silence(400), Speech(700), Silence(3000)],
            &["Hello?"],
        );
        let v = verdicts(&r);
        assert_eq!(v.len(), 1, "{v:?}");
        match &v[0] {
            AmdVerdict::Human { at_ms, reason } => {
                // Greeting ends at 1100 ms; 800 ms of silence later.
                assert_eq!(*at_ms, 1900);
                assert!(reason.contains("Hello?"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // One transcription, at the 300 ms pause, of the greeting plus 200 ms lead-in.
        assert_eq!(transcribes(&r), vec![(1400, (1400 - 200) * 8)]);
        assert!(readies(&r).is_empty());
        assert!(r.detector.is_done());
    }

    #[test]
    fn long_greeting_is_a_machine_and_the_message_waits_for_its_end() {
        use Seg::*;
        let r = run(
            AmdConfig::default(),
            &[
                Silence(300),
                Speech(1200),
                Silence(400),
                Speech(2000),
                Silence(4000),
            ],
            &["Hi, this is Sam.", "Hi, this is Sam. I'm out"],
        );
        let v = verdicts(&r);
        assert_eq!(v.len(), 1);
        assert!(
            matches!(&v[0], AmdVerdict::Machine { at_ms: 2800, reason } if reason.contains("greeting of 2500 ms")),
            "{v:?}"
        );
        // Greeting ends at 3900; no beep: ready 2000 ms later.
        assert_eq!(readies(&r), vec![(5900, false)]);
        assert!(r.detector.is_done());
    }

    #[test]
    fn machine_words_decide_before_the_length_rule() {
        use Seg::*;
        let r = run(
            AmdConfig::default(),
            &[Silence(200), Speech(1000), Silence(400), Speech(500)],
            &["Sorry, I can't take your call"],
        );
        let v = verdicts(&r);
        assert!(
            matches!(&v[..], [AmdVerdict::Machine { at_ms: 1500, reason }] if reason.contains("cant take your call")),
            "{v:?}"
        );
    }

    #[test]
    fn a_beep_is_a_machine_and_the_message_starts_when_it_ends() {
        use Seg::*;
        let r = run(
            AmdConfig::default(),
            &[
                Silence(300),
                Speech(1000),
                Silence(500),
                Tone(1000.0, 400),
                Silence(1000),
            ],
            &["Leave it"],
        );
        let v = verdicts(&r);
        // The tone starts at 1800 ms and is a beep after 100 ms.
        assert!(
            matches!(&v[..], [AmdVerdict::Machine { at_ms: 1900, reason }] if reason.contains("1000 Hz")),
            "{v:?}"
        );
        assert_eq!(readies(&r), vec![(2200, true)]);
        // The action itself comes once the end is confirmed.
        let at = r
            .actions
            .iter()
            .find_map(|(t, a)| matches!(a, AmdAction::ReadyForMessage { .. }).then_some(*t));
        assert_eq!(at, Some(2260));
    }

    #[test]
    fn beep_after_a_cue_verdict_sets_the_message_time() {
        use Seg::*;
        let r = run(
            AmdConfig::default(),
            &[
                Silence(200),
                Speech(1500),
                Silence(300),
                Speech(500),
                Silence(700),
                Tone(850.0, 200),
                Silence(500),
            ],
            &["Please leave a message after the tone"],
        );
        assert!(matches!(
            &verdicts(&r)[..],
            [AmdVerdict::Machine { at_ms: 1700, .. }]
        ));
        assert_eq!(readies(&r), vec![(3400, true)]);
    }

    #[test]
    fn tones_shorter_than_a_beep_are_ignored_and_never_speech() {
        use Seg::*;
        // A 60 ms blip in the middle of silence, which the VAD calls speech: neither a beep nor
        // the start of a greeting.
        let r = run(
            AmdConfig::default(),
            &[Silence(500), Tone(1400.0, 60), Silence(4000)],
            &[],
        );
        assert_eq!(verdicts(&r), vec![AmdVerdict::Unknown { at_ms: 3500 }]);
        assert!(transcribes(&r).is_empty());
    }

    #[test]
    fn silence_is_unknown_at_the_initial_silence_limit() {
        let r = run(AmdConfig::default(), &[Seg::Silence(6000)], &[]);
        assert_eq!(verdicts(&r), vec![AmdVerdict::Unknown { at_ms: 3500 }]);
        assert!(r.detector.is_done());
    }

    #[test]
    fn a_human_verdict_waits_for_the_outstanding_transcript() {
        use Seg::*;
        // No transcript is answered: the verdict waits transcript_wait_ms from the request.
        let r = run(
            AmdConfig::default(),
            &[Silence(200), Speech(1200), Silence(3000)],
            &[],
        );
        assert_eq!(transcribes(&r), vec![(1700, 1700 * 8)]);
        assert!(matches!(
            &verdicts(&r)[..],
            [AmdVerdict::Human { at_ms: 2700, .. }]
        ));
        // A greeting too short for machine words is not waited for.
        let r = run(
            AmdConfig::default(),
            &[Silence(200), Speech(600), Silence(3000)],
            &[],
        );
        assert_eq!(transcribes(&r), vec![(1100, 1100 * 8)]);
        assert!(matches!(
            &verdicts(&r)[..],
            [AmdVerdict::Human { at_ms: 1600, .. }]
        ));

        // Answered late, with machine words: a machine.
        let mut d = AmdDetector::new(AmdConfig::default());
        let mut frame = 0;
        let mut push = |d: &mut AmdDetector, ms: u64, speech: bool| {
            let mut out = Vec::new();
            for _ in 0..ms / 20 {
                let (pcm, p) = if speech {
                    (babble(frame), 0.9)
                } else {
                    (vec![0; FRAME_SAMPLES], 0.0)
                };
                frame += 1;
                out.extend(d.push_frame(&pcm, p));
            }
            out
        };
        push(&mut d, 200, false);
        push(&mut d, 1200, true);
        let asked = push(&mut d, 900, false);
        assert!(
            matches!(&asked[..], [AmdAction::Transcribe { .. }]),
            "{asked:?}"
        );
        assert!(d.verdict().is_none());
        let out = d.transcript("You have reached the voicemail of");
        assert!(matches!(
            &out[..],
            [AmdAction::Verdict(AmdVerdict::Machine { at_ms: 2300, .. })]
        ));
    }

    #[test]
    fn a_greeting_that_starts_late_is_unknown_at_the_deadline() {
        use Seg::*;
        let r = run(
            AmdConfig::default(),
            &[
                Silence(3000),
                Speech(1000),
                Silence(300),
                Speech(900),
                Silence(1000),
            ],
            &["Good", "Good morning"],
        );
        assert_eq!(verdicts(&r), vec![AmdVerdict::Unknown { at_ms: 5000 }]);
        // Nothing more after the verdict: no transcriptions, no ready.
        assert!(transcribes(&r).iter().all(|&(t, _)| t < 5000));
        assert!(readies(&r).is_empty());
    }

    #[test]
    fn at_the_deadline_a_greeting_followed_by_a_pause_is_a_human() {
        use Seg::*;
        // 2 s of answer from 2 s: needs 1400 ms of silence, but the deadline comes first.
        let r = run(
            AmdConfig::default(),
            &[Silence(2000), Speech(2000), Silence(3000)],
            &["Hello, Sam speaking, how can I help you"],
        );
        assert!(
            matches!(&verdicts(&r)[..], [AmdVerdict::Human { at_ms: 5000, reason }] if reason.starts_with("deadline")),
            "{:?}",
            verdicts(&r)
        );
    }

    #[test]
    fn no_beep_and_no_end_still_gives_a_message_time() {
        use Seg::*;
        let config = AmdConfig {
            max_message_wait_ms: 4000,
            ..AmdConfig::default()
        };
        let r = run(config, &[Speech(9000)], &[]);
        assert!(matches!(
            &verdicts(&r)[..],
            [AmdVerdict::Machine { at_ms: 2500, .. }]
        ));
        assert_eq!(readies(&r), vec![(6500, false)]);
    }
}
