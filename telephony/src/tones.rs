//! Call-progress tone detection in 8 kHz early media (sans-IO): Special Information Tones with
//! their Telcordia class, fax CNG and CED, busy and congestion (reorder) cadences, ringback, and
//! "speech/other" (energy that is none of those tones, e.g. a recorded announcement).
//!
//! Feed linear PCM frames (normally 20 ms = 160 samples) with the time of their first sample to
//! [`ToneDetector::push`]; it returns the [`ToneEvent`]s that became certain with that frame.
//!
//! How it works: every 20 ms hop, the last 40 ms are measured with the Goertzel filter
//! ([`crate::goertzel::power`]) at each frequency of interest, each with its own block length
//! (256–320 samples) chosen so the frequency falls on a Goertzel bin; the fraction of the block's
//! energy ([`crate::goertzel::energy`]) at a frequency labels the hop (one tone, a dual tone,
//! silence, or "other"). Runs of equal labels (a one-hop glitch does not break a run) are matched
//! against cadences:
//!
//! | event | pattern |
//! |---|---|
//! | [`Tone::Sit`] | three adjacent segments in 900–1000, 1350–1450, 1750–1850 Hz, each 200–500 ms; class from 913.8/985.2 and 1370.6/1428.5 Hz and short (274 ms) / long (380 ms) segments |
//! | [`Tone::FaxCng`] | 1100 Hz burst of 350–800 ms (T.30: 0.5 s on, 3 s off) |
//! | [`Tone::FaxCed`] | 2100 Hz lasting 400 ms (reported while it goes on) |
//! | [`Tone::Busy`] | two bursts of 480+620 Hz (North America) or 425 Hz (Europe) of 280–700 ms, 250–750 ms apart |
//! | [`Tone::Congestion`] | the same tones at 150–280 ms on / 150–400 ms off (reorder, fast busy) |
//! | [`Tone::Ringback`] | a 440+480 Hz burst of 1.2–2.8 s, or a 425 Hz burst of 0.7–2.2 s |
//! | [`Tone::Speech`] | 200 ms of non-tonal energy above −38 dBm0 (at most one a second) |
//!
//! Limits: call-progress tones must be within about ±8 Hz of nominal (SIT segments ±50 Hz as
//! ITU-T E.180 allows, CNG ±38 Hz as T.30 allows, CED ±15 Hz) and above −42 dBm0 with about
//! 10 dB of signal-to-noise; other national tone plans (UK 400 Hz busy, 400+450 Hz ring) are not
//! recognised; timings are accurate to one hop (20 ms). A time jump of more than 40 ms between
//! frames (lost packets, silence suppression) is treated as silence.

use std::collections::VecDeque;

use crate::goertzel::{energy, power};

/// Sample rate the detector works at.
pub const SAMPLE_RATE: u32 = 8000;
/// Hop length: 20 ms.
const HOP: usize = 160;
/// Analysis window: 40 ms.
const WIN: usize = 320;
const HOP_MS: u64 = 20;
/// Hops a new label must last before it ends the current run.
const CONFIRM_HOPS: u32 = 2;

/// Mean square (full scale = 1.0) of a sine at `dbm0` in G.711 (0 dBm0 is 3.17 dB below a
/// full-scale sine).
fn dbm0(db: f32) -> f32 {
    0.241 * 10f32.powf(db / 10.0)
}

/// The class of a Special Information Tone (Telcordia GR-1162 / ANSI T1.401 coding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SitClass {
    /// IC: number changed or disconnected, operator intercept (low-low, short-short).
    Intercept,
    /// VC: vacant code, unassigned number (high-low, long-short).
    VacantCode,
    /// NC: no circuit / trunk blockage (high-high or low-low, long-long).
    NoCircuit,
    /// RO: reorder, equipment irregularity (high-low or low-high, short-long).
    Reorder,
    /// IO: ineffective other (low-high, long-short).
    IneffectiveOther,
    /// Reserved code (high-high, short-short).
    Reserved,
    /// A SIT whose frequencies are not the North American ones (ITU-T E.180 950/1400/1800 Hz, or
    /// off nominal): the call failed, reason unknown.
    Unclassified,
}

