//! Silero VAD v5 through ONNX Runtime, streaming one window at a time.
//!
//! The v5 graph takes `input` [1, context + window] f32, `state` [2, 1, 128] f32 and `sr` (int64
//! scalar), and returns `output` [1, 1] (speech probability) and `stateN` (the next state). The
//! window is 512 samples at 16 kHz and 256 at 8 kHz (32 ms either way); the last 64 (32)
//! samples of the previous window are prepended as context, as the reference implementation does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ndarray::{Array0, Array2, Array3};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use crate::AsrError;
use crate::endpoint::{EndpointerConfig, segments};

/// The two sample rates Silero VAD was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadRate {
    Hz8000,
    Hz16000,
}

impl VadRate {
    pub fn hz(self) -> u32 {
        match self {
            VadRate::Hz8000 => 8000,
            VadRate::Hz16000 => 16000,
        }
    }

    /// Samples per window (32 ms).
    pub fn window_len(self) -> usize {
        match self {
            VadRate::Hz8000 => 256,
            VadRate::Hz16000 => 512,
        }
    }

    fn context_len(self) -> usize {
        match self {
            VadRate::Hz8000 => 32,
            VadRate::Hz16000 => 64,
        }
    }
}

/// Duration of one VAD window in milliseconds, at either rate.
pub const VAD_FRAME_MS: u32 = 32;

const STATE_LEN: usize = 2 * 128;

/// The Silero graph, loaded once and shared by every stream ([`Vad::with_model`]): a pool of
/// ONNX Runtime sessions, one per window being computed at that moment (so at most about one
/// per thread), instead of a session per stream. A session holds the optimised graph and its
/// memory arena, about 10 MB; the streams' recurrent state lives in each [`Vad`].
pub struct VadModel {
    env: Environment,
    path: PathBuf,
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for VadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VadModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VadModel {
    /// Loads and checks the Silero v5 graph into the caller's ONNX Runtime environment.
    pub fn load(env: &Environment, model: &Path) -> Result<Arc<VadModel>, AsrError> {
        let first = Self::session(env, model)?;
        Ok(Arc::new(VadModel {
            env: env.clone(),
            path: model.to_path_buf(),
            idle: Mutex::new(vec![first]),
        }))
    }

    fn session(env: &Environment, model: &Path) -> Result<Session, AsrError> {
        let err = |message: String| AsrError::VadModel {
            path: model.to_path_buf(),
            message,
        };
        if !model.is_file() {
            return Err(err("file not found".into()));
        }
        // One thread: a window is ~0.1 ms of work, thread hand-offs would cost more.
        let session = Session::builder(env)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| err(e.to_string()))?
            .commit_from_file(model)
            .map_err(|e| err(e.to_string()))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if inputs != ["input", "state", "sr"] || outputs != ["output", "stateN"] {
            return Err(err(format!(
                "not a Silero VAD v5 graph: inputs {inputs:?}, outputs {outputs:?}"
            )));
        }
        Ok(session)
    }

