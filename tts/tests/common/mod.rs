//! Loading the real voice for integration tests. A missing model is a test failure, not a skip.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use callbot_models::ModelsDir;
use tts::{Voice, VoiceOptions};

/// The espeak-ng data installed from this build into the test target folder, so tests do not
/// write into the shared models directory.
pub fn espeak_data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("espeak-ng-data");
    tts::install_espeak_ng_data(&dir).unwrap();
    dir
}

pub fn load(options: VoiceOptions) -> Voice {
    let models = ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&models)
        .unwrap_or_else(|e| panic!("ONNX Runtime: {e}"));
    Voice::load_with(
        &env,
        &models.piper_voice(),
        &models.piper_voice_config(),
        &espeak_data(),
        options,
    )
    .unwrap_or_else(|e| panic!("loading the Piper voice: {e}"))
}

/// One voice per test binary (loading takes a second).
pub fn voice() -> &'static Voice {
    static VOICE: OnceLock<Voice> = OnceLock::new();
    VOICE.get_or_init(|| load(VoiceOptions::default()))
}

/// Longest run of near-silent samples, in seconds.
pub fn longest_silence(samples: &[f32], rate: u32) -> f64 {
    let threshold = 0.01;
    let (mut best, mut run) = (0usize, 0usize);
    for s in samples {
        if s.abs() < threshold {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best as f64 / f64::from(rate)
}