/// A detected call-progress signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    /// Special Information Tone.
    Sit(SitClass),
    /// Calling fax (1100 Hz CNG).
    FaxCng,
    /// Answering fax or modem (2100 Hz CED / ANS).
    FaxCed,
    /// Busy cadence.
    Busy,
    /// Congestion / reorder (fast busy) cadence.
    Congestion,
    /// One ringback burst.
    Ringback,
    /// Non-tonal energy: speech, music, an announcement.
    Speech,
}

/// A tone event: what, when it started, and when it became certain (ms, on the caller's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToneEvent {
    /// The signal.
    pub tone: Tone,
    /// Start of the pattern (first segment/burst).
    pub start_ms: u64,
    /// When it was recognised (end of the frame that completed it).
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SitFreq {
    Low,
    High,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Silence,
    Other,
    F425,
    Ring440480,
    Busy480620,
    Cng1100,
    Ced2100,
    Sit(u8, SitFreq),
}

impl Label {
    fn is_tone(self) -> bool {
        !matches!(self, Label::Silence | Label::Other)
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    label: Label,
    start: u64,
    end: u64,
}

impl Run {
    fn dur(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

// Frequencies measured, by index.
const F425: usize = 0;
const F440: usize = 1;
const F480: usize = 2;
const F620: usize = 3;
/// CNG bins cover the T.30 tolerance (1100 ± 38 Hz), CED bins 2100 ± 15 Hz.
const CNG: std::ops::Range<usize> = 4..9;
const CED: std::ops::Range<usize> = 9..12;
const SIT0: usize = 12;
const FREQS: [f32; 31] = [
    425.0, 440.0, 480.0, 620.0, // call progress
    1062.0, 1081.0, 1100.0, 1119.0, 1138.0, // fax CNG
    2085.0, 2100.0, 2115.0, // fax CED
    900.0, 913.8, 931.9, 950.0, 967.6, 985.2, 1000.0, // SIT segment 1
    1350.0, 1370.6, 1385.3, 1400.0, 1414.3, 1428.5, 1450.0, // SIT segment 2
    1750.0, 1776.7, 1800.0, 1825.0, 1850.0, // SIT segment 3
];
/// Index ranges of the SIT segment bins in [`FREQS`], and which bins are the NA low/high ones.
const SIT_GROUPS: [(usize, usize, usize, Option<usize>); 3] = [
    (SIT0, SIT0 + 7, SIT0 + 1, Some(SIT0 + 5)),
    (SIT0 + 7, SIT0 + 14, SIT0 + 8, Some(SIT0 + 12)),
    (SIT0 + 14, SIT0 + 19, SIT0 + 15, None),
];

const SINGLE_MIN: f32 = 0.6;
const DUAL_EACH_MIN: f32 = 0.2;
const DUAL_SUM_MIN: f32 = 0.6;

/// Streaming call-progress tone detector for one call's early media (8 kHz mono).
#[derive(Debug, Clone)]
pub struct ToneDetector {
    /// Goertzel block length per entry of [`FREQS`].
    block: Vec<usize>,
    window: Vec<i16>,
    pending: Vec<i16>,
    /// Time of sample 0 after the last resynchronisation.
    origin_ms: Option<u64>,
    samples_since_origin: u64,
    hops_since_origin: u64,
    cur: Option<Run>,
    cand: Option<(Label, u64, u32)>,
    cur_reported: bool,
    last_speech_ms: Option<u64>,
    history: VecDeque<Run>,
}

impl Default for ToneDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl ToneDetector {
    /// A detector for 8 kHz input.
    pub fn new() -> Self {
        let block = FREQS
            .iter()
            .map(|&f| {
                (256..=WIN)
                    .min_by(|&a, &b| bin_error(a, f).total_cmp(&bin_error(b, f)))
                    .unwrap_or(WIN)
            })
            .collect();
        ToneDetector {
            block,
            window: Vec::with_capacity(WIN + HOP),
            pending: Vec::with_capacity(2 * HOP),
            origin_ms: None,
            samples_since_origin: 0,
            hops_since_origin: 0,
            cur: None,
            cand: None,
            cur_reported: false,
            last_speech_ms: None,
            history: VecDeque::with_capacity(16),
        }
    }

    /// Feeds one frame of 8 kHz PCM whose first sample is at `at_ms`; returns the events it
    /// completed. Frames may have any length; a frame that goes back in time is ignored.
    pub fn push(&mut self, at_ms: u64, samples: &[i16]) -> Vec<ToneEvent> {
        let mut events = Vec::new();
        match self.origin_ms {
            None => self.resync(at_ms),
            Some(origin) => {
                let expected = origin + self.samples_since_origin / 8;
                if at_ms + 40 < expected {
                    return events;
                }
                if at_ms > expected + 40 {
                    // A gap: whatever ran before it ends where the audio stopped.
                    self.close_current(expected, &mut events);
                    self.resync(at_ms);
                }
            }
        }
        self.samples_since_origin += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= HOP {
            self.window.extend(self.pending.drain(..HOP));
            if self.window.len() > WIN {
                let extra = self.window.len() - WIN;
                self.window.drain(..extra);
            }
            let hop_start = self.origin_ms.unwrap_or(0) + self.hops_since_origin * HOP_MS;
            self.hops_since_origin += 1;
            if self.window.len() == WIN {
                let label = self.classify();
                self.on_hop(label, hop_start, &mut events);
            }
        }
        events
    }

    /// Ends the input (call answered or media stopped): closes the current run so that a pattern
    /// ending with it is reported.
    pub fn finish(&mut self) -> Vec<ToneEvent> {
        let mut events = Vec::new();
        let now = self.origin_ms.unwrap_or(0) + self.hops_since_origin * HOP_MS;
        self.close_current(now, &mut events);
        self.origin_ms = None;
        events
    }

    fn resync(&mut self, at_ms: u64) {
        self.origin_ms = Some(at_ms);
        self.samples_since_origin = 0;
        self.hops_since_origin = 0;
        self.window.clear();
        self.pending.clear();
        self.cur = None;
        self.cand = None;
    }

    fn ratio(&self, i: usize) -> f32 {
        let n = self.block[i];
        let x = &self.window[WIN - n..];
        let e = energy(x);
        if e <= 0.0 {
            return 0.0;
        }
        2.0 * power(x, SAMPLE_RATE, FREQS[i]) / e
    }

    fn classify(&self) -> Label {
        let e = energy(&self.window);
        if e < dbm0(-42.0) {
            return Label::Silence;
        }
        let r: Vec<f32> = (0..FREQS.len()).map(|i| self.ratio(i)).collect();
        let mut best = (0.0f32, Label::Other);
        let mut consider = |score: f32, label: Label| {
            if score > best.0 {
                best = (score, label);
            }
        };
        let dual = |a: f32, b: f32| {
            if a.min(b) >= DUAL_EACH_MIN && a + b >= DUAL_SUM_MIN {
                a + b
            } else {
                0.0
            }
        };
        consider(dual(r[F440], r[F480]), Label::Ring440480);
        consider(dual(r[F480], r[F620]), Label::Busy480620);
        let single = |x: f32| if x >= SINGLE_MIN { x } else { 0.0 };
        consider(single(r[F425]), Label::F425);
        let max = |range: std::ops::Range<usize>| r[range].iter().copied().fold(0.0, f32::max);
        consider(single(max(CNG)), Label::Cng1100);
        consider(single(max(CED)), Label::Ced2100);
        for (seg, &(lo, hi, low_bin, high_bin)) in SIT_GROUPS.iter().enumerate() {
            let Some((i, &x)) = r[lo..hi]
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
            else {
                continue;
            };
            let bin = lo + i;
            let freq = if bin == low_bin {
                SitFreq::Low
            } else if Some(bin) == high_bin {
                SitFreq::High
            } else {
                SitFreq::Off
            };
            consider(single(x), Label::Sit(seg as u8, freq));
        }
        if best.0 > 0.0 {
            best.1
        } else if e >= dbm0(-38.0) {
            Label::Other
        } else {
            Label::Silence
        }
    }

    fn on_hop(&mut self, label: Label, t: u64, events: &mut Vec<ToneEvent>) {
        match self.cur {
            None => self.start_run(label, t),
            Some(c) if c.label == label => self.cand = None,
            Some(_) => match &mut self.cand {
                Some((l, start, n)) if *l == label => {
                    *n += 1;
                    if *n >= CONFIRM_HOPS {
                        let start = *start;
                        self.close_current(start, events);
                        self.start_run(label, start);
                    }
                }
                _ => self.cand = Some((label, t, 1)),
            },
        }
        // Patterns recognised while the run goes on.
        let now = t + HOP_MS;
        if let Some(c) = self.cur
            && !self.cur_reported
        {
            let dur = now.saturating_sub(c.start);
            match c.label {
                Label::Ced2100 if dur >= 400 => {
                    self.cur_reported = true;
                    events.push(ToneEvent {
                        tone: Tone::FaxCed,
                        start_ms: c.start,
                        at_ms: now,
                    });
                }
                Label::Other
                    if dur >= 200 && self.last_speech_ms.is_none_or(|l| now >= l + 1000) =>
                {
                    self.cur_reported = true;
                    self.last_speech_ms = Some(now);
                    events.push(ToneEvent {
                        tone: Tone::Speech,
                        start_ms: c.start,
                        at_ms: now,
                    });
                }
                _ => {}
            }
        }
    }

    fn start_run(&mut self, label: Label, start: u64) {
        self.cur = Some(Run {
            label,
            start,
            end: start,
        });
        self.cand = None;
        self.cur_reported = false;
    }

    fn close_current(&mut self, end: u64, events: &mut Vec<ToneEvent>) {
        let Some(mut run) = self.cur.take() else {
            return;
        };
        self.cand = None;
        run.end = end.max(run.start);
        self.on_closed(&run, end, events);
        if self.history.len() == 16 {
            self.history.pop_front();
        }
        self.history.push_back(run);
    }

    /// The closed run before `skip` others of the history, passing over non-tone runs of at most
    /// `max_gap` ms in total; returns it with the gap.
    fn previous_tone(&self, before: &Run, max_gap: u64) -> Option<(Run, u64)> {
        for r in self.history.iter().rev() {
            if r.label.is_tone() {
                let gap = before.start.saturating_sub(r.end);
                return (gap <= max_gap).then_some((*r, gap));
            }
            if before.start.saturating_sub(r.start) > max_gap {
                return None;
            }
        }
        None
    }

    fn on_closed(&self, run: &Run, now: u64, events: &mut Vec<ToneEvent>) {
        let d = run.dur();
        let mut emit = |tone, start_ms| {
            events.push(ToneEvent {
                tone,
                start_ms,
                at_ms: now,
            })
        };
        match run.label {
            Label::Cng1100 if (350..=800).contains(&d) => emit(Tone::FaxCng, run.start),
            Label::F425 | Label::Busy480620 => {
                let busy_on = 280..=700;
                let cong_on = 150..280;
                if let Some((prev, gap)) = self.previous_tone(run, 750)
                    && prev.label == run.label
                {
                    if busy_on.contains(&d) && busy_on.contains(&prev.dur()) && gap >= 250 {
                        emit(Tone::Busy, prev.start);
                    } else if cong_on.contains(&d)
                        && cong_on.contains(&prev.dur())
                        && (150..=400).contains(&gap)
                    {
                        emit(Tone::Congestion, prev.start);
                    }
                }
                if run.label == Label::F425 && (700..=2200).contains(&d) {
                    emit(Tone::Ringback, run.start);
                }
            }
            Label::Ring440480 if (1200..=2800).contains(&d) => emit(Tone::Ringback, run.start),
            Label::Sit(2, f3) if (200..=500).contains(&d) => {
                let seg = |r: &Run, n: u8| match r.label {
                    Label::Sit(s, f) if s == n && (200..=500).contains(&r.dur()) => Some(f),
                    _ => None,
                };
                let Some((r2, _)) = self.previous_tone(run, 80) else {
                    return;
                };
                let Some(f2) = seg(&r2, 1) else { return };
                // Look behind the second segment for the first.
                let h: Vec<Run> = self
                    .history
                    .iter()
                    .copied()
                    .filter(|r| r.end <= r2.start)
                    .collect();
                let Some(r1) = h.iter().rev().find(|r| r.label.is_tone()).copied() else {
                    return;
                };
                if r2.start.saturating_sub(r1.end) > 80 {
                    return;
                }
                let Some(f1) = seg(&r1, 0) else { return };
                let class = sit_class(f1, r1.dur(), f2, r2.dur(), f3);
                emit(Tone::Sit(class), r1.start);
            }
            _ => {}
        }
    }
}

/// Distance (in bins) of `freq` from the nearest Goertzel bin centre for block length `n`.
fn bin_error(n: usize, freq: f32) -> f32 {
    let k = n as f32 * freq / SAMPLE_RATE as f32;
    (k - k.round()).abs()
}

/// Telcordia SIT coding: (segment 1 frequency, duration), (segment 2 frequency, duration).
fn sit_class(f1: SitFreq, d1: u64, f2: SitFreq, d2: u64, f3: SitFreq) -> SitClass {
    use SitFreq::{High as H, Low as L};
    let long = |d: u64| d >= 327;
    if f3 != L {
        return SitClass::Unclassified;
    }
    match ((f1, long(d1)), (f2, long(d2))) {
        ((L, false), (L, false)) => SitClass::Intercept,
        ((H, true), (L, false)) => SitClass::VacantCode,
        ((H, true), (H, true)) | ((L, true), (L, true)) => SitClass::NoCircuit,
        ((H, false), (L, true)) | ((L, false), (H, true)) => SitClass::Reorder,
        ((L, true), (H, false)) => SitClass::IneffectiveOther,
        ((H, false), (H, false)) => SitClass::Reserved,
        _ => SitClass::Unclassified,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::f32::consts::PI;

    /// Deterministic white-ish noise (xorshift) at `db` dBm0.
    struct Noise(u32);
    impl Noise {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            (self.0 as f32 / u32::MAX as f32) * 2.0 - 1.0
        }
    }

    /// Signal builder: segments of (frequencies, ms), each frequency at `level` dBm0, plus noise.
    struct Synth {
        out: Vec<f32>,
        phase: Vec<f32>,
    }

    impl Synth {
        fn new() -> Self {
            Synth {
                out: Vec::new(),
                phase: vec![0.0; 4],
            }
        }
        fn tone(&mut self, freqs: &[f32], ms: u64, level_dbm0: f32) -> &mut Self {
            // Peak amplitude of a sine with mean square dbm0(level).
            let amp = (2.0 * dbm0(level_dbm0)).sqrt();
            for _ in 0..ms * 8 {
                let mut v = 0.0;
                for (i, f) in freqs.iter().enumerate() {
                    v += amp * self.phase[i].sin();
                    self.phase[i] = (self.phase[i] + 2.0 * PI * f / 8000.0) % (2.0 * PI);
                }
                self.out.push(v);
            }
            self
        }
        fn silence(&mut self, ms: u64) -> &mut Self {
            self.tone(&[], ms, 0.0)
        }
        fn pcm(&self, noise_dbm0: f32, seed: u32) -> Vec<i16> {
            let mut n = Noise(seed.max(1));
            // Uniform noise in [-a, a] has mean square a²/3.
            let a = (3.0 * dbm0(noise_dbm0)).sqrt();
            self.out
                .iter()
                .map(|&v| ((v + a * n.next()) * 32767.0).clamp(-32768.0, 32767.0) as i16)
                .collect()
        }
    }

    fn run(pcm: &[i16]) -> Vec<ToneEvent> {
        let mut d = ToneDetector::new();
        let mut ev = Vec::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            ev.extend(d.push(1000 + i as u64 * 20, frame));
        }
        ev.extend(d.finish());
        ev
    }

    fn tones(ev: &[ToneEvent]) -> Vec<Tone> {
        ev.iter()
            .map(|e| e.tone)
            .filter(|t| *t != Tone::Speech)
            .collect()
    }

    const SIT_LO1: f32 = 913.8;
    const SIT_HI1: f32 = 985.2;
    const SIT_LO2: f32 = 1370.6;
    const SIT_HI2: f32 = 1428.5;
    const SIT3: f32 = 1776.7;

    fn sit(f1: f32, d1: u64, f2: f32, d2: u64) -> Synth {
        let mut s = Synth::new();
        s.silence(300)
            .tone(&[f1], d1, -24.0)
            .tone(&[f2], d2, -24.0)
            .tone(&[SIT3], 380, -24.0)
            .silence(400);
        s
    }

    #[test]
    fn sit_classes_are_told_apart() {
        let cases = [
            (SIT_LO1, 274, SIT_LO2, 274, SitClass::Intercept),
            (SIT_HI1, 380, SIT_LO2, 274, SitClass::VacantCode),
            (SIT_HI1, 380, SIT_HI2, 380, SitClass::NoCircuit),
            (SIT_LO1, 380, SIT_LO2, 380, SitClass::NoCircuit),
            (SIT_LO1, 274, SIT_HI2, 380, SitClass::Reorder),
            (SIT_HI1, 274, SIT_LO2, 380, SitClass::Reorder),
            (SIT_LO1, 380, SIT_HI2, 274, SitClass::IneffectiveOther),
            (SIT_HI1, 274, SIT_HI2, 274, SitClass::Reserved),
        ];
        for (seed, (f1, d1, f2, d2, want)) in cases.into_iter().enumerate() {
            let pcm = sit(f1, d1, f2, d2).pcm(-50.0, seed as u32 + 7);
            let ev = run(&pcm);
            assert_eq!(tones(&ev), [Tone::Sit(want)], "{f1}/{d1} {f2}/{d2}: {ev:?}");
            // The pattern starts with the first segment (after 300 ms of silence, ±1 hop).
            assert!(ev[0].start_ms.abs_diff(1300) <= 20, "{ev:?}");
        }
    }

    #[test]
    fn itu_sit_is_unclassified() {
        let mut s = Synth::new();
        s.silence(200)
            .tone(&[950.0], 330, -24.0)
            .silence(20)
            .tone(&[1400.0], 330, -24.0)
            .silence(20)
            .tone(&[1800.0], 330, -24.0)
            .silence(1000);
        let ev = run(&s.pcm(-45.0, 3));
        assert_eq!(tones(&ev), [Tone::Sit(SitClass::Unclassified)], "{ev:?}");
    }

    #[test]
    fn sit_followed_by_announcement() {
        // Vacant code then a (synthetic, non-tonal) announcement straight after the third tone.
        let mut pcm = sit(SIT_HI1, 380, SIT_LO2, 274).pcm(-50.0, 11);
        pcm.truncate(pcm.len() - 400 * 8);
        pcm.extend(speech_like(2000, 99));
        let ev = run(&pcm);
        assert_eq!(tones(&ev), [Tone::Sit(SitClass::VacantCode)], "{ev:?}");
        assert!(ev.iter().any(|e| e.tone == Tone::Speech));
    }

    /// Broadband bursts shaped like syllables (noise with an envelope): non-tonal energy.
    fn speech_like(ms: u64, seed: u32) -> Vec<i16> {
        let mut n = Noise(seed);
        (0..ms * 8)
            .map(|i| {
                let env = (PI * (i % 2400) as f32 / 2400.0).sin();
                (n.next() * env * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn fax_cng_and_ced() {
        let mut s = Synth::new();
        s.silence(500)
            .tone(&[1100.0], 500, -20.0)
            .silence(3000)
            .tone(&[1100.0], 500, -20.0)
            .silence(500);
        let ev = run(&s.pcm(-50.0, 5));
        assert_eq!(tones(&ev), [Tone::FaxCng, Tone::FaxCng], "{ev:?}");
        assert!(ev[1].start_ms.abs_diff(1000 + 4000) <= 20);

        let mut s = Synth::new();
        s.silence(200).tone(&[2100.0], 3000, -15.0).silence(200);
        let ev = run(&s.pcm(-50.0, 6));
        assert_eq!(tones(&ev), [Tone::FaxCed], "{ev:?}");
        // Reported while still on, about 400 ms in.
        assert!(ev[0].at_ms < 1200 + 500, "{ev:?}");
    }

    #[test]
    fn busy_and_congestion_cadences() {
        // North American busy: 480+620 Hz, 0.5 s on / 0.5 s off.
        let mut s = Synth::new();
        s.silence(100);
        for _ in 0..3 {
            s.tone(&[480.0, 620.0], 500, -24.0).silence(500);
        }
        let ev = run(&s.pcm(-50.0, 8));
        let t = tones(&ev);
        assert!(
            !t.is_empty() && t.iter().all(|t| *t == Tone::Busy),
            "{ev:?}"
        );
        // Known after the second burst: 100 + 500 + 500 + 500 ms (+ confirmation).
        assert!(ev[0].at_ms <= 1000 + 1600 + 60, "{ev:?}");

        // European busy: 425 Hz, 0.5/0.5 at a lower level with more noise.
        let mut s = Synth::new();
        for _ in 0..3 {
            s.tone(&[425.0], 480, -28.0).silence(480);
        }
        let ev = run(&s.pcm(-45.0, 9));
        let t = tones(&ev);
        assert!(
            t.contains(&Tone::Busy) && t.iter().all(|t| *t == Tone::Busy),
            "{ev:?}"
        );

        // Reorder: 480+620 Hz at 0.25/0.25.
        let mut s = Synth::new();
        for _ in 0..4 {
            s.tone(&[480.0, 620.0], 250, -24.0).silence(250);
        }
        let t = tones(&run(&s.pcm(-50.0, 10)));
        assert!(
            t.contains(&Tone::Congestion) && !t.contains(&Tone::Busy),
            "{t:?}"
        );
    }

    #[test]
    fn ringback_north_american_and_european() {
        let mut s = Synth::new();
        s.silence(300)
            .tone(&[440.0, 480.0], 2000, -19.0)
            .silence(4000)
            .tone(&[440.0, 480.0], 2000, -19.0)
            .silence(500);
        let ev = run(&s.pcm(-50.0, 12));
        assert_eq!(tones(&ev), [Tone::Ringback, Tone::Ringback], "{ev:?}");
        assert!(ev[0].start_ms.abs_diff(1300) <= 40);

        let mut s = Synth::new();
        s.tone(&[425.0], 1000, -20.0)
            .silence(4000)
            .tone(&[425.0], 1000, -20.0)
            .silence(300);
        let ev = run(&s.pcm(-48.0, 13));
        assert_eq!(tones(&ev), [Tone::Ringback, Tone::Ringback], "{ev:?}");

        // Continuous 425 Hz (dial tone) is neither ringback nor busy.
        let mut s = Synth::new();
        s.tone(&[425.0], 5000, -20.0).silence(300);
        assert_eq!(tones(&run(&s.pcm(-48.0, 14))), []);
    }

    #[test]
    fn silence_and_noise_give_nothing() {
        let mut s = Synth::new();
        s.silence(5000);
        assert_eq!(run(&s.pcm(-50.0, 15)), []);
        assert_eq!(run(&vec![0; 40000]), []);
    }

    #[test]
    fn time_gaps_and_odd_frames_are_tolerated() {
        let pcm = sit(SIT_LO1, 274, SIT_LO2, 274).pcm(-50.0, 16);
        let mut d = ToneDetector::new();
        let mut ev = Vec::new();
        // 10 ms frames, one duplicate (time going back) thrown in.
        for (i, frame) in pcm.chunks(80).enumerate() {
            ev.extend(d.push(i as u64 * 10, frame));
            if i == 5 {
                ev.extend(d.push(0, frame));
            }
        }
        ev.extend(d.finish());
        assert_eq!(tones(&ev), [Tone::Sit(SitClass::Intercept)]);
        // A SIT cut by a 500 ms hole is not a SIT.
        let mut d = ToneDetector::new();
        let mut ev = Vec::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            let t = i as u64 * 20 + if i > 30 { 500 } else { 0 };
            ev.extend(d.push(t, frame));
        }
        ev.extend(d.finish());
        assert_eq!(tones(&ev), []);
        // Empty and tiny frames do nothing harmful.
        let mut d = ToneDetector::new();
        assert!(d.push(0, &[]).is_empty());
        assert!(d.push(0, &[1, 2, 3]).is_empty());
    }
    fn prompts_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/speech/asterisk-prompts-8k/wav")
    }

    fn read_wav(path: &std::path::Path) -> Vec<i16> {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (8000, 1, 16)
        );
        r.samples::<i16>().map(Result::unwrap).collect()
    }

    fn wavs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                wavs(&p, out);
            } else if p.extension().is_some_and(|x| x == "wav") {
                out.push(p);
            }
        }
    }

