//! Where endpointing meets recognition: trim an utterance to its speech, then transcribe.

use std::time::{Duration, Instant};

use crate::AsrError;
use crate::endpoint::EndpointerConfig;
use crate::transcriber::{TranscribeOptions, Transcriber, Transcript, WHISPER_SAMPLE_RATE};
use crate::vad::{Vad, VadRate};

/// Endpointer settings for trimming a finished utterance: short pauses and short words count,
/// and a quarter second of padding keeps soft onsets ("f", "h") and releases.
pub fn trim_config() -> EndpointerConfig {
    EndpointerConfig {
        min_speech_ms: 64,
        min_silence_ms: 300,
        speech_pad_ms: 250,
        ..EndpointerConfig::default()
    }
}

/// The span `[start, end)` in samples from the first speech to the last, or `None` when the VAD
/// hears no speech at all. `vad` must run at 16 kHz.
pub fn speech_span(vad: &mut Vad, audio: &[f32]) -> Result<Option<(usize, usize)>, AsrError> {
    if vad.rate() != VadRate::Hz16000 {
        return Err(AsrError::InvalidInput(
            "utterance trimming needs a 16 kHz VAD".into(),
        ));
    }
    let segments = vad.speech_segments(audio, trim_config())?;
    let per_ms = WHISPER_SAMPLE_RATE as usize / 1000;
    Ok(match (segments.first(), segments.last()) {
        (Some(&(start, _)), Some(&(_, end))) => Some((
            (start as usize * per_ms).min(audio.len()),
            (end as usize * per_ms).min(audio.len()),
        )),
        _ => None,
    })
}

impl Transcriber {
    /// Trims leading and trailing non-speech with the VAD, then transcribes what is left (with
    /// the window cut to it). Audio without speech gives an empty transcript without running
    /// Whisper, which would otherwise invent words for silence and noise.
    pub fn transcribe_utterance(
        &self,
        audio: &[f32],
        vad: &mut Vad,
        options: &TranscribeOptions,
    ) -> Result<Transcript, AsrError> {
        let started = Instant::now();
        let span = speech_span(vad, audio)?;
        let vad_time = started.elapsed();
        let mut transcript = match span {
            Some((start, end)) if end > start => self.transcribe(&audio[start..end], options)?,
            _ => Transcript::default(),
        };
        transcript.timings.vad = vad_time;
        transcript.timings.total = started.elapsed();
        transcript.timings.audio =
            Duration::from_secs_f64(audio.len() as f64 / f64::from(WHISPER_SAMPLE_RATE));
        Ok(transcript)
    }
}
