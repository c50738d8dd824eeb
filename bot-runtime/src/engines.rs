//! The models a call server loads once and shares between calls: whisper, the Piper voice with
//! its phrase cache, the MiniLM embedder (for each flow's NLU) and the Silero VAD model path
//! (one VAD state per call), with a gate that bounds how many recognitions run at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use callbot_models::ModelsDir;
use dialog_flows::Flow;
use tokio::sync::Semaphore;

use crate::flow_nlu::FlowNlu;
use crate::metrics::Metrics;

/// The whisper window floor of live calls: 384 positions (7.7 s) instead of the library's 512.
/// A short answer's decode takes ~210 ms instead of ~300 ms on this project's 2-core machine, for
/// +0.4 points of word error rate on the shared speech sets (BENCHMARKS.md, ASR section).
pub const LIVE_WINDOW_FLOOR: u32 = 384;

impl Engines {
    /// Whether decodes are waiting for the recogniser (more submitted than can run at once).
    pub fn asr_busy(&self) -> bool {
        self.asr_pending.load(std::sync::atomic::Ordering::Relaxed) > self.asr_parallel
    }
}

/// Counts a submitted decode in [`Engines::asr_pending`] until dropped.
pub struct PendingDecode(Arc<std::sync::atomic::AtomicUsize>);

impl PendingDecode {
    pub fn new(engines: &Engines) -> Self {
        engines
            .asr_pending
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PendingDecode(engines.asr_pending.clone())
    }
}

impl Drop for PendingDecode {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How the engines are set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// CPU threads of one whisper decode.
    pub asr_threads: usize,
    /// Decodes that may run at once (the rest wait their turn).
    pub asr_parallel: usize,
    /// Smallest whisper encoder window, in 20 ms positions (see `asr::WindowPolicy`). Live
    /// calls use [`LIVE_WINDOW_FLOOR`] (env `CALLBOT_ASR_WINDOW_FLOOR` overrides it).
    pub asr_window_floor: u32,
    /// Where rendered prompts are kept between runs (`None`: memory only).
    pub tts_cache_dir: Option<PathBuf>,
    /// Memory for rendered prompts.
    pub tts_cache_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let env_count = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        EngineConfig {
            asr_threads: env_count("CALLBOT_ASR_THREADS").unwrap_or(cores.min(4)),
            asr_parallel: env_count("CALLBOT_ASR_PARALLEL").unwrap_or((cores / 2).max(1)),
            asr_window_floor: std::env::var("CALLBOT_ASR_WINDOW_FLOOR")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(LIVE_WINDOW_FLOOR),
            tts_cache_dir: None,
            tts_cache_bytes: 256 << 20,
        }
    }
}

/// Errors while loading the engines.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("ONNX Runtime: {0}")]
    Onnx(String),
    #[error(transparent)]
    Asr(#[from] asr::AsrError),
    #[error(transparent)]
    Tts(#[from] tts::TtsError),
    #[error(transparent)]
    Nlu(#[from] nlu::NluError),
}

/// See the module docs.
pub struct Engines {
    pub models: ModelsDir,
    pub whisper: Arc<asr::Transcriber>,
    pub voice: Arc<tts::Voice>,
    pub cache: Arc<tts::PhraseCache>,
    pub embedder: Arc<nlu::Embedder>,
    pub asr_gate: Arc<Semaphore>,
    /// Decodes submitted and not finished (running or waiting at `asr_gate`).
    pub asr_pending: Arc<std::sync::atomic::AtomicUsize>,
    /// Decodes that may run at once (`asr_gate`'s permits).
    pub asr_parallel: usize,
    pub metrics: Arc<Metrics>,
    flow_nlu: Mutex<HashMap<(String, u32), Arc<FlowNlu>>>,
    /// The Silero graph every call leg's VAD shares (a session per leg cost ~10 MB a call).
    vad_model: Mutex<Option<Arc<asr::VadModel>>>,
}

impl Engines {
    pub fn load(models: &ModelsDir, cfg: &EngineConfig) -> Result<Engines, EngineError> {
        let env = callbot_models::onnxruntime_environment(models)
            .map_err(|e| EngineError::Onnx(e.to_string()))?;
        let voice = tts::Voice::load(
            &env,
            &models.piper_voice(),
            &models.piper_voice_config(),
            &models.espeak_ng_data(),
        )?;
        let whisper = asr::Transcriber::new(
            &models.whisper_ggml(),
            asr::TranscriberOptions {
                threads: cfg.asr_threads.max(1),
                window: asr::WindowPolicy {
                    floor: cfg.asr_window_floor,
                    ..Default::default()
                },
                ..Default::default()
            },
        )?;
        let embedder = nlu::Embedder::new(
            &env,
            &models.minilm_onnx(),
            &models.minilm_tokenizer(),
            Default::default(),
        )?;
        let cache = match &cfg.tts_cache_dir {
            Some(dir) => tts::PhraseCache::with_dir(dir, cfg.tts_cache_bytes)?,
            None => tts::PhraseCache::in_memory(cfg.tts_cache_bytes),
        };
        Ok(Engines {
            models: models.clone(),
            whisper: Arc::new(whisper),
            voice: Arc::new(voice),
            cache: Arc::new(cache),
            embedder: Arc::new(embedder),
            asr_gate: Arc::new(Semaphore::new(cfg.asr_parallel.max(1))),
            asr_pending: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            asr_parallel: cfg.asr_parallel.max(1),
            metrics: Arc::new(Metrics::new()),
            flow_nlu: Mutex::new(HashMap::new()),
            vad_model: Mutex::new(None),
        })
    }

    /// A fresh VAD for one call leg (8 kHz), on the graph every leg shares (loaded by the
    /// first leg).
    pub fn vad(&self) -> Result<asr::Vad, EngineError> {
        let mut slot = self.vad_model.lock().unwrap_or_else(|e| e.into_inner());
        let model = match slot.as_ref() {
            Some(m) => m.clone(),
            None => {
                let env = callbot_models::onnxruntime_environment(&self.models)
                    .map_err(|e| EngineError::Onnx(e.to_string()))?;
                let m = asr::VadModel::load(&env, &self.models.silero_vad())?;
                *slot = Some(m.clone());
                m
            }
        };
        Ok(asr::Vad::with_model(model, asr::VadRate::Hz8000))
    }

    /// The NLU of a flow version, trained on first use and shared afterwards.
    pub fn flow_nlu(&self, flow: &Flow) -> Result<Arc<FlowNlu>, EngineError> {
        let key = (flow.name.clone(), flow.version);
        if let Some(n) = self
            .flow_nlu
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(n.clone());
        }
        let n = Arc::new(FlowNlu::new(self.embedder.clone(), flow)?);
        self.flow_nlu
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, n.clone());
        Ok(n)
    }

    /// Renders the static prompts of a flow (texts without templates, and templates that use only
    /// bank fields) into the phrase cache, as a campaign starts. Returns how many were rendered
    /// now.
    pub fn prerender_flow(&self, flow: &Flow) -> Result<usize, EngineError> {
        let phrases = crate::prompts::static_prompts(flow);
        Ok(self.cache.prerender(
            &self.voice,
            phrases.iter().map(String::as_str),
            tts::OutputRate::TELEPHONY,
        )?)
    }

    /// Renders `texts` (e.g. one lead's greeting while the phone rings).
    pub fn prerender_texts(&self, texts: &[String]) -> Result<usize, EngineError> {
        Ok(self.cache.prerender(
            &self.voice,
            texts.iter().map(String::as_str),
            tts::OutputRate::TELEPHONY,
        )?)
    }
}