    #[test]
    fn real_speech_raises_no_tone_events() {
        let mut files = Vec::new();
        wavs(&prompts_dir(), &mut files);
        files.sort();
        assert!(files.len() > 200, "{} prompts", files.len());
        let (mut with_speech, mut seconds) = (0, 0.0);
        for f in &files {
            let pcm = read_wav(f);
            seconds += pcm.len() as f32 / 8000.0;
            let ev = run(&pcm);
            assert_eq!(tones(&ev), [], "{}: {ev:?}", f.display());
            if pcm.len() >= 8000 && ev.iter().any(|e| e.tone == Tone::Speech) {
                with_speech += 1;
            }
        }
        // Speech is seen in (nearly) every prompt of a second or more.
        let long = files.iter().filter(|f| read_wav(f).len() >= 8000).count();
        assert!(with_speech * 100 >= long * 95, "{with_speech}/{long}");
        assert!(seconds > 300.0, "{seconds} s of speech");
    }

    #[test]
    fn sit_before_a_real_announcement() {
        // What a carrier plays for a disconnected number: intercept SIT, then the announcement.
        let mut pcm = sit(SIT_LO1, 274, SIT_LO2, 274).pcm(-50.0, 21);
        pcm.truncate(pcm.len() - 200 * 8);
        pcm.extend(read_wav(&prompts_dir().join("ss-noservice.wav")));
        let ev = run(&pcm);
        assert_eq!(tones(&ev), [Tone::Sit(SitClass::Intercept)], "{ev:?}");
        assert!(
            ev.iter().filter(|e| e.tone == Tone::Speech).count() >= 2,
            "{ev:?}"
        );
    }