    /// An idle session, or a new one when all are busy.
    fn take(&self) -> Result<Session, AsrError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(s) => Ok(s),
            None => Self::session(&self.env, &self.path),
        }
    }

    fn give_back(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
    }

    /// Sessions created so far and idle now.
    pub fn idle_sessions(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A streaming Silero VAD for one audio stream (one call leg): the stream's recurrent state,
/// with the graph shared ([`VadModel`]).
pub struct Vad {
    model: Arc<VadModel>,
    rate: VadRate,
    state: Vec<f32>,
    context: Vec<f32>,
    /// Samples pushed through [`Vad::push`] that do not yet fill a window.
    pending: Vec<f32>,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Vad {
    /// Loads the Silero v5 graph into the caller's ONNX Runtime environment, for this stream
    /// alone (see [`Vad::with_model`] for many streams).
    pub fn new(env: &Environment, model: &Path, rate: VadRate) -> Result<Self, AsrError> {
        Ok(Self::with_model(VadModel::load(env, model)?, rate))
    }

    /// A stream on a shared graph.
    pub fn with_model(model: Arc<VadModel>, rate: VadRate) -> Self {
        Self {
            model,
            rate,
            state: vec![0.0; STATE_LEN],
            context: vec![0.0; rate.context_len()],
            pending: Vec::new(),
        }
    }

    pub fn rate(&self) -> VadRate {
        self.rate
    }

    /// Forgets the stream's history (start of a new stream).
    pub fn reset(&mut self) {
        self.state.fill(0.0);
        self.context.fill(0.0);
        self.pending.clear();
    }

    /// Speech probability of exactly one window ([`VadRate::window_len`] samples in [-1, 1]).
    pub fn process(&mut self, window: &[f32]) -> Result<f32, AsrError> {
        let n = self.rate.window_len();
        if window.len() != n {
            return Err(AsrError::InvalidInput(format!(
                "VAD window must be {n} samples at {} Hz, got {}",
                self.rate.hz(),
                window.len()
            )));
        }
        let mut input = Vec::with_capacity(self.context.len() + n);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(window);
        let run_err = |e: ort::Error| AsrError::Vad(e.to_string());
        let input = Tensor::from_array(
            Array2::from_shape_vec((1, input.len()), input)
                .map_err(|e| AsrError::Vad(e.to_string()))?,
        )
        .map_err(run_err)?;
        let state = Tensor::from_array(
            Array3::from_shape_vec((2, 1, 128), self.state.clone())
                .map_err(|e| AsrError::Vad(e.to_string()))?,
        )
        .map_err(run_err)?;
        let sr = Tensor::from_array(Array0::from_elem((), i64::from(self.rate.hz())))
            .map_err(run_err)?;
        let mut session = self.model.take()?;
        let result = Self::run(&mut session, input, state, sr, &mut self.state);
        self.model.give_back(session);
        let prob = result?;
        let keep = self.context.len();
        self.context.copy_from_slice(&window[n - keep..]);
        Ok(prob)
    }

    /// One window through `session`: the speech probability, and the next state into `state`.
    fn run(
        session: &mut Session,
        input: Tensor<f32>,
        state_in: Tensor<f32>,
        sr: Tensor<i64>,
        state: &mut [f32],
    ) -> Result<f32, AsrError> {
        let run_err = |e: ort::Error| AsrError::Vad(e.to_string());
        let outputs = session
            .run(ort::inputs!["input" => input, "state" => state_in, "sr" => sr])
            .map_err(run_err)?;
        let prob = match outputs.get("output") {
            Some(v) => v.try_extract_tensor::<f32>().map_err(run_err)?.1,
            None => return Err(AsrError::Vad("no `output` in the VAD's results".into())),
        };
        let prob = prob.first().copied().unwrap_or(0.0);
        match outputs.get("stateN") {
            Some(v) => {
                let (_, next) = v.try_extract_tensor::<f32>().map_err(run_err)?;
                if next.len() != STATE_LEN {
                    return Err(AsrError::Vad(format!(
                        "VAD state has {} values, expected {STATE_LEN}",
                        next.len()
                    )));
                }
                state.copy_from_slice(next);
            }
            None => return Err(AsrError::Vad("no `stateN` in the VAD's results".into())),
        }
        Ok(prob)
    }

    /// Streams samples of any length (e.g. 20 ms RTP frames); returns one probability per
    /// completed window, in order. Leftover samples wait for the next call.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, AsrError> {
        let n = self.rate.window_len();
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / n * n;
        let ready: Vec<f32> = self.pending.drain(..whole).collect();
        ready.chunks_exact(n).map(|w| self.process(w)).collect()
    }

    /// Probabilities for a whole buffer, from a fresh state (the last partial window is
    /// zero-padded). Resets the VAD before and after.
    pub fn probabilities(&mut self, samples: &[f32]) -> Result<Vec<f32>, AsrError> {
        self.reset();
        let n = self.rate.window_len();
        let mut probs = Vec::with_capacity(samples.len() / n + 1);
        for chunk in samples.chunks(n) {
            if chunk.len() == n {
                probs.push(self.process(chunk)?);
            } else {
                let mut last = chunk.to_vec();
                last.resize(n, 0.0);
                probs.push(self.process(&last)?);
            }
        }
        self.reset();
        Ok(probs)
    }

    /// Speech segments `(start_ms, end_ms)` of a whole buffer at this VAD's rate.
    pub fn speech_segments(
        &mut self,
        samples: &[f32],
        config: EndpointerConfig,
    ) -> Result<Vec<(u64, u64)>, AsrError> {
        let probs = self.probabilities(samples)?;
        let total_ms = samples.len() as u64 * 1000 / u64::from(self.rate.hz());
        Ok(segments(config, VAD_FRAME_MS, &probs)
            .into_iter()
            .map(|(s, e)| (s.min(total_ms), e.min(total_ms)))
            .collect())
    }
}
