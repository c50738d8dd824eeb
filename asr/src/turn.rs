//! A caller's turns from a live stream: 20 ms frames in (e.g. decoded RTP at 8 kHz), speech
//! start (for barge-in) and finished utterances at 16 kHz (for [`crate::Transcriber`]) out.
//!
//! Composes [`Vad`] and [`Endpointer`] with an audio buffer that keeps only what a future
//! utterance can reach back to while nobody speaks, so memory stays bounded on long calls.

use crate::endpoint::{EndpointEvent, Endpointer, EndpointerConfig};
use crate::transcriber::WHISPER_SAMPLE_RATE;
use crate::vad::{VAD_FRAME_MS, Vad};
use crate::{AsrError, resample};

/// What happened in the stream. Times are milliseconds from its start.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// The caller started speaking (stop the bot's audio).
    SpeechStarted { start_ms: u64 },
    /// The caller's turn ended; `audio` is the padded utterance, mono 16 kHz.
    Utterance {
        start_ms: u64,
        end_ms: u64,
        audio: Vec<f32>,
    },
}

/// Turn detection for one stream. See the module docs.
#[derive(Debug)]
pub struct TurnDetector {
    vad: Vad,
    endpointer: Endpointer,
    /// Samples from absolute sample index `buffer_start` on.
    buffer: Vec<f32>,
    buffer_start: u64,
}

impl TurnDetector {
    pub fn new(vad: Vad, config: EndpointerConfig) -> Self {
        Self {
            vad,
            endpointer: Endpointer::new(config, VAD_FRAME_MS),
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }

    /// Consumes samples (any length, at the VAD's rate, in [-1, 1]).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<TurnEvent>, AsrError> {
        self.buffer.extend_from_slice(samples);
        let mut events = Vec::new();
        for prob in self.vad.push(samples)? {
            match self.endpointer.push(prob) {
                Some(EndpointEvent::SpeechStart { start_ms }) => {
                    events.push(TurnEvent::SpeechStarted { start_ms });
                }
                Some(EndpointEvent::SpeechEnd { start_ms, end_ms }) => {
                    events.push(self.utterance(start_ms, end_ms)?);
                }
                None => {}
            }
        }
        if !self.endpointer.in_speech() {
            let keep_ms = self.endpointer.lookback_ms() + u64::from(VAD_FRAME_MS);
            let now = self.ms_to_sample(self.endpointer.now_ms());
            self.discard_before(now.saturating_sub(self.ms_to_sample(keep_ms)));
        }
        Ok(events)
    }

    /// Ends the stream: a turn in progress becomes an utterance.
    pub fn finish(&mut self) -> Result<Option<TurnEvent>, AsrError> {
        match self.endpointer.finish() {
            Some(EndpointEvent::SpeechEnd { start_ms, end_ms }) => {
                self.utterance(start_ms, end_ms).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn utterance(&mut self, start_ms: u64, end_ms: u64) -> Result<TurnEvent, AsrError> {
        let start = self.ms_to_sample(start_ms).max(self.buffer_start);
        let end = self.ms_to_sample(end_ms).max(start);
        let from = (start - self.buffer_start) as usize;
        let to = ((end - self.buffer_start) as usize).min(self.buffer.len());
        let audio = resample(
            &self.buffer[from.min(to)..to],
            self.vad.rate().hz(),
            WHISPER_SAMPLE_RATE,
        )?;
        self.discard_before(end);
        Ok(TurnEvent::Utterance {
            start_ms,
            end_ms,
            audio,
        })
    }

    fn discard_before(&mut self, sample: u64) {
        if sample > self.buffer_start {
            let n = ((sample - self.buffer_start) as usize).min(self.buffer.len());
            self.buffer.drain(..n);
            self.buffer_start += n as u64;
        }
    }

    fn ms_to_sample(&self, ms: u64) -> u64 {
        ms * u64::from(self.vad.rate().hz()) / 1000
    }
}