    #[test]
    fn tones_survive_stronger_noise() {
        // -24 dBm0 segments over -40 dBm0 noise (16 dB SNR).
        let ev = run(&sit(SIT_HI1, 380, SIT_LO2, 274).pcm(-40.0, 31));
        assert_eq!(tones(&ev), [Tone::Sit(SitClass::VacantCode)], "{ev:?}");
        let mut s = Synth::new();
        for _ in 0..3 {
            s.tone(&[480.0, 620.0], 500, -24.0).silence(500);
        }
        let ev = run(&s.pcm(-40.0, 32));
        assert!(tones(&ev).contains(&Tone::Busy), "{ev:?}");
    }

    #[test]
    fn off_nominal_frequencies_within_tolerance() {
        // SIT segments 5 Hz high still classify; a CNG 30 Hz off (T.30 allows 38) is still CNG.
        let mut s = Synth::new();
        s.silence(300)
            .tone(&[SIT_HI1 + 5.0], 380, -30.0)
            .tone(&[SIT_LO2 + 5.0], 274, -30.0)
            .tone(&[SIT3 + 5.0], 380, -30.0)
            .silence(400);
        let ev = run(&s.pcm(-45.0, 41));
        assert_eq!(tones(&ev), [Tone::Sit(SitClass::VacantCode)], "{ev:?}");
        let mut s = Synth::new();
        s.silence(300).tone(&[1130.0], 500, -25.0).silence(1000);
        assert_eq!(tones(&run(&s.pcm(-45.0, 42))), [Tone::FaxCng]);
        // But 1250 Hz is not CNG.
        let mut s = Synth::new();
        s.silence(300).tone(&[1250.0], 500, -25.0).silence(1000);
        assert_eq!(tones(&run(&s.pcm(-45.0, 43))), []);
    }
}
