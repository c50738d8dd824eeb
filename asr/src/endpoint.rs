//! End-of-turn detection: a sans-IO state machine over per-frame speech probabilities.
//!
//! Feed it one probability per VAD frame ([`Endpointer::push`]); it returns events. It knows
//! time only as "frames seen × frame length", so tests drive it with synthetic sequences.
//!
//! - Speech starts when the probability stays at or above `neg_threshold` for `min_speech_ms`
//!   after first crossing `threshold` (shorter blips are clicks or breaths, not a turn).
//! - Speech ends when the probability stays below `neg_threshold` for `min_silence_ms` (the
//!   hangover: a pause inside a sentence must not end the customer's turn).
//! - Reported segments are widened by `speech_pad_ms` on both sides (pre-roll), clamped to the
//!   stream, so the recogniser gets the soft onset and release of the words. A caller that
//!   buffers audio must keep at least [`Endpointer::lookback_ms`] of it before `SpeechStart`.

/// Tuning of the endpointer. All durations are in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointerConfig {
    /// Probability at which a frame counts as speech onset.
    pub threshold: f32,
    /// Probability below which a frame counts as silence (hysteresis; below `threshold`).
    pub neg_threshold: f32,
    /// Speech shorter than this is ignored.
    pub min_speech_ms: u32,
    /// Silence this long after speech ends the turn.
    pub min_silence_ms: u32,
    /// Padding added before and after each reported segment.
    pub speech_pad_ms: u32,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 160,
            min_silence_ms: 700,
            speech_pad_ms: 200,
        }
    }
}

/// What the endpointer saw. Times are milliseconds from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// Speech confirmed (`min_speech_ms` of it); `start_ms` is the padded onset. This is the
    /// barge-in signal.
    SpeechStart { start_ms: u64 },
    /// The turn ended; `[start_ms, end_ms)` is the padded speech segment.
    SpeechEnd { start_ms: u64, end_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Silence,
    /// Crossed `threshold` at `onset_ms`; not yet long enough to count.
    Onset {
        onset_ms: u64,
    },
    /// In speech since `onset_ms`; the last speech frame ended at `voice_end_ms`.
    Speech {
        onset_ms: u64,
        voice_end_ms: u64,
    },
}

/// The end-of-turn state machine. See the module docs.
#[derive(Debug, Clone)]
pub struct Endpointer {
    config: EndpointerConfig,
    frame_ms: u64,
    now_ms: u64,
    state: State,
}

impl Endpointer {
    /// `frame_ms` is the duration each probability covers (32 ms for Silero's windows).
    pub fn new(config: EndpointerConfig, frame_ms: u32) -> Self {
        Self {
            config,
            frame_ms: u64::from(frame_ms.max(1)),
            now_ms: 0,
            state: State::Silence,
        }
    }

    pub fn config(&self) -> &EndpointerConfig {
        &self.config
    }

    /// Milliseconds of stream seen so far.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Whether a turn is in progress (speech confirmed and not yet ended).
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// How much audio before `SpeechStart` the reported start can reach back.
    pub fn lookback_ms(&self) -> u64 {
        u64::from(self.config.min_speech_ms + self.config.speech_pad_ms) + self.frame_ms
    }

    /// Consumes the probability of the next frame.
    pub fn push(&mut self, prob: f32) -> Option<EndpointEvent> {
        let frame_start = self.now_ms;
        self.now_ms += self.frame_ms;
        let now = self.now_ms;
        let c = self.config;
        let voiced = prob >= c.neg_threshold;
        match self.state {
            State::Silence => {
                if prob >= c.threshold {
                    self.state = State::Onset {
                        onset_ms: frame_start,
                    };
                    return self.confirm_onset(frame_start);
                }
                None
            }
            State::Onset { onset_ms } => {
                if !voiced {
                    self.state = State::Silence;
                    return None;
                }
                self.confirm_onset(onset_ms)
            }
            State::Speech { onset_ms, .. } if voiced => {
                self.state = State::Speech {
                    onset_ms,
                    voice_end_ms: now,
                };
                None
            }
            State::Speech {
                onset_ms,
                voice_end_ms,
            } => {
                if now - voice_end_ms >= u64::from(c.min_silence_ms) {
                    self.state = State::Silence;
                    return Some(self.segment(onset_ms, voice_end_ms));
                }
                None
            }
        }
    }

    /// Ends the stream: a turn in progress ends now.
    pub fn finish(&mut self) -> Option<EndpointEvent> {
        let state = std::mem::replace(&mut self.state, State::Silence);
        match state {
            State::Speech {
                onset_ms,
                voice_end_ms,
            } => Some(self.segment(onset_ms, voice_end_ms)),
            State::Silence | State::Onset { .. } => None,
        }
    }

    /// Forgets everything, e.g. between turns of a call when the VAD is reset too.
    pub fn reset(&mut self) {
        self.now_ms = 0;
        self.state = State::Silence;
    }

