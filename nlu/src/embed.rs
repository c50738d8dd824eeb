//! Sentence embeddings from all-MiniLM-L6-v2 through ONNX Runtime (`ort`) and `tokenizers`.

use std::path::Path;
use std::sync::Mutex;

use ndarray::{Array2, ArrayView2};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::NluError;

#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    /// ONNX Runtime intra-op threads. 1 gives the best latency per utterance when several calls
    /// run at once on a small machine; 2 halves single-call latency on an idle one (see the bench).
    pub intra_threads: usize,
    /// Sentences per forward pass when embedding many.
    pub batch_size: usize,
    /// Longer inputs are truncated (the model was trained on up to 256 word pieces).
    pub max_tokens: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            intra_threads: 1,
            batch_size: 32,
            max_tokens: 128,
        }
    }
}

/// Turns sentences into L2-normalised 384-dimensional vectors; cosine similarity is a dot product.
pub struct Embedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    output: String,
    token_type_ids: bool,
    dim: usize,
    batch_size: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("output", &self.output)
            .field("dim", &self.dim)
            .finish()
    }
}

impl Embedder {
    /// Loads the graph and tokenizer. `env` is the process's ONNX Runtime environment.
    pub fn new(
        env: &Environment,
        model: &Path,
        tokenizer: &Path,
        opts: EmbedderOptions,
    ) -> Result<Self, NluError> {
        let model_err = |message: String| NluError::Model {
            path: model.to_path_buf(),
            message,
        };
        if !model.is_file() {
            return Err(model_err(
                "file not found (run `callbot models fetch`)".into(),
            ));
        }
        let session = Session::builder(env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|b| Ok(b.with_intra_threads(opts.intra_threads.max(1))?))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| model_err(e.to_string()))?;
        let names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let output = names
            .iter()
            .find(|n| n.as_str() == "sentence_embedding")
            .or(names.first())
            .cloned()
            .ok_or_else(|| model_err("graph has no outputs".into()))?;
        let token_type_ids = session
            .inputs()
            .iter()
            .any(|i| i.name() == "token_type_ids");

        let mut tok = Tokenizer::from_file(tokenizer).map_err(|e| NluError::TokenizerLoad {
            path: tokenizer.to_path_buf(),
            message: e.to_string(),
        })?;
        tok.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tok.with_truncation(Some(TruncationParams {
            max_length: opts.max_tokens,
            ..Default::default()
        }))
        .map_err(|e| NluError::TokenizerLoad {
            path: tokenizer.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut me = Self {
            session: Mutex::new(session),
            tokenizer: tok,
            output,
            token_type_ids,
            dim: 0,
            batch_size: opts.batch_size.max(1),
        };
        me.dim = me.embed_batch(&["hello"])?.ncols();
        Ok(me)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The name of the graph output read (normally `sentence_embedding`).
    pub fn output_name(&self) -> &str {
        &self.output
    }

    pub fn embed(&self, text: &str) -> Result<Vec<f32>, NluError> {
        Ok(self.embed_batch(&[text])?.row(0).to_vec())
    }

    /// One row per text, in the order given. Texts are grouped by length so that little padding
    /// is computed.
    pub fn embed_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>, NluError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].as_ref().len());
        let mut out = Array2::<f32>::zeros((texts.len(), self.dim.max(1)));
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_ref()).collect();
            let emb = self.forward(&batch)?;
            if out.ncols() != emb.ncols() {
                out = Array2::zeros((texts.len(), emb.ncols()));
            }
            for (row, &i) in chunk.iter().enumerate() {
                out.row_mut(i).assign(&emb.row(row));
            }
        }
        Ok(out)
    }

    fn forward(&self, batch: &[&str]) -> Result<Array2<f32>, NluError> {
        let enc = self
            .tokenizer
            .encode_batch(batch.to_vec(), true)
            .map_err(|e| NluError::Tokenize(e.to_string()))?;
        let seq = enc
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let n = batch.len();
        let mut ids = Array2::<i64>::zeros((n, seq));
        let mut mask = Array2::<i64>::zeros((n, seq));
        for (r, e) in enc.iter().enumerate() {
            for (c, (&id, &m)) in e.get_ids().iter().zip(e.get_attention_mask()).enumerate() {
                ids[[r, c]] = i64::from(id);
                mask[[r, c]] = i64::from(m);
            }
        }
        let types = Array2::<i64>::zeros((n, seq));
        let inf = |e: ort::Error| NluError::Inference(e.to_string());
        let mut session = self
            .session
            .lock()
            .map_err(|_| NluError::Inference("session lock poisoned".into()))?;
        let mut inputs = ort::inputs![
            "input_ids" => TensorRef::from_array_view(&ids).map_err(inf)?,
            "attention_mask" => TensorRef::from_array_view(&mask).map_err(inf)?,
        ];
        if self.token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                TensorRef::from_array_view(&types).map_err(inf)?.into(),
            ));
        }
        let outputs = session.run(inputs).map_err(inf)?;
        let value = &outputs[self.output.as_str()];
        let arr = value.try_extract_array::<f32>().map_err(inf)?;
        let view: ArrayView2<f32> = arr.into_dimensionality().map_err(|e| {
            NluError::Inference(format!("output `{}` is not [batch, dim]: {e}", self.output))
        })?;
        Ok(view.to_owned())
    }
}

/// Dot product of two L2-normalised vectors, i.e. their cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
