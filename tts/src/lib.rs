//! tts: callbot's speech synthesis — bank text in, telephony audio out, offline on CPU.
//!
//! - [`normalize`] turns bank text into speakable words (money, dates, times, card and account
//!   numbers digit by digit, abbreviations); [`speak_money`], [`speak_digits`], [`speak_date`] are
//!   the same rules for flow templates.
//! - [`Voice`] is a Piper voice (VITS graph in ONNX) run through our own `ort` session, phonemised
//!   by espeak-ng (espeak-rs); [`Voice::synthesize_stream`] yields audio sentence by sentence.
//! - [`Audio`] holds mono f32 samples; [`Audio::resample`] (rubato) gives 8 kHz for telephony.
//! - [`PhraseCache`] replays phrases rendered before, keyed by a SHA-256 of text, voice and rate.
//! - [`install_espeak_ng_data`] writes the espeak-ng data embedded in this library.
//!
//! Invariants: no network access; espeak-ng is used under one process-wide lock and one data
//! folder; the only `unsafe` is the one audited `set_var` in `phonemes.rs` (espeak-rs offers no
//! other way to pass its data path).

mod audio;
mod cache;
mod espeak_data;
mod normalize;
mod phonemes;
mod voice;

use std::path::{Path, PathBuf};

pub use audio::{Audio, OutputRate, TELEPHONY_RATE};
pub use cache::{CacheStats, PhraseCache, PhraseKey};
pub use espeak_data::{embedded_espeak_ng_files, install_espeak_ng_data};
pub use normalize::{
    Currency, cardinal, decimal, normalize, ordinal, speak_date, speak_digits, speak_money,
    speak_money_cents, speak_time, speak_year,
};
/// The ONNX Runtime environment [`Voice::load`] creates its session in.
pub use ort::environment::Environment as OrtEnvironment;
pub use voice::{SpeechStream, SynthesisParams, Voice, VoiceOptions};

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("voice model not found at {0}; run `callbot models fetch`")]
    ModelMissing(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("voice config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("voice model {}: {message}", path.display())]
    Onnx { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error(
        "espeak-ng data missing or incomplete at {0} (no phontab/en_dict); run `callbot models fetch`"
    )]
    EspeakDataMissing(PathBuf),
    #[error("espeak-ng data folder must be named `espeak-ng-data`: {0}")]
    EspeakDataName(PathBuf),
    #[error(
        "espeak-ng already uses {first}; one process cannot switch to {requested}",
        first = first.display(),
        requested = requested.display()
    )]
    EspeakDataConflict { first: PathBuf, requested: PathBuf },
    #[error("espeak-ng used before a Voice was loaded")]
    EspeakNotInitialised,
    #[error("phonemisation failed: {0}")]
    Phonemize(String),
    #[error("resampling failed: {0}")]
    Resample(String),
    #[error("audio at {0} Hz cannot be joined with audio at {1} Hz")]
    RateMismatch(u32, u32),
    #[error("WAV {}: {message}", path.display())]
    Wav { path: PathBuf, message: String },
    #[error("a thread panicked while holding a synthesis lock")]
    Poisoned,
}

impl TtsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> TtsError {
        TtsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