    fn confirm_onset(&mut self, onset_ms: u64) -> Option<EndpointEvent> {
        if self.now_ms - onset_ms < u64::from(self.config.min_speech_ms) {
            return None;
        }
        self.state = State::Speech {
            onset_ms,
            voice_end_ms: self.now_ms,
        };
        Some(EndpointEvent::SpeechStart {
            start_ms: onset_ms.saturating_sub(u64::from(self.config.speech_pad_ms)),
        })
    }

    fn segment(&self, onset_ms: u64, voice_end_ms: u64) -> EndpointEvent {
        let pad = u64::from(self.config.speech_pad_ms);
        EndpointEvent::SpeechEnd {
            start_ms: onset_ms.saturating_sub(pad),
            end_ms: (voice_end_ms + pad).min(self.now_ms),
        }
    }
}

/// Runs an endpointer over a whole sequence of probabilities and returns the speech segments
/// `(start_ms, end_ms)`, including one still open at the end.
pub fn segments(config: EndpointerConfig, frame_ms: u32, probs: &[f32]) -> Vec<(u64, u64)> {
    let mut ep = Endpointer::new(config, frame_ms);
    let mut events: Vec<EndpointEvent> = probs.iter().filter_map(|&p| ep.push(p)).collect();
    events.extend(ep.finish());
    events
        .into_iter()
        .filter_map(|e| match e {
            EndpointEvent::SpeechEnd { start_ms, end_ms } => Some((start_ms, end_ms)),
            EndpointEvent::SpeechStart { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u32 = 32;

    fn config() -> EndpointerConfig {
        EndpointerConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 96,
            min_silence_ms: 320,
            speech_pad_ms: 64,
        }
    }

    /// `n` frames of probability `p`.
    fn run(ep: &mut Endpointer, p: f32, n: usize) -> Vec<EndpointEvent> {
        (0..n).filter_map(|_| ep.push(p)).collect()
    }

    #[test]
    fn start_then_end_of_turn_with_padding() {
        let mut ep = Endpointer::new(config(), FRAME);
        assert!(run(&mut ep, 0.1, 10).is_empty()); // 0..320 ms silence
        // Onset at 320 ms, confirmed after 96 ms (3 frames), reported padded by 64 ms.
        assert_eq!(run(&mut ep, 0.9, 2), vec![]);
        assert_eq!(
            run(&mut ep, 0.9, 1),
            vec![EndpointEvent::SpeechStart { start_ms: 256 }]
        );
        assert!(ep.in_speech());
        assert!(run(&mut ep, 0.9, 20).is_empty()); // speech until 320 + 23*32 = 1056 ms
        // 9 silent frames = 288 ms < 320 ms hangover: still in the turn.
        assert!(run(&mut ep, 0.05, 9).is_empty());
        assert_eq!(
            run(&mut ep, 0.05, 1),
            vec![EndpointEvent::SpeechEnd {
                start_ms: 256,
                end_ms: 1056 + 64
            }]
        );
        assert!(!ep.in_speech());
        assert_eq!(ep.finish(), None);
    }

    #[test]
    fn short_blips_are_not_speech() {
        let mut ep = Endpointer::new(config(), FRAME);
        for _ in 0..20 {
            assert!(run(&mut ep, 0.95, 2).is_empty()); // 64 ms < 96 ms
            assert!(run(&mut ep, 0.1, 3).is_empty());
        }
        assert_eq!(ep.finish(), None);
    }

    #[test]
    fn pause_shorter_than_hangover_keeps_one_turn() {
        let probs: Vec<f32> = [vec![0.9; 10], vec![0.1; 8], vec![0.9; 10], vec![0.0; 20]].concat();
        let segs = segments(config(), FRAME, &probs);
        assert_eq!(segs, vec![(0, 28 * 32 + 64)]);
    }

    #[test]
    fn long_pause_splits_turns() {
        let probs: Vec<f32> = [vec![0.9; 10], vec![0.1; 12], vec![0.9; 10], vec![0.0; 3]].concat();
        let segs = segments(config(), FRAME, &probs);
        // Second segment is still open at the end: closed by finish(), padding clamped to the stream.
        assert_eq!(segs, vec![(0, 320 + 64), (22 * 32 - 64, 32 * 32 + 64)]);
    }

    #[test]
    fn hysteresis_keeps_speech_between_thresholds() {
        let probs: Vec<f32> = [vec![0.9; 5], vec![0.4; 30], vec![0.0; 12]].concat();
        assert_eq!(segments(config(), FRAME, &probs), vec![(0, 35 * 32 + 64)]);
        // ...but 0.4 alone never starts speech.
        assert!(segments(config(), FRAME, &[0.4; 50]).is_empty());
    }

    #[test]
    fn onset_needs_continuity() {
        // A dip below neg_threshold during the onset window restarts the count.
        let probs: Vec<f32> = [vec![0.9, 0.9, 0.1], vec![0.9, 0.9, 0.9], vec![0.0; 12]].concat();
        assert_eq!(
            segments(config(), FRAME, &probs),
            vec![(3 * 32 - 64, 6 * 32 + 64)]
        );
    }

    #[test]
    fn segment_end_is_clamped_to_stream() {
        let segs = segments(config(), FRAME, &[0.9; 4]);
        assert_eq!(segs, vec![(0, 128)]);
    }
}
