//! Speech-to-text for telephone calls: WAV/G.711 input, resampling, Silero VAD with an
//! end-of-turn state machine, and Whisper (whisper.cpp) tuned for short utterances.
//!
//! Main types:
//! - [`Transcriber`]: Whisper loaded once; [`Transcriber::transcribe`] takes 16 kHz mono audio,
//!   [`Transcriber::transcribe_utterance`] trims it with the VAD first. The encoder window is
//!   cut to the utterance for speed, with guards that fall back to the full window.
//! - [`Vad`]: Silero VAD v5 (ONNX Runtime), one speech probability per 32 ms window, streaming.
//! - [`Endpointer`]: sans-IO state machine, probabilities in, `SpeechStart`/`SpeechEnd` out.
//! - [`TurnDetector`]: VAD + endpointer + buffer over a live stream of 20 ms frames; yields
//!   barge-in events and finished utterances at 16 kHz.
//! - [`read_wav`], [`decode_ulaw`]/[`decode_alaw`], [`resample`]: getting audio in.
//! - [`wer`]: word error rate with a text normaliser, for tests and benchmarks.
//!
//! Invariants: no model is fetched here, paths are given by the caller; ONNX Runtime is
//! initialised by the caller before a [`Vad`] is made; audio inside the crate is mono `f32`
//! in [-1, 1]; a `Vad` (recurrent state) belongs to one stream, a `Transcriber` is shared.
//!
//! ```no_run
//! # fn main() -> Result<(), asr::AsrError> {
//! use std::path::Path;
//! let whisper = asr::Transcriber::new(Path::new("ggml-tiny.en.bin"), Default::default())?;
//! let audio = asr::read_wav_16k(Path::new("call.wav"))?;
//! let text = whisper.transcribe(&audio, &asr::TranscribeOptions::default())?.text;
//! # Ok(()) }
//! ```

use std::path::PathBuf;

pub mod endpoint;
pub mod g711;
pub mod resample;
pub mod speech_set;
pub mod transcriber;
pub mod turn;
pub mod utterance;
pub mod vad;
pub mod wav;
pub mod wer;

pub use endpoint::{EndpointEvent, Endpointer, EndpointerConfig};
pub use g711::{alaw_to_f32, decode_alaw, decode_ulaw, encode_alaw, encode_ulaw, ulaw_to_f32};
pub use resample::resample;
pub use speech_set::{SpeechItem, SpeechSet};
pub use transcriber::{
    FULL_AUDIO_CTX, GuardPolicy, Pass, Rejection, Segment, Timings, TranscribeOptions, Transcriber,
    TranscriberOptions, Transcript, WHISPER_SAMPLE_RATE, WindowPolicy, transcript_words,
};
pub use turn::{TurnDetector, TurnEvent};
pub use vad::{VAD_FRAME_MS, Vad, VadModel, VadRate};
pub use wav::{Audio, G711Law, WavError, i16_to_f32, read_wav, read_wav_16k, write_g711_wav};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    /// An audio file that cannot be used; `reason` says why.
    #[error("{}: {reason}", path.display())]
    Audio { path: PathBuf, reason: WavError },
    #[error("whisper model {}: {message}", path.display())]
    WhisperModel { path: PathBuf, message: String },
    #[error("whisper: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
    #[error("VAD model {}: {message}", path.display())]
    VadModel { path: PathBuf, message: String },
    #[error("VAD: {0}")]
    Vad(String),
    #[error("resampling {from} Hz to {to} Hz: {message}")]
    Resample { from: u32, to: u32, message: String },
    #[error("{}:{line}: {reason}", path.display())]
    Manifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
