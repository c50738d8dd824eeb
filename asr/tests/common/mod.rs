//! Shared helpers for the integration tests: the real models (a missing model fails the test,
//! it never skips) and the shared speech sets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::OnceLock;

use asr::{Transcriber, TranscriberOptions, Vad, VadRate};
use callbot_models::ModelsDir;

pub fn speech_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/speech"
    ))
}

pub fn models() -> ModelsDir {
    ModelsDir::resolve(None)
}

/// One Whisper per test binary, shared by its tests (they run in parallel threads).
pub fn transcriber() -> &'static Transcriber {
    static T: OnceLock<Transcriber> = OnceLock::new();
    T.get_or_init(|| {
        let path = models().whisper_ggml();
        // One thread each: the test harness already runs tests in parallel on the 2 cores.
        let options = TranscriberOptions {
            threads: 1,
            ..Default::default()
        };
        Transcriber::new(&path, options)
            .unwrap_or_else(|e| panic!("whisper model required for this test: {e}"))
    })
}

/// A fresh VAD (each stream needs its own state).
pub fn vad(rate: VadRate) -> Vad {
    let models = models();
    let env = callbot_models::onnxruntime_environment(&models)
        .unwrap_or_else(|e| panic!("ONNX Runtime required for this test: {e}"));
    Vad::new(&env, &models.silero_vad(), rate)
        .unwrap_or_else(|e| panic!("Silero VAD required for this test: {e}"))
}
